"""Where the kernel would send a packet: the routing decision, and a real packet to confirm it.

A VPN protects a destination only if the kernel hands that destination's packets to the VPN
interface, in *every* address family (seed 004: the IPv4-only VPN, and IPv6 to the same service
left by the public interface). Two measurements answer that:

- `RouteGet`: the kernel's own decision (`ip route get`, over netlink) for an unmarked, locally
  originated packet, with the source address it picks. Because a bare route get does not say
  *which rule* chose the table, the policy rules and tables are read too and the rule walk is
  replayed (fwmark rules such as WireGuard's ``not fwmark 0xca6c lookup 51820``,
  ``suppress_prefixlength``); the replay is evidence, the kernel's answer is the verdict.
- `CaptureEgress` (raw sockets): a UDP datagram to the destination, captured on the public and VPN
  interfaces, so a misread routing table cannot pass.

`NameEgress` resolves a protected name through the host's resolver first, then decides each of
its addresses; `LinkFamilies` says which families a VPN interface carries at all.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .base import Fields, Observation, ProbeContext, ProbeFailed, ProbeRequest

# The requests live apart (pytest's collection imports only them); this module answers them.
from .egress_requests import CaptureEgress, LinkFamilies, NameEgress, ResolverEgress, RouteGet
from .netlink import RT_PROTO as PROTO_NAMES
from .netlink import RT_TABLE as TABLE_NAMES
from .netlink import RT_TYPE as ROUTE_TYPES
from .netlink import ip_route

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Route types that refuse the packet on this host: protected traffic "fails closed".
CLOSED_KINDS = frozenset({"blackhole", "unreachable", "prohibit", "no-route"})
#: What a failed `route get` means, by errno (IPv4 reports refusing routes as errors).
ROUTE_GET_ERRNO = {
    errno.ENETUNREACH: "no-route",
    errno.EHOSTUNREACH: "unreachable",
    errno.EACCES: "prohibit",
    errno.EPERM: "prohibit",
    errno.EINVAL: "blackhole",
}
RULE_ACTIONS = {1: "lookup", 2: "goto", 3: "nop", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
FIB_RULE_INVERT = 0x2
NO_SUPPRESS = 0xFFFFFFFF


def table_name(table: int | None) -> str:
    return "?" if table is None else TABLE_NAMES.get(table, str(table))


# ---------------------------------------------------------------------------------------------
# the policy database as plain data (parsed from netlink, or built by unit tests)


@dataclass(frozen=True)
class Rule:
    """One policy rule, reduced to what selects a locally originated packet."""

    priority: int
    action: str = "lookup"
    table: int = 254
    src: str | None = None
    dst: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    invert: bool = False
    iif: str | None = None
    oif: str | None = None
    suppress_prefixlength: int | None = None
    uid_range: tuple[int, int] | None = None
    ipproto: int | None = None

    def text(self) -> str:
        """The rule as `ip rule` prints it, so a person can match it to their config."""
        parts = [f"{self.priority}:"]
        if self.invert:
            parts.append("not")
        parts.append(f"from {self.src or 'all'}")
        if self.dst:
            parts.append(f"to {self.dst}")
        if self.fwmark is not None:
            mark = f"fwmark {self.fwmark:#x}"
            if self.fwmask not in (None, 0xFFFFFFFF):
                mark += f"/{self.fwmask:#x}"
            parts.append(mark)
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.oif:
            parts.append(f"oif {self.oif}")
        if self.uid_range:
            parts.append(f"uidrange {self.uid_range[0]}-{self.uid_range[1]}")
        if self.ipproto:
            parts.append(f"ipproto {self.ipproto}")
        if self.action == "lookup":
            parts.append(f"lookup {table_name(self.table)}")
        else:
            parts.append(self.action)
        if self.suppress_prefixlength is not None:
            parts.append(f"suppress_prefixlength {self.suppress_prefixlength}")
        return " ".join(parts)

    def matches(self, dst: IPAddress, src: IPAddress | None, mark: int, uid: int) -> bool:
        """Does this rule select a locally originated packet (iif lo, no oif) with these keys?"""
        hit = True
        if self.src is not None:
            hit = src is not None and src in ipaddress.ip_network(self.src)
        if hit and self.dst is not None:
            hit = dst in ipaddress.ip_network(self.dst)
        if hit and self.fwmark is not None:
            mask = 0xFFFFFFFF if self.fwmask is None else self.fwmask
            hit = (mark & mask) == (self.fwmark & mask)
        if hit and self.iif is not None:
            hit = self.iif == "lo"
        if hit and self.oif is not None:
            hit = False
        if hit and self.uid_range is not None:
            hit = self.uid_range[0] <= uid <= self.uid_range[1]
        if hit and self.ipproto:
            hit = False  # route get carries no protocol; the kernel does the same
        return hit != self.invert


@dataclass(frozen=True)
class Route:
    """One route of one table."""

    table: int
    dst: str  # prefix, "default" written as ::/0 or 0.0.0.0/0
    kind: str = "unicast"
    interface: str | None = None
    gateway: str | None = None
    metric: int = 0
    proto: str | None = None
    src_prefix: str | None = None  # IPv6 source-specific routes

    @property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.dst)

    def text(self) -> str:
        """The route as `ip route` prints it."""
        net = self.network
        words = [] if self.kind == "unicast" else [self.kind]
        words.append("default" if net.prefixlen == 0 else str(net))
        if self.src_prefix:
            words += ["from", self.src_prefix]
        if self.gateway:
            words += ["via", self.gateway]
        if self.interface and self.kind not in CLOSED_KINDS:
            words += ["dev", self.interface]
        if self.proto and self.proto not in ("boot", "kernel"):
            words += ["proto", self.proto]
        if self.metric:
            words += ["metric", str(self.metric)]
        words += ["table", table_name(self.table)]
        return " ".join(words)


def lookup(table: int, dst: IPAddress, routes: Iterable[Route]) -> Route | None:
    """Longest-prefix match in one table, then the lowest metric (what the FIB does)."""
    best: Route | None = None
    for r in routes:
        if r.table != table or r.src_prefix:
            continue
        net = r.network
        if net.version != dst.version or dst not in net:
            continue
        if (
            best is None
            or net.prefixlen > best.network.prefixlen
            or (net.prefixlen == best.network.prefixlen and r.metric < best.metric)
        ):
            best = r
    return best


@dataclass(frozen=True)
class Walk:
    """The replay of the rule walk: each rule consulted and what it did."""

    steps: tuple[str, ...]
    rule: Rule | None
    route: Route | None
    kind: str  # route kind, a rule action (blackhole...), or "no-route"


def walk_rules(
    dst: IPAddress,
    rules: Sequence[Rule],
    routes: Sequence[Route],
    *,
    src: IPAddress | None = None,
    mark: int = 0,
    uid: int = 0,
) -> Walk:
    """Replay the kernel's policy-rule walk for an unmarked (mark 0) locally originated packet.

    Rules are tried by priority; a `lookup` rule whose table has no route, only a `throw`, or a
    route suppressed by `suppress_prefixlength` (WireGuard's ``lookup main
    suppress_prefixlength 0`` ignores the main table's default route) falls through to the next.
    """
    steps: list[str] = []
    for rule in sorted(rules, key=lambda r: r.priority):
        if not rule.matches(dst, src, mark, uid):
            steps.append(f"{rule.text()} -> does not match")
            continue
        if rule.action in {"nop", "goto"}:
            steps.append(f"{rule.text()} -> {rule.action}, next rule")
            continue
        if rule.action in CLOSED_KINDS:
            steps.append(f"{rule.text()} -> {rule.action}")
            return Walk(tuple(steps), rule, None, rule.action)
        route = lookup(rule.table, dst, routes)
        if route is None:
            steps.append(f"{rule.text()} -> no route in table {table_name(rule.table)}")
            continue
        if (
            rule.suppress_prefixlength is not None
            and route.network.prefixlen <= rule.suppress_prefixlength
        ):
            steps.append(
                f"{rule.text()} -> {route.text()} suppressed (prefix length "
                f"{route.network.prefixlen} <= {rule.suppress_prefixlength})"
            )
            continue
        if route.kind == "throw":
            steps.append(f"{rule.text()} -> {route.text()}: throw, next rule")
            continue
        steps.append(f"{rule.text()} -> {route.text()}")
        return Walk(tuple(steps), rule, route, route.kind)
    return Walk(tuple(steps), None, None, "no-route")


# ---------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True, kw_only=True)
class RouteDecision(Observation):
    """The kernel's decision for one destination: where it goes, from which source, and why."""

    dst: str
    family: int  # 4 or 6
    #: unicast, local, blackhole, unreachable, prohibit, no-route, ...: the route's type, as
    #: `ip route` and RouteLookup's `type` call it. Never `kind`: the evidence's `kind` is the
    #: observation's class, which a field of that name overwrote (`"kind": "unicast"`, so nothing
    #: that reads results by kind, `--baseline` included, knew the record for a RouteDecision).
    route_type: str = "?"
    interface: str | None = None
    gateway: str | None = None
    source: str | None = None
    table: str | None = None
    route: str | None = None  # the route that decided, as `ip route` prints it
    rule: str | None = None  # the policy rule that selected the table
    rules_consulted: tuple[str, ...] = ()
    kernel: str = ""  # the raw answer of route get
    note: str | None = None

    compared = Fields(
        stable=(
            "error",
            "route_type",
            "interface",
            "gateway",
            "source",
            "table",
            "route",
            "rule",
            "note",
        ),
        volatile=("kernel", "rules_consulted"),
    )

    @property
    def fails_closed(self) -> bool:
        return self.error is None and self.route_type in CLOSED_KINDS

    def how(self) -> str:
        """One line for messages: the route and the rule that sent the packet there."""
        parts = [f"route '{self.route or self.kernel}'"]
        if self.rule:
            parts.append(f"rule '{self.rule}'")
        if self.source:
            parts.append(f"source {self.source}")
        return ", ".join(parts)


def decide(
    dst: IPAddress,
    kernel: dict[str, Any] | int,
    rules: Sequence[Rule],
    routes: Sequence[Route],
    *,
    uid: int = 0,
    src: IPAddress | None = None,
) -> RouteDecision:
    """Combine the kernel's answer (a parsed route-get message, or the errno it failed with)
    with the replayed rule walk. The kernel's answer is the verdict; the walk says why, and a
    disagreement is recorded, never hidden."""
    family = dst.version
    walk = walk_rules(dst, [r for r in rules], routes, src=src, uid=uid)
    base: dict[str, Any] = {"dst": str(dst), "family": family, "rules_consulted": walk.steps}
    if isinstance(kernel, int):
        kind = ROUTE_GET_ERRNO.get(kernel)
        if kind is None:
            return RouteDecision(**base, error=f"route get {dst} failed: {os.strerror(kernel)}")
        text = f"route get {dst}: {os.strerror(kernel)}"
        if walk.kind not in CLOSED_KINDS:
            # A refusal the rules do not explain (EINVAL has other causes too) must not pass
            # as "fails closed".
            return RouteDecision(
                **base,
                kernel=text,
                error=f"route get {dst} failed ({os.strerror(kernel)}) but the rules lead to "
                f"{walk.route.text() if walk.route else walk.kind}: cannot tell where it goes",
            )
        note = None if walk.kind == kind else f"the rule replay found {walk.kind}"
        return RouteDecision(
            **base,
            route_type=kind,
            kernel=text,
            note=note,
            route=walk.route.text() if walk.route else None,
            rule=walk.rule.text() if walk.rule else None,
            table=table_name(walk.rule.table)
            if walk.rule and walk.rule.action == "lookup"
            else None,
        )
    kind = kernel["kind"]
    table = kernel.get("table")
    oif = kernel.get("interface")
    note = None
    rule_text = walk.rule.text() if walk.rule else None
    route_text = walk.route.text() if walk.route else None
    agrees = (
        walk.route is not None
        and walk.route.table == table
        and (walk.route.interface == oif or walk.route.kind in CLOSED_KINDS or kind in CLOSED_KINDS)
    )
    if walk.kind in CLOSED_KINDS and kind == walk.kind:
        agrees = True
    if not agrees:
        note = (
            f"the rule replay ({route_text or walk.kind}) disagrees with the kernel "
            f"({kind} dev {oif} table {table_name(table)}); the kernel's answer is used"
        )
        rule_text = None
        route_text = None
    return RouteDecision(
        **base,
        route_type=kind,
        interface=oif if kind not in CLOSED_KINDS else None,
        gateway=kernel.get("gateway"),
        source=kernel.get("source"),
        table=table_name(table),
        route=route_text,
        rule=rule_text,
        kernel=kernel.get("text", ""),
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# netlink


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name)


def parse_rule(msg: Any) -> Rule:
    """A pyroute2 RTM_NEWRULE message as a Rule."""
    table = _attr(msg, "FRA_TABLE") or msg["table"]
    src = _attr(msg, "FRA_SRC")
    dst = _attr(msg, "FRA_DST")
    suppress = _attr(msg, "FRA_SUPPRESS_PREFIXLEN")
    uid = _attr(msg, "FRA_UID_RANGE")
    uid_range = None
    if isinstance(uid, dict) and not (uid.get("start") == 0 and uid.get("end") == 0xFFFFFFFF):
        uid_range = (int(uid.get("start", 0)), int(uid.get("end", 0xFFFFFFFF)))
    return Rule(
        priority=_attr(msg, "FRA_PRIORITY") or 0,
        action=RULE_ACTIONS.get(msg["action"], f"action{msg['action']}"),
        table=table,
        src=f"{src}/{msg['src_len']}" if src else None,
        dst=f"{dst}/{msg['dst_len']}" if dst else None,
        fwmark=_attr(msg, "FRA_FWMARK"),
        fwmask=_attr(msg, "FRA_FWMASK"),
        invert=bool(msg["flags"] & FIB_RULE_INVERT),
        iif=_attr(msg, "FRA_IIFNAME"),
        oif=_attr(msg, "FRA_OIFNAME"),
        suppress_prefixlength=None if suppress in (None, NO_SUPPRESS, -1) else suppress,
        uid_range=uid_range,
        ipproto=_attr(msg, "FRA_IP_PROTO"),
    )


def parse_route(msg: Any, names: dict[int, str]) -> Route:
    """A pyroute2 RTM_NEWROUTE message (a table entry) as a Route."""
    family = msg["family"]
    dst = _attr(msg, "RTA_DST") or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    oif = _attr(msg, "RTA_OIF")
    gw = _attr(msg, "RTA_GATEWAY")
    if gw is None and (mp := _attr(msg, "RTA_MULTIPATH")):
        hop = mp[0]
        gw = hop.get_attr("RTA_GATEWAY")
        oif = oif or hop.get("oif")
    src = _attr(msg, "RTA_SRC")
    return Route(
        table=_attr(msg, "RTA_TABLE") or msg["table"],
        dst=str(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False)),
        kind=ROUTE_TYPES.get(msg["type"], str(msg["type"])),
        interface=names.get(oif) if oif else None,
        gateway=gw,
        metric=_attr(msg, "RTA_PRIORITY") or 0,
        proto=PROTO_NAMES.get(msg["proto"], str(msg["proto"])),
        src_prefix=f"{src}/{msg['src_len']}" if src and msg["src_len"] else None,
    )


