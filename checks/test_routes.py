"""What the kernel made of the site's addressing: addresses formed, default routes, where traffic
to a destination would leave, policy rules, AnyIP prefixes. Read over netlink: no privilege needed,
nothing sent (except the AnyIP ping, which needs an ICMP socket and is skipped without one).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.icmp_requests import Echo
from sixcheck.probes.netlink_requests import ReadAddresses, ReadRoutes, ReadRules, RouteGet
from sixcheck.probes.sysctl import SysctlRead, SysctlValue
from sixcheck.schema import Profile
from sixcheck.schema.routes import DefaultRoute, ExpectedAddress, InterfaceAddresses

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.icmp import EchoResult
    from sixcheck.probes.netlink import (
        Address,
        AddressList,
        Route,
        RouteLookup,
        RouteTable,
        RuleList,
    )

AREA = "routes"


# ------------------------------------------------------------------------------- addresses


def _address_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    for name, cfg in p.routes.addresses.items():
        yield Simple(name, (ReadAddresses(name),), {"cfg": cfg})


def _formed_by(a: Address, exp: ExpectedAddress) -> bool:
    if exp.method == "static" and not a.has("permanent"):
        return False
    if exp.method == "slaac" and (a.has("permanent") or a.prefixlen != exp.prefix.prefixlen):
        return False
    if exp.method == "dhcpv6" and (a.has("permanent") or a.prefixlen != 128):
        return False
    if exp.kind == "temporary" and not a.has("temporary"):
        return False
    return not (exp.kind == "stable" and a.has("temporary"))


def _method_hint(exp: ExpectedAddress) -> str:
    return {
        "slaac": "is the prefix advertised with A=1, and autoconf=1 / accept_ra>=1 here?",
        "dhcpv6": "is the DHCPv6 client running and the RA's M flag set?",
        "static": "add it to the interface's configuration",
        "any": "is the prefix advertised, or the address configured?",
    }[exp.method]


@targets(_address_targets)
def test_addresses(
    target: Simple, observe: Callable[[Any], AddressList], evidence: dict[str, Any]
) -> None:
    """An address formed in each expected prefix, the expected way; none tentative, duplicate or
    (unless allowed) deprecated; no global address from a prefix nobody expects."""
    cfg: InterfaceAddresses = target.data["cfg"]
    evidence["expected"] = [e.model_dump(mode="json") for e in cfg.expect]
    obs = observe(target.requests[0])
    assert obs.error is None, f"could not tell: {obs.error}"
    glob = [a for a in obs.addresses if a.is_global]
    evidence["addresses"] = [a.describe() for a in obs.addresses]
    for a in glob:
        assert not a.has("dadfailed"), (
            f"{a.address} on {target.id} is a duplicate (dadfailed): another node on the link "
            "uses it; the address is unusable (find the other node, or change this one)"
        )
        assert not a.has("tentative"), (
            f"{a.address} on {target.id} is still tentative (DAD not finished, or the link has "
            "no carrier): it cannot be used yet"
        )
    found = ", ".join(a.describe() for a in glob) or "no global address"
    for exp in cfg.expect:
        inside = [a for a in glob if ipaddress.IPv6Address(a.address) in exp.prefix]
        how = "" if exp.method == "any" else f" formed by {exp.method}"
        kind = "" if exp.kind == "any" else f" ({exp.kind})"
        formed = [a for a in inside if _formed_by(a, exp)]
        assert formed, (
            f"no address in {exp.prefix}{how}{kind} on {target.id} (found: {found}): "
            f"{_method_hint(exp)}"
        )
        if not exp.deprecated_ok:
            fresh = [a for a in formed if not a.deprecated]
            assert fresh, (
                f"every address in {exp.prefix} on {target.id} is deprecated "
                f"({', '.join(a.describe() for a in formed)}): the prefix's preferred lifetime ran "
                "out; is the router still advertising it?"
            )
    if cfg.only_listed:
        extra = [
            a
            for a in glob
            if not any(ipaddress.IPv6Address(a.address) in e.prefix for e in cfg.expect)
        ]
        assert not extra, (
            f"unexpected address {extra[0].describe()} on {target.id}, outside "
            f"{', '.join(str(e.prefix) for e in cfg.expect)}: "
            + (
                "learnt from an RA of a router the site does not expect (a rogue router?)"
                if not extra[0].has("permanent")
                else "configured by hand; remove it or list its prefix in the profile"
            )
        )


# ------------------------------------------------------------------------------- default route


def _default_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    ids: list[str] = []
    for d in p.routes.default:
        tid = d.interface if d.interface not in ids else f"{d.interface}-{d.via}"
        ids.append(tid)
        reads = tuple(
            SysctlRead(f"net.ipv6.conf.{d.interface}.{k}")
            for k in ("forwarding", "accept_ra", "accept_ra_defrtr", "disable_ipv6")
        )
        upstream = p.interfaces[d.interface].upstream_ra
        yield Simple(tid, (ReadRoutes(254), *reads), {"cfg": d, "upstream_ra": upstream})


def _matches(r: Route, d: DefaultRoute) -> bool:
    if d.via == "link-local":
        if not r.gateway or not ipaddress.IPv6Address(r.gateway).is_link_local:
            return False
    elif d.via != "none" and (not r.gateway or ipaddress.IPv6Address(r.gateway) != d.via):
        return False
    if d.proto == "ra" and r.proto != "ra":
        return False
    return not (d.proto == "static" and r.proto == "ra")


def _why_missing(name: str, upstream_ra: bool, sysctls: dict[str, int | None]) -> str | None:
    """The sysctl that explains a missing RA-learnt default route, as the sentence to print."""
    fwd, ra, defrtr = sysctls["forwarding"], sysctls["accept_ra"], sysctls["accept_ra_defrtr"]
    if sysctls["disable_ipv6"] == 1:
        return f"IPv6 is disabled on {name} (disable_ipv6=1); set disable_ipv6=0"
    if not upstream_ra:
        return None
    if fwd == 1 and ra == 1:
        return f"accept_ra=1 with forwarding=1 on {name}: upstream RAs are ignored; set accept_ra=2"
    if ra == 0:
        return f"accept_ra=0 on {name}: RAs are ignored; set accept_ra={2 if fwd else 1}"
    if defrtr == 0:
        return (
            f"accept_ra_defrtr=0 on {name}: RAs do not install a default route; "
            "set accept_ra_defrtr=1"
        )
    return None


@targets(_default_targets)
def test_default_route(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """A default route via the expected router (link-local, from RAs) or tunnel device."""
    d: DefaultRoute = target.data["cfg"]
    evidence["expected"] = d.model_dump(mode="json")
    table: RouteTable = observe(target.requests[0])
    assert table.error is None, f"could not tell: {table.error}"
    defaults = table.defaults()
    evidence["default routes"] = [r.describe() for r in defaults]
    mine = [r for r in defaults if r.dev == d.interface]
    good = [r for r in mine if _matches(r, d)]
    if not good:
        values: dict[str, int | None] = {}
        for req in target.requests[1:]:
            v: SysctlValue = observe(req)
            values[req.key.rsplit(".", 1)[1]] = v.as_int()
        cause = _why_missing(d.interface, target.data["upstream_ra"], values)
        assert cause is None, cause
        via = {"link-local": "a link-local router", "none": "the device"}.get(str(d.via), d.via)
        elsewhere = "; ".join(r.describe() for r in defaults) or "none at all"
        hint = (
            "is a router advertising with router lifetime > 0 on it (see the nd checks)?"
            if d.proto != "static" and d.via != "none"
            else f"add it: ip -6 route add default {'dev' if d.via == 'none' else 'via ' + str(d.via) + ' dev'} {d.interface}"
        )
        assert good, (
            f"no default route via {via} on {d.interface}"
            f"{' learnt from RAs' if d.proto == 'ra' else ''} (default routes: {elsewhere}): "
            f"nothing off-link is reachable that way; {hint}"
        )
    if d.exclusive:
        extra = [r for r in mine if r not in good]
        assert not extra, (
            f"unexpected default route {extra[0].describe()} besides "
            f"{good[0].describe()}: traffic may leave through a router the site does not expect "
            "(a rogue RA?); find who advertises it"
        )


# ------------------------------------------------------------------------------- route get


def _route_get_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    for g in p.routes.route_get:
        tid = str(g.destination) + (f"-from-{g.source}" if g.source else "")
        req = RouteGet(str(g.destination), str(g.source) if g.source else None)
        yield Simple(tid, (req,), {"cfg": g})


@targets(_route_get_targets)
def test_route_get(
    target: Simple, observe: Callable[[Any], RouteLookup], evidence: dict[str, Any]
) -> None:
    """The kernel would send traffic for a destination out of the expected interface, from an
    address in the expected prefix (`ip -6 route get`)."""
    g = target.data["cfg"]
    evidence["expected"] = g.model_dump(mode="json", by_alias=True)
    obs = observe(target.requests[0])
    frm = f" from {g.source}" if g.source else ""
    assert obs.error is None, (
        f"route get {g.destination}{frm}: {obs.error}; expected it to leave by {g.interface}: "
        "is the default route missing (see test_default_route)?"
    )
    assert obs.type == "unicast", (
        f"route get {g.destination}{frm} hits a {obs.type} route (dev {obs.dev}), expected a "
        f"unicast route out of {g.interface}"
    )
    assert obs.dev == g.interface, (
        f"route get {g.destination}{frm} leaves by {obs.dev} (via {obs.gateway or 'on-link'}), "
        f"expected {g.interface}: check the routes and rules for that destination"
    )
    if g.source_prefix is not None:
        ok = obs.source is not None and ipaddress.IPv6Address(obs.source) in g.source_prefix
        assert ok, (
            f"route get {g.destination}{frm} uses source {obs.source}, expected one in "
            f"{g.source_prefix}: replies may never come back (no address in that prefix, or "
            "a different source preferred)"
        )
    if g.via is not None:
        ok = obs.gateway is not None and ipaddress.IPv6Address(obs.gateway) == g.via
        assert ok, (
            f"route get {g.destination}{frm} goes via {obs.gateway or 'no gateway (on-link)'}, "
            f"expected via {g.via}"
        )


# ------------------------------------------------------------------------------- rules


def _rule_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    for r in p.routes.rules:
        tid = f"{r.from_ or 'all'}-fwmark-{r.fwmark}" if r.fwmark is not None else str(r.from_)
        yield Simple(f"{tid}-table-{r.table}", (ReadRules(), ReadRoutes(r.table)), {"cfg": r})


@targets(_rule_targets)
def test_policy_rule(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """`ip -6 rule from PREFIX lookup TABLE` exists, and that table has its default route."""
    want = target.data["cfg"]
    evidence["expected"] = want.model_dump(mode="json", by_alias=True)
    rules: RuleList = observe(target.requests[0])
    assert rules.error is None, f"could not tell: {rules.error}"
    evidence["rules"] = [r.describe() for r in rules.rules]
    found = [
        r
        for r in rules.rules
        if r.action == "lookup"
        and r.table == want.table
        and (r.src is None if want.from_ is None else r.src == str(want.from_))
        and r.fwmark == want.fwmark
    ]
    assert found, (
        f"no rule '{want.label()}' (rules: {'; '.join(r.describe() for r in rules.rules)}): "
        f"traffic {'from ' + str(want.from_) if want.from_ else 'with that mark'} uses the main "
        f"table instead; add it: ip -6 rule add {want.label()}"
        + (f" priority {want.priority}" if want.priority is not None else "")
    )
    if want.priority is not None:
        assert any(r.priority == want.priority for r in found), (
            f"rule '{want.label()}' has priority {found[0].priority}, expected {want.priority}"
        )
    table: RouteTable = observe(target.requests[1])
    assert table.error is None, f"could not tell: {table.error}"
    evidence[f"table {want.table}"] = [r.describe() for r in table.routes]
    defaults = table.defaults()
    assert defaults, (
        f"table {want.table} has no default route: traffic selected by '{want.label()}' finds "
        "no route (add one, e.g. ip -6 route add default via ROUTER dev IFACE table "
        f"{want.table})"
    )
    if want.default_dev is not None:
        assert any(r.dev == want.default_dev for r in defaults), (
            f"table {want.table}'s default route leaves by {defaults[0].dev}, expected "
            f"{want.default_dev}"
        )
    if want.default_via is not None:
        assert any(
            r.gateway and ipaddress.IPv6Address(r.gateway) == want.default_via for r in defaults
        ), (
            f"table {want.table}'s default route goes via {defaults[0].gateway}, expected "
            f"{want.default_via}"
        )


# ------------------------------------------------------------------------------- AnyIP


def _anyip_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    for a in p.routes.anyip:
        yield Simple(str(a.prefix), (ReadRoutes(255),), {"cfg": a})


@targets(_anyip_targets)
def test_anyip_route(
    target: Simple, observe: Callable[[Any], RouteTable], evidence: dict[str, Any]
) -> None:
    """The whole prefix is local (`ip -6 route add local PREFIX dev lo`, table local)."""
    a = target.data["cfg"]
    evidence["expected"] = f"local {a.prefix} dev {a.dev} table local"
    table = observe(target.requests[0])
    assert table.error is None, f"could not tell: {table.error}"
    locals_ = [r for r in table.routes if r.type == "local" and r.dst == str(a.prefix)]
    evidence["local routes"] = [r.describe() for r in table.routes if r.type == "local"]
    assert locals_, (
        f"no local route for {a.prefix}: addresses in it are not this node's and will not "
        f"answer; add it: ip -6 route add local {a.prefix} dev {a.dev}"
    )
    assert any(r.dev == a.dev for r in locals_), (
        f"the local route for {a.prefix} is on {locals_[0].dev}, expected dev {a.dev}"
    )


def _random_address(prefix: ipaddress.IPv6Network) -> str:
    """A random address of the prefix, never the subnet-router anycast (the first) one."""
    n = prefix.num_addresses
    return str(prefix[random.randrange(1, n)] if n > 2 else prefix[n - 1])


def _anyip_echo_targets(p: Profile) -> Iterator[Simple]:
    assert p.routes is not None
    for a in p.routes.anyip:
        if a.answers:
            yield Simple(str(a.prefix), (Echo(_random_address(a.prefix)),), {"cfg": a})


@targets(_anyip_echo_targets)
def test_anyip_answers(
    target: Simple, observe: Callable[[Any], EchoResult], evidence: dict[str, Any]
) -> None:
    """A random address of the AnyIP prefix answers a ping from this node."""
    a = target.data["cfg"]
    obs = observe(target.requests[0])
    evidence["expected"] = f"{obs.dst} (random in {a.prefix}) answers an echo from this node"
    assert obs.answered, (
        f"{obs.dst}, a random address of the AnyIP prefix {a.prefix}, does not answer from this "
        f"node ({obs.summary()}): add the local route (ip -6 route add local {a.prefix} dev "
        f"{a.dev}) and make sure nothing filters it"
    )
