"""Protected destinations never leave by the public interface, in either address family.

Seed 004 (World IPv6 Day): an IPv4-only VPN, a host with native IPv6, internal services with
AAAA records. Applications preferred IPv6, the kernel sent it by the public default route, and the
"protected" traffic went around the tunnel. Each protected destination is therefore judged per
family: into a VPN interface (or refused locally: fail closed) passes, anything else fails.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.addrinfo import AddrInfo, AddrOrder
from sixcheck.probes.dns_requests import DnsQuery
from sixcheck.probes.egress_requests import (
    CaptureEgress,
    LinkFamilies,
    NameEgress,
    ResolverEgress,
    RouteGet,
)
from sixcheck.schema import Profile
from sixcheck.schema.vpn import VpnArea

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.dns import DnsAnswer
    from sixcheck.probes.egress import (
        CaptureResult,
        LinkInfo,
        NameRoutes,
        ResolverRoutes,
        RouteDecision,
    )

AREA = "vpn"

FAMILY = {4: "IPv4", 6: "IPv6"}


# ---------------------------------------------------------------------------------------------
# the judgement, as plain functions over observations (unit-tested in tests/test_vpn.py)


def vpn_phrase(area: VpnArea, family: int, links: list[LinkInfo]) -> str:
    """`the IPv4-only VPN wg0` when no VPN interface carries `family` at all, else `the VPN wg0`:
    the difference between a missing route and a VPN that cannot carry the family."""
    names = ", ".join(area.interfaces)
    known = [li for li in links if li.error is None]
    if known and not any(li.carries(family) for li in known):
        other = 4 if family == 6 else 6
        if any(li.carries(other) for li in known):
            return f"the {FAMILY[other]}-only VPN {names}"
        return f"the VPN {names} (which carries no {FAMILY[family]} route)"
    return f"the VPN {names}"


def judge(d: RouteDecision, label: str, area: VpnArea, links: list[LinkInfo]) -> str | None:
    """None when this decision protects the destination; else the failure message."""
    fam = FAMILY.get(d.family, "?")
    what = f"{fam} to {label}" if label == d.dst else f"{fam} to {label} ({d.dst})"
    if d.error:
        return f"could not tell where {what} goes: {d.error}"
    if d.fails_closed:
        if area.policy(d.family) == "tunnel":
            return (
                f"{what} is refused locally ({d.route_type}, {d.how()}) but the profile requires "
                f"{fam} to be tunnelled through {', '.join(area.interfaces)}: route it into the "
                f"VPN, or set vpn.{'ipv6' if d.family == 6 else 'ipv4'}: tunnel-or-blackhole"
            )
        return None
    if d.route_type == "unicast" and d.interface in area.interfaces:
        return None
    vpn = vpn_phrase(area, d.family, links)
    fix = (
        f"carry {fam} to it through the VPN (a route/AllowedIPs for it on "
        f"{area.interfaces[0]}) or fail closed (ip{' -6' if d.family == 6 else ''} route add "
        f"blackhole {_blackhole_dst(label, d)})"
    )
    if d.interface in area.public:
        return f"{what} leaves by {d.interface} around {vpn} ({d.how()}): {fix}"
    where = f"leaves by {d.interface}" if d.interface else nowhere(d.route_type)
    return f"{what} {where}, which is neither {vpn} nor refused ({d.how()}): {fix}"


def nowhere(route_type: str) -> str:
    """Words for a decision that names no outgoing interface ("is no-route" read as a typo)."""
    if route_type == "no-route":
        return "has no route"
    if route_type == "local":
        return "is delivered to this host (a local route)"
    return f"ends in a {route_type} route"


def _blackhole_dst(label: str, d: RouteDecision) -> str:
    """The prefix to blackhole in the suggested fix: the protected prefix, else the address."""
    try:
        return str(ipaddress.ip_network(label))
    except ValueError:
        return f"{d.dst}/{128 if d.family == 6 else 32}"


# ---------------------------------------------------------------------------------------------
# targets


@dataclass(frozen=True)
class Dest:
    """One protected destination in one family: a name (resolved), an address or a prefix."""

    id: str
    label: str
    family: int
    requests: tuple[Any, ...]
    links: tuple[LinkFamilies, ...]
    area: VpnArea = field(compare=False, hash=False)

    def probes(self) -> tuple[Any, ...]:
        return (*self.requests, *self.links)


def _links(area: VpnArea) -> tuple[LinkFamilies, ...]:
    return tuple(LinkFamilies(i) for i in area.interfaces)


def _representatives(prefix: Any) -> list[str]:
    """First and last address of a prefix: a route for part of it must not pass for all."""
    if prefix.num_addresses == 1:
        return [str(prefix.network_address)]
    return list(dict.fromkeys([str(prefix[1]), str(prefix[-1])]))


def _destinations(p: Profile) -> Iterator[Dest]:
    area = p.vpn
    assert area is not None
    links = _links(area)
    for name in area.names:
        for fam in (6, 4):
            reqs: list[Any] = [NameEgress(name, fam)]
            reqs += [NameEgress(name, fam, str(r)) for r in area.resolvers]
            yield Dest(f"{FAMILY[fam]}-{name}", name, fam, tuple(reqs), links, area)
    for addr in area.addresses:
        yield Dest(
            f"{FAMILY[addr.version]}-{addr}",
            str(addr),
            addr.version,
            (RouteGet(str(addr)),),
            links,
            area,
        )
    for prefix in area.prefixes:
        reqs = [RouteGet(a) for a in _representatives(prefix)]
        yield Dest(
            f"{FAMILY[prefix.version]}-{prefix}",
            str(prefix),
            prefix.version,
            tuple(reqs),
            links,
            area,
        )


@targets(_destinations)
def test_protected_destination_stays_in_vpn(
    target: Dest, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """The kernel's routing decision for each address of the destination: VPN or fail closed."""
    area = target.area
    evidence["expected"] = (
        f"{FAMILY[target.family]} enters {', '.join(area.interfaces)}"
        + (" or is refused locally" if area.policy(target.family) != "tunnel" else "")
        + f"; never {', '.join(area.public)}"
    )
    links = [observe(r) for r in target.links]
    problems: list[str] = []
    checked: list[str] = []
    for req in target.requests:
        obs = observe(req)
        if isinstance(req, NameEgress):  # a name: the decisions for each of its addresses
            if obs.error:
                problems.append(
                    f"could not resolve {obs.name} for {FAMILY[obs.family]} "
                    f"through {obs.resolver}: {obs.error}"
                )
                continue
            if obs.no_records:
                checked.append(f"{obs.resolver}: no {FAMILY[obs.family]} address")
                continue
            decisions = list(obs.decisions)
        else:
            decisions = [obs]
        for d in decisions:
            checked.append(f"{d.dst}: {d.route_type} {d.interface or ''} ({d.route or d.kernel})")
            msg = judge(d, target.label, area, links)
            if msg and msg not in problems:
                problems.append(msg)
    evidence["decisions"] = checked
    assert not problems, "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# a real packet