def parse_route_get(msg: Any, names: dict[int, str]) -> dict[str, Any]:
    """The answer of `route get` as plain values, plus its text as `ip route get` prints it."""
    kind = ROUTE_TYPES.get(msg["type"], str(msg["type"]))
    oif = _attr(msg, "RTA_OIF")
    out = {
        "kind": kind,
        "table": _attr(msg, "RTA_TABLE") or msg["table"],
        "interface": names.get(oif) if oif else None,
        "gateway": _attr(msg, "RTA_GATEWAY"),
        "source": _attr(msg, "RTA_PREFSRC"),
    }
    words = [] if kind == "unicast" else [kind]
    words.append(str(_attr(msg, "RTA_DST")))
    if out["gateway"]:
        words += ["via", out["gateway"]]
    if out["interface"]:
        words += ["dev", out["interface"]]
    if out["source"]:
        words += ["src", out["source"]]
    words += ["table", table_name(out["table"])]
    out["text"] = " ".join(words)
    return out


class Netlink:
    """One netlink socket for a batch: links, rules and routes read once, then route gets."""

    def __init__(self) -> None:
        self.ipr = ip_route()
        self.names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()}
        self._rules: dict[int, list[Rule]] = {}
        self._routes: dict[int, list[Route]] = {}

    def close(self) -> None:
        self.ipr.close()

    def rules(self, family: int) -> list[Rule]:
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        if family not in self._rules:
            self._rules[family] = [parse_rule(m) for m in self.ipr.get_rules(family=af)]
        return self._rules[family]

    def routes(self, family: int) -> list[Route]:
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        if family not in self._routes:
            self._routes[family] = [
                parse_route(m, self.names) for m in self.ipr.get_routes(family=af, table=None)
            ]
        return self._routes[family]

    def route_get(self, dst: IPAddress, src: IPAddress | None = None) -> dict[str, Any] | int:
        from pyroute2.netlink.exceptions import NetlinkError

        af = socket.AF_INET if dst.version == 4 else socket.AF_INET6
        kwargs: dict[str, Any] = {"dst": str(dst), "family": af}
        if src is not None:
            kwargs["src"] = str(src)
        try:
            msgs = self.ipr.route("get", **kwargs)
        except NetlinkError as exc:
            return int(exc.code)
        return parse_route_get(msgs[0], self.names)

    def decide(self, dst: IPAddress) -> RouteDecision:
        """The decision for an unbound socket: IPv6 uses the first lookup; IPv4 connect()
        looks up again with the source it picked (ip_route_connect), so that one counts."""
        uid = os.getuid()
        rules, routes = self.rules(dst.version), self.routes(dst.version)
        first = self.route_get(dst)
        if dst.version == 4 and isinstance(first, dict) and first.get("source"):
            src = ipaddress.ip_address(first["source"])
            second = self.route_get(dst, src)
            if isinstance(second, dict) and not second.get("source"):
                second["source"] = str(src)
            result = decide(dst, second, rules, routes, uid=uid, src=src)
            if isinstance(second, int) or second.get("interface") != first.get("interface"):
                extra = f"without a source the kernel chose {first['text']}"
                result = _with_note(result, extra)
            return result
        return decide(dst, first, rules, routes, uid=uid)


