"""Unit tests of the vpn area: schema, the rule-walk replay and the judgement, over fake data."""

from __future__ import annotations

import errno
import importlib.util
import ipaddress
import sys
from pathlib import Path

import pytest

from sixcheck.probes.addrinfo import AddrOrder
from sixcheck.probes.egress import (
    CaptureResult,
    LinkInfo,
    NameRoutes,
    ResolverRoutes,
    Route,
    RouteDecision,
    Rule,
    SentProbe,
    decide,
    lookup,
    walk_rules,
)
from sixcheck.schema import ProfileError, parse
from sixcheck.schema.vpn import VpnArea

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("checks_test_vpn", REPO / "checks" / "test_vpn.py")
assert _spec
assert _spec.loader
checks = importlib.util.module_from_spec(_spec)
sys.modules["checks_test_vpn"] = checks
_spec.loader.exec_module(checks)

ip = ipaddress.ip_address
AREA = VpnArea(
    interfaces=["wg0"],
    public=["eth0"],
    names=["intranet.example.net"],
    prefixes=[ipaddress.ip_network("2001:db8:10::/64")],
)
V4_ONLY = [
    LinkInfo(
        interface="wg0",
        exists=True,
        up=True,
        routes={4: ("203.0.113.192/26 dev wg0 table main",), 6: ()},
    )
]
DUAL = [
    LinkInfo(
        interface="wg0",
        exists=True,
        up=True,
        routes={4: ("203.0.113.192/26 dev wg0",), 6: ("2001:db8:10::/64 dev wg0",)},
    )
]
MAIN_RULES = [
    Rule(priority=0, table=255),
    Rule(priority=32766, table=254),
    Rule(priority=32767, table=253),
]
LEAK_ROUTES = [
    Route(table=254, dst="::/0", interface="eth0", gateway="fe80::1", metric=1024, proto="ra"),
    Route(table=254, dst="2001:db8:1:1::/64", interface="eth0", metric=256),
]


# --------------------------------------------------------------------------------- schema


PROFILE = """\
node: {role: host}
interfaces:
  eth0: {role: lan}
  wg0: {role: vpn}
vpn:
  interfaces: [wg0]
  public: [eth0]
  names: [intranet.example.net]
  prefixes: [2001:db8:10::/64, 203.0.113.192/26]
  resolvers: [2001:db8:f::53, 203.0.113.153]
"""


