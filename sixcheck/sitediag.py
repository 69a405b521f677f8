"""Causes across a site's vantages: a gateway's lower layer explains its LAN's and the outside's.

Each vantage's run is diagnosed on its own first (`sixcheck.diagnosis`). Then a gateway's cause
takes over another vantage's cause only when the evidence ties them: the other vantage sits on one
of the gateway's links (its address is in a prefix of the gateway's interface, or its evidence names
the gateway's address as its router) or probes addresses behind the gateway, and every failure that
shows its cause went through the gateway in a way the gateway's fault breaks (a forwarded
destination when the gateway does not forward; anything via the gateway when it cannot reach its
own upstream or does not answer Neighbor Discovery). Names of checks or hosts never tie anything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .diagnosis import LAYERS, Cause, diagnose

Address = ipaddress.IPv6Address
Network = ipaddress.IPv6Network

FAILED = ("failed", "error")
#: roles a profile gives its node (profile.role in the results)
ROUTER, HOST, OUTSIDE = "router", "host", "outside"
_TOKEN = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f]")
_FORWARDING_KEY = re.compile(r"^net\.ipv6\.conf\.([^.]+)\.forwarding$")


@dataclass
class Vantage:
    """One vantage of the site: its results document, or why there is none."""

    name: str
    doc: Mapping[str, Any] | None = None
    error: str | None = None
    source: str = ""  # where the results came from (file, host)
    report: str | None = None  # link to its own HTML report, relative to the site report

    @property
    def role(self) -> str:
        if self.doc is None:
            return ""
        return str((self.doc.get("profile") or {}).get("role") or HOST)

    @property
    def checks(self) -> list[Mapping[str, Any]]:
        return list((self.doc or {}).get("checks") or [])

    def failed(self) -> list[Mapping[str, Any]]:
        return [c for c in self.checks if c.get("outcome") in FAILED]

    def interfaces(self) -> dict[str, list[ipaddress.IPv6Interface]]:
        """The vantage's IPv6 interface addresses (with prefix) from the results header."""
        out: dict[str, list[ipaddress.IPv6Interface]] = {}
        raw = ((self.doc or {}).get("vantage") or {}).get("interfaces") or {}
        for ifname, addrs in raw.items() if isinstance(raw, Mapping) else ():
            for a in addrs if isinstance(addrs, list) else ():
                try:
                    iface = ipaddress.ip_interface(str(a))
                except ValueError:
                    continue
                if isinstance(iface, ipaddress.IPv6Interface) and not iface.ip.is_loopback:
                    out.setdefault(str(ifname), []).append(iface)
        return out

    def addresses(self) -> dict[Address, str]:
        """Every address of the vantage -> the interface that has it."""
        return {i.ip: name for name, ifs in self.interfaces().items() for i in ifs}

    def prefixes(self) -> dict[Network, str]:
        """Global on-link prefixes -> interface (link-local ones say nothing across links)."""
        return {
            i.network: name
            for name, ifs in self.interfaces().items()
            for i in ifs
            if not i.ip.is_link_local and i.network.prefixlen >= 48
        }


@dataclass(frozen=True)
class Ref:
    """A check of one vantage."""

    vantage: str
    check: str

    def to_json(self) -> dict[str, str]:
        return {"vantage": self.vantage, "check": self.check}


@dataclass
class SiteCause:
    """A probable cause of the site: where it sits, what shows it, what it explains, and why."""

    key: str
    vantage: str
    area: str
    layer: str
    title: str
    shown_by: list[Ref] = field(default_factory=list)
    explains: list[Ref] = field(default_factory=list)
    ties: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Ref]:
        return self.shown_by + self.explains

    def vantages(self) -> list[str]:
        """Vantages whose failures it accounts for, its own first."""
        seen = [self.vantage] if self.vantage else []
        for r in self.failures:
            if r.vantage not in seen:
                seen.append(r.vantage)
        return seen

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "vantage": self.vantage,
            "area": self.area,
            "layer": self.layer,
            "title": self.title,
            "shown_by": [r.to_json() for r in self.shown_by],
            "explains": [r.to_json() for r in self.explains],
            "vantages": self.vantages(),
            "ties": list(self.ties),
        }


@dataclass(frozen=True)
class Relation:
    """How a vantage is tied to a gateway vantage, with the evidence that says so."""

    vantage: str
    gateway: str
    kind: str  # "lan": on one of the gateway's links; "beyond": probes addresses behind it
    interface: str  # the vantage's interface facing the gateway ("" for beyond)
    ties: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "vantage": self.vantage,
            "gateway": self.gateway,
            "kind": self.kind,
            "interface": self.interface,
            "ties": list(self.ties),
        }


# ---- evidence walking