def _with_note(d: RouteDecision, note: str) -> RouteDecision:
    import dataclasses

    return dataclasses.replace(d, note=f"{d.note}; {note}" if d.note else note)


T = TypeVar("T")


async def _in_thread(fn: Callable[[], T], timeout: float) -> T:
    import asyncio

    return await asyncio.wait_for(asyncio.to_thread(fn), timeout=timeout)


# ---------------------------------------------------------------------------------------------
# requests


async def route_get_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of RouteGet (see `egress_requests`): one netlink socket, in a thread."""

    def work() -> dict[ProbeRequest[Any], Observation]:
        nl = Netlink()
        try:
            out: dict[ProbeRequest[Any], Observation] = {}
            for r in requests:
                assert isinstance(r, RouteGet)
                out[r] = nl.decide(ipaddress.ip_address(r.dst))
            return out
        finally:
            nl.close()

    try:
        return await _in_thread(work, ctx.probe_timeout)
    except TimeoutError:
        return {
            r: ProbeFailed(
                error="route lookups did not finish within the probe "
                f"deadline ({ctx.probe_timeout:g} s)"
            )
            for r in requests
        }


@dataclass(frozen=True, kw_only=True)
class NameRoutes(Observation):
    """A protected name resolved for one family through the host's resolver, and where each of
    its addresses would go."""

    name: str
    family: int
    resolver: str = "system (getaddrinfo, /etc/resolv.conf)"
    addresses: tuple[str, ...] = ()
    no_records: bool = False
    decisions: tuple[RouteDecision, ...] = ()

    compared = Fields(
        stable=(
            "error",
            "addresses",
            "no_records",
            "decisions.{dst,route_type,interface,gateway,source}",
        )
    )


def resolve_family(name: str, family: int) -> tuple[list[str], bool, str | None]:
    """getaddrinfo for one family: (addresses in order, "the name has no such record", error)."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(name, None, af, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        none = {
            socket.EAI_NONAME,
            getattr(socket, "EAI_NODATA", -5),
            getattr(socket, "EAI_ADDRFAMILY", -9),
        }
        if exc.errno in none:
            return [], True, None
        return [], False, f"resolving {name} ({'AAAA' if family == 6 else 'A'}) failed: {exc}"
    addrs = list(dict.fromkeys(str(i[4][0]).split("%")[0] for i in infos))
    return addrs, False, None