def _capture_targets(p: Profile) -> Iterator[Simple]:
    area = p.vpn
    assert area is not None
    if not area.confirm:
        return
    watch = tuple(dict.fromkeys([*area.public, *area.interfaces]))
    for d in _destinations(p):
        if d.label in area.names:
            reqs: tuple[Any, ...] = (CaptureEgress(d.label, d.family, area.confirm_port, watch),)
        else:
            addrs = [r.dst for r in d.requests if isinstance(r, RouteGet)]
            reqs = tuple(CaptureEgress(a, d.family, area.confirm_port, watch) for a in addrs)
        yield Simple(d.id, reqs, {"area": area, "label": d.label})


def judge_capture(c: CaptureResult, label: str, area: VpnArea) -> list[str]:
    """Failure messages for one capture: a datagram seen on a public interface is a leak; one
    seen nowhere although the kernel accepted it cannot be told."""
    fam = FAMILY.get(c.family, "?")
    problems: list[str] = []
    if c.error:
        return [f"could not send {fam} to {label}: {c.error}"]
    bad = {i: e for i, e in c.capture_errors.items()}
    if bad:
        return [f"could not capture on {i}: {e}" for i, e in bad.items()]
    for p in c.probes:
        what = f"{fam} to {label}" if label == p.dst else f"{fam} to {label} ({p.dst})"
        public = [i for i in p.seen_on if i in area.public]
        if public:
            problems.append(
                f"a UDP datagram ({what}, from {p.source}) was captured leaving by "
                f"{', '.join(public)}, outside the VPN {', '.join(area.interfaces)}: "
                f"{'; '.join(s for s in p.summaries if s.split(':')[0] in public)}"
            )
        elif p.send_error:
            if area.policy(c.family) == "tunnel":
                problems.append(
                    f"{what} was refused locally ({p.send_error}) but must be "
                    f"tunnelled through {', '.join(area.interfaces)}"
                )
        elif not p.seen_on:
            problems.append(
                f"could not confirm where {what} goes: the kernel accepted the datagram "
                f"(from {p.source}) but it was seen on none of {', '.join(c.watched)}"
            )
    return problems


