"""The node's IPv6 switches match its role: a router forwards, and still learns its upstream route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sixcheck.check import Simple, targets
from sixcheck.probes.sysctl import SysctlRead, SysctlValue
from sixcheck.schema import Profile

AREA = "sysctl"


def _expected_values(p: Profile) -> Iterator[Simple]:
    assert p.sysctl is not None
    scopes = [("all", p.sysctl.all), ("default", p.sysctl.default), *p.sysctl.interfaces.items()]
    for scope, keys in scopes:
        for key, value in keys.items():
            path = f"net.ipv6.conf.{scope}.{key}"
            yield Simple(path, (SysctlRead(path),), {"expected": value})
    if p.sysctl.ipv4_forwarding is not None:
        yield Simple(
            "net.ipv4.ip_forward",
            (SysctlRead("net.ipv4.ip_forward"),),
            {"expected": p.sysctl.ipv4_forwarding},
        )


@targets(_expected_values)
def test_sysctl(
    target: Simple, observe: Callable[[Any], SysctlValue], evidence: dict[str, Any]
) -> None:
    expected = target.data["expected"]
    evidence["expected"] = expected
    found = observe(target.requests[0])
    assert found.error is None, f"{target.id}: could not read it: {found.error}"
    assert found.as_int() == expected, (
        f"{target.id} is {found.value}, expected {expected}: "
        f"{_consequence(target.id, expected)}fix: sysctl -w {target.id}={expected} "
        f"(and persist it in /etc/sysctl.d/)"
    )


def _consequence(key: str, expected: int) -> str:
    name = key.rsplit(".", 1)[-1]
    if name == "forwarding" and expected == 1:
        return "this node does not route IPv6 for its LAN; "
    if name == "forwarding" and expected == 0:
        return "a forwarding node ignores RAs unless accept_ra=2; "
    if name == "disable_ipv6" and expected == 0:
        return "IPv6 is switched off on this interface; "
    if name == "accept_ra" and expected == 2:
        return "with forwarding on, only accept_ra=2 lets RAs set the default route; "
    return ""


def _upstream_ra_interfaces(p: Profile) -> Iterator[Simple]:
    assert p.sysctl is not None
    if p.sysctl.upstream_ra_rule == "off":
        return
    for name, iface in p.interfaces.items():
        if iface.upstream_ra:
            reads = tuple(
                SysctlRead(f"net.ipv6.conf.{scope}.{key}")
                for scope in (name, "all")
                for key in ("forwarding", "accept_ra", "disable_ipv6")
            )
            yield Simple(name, reads)


@targets(_upstream_ra_interfaces)
def test_upstream_ras_are_accepted(
    target: Simple, observe: Callable[[Any], SysctlValue], evidence: dict[str, Any]
) -> None:
    """On an interface whose upstream gives the default route by RA, the kernel must accept RAs.

    Linux ignores RAs on an interface with forwarding=1 unless accept_ra=2: the router loses its
    default route at the next lifetime expiry, the "forwarding must be 0 on ppp0" folklore.
    """
    name = target.id
    values = {r.key: observe(r) for r in target.requests}
    bad = [v for v in values.values() if v.error]
    assert not bad, f"{name}: could not read {bad[0].key}: {bad[0].error}"
    odd = [v for v in values.values() if v.as_int() is None]
    assert not odd, (
        f"{name}: could not tell whether upstream RAs are accepted: {odd[0].key} reads "
        f"{odd[0].value!r}, expected a number; read /proc/sys/{odd[0].key.replace('.', '/')} "
        "by hand"
    )
    get = {k.split(".", 3)[3]: v.as_int() for k, v in values.items()}
    forwarding = get[f"{name}.forwarding"]
    accept_ra = get[f"{name}.accept_ra"]
    evidence["rule"] = "forwarding=1 needs accept_ra=2; forwarding=0 needs accept_ra>=1"
    assert get[f"{name}.disable_ipv6"] == 0, (
        f"IPv6 is disabled on {name} (disable_ipv6=1): no RA can be received; "
        f"set sysctl -w net.ipv6.conf.{name}.disable_ipv6=0"
    )
    assert accept_ra != 0, (
        f"accept_ra=0 on {name}: upstream RAs are ignored and no default route is learnt; "
        f"set sysctl -w net.ipv6.conf.{name}.accept_ra={2 if forwarding else 1}"
    )
    assert not (forwarding == 1 and accept_ra == 1), (
        f"accept_ra=1 with forwarding=1 on {name}: upstream RAs are ignored; set accept_ra=2 "
        f"(sysctl -w net.ipv6.conf.{name}.accept_ra=2)"
    )