async def name_egress_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of NameEgress (see `egress_requests`): resolve, then decide each address."""
    import asyncio

    reqs = [r for r in requests if isinstance(r, NameEgress)]
    answers = await _query_resolvers(reqs, ctx)

    async def one(r: NameEgress) -> Observation:
        label = f"resolver {r.resolver}" if r.resolver else NameRoutes.resolver
        base = NameRoutes(name=r.name, family=r.family, resolver=label)
        if r.resolver:
            addrs, none, err = answers[r]
        else:
            try:
                addrs, none, err = await _in_thread(
                    lambda: resolve_family(r.name, r.family), ctx.probe_timeout
                )
            except TimeoutError:
                return replace(
                    base,
                    error=f"resolving {r.name} did not finish within {ctx.probe_timeout:g} s",
                )
        if err or not addrs:
            return replace(base, no_records=none, error=err)

        def route_all() -> tuple[RouteDecision, ...]:
            nl = Netlink()
            try:
                return tuple(nl.decide(ipaddress.ip_address(a)) for a in addrs)
            finally:
                nl.close()

        try:
            decisions = await _in_thread(route_all, ctx.probe_timeout)
        except TimeoutError:
            return replace(
                base, addresses=tuple(addrs), error="route lookups did not finish in time"
            )
        return replace(base, addresses=tuple(addrs), decisions=decisions)

    results = await asyncio.gather(*(one(r) for r in reqs), return_exceptions=True)
    out: dict[ProbeRequest[Any], Observation] = {}
    for r, res in zip(reqs, results, strict=True):
        out[r] = (
            ProbeFailed(error=f"probe crashed: {type(res).__name__}: {res}")
            if isinstance(res, BaseException)
            else res
        )
    return out


async def _query_resolvers(
    reqs: Sequence[NameEgress], ctx: ProbeContext
) -> dict[NameEgress, tuple[list[str], bool, str | None]]:
    """Ask each listed resolver for each name's A/AAAA in one DnsQuery batch."""
    from .dns import DnsAnswer
    from .dns_requests import DnsQuery

    queries = {
        r: DnsQuery(ipaddress.ip_address(r.resolver), r.name, "AAAA" if r.family == 6 else "A")
        for r in reqs
        if r.resolver
    }
    if not queries:
        return {}
    results = await DnsQuery.run_batch(list(dict.fromkeys(queries.values())), ctx)
    out: dict[NameEgress, tuple[list[str], bool, str | None]] = {}
    for r, q in queries.items():
        ans = results.get(q)
        if not isinstance(ans, DnsAnswer):
            err = getattr(ans, "error", None) or "no answer"
            out[r] = ([], False, f"asking resolver {r.resolver}: {err}")
        elif ans.error or not ans.responded:
            out[r] = ([], False, f"{ans.where()} for {r.name}: {ans.error or 'no answer'}")
        elif ans.nxdomain or ans.nodata:
            out[r] = ([], True, None)
        elif ans.rcode != "NOERROR":
            out[r] = ([], False, f"{ans.where()} answered {ans.rcode} for {r.name}")
        else:
            out[r] = (sorted(str(a) for a in ans.addresses()), False, None)
    return out


