"""Area routes without a network: the profile section and the judgements over netlink records."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Any

import pytest

from sixcheck.check import Simple
from sixcheck.probes.netlink import Address, AddressList, Route, RouteTable
from sixcheck.probes.sysctl import SysctlRead, SysctlValue
from sixcheck.schema import ProfileError, parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))
import test_routes as rc

BASE = """node: {role: router}
interfaces:
  wan0: {role: wan, upstream_ra: true}
  eth0: {role: lan}
  tun6: {role: tunnel}
"""

FULL = """routes:
  addresses:
    eth0:
      expect: [{prefix: "2001:db8:1:1::/64", method: slaac, kind: stable}]
  default:
    - {interface: wan0, via: link-local, proto: ra}
    - {interface: tun6, via: none}
  route_get:
    - {destination: "2001:db8:80::80", interface: wan0, source_prefix: "2001:db8:0:1::/64"}
  rules:
    - {from: "2001:db8:0:7::/64", table: 7, priority: 1000, default_dev: tun6}
    - {fwmark: 0x10, table: 8}
  anyip:
    - {prefix: "2001:db8:1:ff::/64"}
"""


def test_full_section_parses() -> None:
    p = parse(BASE + FULL, "t.yaml")
    assert p.routes is not None
    assert p.routes.default[1].via == "none"
    assert p.routes.rules[0].from_ == ipaddress.IPv6Network("2001:db8:0:7::/64")
    assert p.routes.rules[1].label() == "from all fwmark 0x10 lookup 8"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("routes: {}", "the routes area is empty"),
        ("routes:\n  rules: [{table: 7}]", "a rule needs 'from' and/or 'fwmark'"),
        ("routes:\n  default: [{interface: ppp0}]", "names interface 'ppp0'"),
        ("routes:\n  default: [{interface: wan0, via: 192.0.2.1}]", "IPv4 address"),
        ("routes:\n  anyip: [{prefix: '2001:db8:1:ff::1/64'}]", "host bits set"),
        (
            "routes:\n  addresses: {eth0: {expect: [{prefix: '2001:db8::/64', method: dhcp}]}}",
            "'slaac', 'dhcpv6', 'static' or 'any'",
        ),
    ],
)
def test_section_errors(section: str, message: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse(BASE + section + "\n", "t.yaml")
    assert message in str(exc.value)


def _addr(address: str, plen: int = 64, *flags: str, preferred: int | None = 100) -> Address:
    return Address(
        interface="eth0",
        address=address,
        prefixlen=plen,
        scope="link" if address.startswith("fe80") else "global",
        flags=flags,
        valid_lft=None if "permanent" in flags else 1000,
        preferred_lft=None if "permanent" in flags else preferred,
    )


def _targets(fn: Any) -> list[Simple]:
    return list(fn(parse(BASE + FULL, "t.yaml")))


def _judge(check: Any, target: Simple, answers: dict[Any, Any]) -> str | None:
    try:
        check(target, lambda req: answers[req], {})
    except AssertionError as exc:
        return str(exc).split("\nassert ")[0]  # the message alone, as the plugin shows it
    return None


def test_addresses_judgement() -> None:
    (target,) = _targets(rc._address_targets)
    req = target.requests[0]
    slaac = _addr("2001:db8:1:1::ff:fe00:110", 64, "mngtmpaddr")
    ll = _addr("fe80::ff:fe00:110", 64, "permanent")

    def judge(*addrs: Address) -> str | None:
        return _judge(
            rc.test_addresses, target, {req: AddressList(interface="eth0", addresses=addrs)}
        )

    assert judge(slaac, ll) is None
    msg = judge(ll)
    assert msg
    assert msg.startswith("no address in 2001:db8:1:1::/64 formed by slaac (stable) on eth0")
    msg = judge(_addr("2001:db8:1:1::5", 64, "permanent"))
    assert msg
    assert "formed by slaac" in msg
    msg = judge(_addr("2001:db8:1:1::ff:fe00:110", 64, "dadfailed", "tentative"))
    assert msg
    assert "is a duplicate (dadfailed)" in msg
    msg = judge(_addr("2001:db8:1:1::ff:fe00:110", 64, preferred=0))
    assert msg
    assert "is deprecated" in msg
    msg = judge(slaac, _addr("2001:db8:bad::ff:fe00:110", 64, "mngtmpaddr"))
    assert msg
    assert msg.startswith("unexpected address 2001:db8:bad::ff:fe00:110/64")
    assert "rogue router" in msg


def _default_answers(target: Simple, routes: list[Route], **sysctls: int) -> dict[Any, Any]:
    answers: dict[Any, Any] = {target.requests[0]: RouteTable(table=254, routes=tuple(routes))}
    for req in target.requests[1:]:
        assert isinstance(req, SysctlRead)
        key = req.key.rsplit(".", 1)[1]
        answers[req] = SysctlValue(key=req.key, value=str(sysctls.get(key, 0)))
    return answers


def _route(gw: str | None, dev: str, proto: str = "ra") -> Route:
    return Route(
        table=254,
        type="unicast",
        dst="default",
        gateway=gw,
        dev=dev,
        metric=1024,
        proto=proto,
        expires=1700,
        pref="medium",
    )


def test_default_route_role_awareness_message() -> None:
    wan, tun = _targets(rc._default_targets)
    msg = _judge(
        rc.test_default_route,
        wan,
        _default_answers(wan, [], forwarding=1, accept_ra=1, accept_ra_defrtr=1),
    )
    assert msg == "accept_ra=1 with forwarding=1 on wan0: upstream RAs are ignored; set accept_ra=2"
    msg = _judge(
        rc.test_default_route,
        wan,
        _default_answers(wan, [], forwarding=0, accept_ra=1, accept_ra_defrtr=0),
    )
    assert msg
    assert msg.startswith("accept_ra_defrtr=0 on wan0")
    msg = _judge(
        rc.test_default_route,
        wan,
        _default_answers(wan, [], forwarding=1, accept_ra=2, accept_ra_defrtr=1),
    )
    assert msg
    assert msg.startswith("no default route via a link-local router on wan0 learnt from RAs")
    good = _route("fe80::1", "wan0")
    assert _judge(rc.test_default_route, wan, _default_answers(wan, [good])) is None
    static = _route("fe80::1", "wan0", proto="static")
    assert _judge(rc.test_default_route, wan, _default_answers(wan, [static])) is not None
    rogue = _route("2001:db8::1", "wan0")
    msg = _judge(rc.test_default_route, wan, _default_answers(wan, [good, rogue]))
    assert msg
    assert msg.startswith("unexpected default route default via 2001:db8::1 dev wan0")
    assert (
        _judge(rc.test_default_route, tun, _default_answers(tun, [_route(None, "tun6", "boot")]))
        is None
    )


def test_random_anyip_address_stays_inside() -> None:
    net = ipaddress.IPv6Network("2001:db8:1:ff::/64")
    for _ in range(50):
        a = ipaddress.IPv6Address(rc._random_address(net))
        assert a in net
        assert a != net.network_address