def test_schema_accepts_both_families() -> None:
    p = parse(PROFILE, "x.yaml")
    assert p.vpn is not None
    assert p.vpn.policy(6) == "tunnel-or-blackhole"
    assert [n.version for n in p.vpn.prefixes] == [6, 4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("public: [eth0]", "public: [wg0]"), "cannot be both a VPN and a public interface"),
        (("public: [eth0]", "public: [eth1]"), "names interface 'eth1', not declared"),
        (("203.0.113.192/26", "203.0.113.193/26"), "host bits set"),
        (("  names: [intranet.example.net]\n", "  ipv6: always\n"), "ipv6"),
    ],
)
def test_schema_rejects(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse(PROFILE.replace(*change), "x.yaml")
    assert message in str(exc.value)


def test_schema_needs_something_to_protect() -> None:
    text = PROFILE.replace("  names: [intranet.example.net]\n", "").replace(
        "  prefixes: [2001:db8:10::/64, 203.0.113.192/26]\n", ""
    )
    with pytest.raises(ProfileError, match="nothing to protect"):
        parse(text, "x.yaml")


# --------------------------------------------------------------------------- rule replay


def test_longest_prefix_then_metric() -> None:
    routes = [
        *LEAK_ROUTES,
        Route(table=254, dst="2001:db8:10::/64", interface="wg0", metric=1024),
        Route(table=254, dst="2001:db8:10::/64", interface="eth0", metric=2048),
    ]
    best = lookup(254, ip("2001:db8:10::10"), routes)
    assert best is not None
    assert best.interface == "wg0"
    assert lookup(51820, ip("2001:db8:10::10"), routes) is None


def test_wireguard_fwmark_rules_send_unmarked_traffic_into_the_tunnel() -> None:
    """wg-quick: `not fwmark 0xca6c lookup 51820` and `lookup main suppress_prefixlength 0`."""
    rules = [
        Rule(priority=0, table=255),
        Rule(priority=32764, table=254, suppress_prefixlength=0),
        Rule(priority=32765, table=51820, fwmark=0xCA6C, invert=True),
        Rule(priority=32766, table=254),
    ]
    routes = [*LEAK_ROUTES, Route(table=51820, dst="::/0", interface="wg0")]
    walk = walk_rules(ip("2001:db8:10::10"), rules, routes)
    assert walk.route is not None
    assert walk.route.interface == "wg0"
    assert walk.rule is not None
    assert walk.rule.text() == ("32765: not from all fwmark 0xca6c lookup 51820")
    assert any("suppressed (prefix length 0 <= 0)" in s for s in walk.steps)
    # the tunnel's own (marked) packets take the main table
    marked = walk_rules(
        ip("192.0.2.1"), rules, [Route(table=254, dst="0.0.0.0/0", interface="eth0")], mark=0xCA6C
    )
    assert marked.route is not None
    assert marked.route.interface == "eth0"
    # a more specific route in main is not suppressed
    local = walk_rules(ip("2001:db8:1:1::1"), rules, routes)
    assert local.route is not None
    assert local.route.interface == "eth0"
    assert local.rule is not None
    assert local.rule.priority == 32764


def test_throw_and_blackhole_rules() -> None:
    rules = [Rule(priority=100, table=7), *MAIN_RULES]
    routes = [*LEAK_ROUTES, Route(table=7, dst="2001:db8::/32", kind="throw")]
    walk = walk_rules(ip("2001:db8:10::10"), rules, routes)
    assert walk.route is not None
    assert walk.route.table == 254
    refused = walk_rules(ip("2001:db8:10::10"), [Rule(priority=5, action="blackhole")], [])
    assert refused.kind == "blackhole"


def test_decide_trusts_the_kernel_and_records_disagreement() -> None:
    kernel = {
        "kind": "unicast",
        "table": 254,
        "interface": "wg0",
        "source": "2001:db8:f::2",
        "text": "2001:db8:10::10 dev wg0",
    }
    d = decide(ip("2001:db8:10::10"), kernel, MAIN_RULES, LEAK_ROUTES)
    assert d.interface == "wg0"
    assert d.note
    assert "disagrees" in d.note
    assert d.rule is None


def test_decide_errno_needs_a_refusing_rule_to_fail_closed() -> None:
    routes = [Route(table=254, dst="198.51.100.0/24", kind="blackhole")]
    d = decide(ip("198.51.100.7"), errno.EINVAL, MAIN_RULES, routes)
    assert d.fails_closed
    assert d.route_type == "blackhole"
    # EINVAL while the rules lead to a unicast route: cannot tell, never "fails closed"
    d = decide(
        ip("198.51.100.7"),
        errno.EINVAL,
        MAIN_RULES,
        [Route(table=254, dst="0.0.0.0/0", interface="eth0")],
    )
    assert d.error
    assert not d.fails_closed


# ----------------------------------------------------------------------------- judgement


def _leak(dst: str = "2001:db8:10::10") -> RouteDecision:
    return decide(
        ip(dst),
        {
            "kind": "unicast",
            "table": 254,
            "interface": "eth0",
            "gateway": "fe80::1",
            "source": "2001:db8:1:1::20",
            "text": f"{dst} via fe80::1 dev eth0",
        },
        MAIN_RULES,
        LEAK_ROUTES,
    )


def test_flagship_message() -> None:
    msg = checks.judge(_leak(), "intranet.example.net", AREA, V4_ONLY)
    assert msg is not None
    assert msg.startswith(
        "IPv6 to intranet.example.net (2001:db8:10::10) leaves by eth0 around the IPv4-only "
        "VPN wg0 (route 'default via fe80::1 dev eth0 proto ra metric 1024 table main', "
        "rule '32766: from all lookup main', source 2001:db8:1:1::20)"
    )
    assert "blackhole 2001:db8:10::10/128" in msg
    assert "around the VPN wg0" in (checks.judge(_leak(), "x", AREA, DUAL) or "")


def test_tunnel_and_blackhole_pass_unless_tunnel_required() -> None:
    into = RouteDecision(dst="2001:db8:10::10", family=6, route_type="unicast", interface="wg0")
    hole = RouteDecision(dst="2001:db8:10::10", family=6, route_type="blackhole")
    assert checks.judge(into, "n", AREA, DUAL) is None
    assert checks.judge(hole, "n", AREA, V4_ONLY) is None
    strict = AREA.model_copy(update={"ipv6": "tunnel"})
    assert "refused locally (blackhole" in (checks.judge(hole, "n", strict, V4_ONLY) or "")


def test_other_interface_and_errors_fail() -> None:
    other = RouteDecision(
        dst="2001:db8:10::10", family=6, route_type="unicast", interface="docker0"
    )
    assert "leaves by docker0, which is neither" in (checks.judge(other, "n", AREA, DUAL) or "")
    broken = RouteDecision(dst="2001:db8:10::10", family=6, error="netlink said no")
    assert (checks.judge(broken, "n", AREA, DUAL) or "").startswith("could not tell")


def test_a_decision_without_an_interface_is_told_in_words() -> None:
    """A local or multicast route is neither the VPN nor refused: the message says what it is,
    not the route type's bare name ("is local"); "no-route" reads "has no route"."""
    local = RouteDecision(dst="2001:db8:10::10", family=6, route_type="local")
    assert "2001:db8:10::10 is delivered to this host (a local route), which is neither" in (
        checks.judge(local, "2001:db8:10::10", AREA, DUAL) or ""
    )
    assert checks.nowhere("no-route") == "has no route"
    assert checks.nowhere("multicast") == "ends in a multicast route"


def test_capture_judgement() -> None:
    seen = CaptureResult(
        target="intranet.example.net",
        family=6,
        port=33434,
        watched=("eth0", "wg0"),
        probes=(
            SentProbe(
                dst="2001:db8:10::10",
                source="2001:db8:1:1::20",
                seen_on=("eth0",),
                summaries=("eth0: Ether / IPv6 / UDP",),
            ),
        ),
    )
    [msg] = checks.judge_capture(seen, "intranet.example.net", AREA)
    assert "captured leaving by eth0" in msg
    assert "eth0: Ether / IPv6 / UDP" in msg
    ok = CaptureResult(
        target="x",
        family=6,
        port=1,
        watched=("eth0", "wg0"),
        probes=(SentProbe(dst="2001:db8:10::10", seen_on=("wg0",)),),
    )
    assert checks.judge_capture(ok, "x", AREA) == []
    refused = CaptureResult(
        target="x",
        family=6,
        port=1,
        watched=("eth0",),
        probes=(SentProbe(dst="2001:db8:10::10", send_error="Invalid"),),
    )
    assert checks.judge_capture(refused, "x", AREA) == []
    lost = CaptureResult(
        target="x",
        family=6,
        port=1,
        watched=("eth0", "wg0"),
        probes=(SentProbe(dst="2001:db8:10::10", source="2001:db8:f::2"),),
    )
    assert checks.judge_capture(lost, "x", AREA)[0].startswith("could not confirm")


def test_preference_flags_seed_004() -> None:
    order = AddrOrder(
        name="intranet.example.net", addresses=("2001:db8:10::10", "203.0.113.210"), families=(6, 4)
    )
    v6 = NameRoutes(
        name="intranet.example.net", family=6, addresses=("2001:db8:10::10",), decisions=(_leak(),)
    )
    msg = checks.judge_preference(order, v6, AREA, V4_ONLY)
    assert msg is not None
    assert msg.startswith(
        "IPv6 to intranet.example.net (2001:db8:10::10) leaves by eth0 around the IPv4-only "
        "VPN wg0: applications try 2001:db8:10::10 first"
    )
    v4_first = AddrOrder(name="n", addresses=("203.0.113.210", "2001:db8:10::10"), families=(4, 6))
    assert checks.judge_preference(v4_first, v6, AREA, V4_ONLY) is None


def test_resolver_leak() -> None:
    area = AREA.model_copy(update={"resolvers": [ip("2001:db8:f::53")]})
    rr = ResolverRoutes(servers=("2001:db8:53::53",), decisions=(_leak("2001:db8:53::53"),))
    [msg] = checks.judge_resolvers(rr, area, V4_ONLY)
    assert msg.startswith(
        "DNS for protected names goes to 2001:db8:53::53, which is not one of the VPN's "
        "resolvers (2001:db8:f::53), and leaves by eth0 around the IPv4-only VPN wg0"
    )
    good = ResolverRoutes(
        servers=("2001:db8:f::53",),
        decisions=(
            RouteDecision(dst="2001:db8:f::53", family=6, route_type="unicast", interface="wg0"),
        ),
    )
    assert checks.judge_resolvers(good, area, DUAL) == []
    stub = ResolverRoutes(
        servers=("127.0.0.53",),
        decisions=(RouteDecision(dst="127.0.0.53", family=4, route_type="local", interface="lo"),),
    )
    assert checks.judge_resolvers(stub, area, DUAL)[0].startswith("could not tell")


def test_preference_never_passes_without_a_decision_for_the_first_address() -> None:
    """The address applications try first must have been judged: a route lookup that failed,
    or no lookup for it at all, is "could not tell", never "protected"."""
    order = AddrOrder(
        name="intranet.example.net", addresses=("2001:db8:10::10", "203.0.113.210"), families=(6, 4)
    )
    broken = NameRoutes(
        name="intranet.example.net",
        family=6,
        addresses=("2001:db8:10::10",),
        decisions=(RouteDecision(dst="2001:db8:10::10", family=6, error="netlink said no"),),
    )
    msg = checks.judge_preference(order, broken, AREA, V4_ONLY)
    assert msg == (
        "could not tell where IPv6 to intranet.example.net (2001:db8:10::10) goes: netlink said no"
    )
    other = NameRoutes(
        name="intranet.example.net",
        family=6,
        addresses=("2001:db8:10::11",),
        decisions=(_leak("2001:db8:10::11"),),
    )
    msg = checks.judge_preference(order, other, AREA, V4_ONLY)
    assert msg is not None
    assert msg.startswith(
        "could not tell where IPv6 to intranet.example.net (2001:db8:10::10) goes: applications "
        "try it first, but the IPv6 lookup through system (getaddrinfo, /etc/resolv.conf) gave "
        "2001:db8:10::11"
    ), msg
    into = NameRoutes(
        name="intranet.example.net",
        family=6,
        addresses=("2001:db8:10::10",),
        decisions=(
            RouteDecision(dst="2001:db8:10::10", family=6, route_type="unicast", interface="wg0"),
        ),
    )
    assert checks.judge_preference(order, into, AREA, DUAL) is None