@dataclass(frozen=True, kw_only=True)
class ResolverRoutes(Observation):
    """The host's effective resolvers (resolv.conf, systemd-resolved's upstreams) and where the
    kernel sends a query to each of them."""

    servers: tuple[str, ...] = ()
    via_stub: bool = False
    decisions: tuple[RouteDecision, ...] = ()

    compared = Fields(
        stable=(
            "error",
            "servers",
            "via_stub",
            "decisions.{dst,route_type,interface,gateway,source}",
        )
    )


async def resolver_egress(req: ResolverEgress, ctx: ProbeContext) -> ResolverRoutes:
    """Answer a ResolverEgress (see `egress_requests`)."""
    from .dns import read_host_resolvers

    def work() -> ResolverRoutes:
        hr = read_host_resolvers()
        if hr.error:
            return ResolverRoutes(error=hr.error)
        servers = tuple(hr.effective)
        nl = Netlink()
        try:
            decisions = []
            for srv in servers:
                try:
                    ip = ipaddress.ip_address(srv.split("%")[0])
                except ValueError:
                    decisions.append(
                        RouteDecision(dst=srv, family=0, error=f"{srv!r} is not an address")
                    )
                    continue
                decisions.append(nl.decide(ip))
        finally:
            nl.close()
        return ResolverRoutes(servers=servers, via_stub=hr.via_stub, decisions=tuple(decisions))

    return await _in_thread(work, ctx.probe_timeout)


