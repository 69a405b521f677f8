"""Diagnosis: which failures of a run are causes and which are their consequences.

A person reading 20 failures wants to know the one thing to fix first. This module works on the JSON
results (schema sixcheck-results/1), not on pytest, so the same code serves a run as it finishes, a
saved run and a whole site's vantages. A failure is tied to another only by evidence a person could
check in the results (the same router's error, a missing route and a local "no route"); a failure
nothing explains is its own cause.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .symptoms import (
    UNREADABLE,
    Facts,
    Symptom,
    failures,
    first_line,
    in_prefix,
    read_facts,
    symptom,
)

#: layers of one vantage, lowest first: a lower layer's fault explains a higher layer's failures
LAYERS: tuple[str, ...] = ("node", "link", "address", "route", "path", "service")


@dataclass(frozen=True)
class Cause:
    """One probable cause: the check(s) that show it and the failures it explains.

    `area` is the area of the checks that show it, unless their evidence names another (an NA seen
    on the wire that never reached the kernel is this node's firewall); `ties` are the sentences,
    checkable against the evidence, that put each consequence under it.
    """

    key: str
    area: str
    layer: str
    title: str
    shown_by: tuple[str, ...]
    explains: tuple[str, ...]
    ties: tuple[str, ...]
    vantage: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "area": self.area,
            "layer": self.layer,
            "title": self.title,
            "shown_by": list(self.shown_by),
            "explains": list(self.explains),
            "ties": list(self.ties),
            "vantage": self.vantage,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Cause:
        return cls(
            key=str(d["key"]),
            area=str(d.get("area") or ""),
            layer=str(d.get("layer") or "service"),
            title=str(d.get("title") or ""),
            shown_by=tuple(str(x) for x in d.get("shown_by") or ()),
            explains=tuple(str(x) for x in d.get("explains") or ()),
            ties=tuple(str(x) for x in d.get("ties") or ()),
            vantage=str(d.get("vantage") or ""),
        )

    @property
    def failures(self) -> tuple[str, ...]:
        """Every failed check this cause accounts for: those that show it, then its consequences."""
        return self.shown_by + self.explains


# ------------------------------------------------------------------------------- grouping


#: how fundamental a kind of symptom is: when two groups could explain the same failures, the
#: explanation from the lower one is kept, so the root of each chain is the lowest fault
_RANK: tuple[tuple[str, int], ...] = (
    ("sysctl:net.ipv6.conf.all.", 0),
    ("sysctl", 1),
    ("firewall.icmpv6-input", 2),
    ("nd.silent", 2),
    ("nd.not-router", 2),
    ("nd.", 3),
    ("addr.", 4),
    ("dhcpv6.", 4),
    ("route.no-default", 5),
    ("route.extra-default", 5),
    ("route.", 6),
    ("local.", 6),
    ("tunnel.missing", 7),
    ("tunnel.mtu", 7),
    ("vpn.", 7),
    ("tunnel.", 8),
    ("path.", 8),
    ("dst:", 9),
    ("dns.", 10),
    ("ntp:", 10),
)


@dataclass
class _Group:
    """Failed checks that show the same thing (same key): one node of the explanation graph."""

    key: str
    members: list[Symptom] = field(default_factory=list)
    ties: list[str] = field(default_factory=list)

    @property
    def order(self) -> tuple[int, int, str]:
        rank = next((r for prefix, r in _RANK if self.key.startswith(prefix)), 12)
        return (rank, LAYERS.index(self.layer), self.key)

    @property
    def layer(self) -> str:
        return min((m.layer for m in self.members), key=LAYERS.index)

    @property
    def area(self) -> str:
        named = [m.area for m in self.members if m.area]
        if named:
            return named[0]
        areas = [m.check.area for m in self.members]
        return max(areas, key=lambda a: (areas.count(a), -areas.index(a)))

    @property
    def ids(self) -> list[str]:
        return [m.check.id for m in self.members]

    def data(self, name: str) -> list[Any]:
        """Every member's value of one evidence field (None left out)."""
        return [m.data[name] for m in self.members if m.data.get(name) is not None]

    @property
    def silent(self) -> bool:
        """Every member got no answer at all (no ICMPv6 error, no reset)."""
        return all(m.data.get("silent") for m in self.members)

    @property
    def title(self) -> str:
        if self.key.startswith("dst:"):
            dst = self.key[4:]
            if self.silent:
                return f"{dst} does not answer from here (no answer at all, {_n(self.members, 'check')})"
            if any(m.title.startswith("nothing listens") for m in self.members):
                return f"nothing listens on {dst}: port unreachable / connection refused"
        if self.key == "route.unreachable":
            dsts = sorted(set(self.data("destination")))
            return (
                "this node has no route off-link: "
                + ", ".join(dsts[:3])
                + (f" and {len(dsts) - 3} more" if len(dsts) > 3 else "")
                + " fail here with Network is unreachable"
            )
        return self.members[0].title


def _n(items: Iterable[Any] | int, word: str) -> str:
    n = items if isinstance(items, int) else len(list(items))
    return f"{n} {word}{'' if n == 1 else 's'}"


def _groups(symptoms: list[Symptom]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for s in symptoms:
        groups.setdefault(s.key, _Group(s.key)).members.append(s)
    # DNS and NTP name no sender for an ICMPv6 error; a TCP/UDP probe does. The same refusal
    # from the one router that sends it is one firewall rule, not several causes.
    for name in {k.split(":", 1)[1].split("@")[0] for k in groups if k.startswith("path.icmp:")}:
        anon = groups.get(f"path.icmp:{name}@?")
        known = [
            g for k, g in groups.items() if k.startswith(f"path.icmp:{name}@") and g is not anon
        ]
        if anon is not None and len(known) == 1:
            g = known[0]
            g.members += anon.members
            del groups[anon.key]
            g.ties.append(
                f"{_n(anon.members, 'more check')} got the same ICMPv6 {name} (their probes do "
                f"not record the sender; {g.key.rsplit('@', 1)[1]} is the only router seen "
                "sending it)"
            )
    for g in groups.values():
        if len(g.members) > 1 and g.key.startswith(("dst:", "path.icmp:")):
            hows = sorted({str(m.data.get("icmp") or m.data.get("how")) for m in g.members})
            g.ties.append(f"{_n(g.members, 'check')} failed the same way: {', '.join(hows)}")
    return groups


# ------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Edge:
    cause: str
    effect: str
    tie: str


Rule = Callable[[dict[str, _Group], Facts], Iterable[_Edge]]


def _iface(key: str) -> str:
    return key.rsplit("@", 1)[1] if "@" in key else ""


def _each(groups: dict[str, _Group], prefix: str) -> list[_Group]:
    return [g for k, g in groups.items() if k.startswith(prefix)]


def _offlink_answered(facts: Facts) -> bool:
    return any(not in_prefix(a, "fe80::/10") for a in facts.answered)


def _sysctl_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    for g in _each(groups, "sysctl:net.ipv6.conf.all."):
        leaf, value = g.members[0].data["leaf"], g.members[0].data["value"]
        for other in _each(groups, "sysctl:"):
            d = other.members[0].data
            if other is not g and d.get("leaf") == leaf and d.get("value") == value:
                yield _Edge(
                    g.key,
                    other.key,
                    f"net.ipv6.conf.all.{leaf}={value} sets every interface's {leaf}: "
                    f"{d['key']} shows the same {value}",
                )
    for nd in _each(groups, "route.no-default@"):
        iface = _iface(nd.key)
        ignored = groups.get(f"sysctl.ra-ignored@{iface}")
        if ignored is not None:
            yield _Edge(
                ignored.key,
                nd.key,
                f"with forwarding=1 and accept_ra=1 on {iface} the kernel ignores upstream RAs, "
                f"so no default route is learnt on {iface}",
            )
        for leaf in ("accept_ra", "accept_ra_defrtr", "disable_ipv6", "forwarding"):
            s = groups.get(f"sysctl:net.ipv6.conf.{iface}.{leaf}")
            if s is not None:
                yield _Edge(
                    s.key,
                    nd.key,
                    f"{leaf}={s.members[0].data['value']} on {iface} keeps RAs from installing "
                    f"a default route there, and {iface} has none",
                )


def _ra_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    for g in _each(groups, "nd.no-ra@"):
        iface = _iface(g.key)
        if (a := groups.get(f"addr.missing@{iface}")) is not None:
            missing = ", ".join(sorted({p for m in a.data("missing") for p in m}))
            yield _Edge(g.key, a.key, f"no RA on {iface}, so no SLAAC address in {missing}")
        if (r := groups.get(f"route.no-default@{iface}")) is not None:
            yield _Edge(g.key, r.key, f"no RA on {iface}, so no default route learnt from RAs")
    for g in _each(groups, "nd.prefix@"):
        iface = _iface(g.key)
        adv = [p for m in g.data("advertised") for p in m]
        if not adv:
            continue
        if (a := groups.get(f"addr.missing@{iface}")) is not None:
            have = [x for m in a.data("have") for x in m if any(in_prefix(x, p) for p in adv)]
            if have:
                yield _Edge(
                    g.key,
                    a.key,
                    f"{iface} formed {', '.join(sorted(set(have)))} from the advertised "
                    f"{', '.join(adv)} instead",
                )
        for other in [*_each(groups, "route.source:"), *_each(groups, "dst:")]:
            srcs = sorted(
                {str(s) for s in other.data("source") if any(in_prefix(s, p) for p in adv)}
            )
            if srcs and (other.key.startswith("route.") or other.silent):
                yield _Edge(
                    g.key,
                    other.key,
                    f"{other.key.split(':', 1)[1]}: sent from {', '.join(srcs)}, in the advertised "
                    f"{', '.join(adv)}, which is not routed to this site: replies never come back"
                    if other.key.startswith("dst:")
                    else f"traffic leaves from {', '.join(srcs)}, an address in the advertised "
                    f"{', '.join(adv)}",
                )
    for g in _each(groups, "nd.rogue@"):
        iface = _iface(g.key)
        routers = [r for m in g.data("routers") for r in m]
        prefixes = [p for m in g.data("prefixes") for p in m]
        if (a := groups.get(f"addr.extra@{iface}")) is not None:
            extra = [
                x for m in a.data("extra") for x in m if any(in_prefix(x, p) for p in prefixes)
            ]
            if extra:
                yield _Edge(
                    g.key,
                    a.key,
                    f"{', '.join(extra)} on {iface} is in {', '.join(prefixes)}, the rogue "
                    "router's prefix",
                )
        if (r := groups.get(f"route.extra-default@{iface}")) is not None:
            gws = [str(x) for m in r.data("gateways") for x in m if str(x) in routers]
            if gws:
                yield _Edge(
                    g.key, r.key, f"the extra default route goes via {gws[0]}, the rogue router"
                )


def _neighbor_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    quiet = [g for g in _each(groups, "dst:") if g.silent]
    for g in _each(groups, "nd.silent@"):
        iface, router = _iface(g.key), g.members[0].data["router"]
        if (ra := groups.get(f"nd.no-ra@{iface}")) is not None:
            yield _Edge(
                g.key,
                ra.key,
                f"{router} answers neither Router nor Neighbor Solicitations on {iface}: "
                "ICMPv6 to it is dropped, not just its RA daemon",
            )
        if (r := groups.get(f"route.no-default@{iface}")) is not None:
            yield _Edge(g.key, r.key, f"{router} is silent on {iface}: no default route via it")
        if not _offlink_answered(facts):
            for d in quiet:
                yield _Edge(
                    g.key,
                    d.key,
                    f"{router}, the router on {iface}, does not answer Neighbor Solicitations, "
                    f"so nothing reaches it: {d.key[4:]} timed out like every off-link target",
                )
    for g in _each(groups, "nd.not-router@"):
        iface, router = _iface(g.key), g.members[0].data["router"]
        if (r := groups.get(f"route.no-default@{iface}")) is not None:
            yield _Edge(
                g.key,
                r.key,
                f"{router} answered without the Router flag: hosts remove it from their default "
                f"routers, so {iface} has no default route",
            )
        if (u := groups.get("route.unreachable")) is not None and r is None:
            yield _Edge(g.key, u.key, f"{router} is no router any more: no route off-link here")
        if (c := groups.get("local.cannot-send")) is not None:
            yield _Edge(
                g.key,
                c.key,
                f"{router} is no router any more (hosts drop it): this node could not even "
                "send to the off-link destinations",
            )
        for d in _each(groups, "dst:"):
            if all(m.data.get("no_route") for m in d.members):
                yield _Edge(
                    g.key,
                    d.key,
                    f"{router} is no router any more: {d.key[4:]} got 'no route to its network'",
                )
        for d in quiet:
            yield _Edge(
                g.key,
                d.key,
                f"{router} does not forward IPv6 (no Router flag): {d.key[4:]} timed out",
            )
    for g in _each(groups, "firewall.icmpv6-input"):
        for d in quiet:
            if all(m.data.get("echo") for m in d.members):
                yield _Edge(
                    g.key,
                    d.key,
                    f"echo replies are ICMPv6 too, and this node drops ICMPv6 it receives: "
                    f"{d.key[4:]}'s reply never arrived",
                )


def _dhcpv6_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    for g in _each(groups, "dhcpv6.silent@"):
        if not any("IA_PD" in asked for asked in g.data("asked")):
            continue
        for other in groups.values():
            own = [m.check for m in other.members]
            if other.key.startswith("check:") and all(
                c.area == "dhcpv6" and not c.of_kind("Dhcpv6Observation") for c in own
            ):
                yield _Edge(
                    g.key,
                    other.key,
                    f"no DHCPv6 server answers the Solicit for a prefix (IA_PD) on "
                    f"{_iface(g.key)}: no prefix can be delegated",
                )


def _route_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    u = groups.get("route.unreachable")
    for g in _each(groups, "route.no-default@"):
        if (c := groups.get("local.cannot-send")) is not None:
            yield _Edge(
                g.key, c.key, f"no default route on {_iface(g.key)}: nothing off-link can be sent"
            )
        if u is not None:
            yield _Edge(
                g.key,
                u.key,
                f"no default route on {_iface(g.key)}, and the off-link probes failed at once "
                "with Network is unreachable",
            )
    r = groups.get("dns.resolve")
    if (
        u is not None
        and r is not None
        and any("unreachable" in str(m.data.get("error", "")).lower() for m in r.members)
    ):
        yield _Edge(u.key, r.key, "the name lookups failed locally too: Network is unreachable")
    for g in _each(groups, "tunnel.missing@"):
        iface = _iface(g.key)
        for other in groups.values():
            if other is not g and all(m.check.area == "tunnel" for m in other.members):
                yield _Edge(
                    g.key, other.key, f"{iface} does not exist, so nothing goes through the tunnel"
                )


def _tunnel_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    for g in _each(groups, "tunnel.mtu@"):
        mtu = g.members[0].data["mtu"]
        for b in _each(groups, "tunnel.blackhole:"):
            if mtu in b.data("size"):
                yield _Edge(
                    g.key,
                    b.key,
                    f"the packets that vanish are {mtu} bytes, exactly {_iface(g.key)}'s MTU: "
                    "the tunnel sends more than the path carries",
                )
    for d in _each(groups, "dst:"):
        for via in sorted(set(d.data("via"))):
            far = groups.get(f"dst:{via}")
            if far is not None and far is not d and far.silent and d.silent:
                yield _Edge(
                    far.key,
                    d.key,
                    f"the route to {d.key[4:]} goes via {via}, which does not answer either",
                )


def _path_rules(groups: dict[str, _Group], facts: Facts) -> Iterator[_Edge]:
    quiet = sorted((g for g in _each(groups, "dst:") if g.silent), key=lambda g: g.order)
    answered = _offlink_answered(facts)
    for g in _each(groups, "path.icmp:"):
        name = g.key.split(":", 1)[1].split("@")[0]
        who = g.key.rsplit("@", 1)[1]
        if name in ("no-route", "admin-prohibited", "addr-unreachable") and not answered:
            for d in quiet:
                yield _Edge(
                    g.key,
                    d.key,
                    f"{who} answered {name} for other probes and no off-link destination "
                    f"answered at all ({who} rate-limits its ICMPv6 errors): {d.key[4:]} timed out",
                )
    if len(quiet) > 1 and not answered:
        # nothing off-link answers, on any protocol: one silent path, not one fault per target
        first = quiet[0]
        for d in quiet[1:]:
            yield _Edge(
                first.key,
                d.key,
                f"no off-link destination answers from here: {first.key[4:]} and {d.key[4:]} "
                "are silent alike (nothing came back, not even an ICMPv6 error)",
            )
    resolve = groups.get("dns.resolve")
    if resolve is not None:
        for res in facts.resolvers or []:
            if (server := groups.get(f"dst:{res}")) is not None:
                yield _Edge(
                    server.key,
                    resolve.key,
                    f"names are looked up through {res}, this node's resolver, which failed",
                )


RULES: tuple[Rule, ...] = (
    _sysctl_rules,
    _ra_rules,
    _neighbor_rules,
    _dhcpv6_rules,
    _route_rules,
    _tunnel_rules,
    _path_rules,
)


# ------------------------------------------------------------------------------- causes


def _rank(c: Cause) -> tuple[bool, int, int, str]:
    # what the evidence shows before what a broken probe could not tell; then the cause that
    # accounts for most failures; on a tie the lower layer (it is nearer the root)
    layer = LAYERS.index(c.layer) if c.layer in LAYERS else len(LAYERS)
    return (c.key.startswith("probe:"), -len(c.failures), layer, c.key)


def _ancestors(key: str, parent: Mapping[str, _Edge]) -> set[str]:
    seen = {key}
    while key in parent:
        key = parent[key].cause
        seen.add(key)
    return seen


def diagnose(doc: Mapping[str, Any]) -> list[Cause]:
    """The causes of a run's failures, ranked: the one that accounts for most failures first
    (the lower layer on a tie). A healthy run has none; a failure nothing explains is its own."""
    profile = doc.get("profile") if isinstance(doc, Mapping) else None
    vantage = str(profile.get("name") or "") if isinstance(profile, Mapping) else ""
    facts = read_facts(doc)
    groups = _groups([symptom(f, facts) for f in failures(doc)])
    if not groups:
        return []
    edges: list[_Edge] = []
    for rule in RULES:
        try:
            found = list(rule(groups, facts))
        except UNREADABLE:
            continue  # evidence this rule cannot read ties nothing
        edges += [
            e for e in found if e.cause != e.effect and e.cause in groups and e.effect in groups
        ]
    # the most fundamental explanation of a group is the one kept; one that would close a
    # circle (the effect already explains the cause) is dropped
    parent: dict[str, _Edge] = {}
    for e in sorted(edges, key=lambda e: groups[e.cause].order):
        if e.effect in parent or e.effect in _ancestors(e.cause, parent):
            continue
        parent[e.effect] = e

    def root(key: str) -> str:
        while key in parent:
            key = parent[key].cause
        return key

    tree: dict[str, list[_Group]] = {}
    for key in sorted(groups, key=lambda k: groups[k].order):
        tree.setdefault(root(key), []).append(groups[key])
    causes = []
    for key, members in tree.items():
        g = groups[key]
        explained = [m for m in members if m is not g]
        # a failure that stands alone says best what it is: its check's own words
        title = (
            first_line(g.members[0].check.message) if len(g.members) == 1 and not explained else ""
        )
        ties = [*g.ties]
        for m in explained:
            ties += [parent[m.key].tie, *m.ties]
        causes.append(
            Cause(
                key=key,
                area=g.area,
                layer=g.layer,
                title=title or g.title,
                shown_by=tuple(g.ids),
                explains=tuple(i for m in explained for i in m.ids),
                ties=tuple(dict.fromkeys(ties)),
                vantage=vantage,
            )
        )
    return sorted(causes, key=_rank)


# ------------------------------------------------------------------------------- showing them

#: causes shown in the terminal before "and N more"
TERMINAL_MAX = 5


def _explains(c: Cause) -> str:
    return f"explains {_n(len(c.explains), 'failure')}" if c.explains else "explains nothing else"


def terminal_lines(causes: list[Cause], limit: int = TERMINAL_MAX) -> list[str]:
    """`sixcheck: probable cause: ...` lines, the top one first: what to fix first."""
    out = []
    for c in causes[:limit]:
        shown = f"shown by {_n(c.shown_by, 'check')}"
        out.append(f"sixcheck: probable cause [{c.area}]: {c.title} ({_explains(c)}; {shown})")
    if len(causes) > limit:
        out.append(f"sixcheck: ... and {_n(len(causes) - limit, 'more cause')} (see the report)")
    return out


def terminal_section(
    causes: list[Cause], failed: Mapping[str, tuple[str | None, str]], limit: int = TERMINAL_MAX
) -> tuple[str, list[str]]:
    """The title and lines of the terminal's cause section, printed before pytest's failure
    details: each cause with the message of the check that shows it (which says what to do) and
    its consequences counted by area, so the reader knows which of the failures below to read
    first and which follow from it. `failed` maps each failed check's id to (area, message)."""
    total = len(failed)
    title = f"sixcheck: {_n(len(causes), 'probable cause')} of {_n(total, 'failure')}"
    out: list[str] = []
    for n, c in enumerate(causes[:limit], 1):
        out.append(f"{n}. [{c.area}] {c.title}")
        for cid in c.shown_by:
            message = failed.get(cid, (None, ""))[1]
            out.append(f"   shown by {cid}" + (":" if message else ""))
            for line in message.strip().splitlines():  # whole: what to do comes last
                out.append(f"     {line}")
        if c.explains:
            areas = Counter(failed.get(cid, (None, ""))[0] or "other" for cid in c.explains)
            by_area = ", ".join(f"{k} {v}" for k, v in areas.most_common())
            out.append(f"   {_explains(c)} ({by_area}): read them after fixing this")
    if len(causes) > limit:
        out.append(f"... and {_n(len(causes) - limit, 'more cause')} (see the report)")
    return title, out


def _row_link(check_id: str) -> str:
    # pytest-html gives each result's <tbody> the check's node id as its id
    label = html.escape(check_id.rsplit("::", 1)[-1])
    return f"<a href='#{html.escape(quote(check_id, safe='/:[]@.,=+-_'))}'>{label}</a>"


def html_section(causes: list[Cause]) -> str:
    """The report's Diagnosis section: each cause, what shows it, what it explains and why."""
    if not causes:
        from .report import NO_FAILURES_HTML  # a healthy run writes it without this module

        return NO_FAILURES_HTML
    items = []
    for n, c in enumerate(causes):
        # the top cause's consequences are shown open: they are what the reader came for
        opened = " open" if n == 0 and len(c.explains) <= 12 else ""
        shown = ", ".join(_row_link(i) for i in c.shown_by)
        explained = "".join(f"<li>{_row_link(i)}</li>" for i in c.explains)
        ties = "".join(f"<li>{html.escape(t)}</li>" for t in c.ties)
        items.append(
            f"<li class='sx-cause' data-cause='{html.escape(c.key)}'>"
            f"<b>{html.escape(c.title)}</b> <small>[{html.escape(c.area)}, {html.escape(c.layer)}]"
            f"</small> &mdash; {_explains(c)}"
            f"<div>shown by: {shown}</div>"
            + (
                f"<details{opened}><summary>{_n(len(c.explains), 'consequence')}</summary>"
                f"<ul>{explained}</ul></details>"
                if c.explains
                else ""
            )
            + (
                f"<details{' open' if n == 0 else ''}><summary>why they belong together</summary>"
                f"<ul>{ties}</ul></details>"
                if ties
                else ""
            )
            + "</li>"
        )
    return (
        "<style>.sx-cause{margin:.4em 0}.sx-cause:first-child b{color:#a00}</style>"
        "<h2 id='sixcheck-diagnosis'>Diagnosis</h2>"
        f"<p>{_n(len(causes), 'probable cause')}, the one to fix first on top:</p>"
        f"<ol class='sixcheck-diagnosis'>{''.join(items)}</ol>"
    )