@targets(_capture_targets)
def test_probe_packet_stays_in_vpn(
    target: Simple, observe: Callable[[Any], CaptureResult], evidence: dict[str, Any]
) -> None:
    """Send one UDP datagram and capture: a misread routing decision must not pass."""
    area = target.data["area"]
    evidence["expected"] = f"seen on {', '.join(area.interfaces)} or refused; never on " + (
        ", ".join(area.public)
    )
    problems: list[str] = []
    for req in target.requests:
        c = observe(req)
        evidence.setdefault("captured", []).extend(
            [
                f"{p.dst} from {p.source}: seen on {', '.join(p.seen_on) or 'nothing'}"
                + (f" (send: {p.send_error})" if p.send_error else "")
                for p in c.probes
            ]
        )
        problems += judge_capture(c, target.data["label"], area)
    assert not problems, "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# which family applications use first


def _names(p: Profile) -> Iterator[Simple]:
    area = p.vpn
    assert area is not None
    for name in area.names:
        yield Simple(name, (AddrInfo(name), NameEgress(name, 6), *_links(area)), {"area": area})


def judge_preference(
    order: AddrOrder, v6: NameRoutes, area: VpnArea, links: list[LinkInfo]
) -> str | None:
    """Seed 004 in one sentence: the VPN carries only IPv4, the host has global IPv6, the name
    has AAAA, applications try it first, and it leaves by the public interface."""
    if order.error:
        return f"could not tell which address {order.name} is tried first: {order.error}"
    if not order.addresses or order.families[0] != 6:
        return None
    if v6.error:
        return f"could not tell where IPv6 to {order.name} goes: {v6.error}"
    first = order.addresses[0]
    for d in v6.decisions:
        if d.dst != first:
            continue
        if d.error:
            return f"could not tell where IPv6 to {order.name} ({first}) goes: {d.error}"
        if d.fails_closed or d.interface in area.interfaces:
            return None
        vpn = vpn_phrase(area, 6, links)
        return (
            f"IPv6 to {order.name} ({first}) leaves by {d.interface} around {vpn}: "
            f"applications try {first} first (getaddrinfo order: {', '.join(order.addresses)}) "
            f"from the global address {d.source}; carry IPv6 to it through the VPN or "
            f"blackhole it so applications fall back to IPv4 in the tunnel"
        )
    return (
        f"could not tell where IPv6 to {order.name} ({first}) goes: applications try it first, "
        f"but the IPv6 lookup through {v6.resolver} gave "
        f"{', '.join(v6.addresses) or 'no address'}, so no routing decision was made for it; "
        "run again (the name's answers changed between the lookups?)"
    )