@dataclass(frozen=True, kw_only=True)
class LinkInfo(Observation):
    """Which address families an interface carries: its global addresses and the routes (any
    table) that point into it, link-local and multicast left out."""

    interface: str
    exists: bool = False
    up: bool = False
    addresses: dict[int, tuple[str, ...]] = field(default_factory=dict)
    routes: dict[int, tuple[str, ...]] = field(default_factory=dict)

    compared = Fields(stable=("error", "exists", "up", "addresses", "routes"))

    def carries(self, family: int) -> bool:
        return bool(self.routes.get(family))


async def link_families(req: LinkFamilies, ctx: ProbeContext) -> LinkInfo:
    """Answer a LinkFamilies (see `egress_requests`)."""

    def work() -> LinkInfo:
        nl = Netlink()
        try:
            index = {v: k for k, v in nl.names.items()}.get(req.interface)
            if index is None:
                return LinkInfo(
                    interface=req.interface,
                    error=f"interface {req.interface} does not exist on this node",
                )
            link = nl.ipr.get_links(index)[0]
            up = bool(link["flags"] & 1)
            addrs: dict[int, tuple[str, ...]] = {}
            routes: dict[int, tuple[str, ...]] = {}
            for fam, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
                found = []
                for a in nl.ipr.get_addr(family=af, index=index):
                    ip = ipaddress.ip_address(a.get_attr("IFA_ADDRESS"))
                    if not (ip.is_link_local or ip.is_loopback):
                        found.append(f"{ip}/{a['prefixlen']}")
                addrs[fam] = tuple(found)
                routes[fam] = tuple(
                    r.text()
                    for r in nl.routes(fam)
                    if r.interface == req.interface
                    and r.kind == "unicast"
                    and not r.network.is_link_local
                    and not r.network.is_multicast
                )
            return LinkInfo(
                interface=req.interface, exists=True, up=up, addresses=addrs, routes=routes
            )
        finally:
            nl.close()

    return await _in_thread(work, ctx.probe_timeout)