def _walk_strings(obj: Any, interface: str | None = None) -> Iterator[tuple[str, str | None]]:
    """Every string of an evidence entry, with the interface its observation says it used."""
    if isinstance(obj, Mapping):
        iface = obj.get("interface")
        here = iface if isinstance(iface, str) and iface else interface
        for v in obj.values():
            yield from _walk_strings(v, here)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _walk_strings(v, interface)
    elif isinstance(obj, str):
        yield obj, interface


def addresses_in(text: str) -> set[Address]:
    """IPv6 addresses written in a string (a field, or a sentence of notes); prefixes are not."""
    out: set[Address] = set()
    for m in _TOKEN.finditer(text):
        end = m.end()
        if end < len(text) and text[end] == "/":
            continue
        try:
            a = ipaddress.ip_address(m.group(0))
        except ValueError:
            continue
        if isinstance(a, Address):
            out.add(a)
    return out


def check_addresses(check: Mapping[str, Any]) -> list[tuple[Address, str | None]]:
    """Addresses a check's evidence names, each with the interface its probe used (if said)."""
    out: list[tuple[Address, str | None]] = []
    for entry in check.get("evidence") or ():
        for text, iface in _walk_strings(entry):
            out += [(a, iface) for a in addresses_in(text)]
    return out


def _observations(check: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for entry in check.get("evidence") or ():
        obs = entry.get("observation") if isinstance(entry, Mapping) else None
        if isinstance(obs, Mapping):
            yield obs


def _fmt(a: Address | Network) -> str:
    return str(a)


# ---- what a gateway's cause breaks


@dataclass(frozen=True)
class _Kind:
    """What a gateway cause's evidence says is broken on the gateway (several may hold)."""

    forwarding: str = ""  # the sysctl that is 0
    upstream: str = ""  # how its own way out is broken
    nd: str = ""  # ND with it fails


def gateway_kind(failed: Iterable[Mapping[str, Any]]) -> _Kind:
    """Read the failed checks of a gateway's cause for faults that break traffic through it."""
    forwarding = upstream = nd = ""
    for check in failed:
        for obs in _observations(check):
            kind = obs.get("kind")
            if kind == "SysctlValue":
                m = _FORWARDING_KEY.match(str(obs.get("key") or ""))
                if m and str(obs.get("value")) == "0" and not forwarding:
                    forwarding = f"{obs['key']} = 0"
            elif kind == "RouteTable" and not obs.get("error"):
                routes = obs.get("routes") or []
                if not any(r.get("dst") in ("default", "::/0") for r in routes) and not upstream:
                    upstream = f"it has no IPv6 default route (table {obs.get('table')})"
            elif kind == "RouteLookup" and obs.get("error") and not upstream:
                upstream = f"route get {obs.get('destination')}: {obs.get('error')}"
            elif kind == "NeighborObservation":
                for r in obs.get("results") or ():
                    if not r.get("echo_ok") or not r.get("na_received"):
                        what = (
                            f"its router {r.get('target')} on {obs.get('interface')} "
                            + ("answered NS but " if r.get("na_received") else "sent no NA; ")
                            + f"the neighbour entry is {r.get('cache_state') or 'missing'}"
                        )
                        upstream = upstream or f"it cannot reach {what}"
                        nd = nd or what
    return _Kind(forwarding, upstream, nd)


# ---- relations between vantages


def relations(vantages: Sequence[Vantage]) -> list[Relation]:
    """Which vantage sits behind or beyond which gateway, from addresses in their results."""
    out: list[Relation] = []
    gateways = [v for v in vantages if v.doc is not None and v.role == ROUTER]
    # a link-local address two gateways share (fe80::1 is common) says nothing about which one
    seen: dict[Address, int] = {}
    for g in gateways:
        for a in g.addresses():
            seen[a] = seen.get(a, 0) + 1
    for g in gateways:
        g_addrs = {a: i for a, i in g.addresses().items() if seen[a] == 1}
        g_nets = g.prefixes()
        for v in vantages:
            if v is g or v.doc is None:
                continue
            rel = _lan_relation(v, g, g_addrs, g_nets) or _beyond_relation(v, g, g_nets)
            if rel is not None:
                out.append(rel)
    return out


def _lan_relation(
    v: Vantage, g: Vantage, g_addrs: Mapping[Address, str], g_nets: Mapping[Network, str]
) -> Relation | None:
    ties: list[str] = []
    facing = ""
    for ifname, ifs in v.interfaces().items():
        for i in ifs:
            if i.ip.is_link_local:
                continue
            for net, g_if in g_nets.items():
                if i.ip in net and i.ip not in g_addrs:
                    ties.append(
                        f"{v.name}'s {ifname} address {i.ip} is in {net}, {g.name}'s {g_if}"
                    )
                    facing = facing or ifname
    own = v.addresses()
    named: dict[Address, str | None] = {}
    for check in v.checks:
        for a, iface in check_addresses(check):
            if a in g_addrs and a not in own and named.get(a) is None:
                named[a] = iface
    for a, iface in sorted(named.items()):
        if a.is_link_local and iface is None and not facing:
            continue  # a link-local address says nothing without the link it was seen on
        where = f" on {iface}" if iface else ""
        ties.append(f"{v.name}'s evidence names {a}{where}: {g.name}'s {g_addrs[a]} address")
        facing = facing or (iface or "")
    if not ties or v.role == OUTSIDE:
        return None
    return Relation(v.name, g.name, "lan", facing, tuple(ties[:3]))


def _beyond_relation(v: Vantage, g: Vantage, g_nets: Mapping[Network, str]) -> Relation | None:
    probed: dict[Address, str] = {}
    own = v.addresses()
    for check in v.checks:
        for a, _ in check_addresses(check):
            if a in own or a.is_link_local:
                continue
            for net, g_if in g_nets.items():
                if a in net:
                    probed.setdefault(a, f"{net}, {g.name}'s {g_if}")
    if not probed:
        return None
    ties = [f"{v.name} probes {a}, in {where}" for a, where in sorted(probed.items())[:3]]
    return Relation(v.name, g.name, "beyond", "", tuple(ties))


# ---- which of a vantage's failures a gateway's fault reaches


def _through(
    check: Mapping[str, Any], v: Vantage, g: Vantage, rel: Relation, kind: _Kind
) -> str | None:
    """Why the gateway's fault explains this failure of ``v``, or None when nothing ties them."""
    g_addrs, g_nets = g.addresses(), g.prefixes()
    own, own_nets = v.addresses(), v.prefixes()
    if kind.forwarding and rel.kind == "lan":
        for obs in _observations(check):
            if obs.get("kind") != "NeighborObservation":
                continue
            for r in obs.get("results") or ():
                try:
                    target = ipaddress.ip_address(str(r.get("target")))
                except ValueError:
                    continue
                if target in g_addrs and r.get("na_received") and not r.get("na_router"):
                    return f"{target} ({g.name}) answers without the Router flag"
    if kind.nd and rel.kind == "lan":
        for obs in _observations(check):
            ra = obs.get("kind") == "RaObservation" and not obs.get("adverts")
            if ra and obs.get("interface") == rel.interface:
                return f"no Router Advertisement on {rel.interface}, the link to {g.name}"
    for a, iface in check_addresses(check):
        if a in own:
            continue
        if rel.kind == "lan":
            if iface and rel.interface and iface != rel.interface:
                continue  # the probe left by another interface (a VPN), not via the gateway
            at_g = a in g_addrs
            off_link = not a.is_link_local and not any(a in n for n in own_nets)
            behind_g = any(a in n for n in g_nets)
            if kind.nd and (at_g or off_link):
                return f"{a} is {g.name} or reached through it"
            if kind.forwarding and off_link and not at_g:
                return f"{a} is off-link: {v.name} reaches it only when {g.name} forwards"
            if kind.upstream and off_link and not at_g and not behind_g:
                return f"{a} lies beyond {g.name}'s upstream"
        else:
            at_g = a in g_addrs
            behind_g = not at_g and any(a in n for n in g_nets)
            if (kind.nd or kind.upstream) and (at_g or behind_g):
                return f"{a} is reached through {g.name}'s upstream"
            if kind.forwarding and behind_g:
                return f"{a} is behind {g.name}, reached only when it forwards"
    return None


# ---- the site's causes


def _layer_index(layer: str) -> int:
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _own_causes(v: Vantage) -> list[Cause]:
    assert v.doc is not None
    causes = diagnose(v.doc)
    return [c if c.vantage == v.name else _renamed(c, v.name) for c in causes]


def _renamed(c: Cause, name: str) -> Cause:
    d = c.to_json()
    d["vantage"] = name
    return Cause.from_json(d)


def _site_cause(c: Cause) -> SiteCause:
    return SiteCause(
        key=f"{c.vantage}:{c.key}",
        vantage=c.vantage,
        area=c.area,
        layer=c.layer,
        title=c.title,
        shown_by=[Ref(c.vantage, x) for x in c.shown_by],
        explains=[Ref(c.vantage, x) for x in c.explains],
        ties=list(c.ties),
    )


def unreachable_cause(v: Vantage) -> SiteCause:
    """A vantage without results is a finding of its own, never a pass."""
    return SiteCause(
        key=f"{v.name}:no-results",
        vantage=v.name,
        area="site",
        layer=LAYERS[0],
        title=f"{v.name}: no results, so nothing is known there: {v.error or 'no results'}",
        ties=[f"{v.source or v.name}: {v.error or 'no results'}"],
    )


def diagnose_site(vantages: Sequence[Vantage]) -> tuple[list[SiteCause], list[Relation]]:
    """The site's causes, ranked (most failures explained first, lower layer on a tie), and the
    relations between vantages that tied them."""
    rels = relations(vantages)
    by_name = {v.name: v for v in vantages}
    own: dict[str, list[Cause]] = {v.name: _own_causes(v) for v in vantages if v.doc is not None}
    site: dict[tuple[str, str], SiteCause] = {
        (name, c.key): _site_cause(c) for name, causes in own.items() for c in causes
    }
    absorbed: set[tuple[str, str]] = set()
    # gateways' causes, lowest layer first: they take over the causes their fault reaches
    for g_name in sorted({r.gateway for r in rels}):
        g = by_name[g_name]
        checks = {str(c["id"]): c for c in g.failed()}
        ranked = sorted(own.get(g_name, []), key=lambda c: (_layer_index(c.layer), c.key))
        for gc in ranked:
            if (g_name, gc.key) in absorbed:
                continue
            kind = gateway_kind(checks[x] for x in gc.shown_by + gc.explains if x in checks)
            if not (kind.forwarding or kind.upstream or kind.nd):
                continue
            target = site[(g_name, gc.key)]
            said = [kind.forwarding, kind.nd or kind.upstream]
            target.ties.append(f"{g_name}: " + "; ".join(s for s in said if s))
            for rel in (r for r in rels if r.gateway == g_name):
                v = by_name[rel.vantage]
                v_checks = {str(c["id"]): c for c in v.failed()}
                for vc in own.get(v.name, []):
                    if (v.name, vc.key) in absorbed:
                        continue
                    why = [_through(v_checks[x], v, g, rel, kind) for x in vc.shown_by]
                    if not vc.shown_by or any(w is None for w in why):
                        continue
                    absorbed.add((v.name, vc.key))
                    taken = site[(v.name, vc.key)]
                    target.explains += taken.failures
                    target.ties.append(f"{v.name} and {g_name}: {rel.ties[0]}")
                    target.ties.append(f"{v.name}: {why[0]}")
    _missing_addresses(vantages, rels, own, site, absorbed)
    causes = [c for k, c in site.items() if k not in absorbed]
    causes += [unreachable_cause(v) for v in vantages if v.doc is None]
    for c in causes:
        c.ties = list(dict.fromkeys(c.ties))
    return sorted(causes, key=_rank), rels


def _iid(a: Address) -> int:
    return int(a) & ((1 << 64) - 1)


def _missing_addresses(
    vantages: Sequence[Vantage],
    rels: Sequence[Relation],
    own: Mapping[str, list[Cause]],
    site: Mapping[tuple[str, str], SiteCause],
    absorbed: set[tuple[str, str]],
) -> None:
    """A LAN host's own cause explains the outside's failures to the address it should have: the
    probed address carries the host's interface identifier (that of its link-local address) in
    the gateway's prefix, and the host has no such address now."""
    by_name = {v.name: v for v in vantages}
    for lan in (r for r in rels if r.kind == "lan"):
        h = by_name[lan.vantage]
        ranked = [c for c in own.get(h.name, []) if (h.name, c.key) not in absorbed]
        if not ranked:
            continue
        iids = {_iid(a): a for a, i in h.addresses().items() if a.is_link_local}
        g_nets = by_name[lan.gateway].prefixes()
        target = site[(h.name, ranked[0].key)]
        for o in (r for r in rels if r.kind == "beyond" and r.gateway == lan.gateway):
            ov = by_name[o.vantage]
            o_checks = {str(c["id"]): c for c in ov.failed()}
            for oc in own.get(ov.name, []):
                if (ov.name, oc.key) in absorbed or not oc.shown_by:
                    continue
                why = [_missing(o_checks[x], h, iids, g_nets) for x in oc.shown_by if x in o_checks]
                if len(why) != len(oc.shown_by) or any(w is None for w in why):
                    continue
                absorbed.add((ov.name, oc.key))
                target.explains += site[(ov.name, oc.key)].failures
                target.ties.append(f"{ov.name}: {why[0]}")


def _missing(
    check: Mapping[str, Any], h: Vantage, iids: Mapping[int, Address], nets: Mapping[Network, str]
) -> str | None:
    have = h.addresses()
    for a, _ in check_addresses(check):
        net = next((n for n in nets if a in n), None)
        if net is not None and a not in have and _iid(a) in iids:
            return (
                f"{a} has {h.name}'s interface identifier (its {iids[_iid(a)]}) in {net}, "
                f"but {h.name} has no address there"
            )
    return None


def _rank(c: SiteCause) -> tuple[int, int, int, str]:
    return (-len(c.failures), -len(c.vantages()), _layer_index(c.layer), c.key)