@targets(_names)
def test_preferred_family_is_protected(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """Report the address applications try first; fail when that one leaks (seed 004)."""
    area = target.data["area"]
    order: AddrOrder = observe(target.requests[0])
    v6: NameRoutes = observe(target.requests[1])
    links = [observe(r) for r in target.requests[2:]]
    evidence["tried_first"] = order.first
    evidence["order"] = list(order.addresses)
    msg = judge_preference(order, v6, area, links)
    assert msg is None, msg


# ---------------------------------------------------------------------------------------------
# DNS


def _resolver_path(p: Profile) -> Iterator[Simple]:
    area = p.vpn
    assert area is not None
    if area.names or area.resolvers:
        yield Simple("host-resolvers", (ResolverEgress(), *_links(area)), {"area": area})


def judge_resolvers(rr: ResolverRoutes, area: VpnArea, links: list[LinkInfo]) -> list[str]:
    """Every resolver the host asks must be reached through the VPN (and be one of the VPN's
    resolvers when the profile lists them): else the names of protected services leak, and
    internal-only names do not resolve."""
    if rr.error:
        return [f"could not tell which resolvers this host uses: {rr.error}"]
    if not rr.servers:
        return ["could not tell: the host has no resolver configured (resolv.conf is empty)"]
    listed = {str(r) for r in area.resolvers}
    problems = []
    for srv, d in zip(rr.servers, rr.decisions, strict=False):
        if d.error:
            problems.append(f"could not tell where DNS queries to {srv} go: {d.error}")
            continue
        not_vpn = bool(listed) and srv.split("%")[0] not in listed
        if d.route_type == "local" or d.interface == "lo":
            problems.append(
                f"could not tell where DNS for protected names goes: the host asks the local "
                f"resolver {srv}, whose upstreams are not known here"
            )
            continue
        into_vpn = d.route_type == "unicast" and d.interface in area.interfaces
        if into_vpn and not not_vpn:
            continue
        parts = [f"DNS for protected names goes to {srv}"]
        if not_vpn:
            parts.append(f"which is not one of the VPN's resolvers ({', '.join(sorted(listed))})")
        if d.fails_closed:
            parts.append(f"and cannot be reached ({d.route_type})")
        elif not into_vpn:
            parts.append(
                f"and leaves by {d.interface} around {vpn_phrase(area, d.family, links)} "
                f"({d.how()})"
            )
        problems.append(
            ", ".join(parts)
            + ": point resolv.conf at the VPN's resolvers and route them into the VPN"
        )
    return problems


@targets(_resolver_path)
def test_dns_goes_through_vpn(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """The host's resolvers are the VPN's and are reached through it: no DNS leak."""
    area = target.data["area"]
    rr: ResolverRoutes = observe(target.requests[0])
    links = [observe(r) for r in target.requests[1:]]
    evidence["resolvers"] = list(rr.servers)
    evidence["expected"] = (
        f"resolvers among {', '.join(str(r) for r in area.resolvers)}"
        if area.resolvers
        else "resolvers"
    ) + f" reached through {', '.join(area.interfaces)}"
    problems = judge_resolvers(rr, area, links)
    assert not problems, "; ".join(problems)


def _vpn_resolvers(p: Profile) -> Iterator[Simple]:
    area = p.vpn
    assert area is not None
    for r in area.resolvers:
        queries = tuple(DnsQuery(str(r), n, t) for n in area.names for t in ("AAAA", "A"))
        yield Simple(str(r), (RouteGet(str(r)), *queries, *_links(area)), {"area": area})


@targets(_vpn_resolvers)
def test_vpn_resolver_answers_through_vpn(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """Each of the VPN's resolvers is reached through the VPN and answers for protected names."""
    area = target.data["area"]
    route: RouteDecision = observe(target.requests[0])
    queries = [r for r in target.requests if isinstance(r, DnsQuery)]
    links = [observe(r) for r in target.requests if isinstance(r, LinkFamilies)]
    problems = []
    if route.error:
        problems.append(
            f"could not tell where queries to VPN resolver {target.id} go: {route.error}"
        )
    elif not (route.route_type == "unicast" and route.interface in area.interfaces):
        where = (
            f"leaves by {route.interface} around {vpn_phrase(area, route.family, links)}"
            if route.interface
            else nowhere(route.route_type)
        )
        problems.append(
            f"DNS to the VPN's resolver {target.id} {where} ({route.how()}): route it into "
            f"{', '.join(area.interfaces)}"
        )
    answers: dict[str, str] = {}
    for q in queries:
        a: DnsAnswer = observe(q)
        answers[f"{q.name} {q.rdtype}"] = ", ".join(a.values()) or (
            a.rcode or a.error or "no answer"
        )
        if not a.responded or a.error_kind:
            problems.append(
                f"{a.where()} gave no answer for {q.name} {q.rdtype}: {a.error or a.error_kind}"
            )
        elif a.rcode not in ("NOERROR",):
            problems.append(f"{a.where()} answered {a.rcode} for protected name {q.name}")
    evidence["answers"] = answers
    assert not problems, "; ".join(problems)