# ---------------------------------------------------------------------------------------------
# capture


@dataclass(frozen=True, kw_only=True)
class SentProbe:
    """One datagram: where it was sent from, whether the kernel accepted it, where it was seen."""

    dst: str
    source: str | None = None
    send_error: str | None = None
    seen_on: tuple[str, ...] = ()
    summaries: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CaptureResult(Observation):
    """The datagrams sent to one protected destination and the interfaces they were seen on."""

    target: str
    family: int
    port: int
    watched: tuple[str, ...] = ()
    no_records: bool = False
    probes: tuple[SentProbe, ...] = ()
    capture_errors: dict[str, str] = field(default_factory=dict)

    compared = Fields(
        stable=(
            "error",
            "no_records",
            "watched",
            "probes.{dst,source,send_error,seen_on}",
            "capture_errors",
        ),
        volatile=("probes.summaries",),
    )


async def capture_egress_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of CaptureEgress (see `egress_requests`): one shared capture window."""
    reqs = [r for r in requests if isinstance(r, CaptureEgress)]
    window = min(1.0, max(0.3, ctx.probe_timeout / 3))
    deadline = ctx.probe_timeout + window + 3.0
    try:
        return await _in_thread(lambda: capture_batch(reqs, window), deadline)
    except TimeoutError:
        return {
            r: ProbeFailed(error=f"the capture did not finish within {deadline:g} s") for r in reqs
        }


PAYLOAD = b"sixcheck vpn egress probe"


def capture_batch(
    reqs: Sequence[CaptureEgress], window: float
) -> dict[ProbeRequest[Any], Observation]:
    """Resolve, start sniffers, send, wait `window`, stop, attribute packets to destinations."""
    # The layers must be loaded before sniffing: they register the link types (Ethernet,
    # raw IP on TUN devices such as wg0) the captured frames are dissected with.
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401
    from scapy.sendrecv import AsyncSniffer

    targets: dict[CaptureEgress, tuple[list[str], bool, str | None]] = {}
    for r in reqs:
        try:
            ip = ipaddress.ip_address(r.target)
            targets[r] = ([str(ip)], False, None)
        except ValueError:
            targets[r] = resolve_family(r.target, r.family)
    addrs = sorted({a for found, _, _ in targets.values() for a in found})
    ports = sorted({r.port for r in reqs})
    ifaces = sorted({i for r in reqs for i in r.watch})
    out: dict[ProbeRequest[Any], Observation] = {}
    if not addrs:
        for r in reqs:
            _, none, err = targets[r]
            out[r] = CaptureResult(
                target=r.target,
                family=r.family,
                port=r.port,
                watched=r.watch,
                no_records=none,
                error=err,
            )
        return out
    bpf = "udp and ({}) and ({})".format(
        " or ".join(f"dst port {p}" for p in ports),
        " or ".join(f"dst host {a}" for a in addrs),
    )
    sniffers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for iface in ifaces:
        started = threading.Event()
        try:
            s = AsyncSniffer(iface=iface, filter=bpf, store=True, started_callback=started.set)
            s.start()
            if not started.wait(2.0):
                errors[iface] = "the sniffer did not start within 2 s"
            sniffers[iface] = s
        except Exception as exc:  # no such interface, no libpcap...
            errors[iface] = f"cannot capture on {iface}: {type(exc).__name__}: {exc}"
    time.sleep(0.05)
    sent: dict[str, tuple[str | None, str | None]] = {}
    for a in addrs:
        sent[a] = _send(a, ports[0] if len(ports) == 1 else _port_for(a, reqs, targets))
    time.sleep(window)
    seen: dict[str, list[tuple[str, str]]] = {a: [] for a in addrs}
    for iface, s in sniffers.items():
        try:
            packets = s.stop() or []
        except Exception as exc:
            errors[iface] = f"capture on {iface} failed: {type(exc).__name__}: {exc}"
            continue
        for p in packets:
            dst = _packet_dst(p)
            if dst in seen:
                seen[dst].append((iface, p.summary()))
    for r in reqs:
        addrs_r, none, err = targets[r]
        probes = tuple(
            SentProbe(
                dst=a,
                source=sent[a][0],
                send_error=sent[a][1],
                seen_on=tuple(sorted({i for i, _ in seen[a]})),
                summaries=tuple(f"{i}: {s}" for i, s in seen[a][:4]),
            )
            for a in addrs_r
        )
        out[r] = CaptureResult(
            target=r.target,
            family=r.family,
            port=r.port,
            watched=r.watch,
            no_records=none,
            probes=probes,
            error=err,
            capture_errors={i: e for i, e in errors.items() if i in r.watch},
        )
    return out


def _port_for(
    addr: str,
    reqs: Sequence[CaptureEgress],
    targets: dict[CaptureEgress, tuple[list[str], bool, str | None]],
) -> int:
    for r in reqs:
        if addr in targets[r][0]:
            return r.port
    return reqs[0].port


def _packet_dst(p: Any) -> str | None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    for layer in (IPv6, IP):
        if p.haslayer(layer):
            return str(ipaddress.ip_address(p[layer].dst))
    return None


def _send(addr: str, port: int) -> tuple[str | None, str | None]:
    """One datagram by an ordinary socket, so the kernel routes it exactly like an
    application's; returns (source address the kernel picked, error)."""
    ip = ipaddress.ip_address(addr)
    af = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with socket.socket(af, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((addr, port))
        except OSError as exc:
            return None, f"connect: {exc.strerror or exc}"
        source = str(s.getsockname()[0])
        try:
            s.send(PAYLOAD)
        except OSError as exc:
            return source, f"send: {exc.strerror or exc}"
    return source, None
