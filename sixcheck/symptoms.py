"""What each failed check of a run says about the network, read from its recorded observations.

Diagnosis ties failures together only through evidence a person can check in the results: the RA
that never came, the router that answered without the Router flag, the source address a probe left
from, the node that sent an ICMPv6 error. This module turns one results document (schema
sixcheck-results/1) into that evidence: the run's facts (every observation, passed checks
included) and one symptom per failed check, keyed so that failures showing the same thing fall
into one group.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

FAILED = ("failed", "error")

#: the layer a check sits at when nothing finer is known, by area
AREA_LAYER: dict[str, str] = {
    "sysctl": "node",
    "nd": "link",
    "dhcpv6": "link",  # on-link, link-local exchanges that hand out addresses and prefixes
    "routes": "route",
    "tunnel": "path",
    "vpn": "path",
    "firewall": "path",
    "dns": "service",
    "ntp": "service",
}

Obs = Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    """One failed check as the results carry it."""

    id: str
    area: str
    message: str
    observations: tuple[Obs, ...]
    notes: Mapping[str, Any]
    requests: tuple[Obs, ...] = ()  # the request of each observation, in the same order

    @property
    def func(self) -> str:
        """`test_default_route` of `checks/test_routes.py::test_default_route[eth0]`."""
        return self.id.partition("[")[0].rsplit("::", 1)[-1]

    @property
    def param(self) -> str:
        """`eth0` of `checks/test_routes.py::test_default_route[eth0]`."""
        rest = self.id.partition("[")[2]
        return rest[:-1] if rest.endswith("]") else ""

    def of_kind(self, *kinds: str) -> list[Obs]:
        return [o for o in self.observations if o.get("kind") in kinds]


@dataclass(frozen=True)
class Symptom:
    """What one failed check shows. Failures with the same `key` show the same thing."""

    check: Failure
    key: str
    layer: str
    title: str
    #: evidence the rules read (router, interface, prefixes, destination, source ...)
    data: Mapping[str, Any] = field(default_factory=dict)
    area: str = ""  # the area the cause belongs to when the evidence names another than the check's


@dataclass
class Facts:
    """What the whole run observed, passed checks included."""

    sysctl: dict[str, str] = field(default_factory=dict)
    #: (dev, gateway) of every default route in the main table; None when no table was read
    defaults: set[tuple[str, str]] | None = None
    resolvers: list[str] = field(default_factory=list)
    #: global addresses per interface
    addresses: dict[str, list[str]] = field(default_factory=dict)
    #: VPN interfaces (their LinkInfo: addresses and routes per family)
    links: dict[str, Obs] = field(default_factory=dict)
    #: off-link destinations that answered something (a DNS message, an NTP reply, a TCP
    #: handshake or reset, an echo reply): the path to them works
    answered: set[str] = field(default_factory=set)

    def sysctl_int(self, key: str) -> int | None:
        v = self.sysctl.get(key)
        return int(v) if v is not None and v.lstrip("-").isdigit() else None


def _ip(text: str | None) -> ipaddress.IPv6Address | ipaddress.IPv4Address | None:
    try:
        return ipaddress.ip_address(str(text).split("%")[0]) if text else None
    except ValueError:
        return None


def in_prefix(addr: str | None, prefix: str) -> bool:
    a = _ip(addr)
    try:
        return a is not None and a in ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return False


def is_global(addr: str | None) -> bool:
    a = _ip(addr)
    return a is not None and not (a.is_link_local or a.is_loopback or a.is_multicast)


def observations(check: Mapping[str, Any]) -> Iterator[Obs]:
    for _, o in exchanges(check):
        yield o


def exchanges(check: Mapping[str, Any]) -> Iterator[tuple[Obs, Obs]]:
    """(request, observation) of every probe a check recorded."""
    for e in check.get("evidence") or ():
        if isinstance(e, Mapping) and isinstance(e.get("observation"), Mapping):
            req = e.get("request")
            yield (req if isinstance(req, Mapping) else {}), e["observation"]


def _notes(check: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in check.get("evidence") or ():
        if isinstance(e, Mapping) and isinstance(e.get("notes"), Mapping):
            out.update(e["notes"])
    return out


def read_facts(doc: Mapping[str, Any]) -> Facts:
    facts = Facts()
    for check in _checks(doc):
        for o in observations(check):
            try:
                _learn(facts, o)
            except UNREADABLE:
                continue  # a fact this version cannot read is no fact
    return facts


def _checks(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    checks = doc.get("checks") if isinstance(doc, Mapping) else None
    if not isinstance(checks, list):
        return []
    return [c for c in checks if isinstance(c, Mapping) and c.get("id") is not None]


def _learn(facts: Facts, o: Obs) -> None:
    kind = o.get("kind")
    if kind == "SysctlValue" and o.get("error") is None and o.get("value") is not None:
        facts.sysctl[str(o.get("key"))] = str(o["value"]).strip()
    elif kind == "RouteTable" and o.get("error") is None and o.get("table") == 254:
        facts.defaults = facts.defaults or set()
        for r in o.get("routes") or ():
            if r.get("dst") in ("default", "::/0") and r.get("type", "unicast") == "unicast":
                facts.defaults.add((str(r.get("dev")), str(r.get("gateway") or "")))
    elif kind == "LinkInfo" and o.get("error") is None and o.get("exists"):
        facts.links[str(o.get("interface"))] = o
    elif kind == "HostResolvers" and o.get("error") is None:
        facts.resolvers = [str(a) for a in o.get("effective") or ()]
    elif kind == "AddressList" and o.get("error") is None and o.get("interface"):
        facts.addresses[str(o["interface"])] = [
            str(a.get("address")) for a in o.get("addresses") or () if is_global(a.get("address"))
        ]
    dst = _answered(o)
    if dst:
        facts.answered.add(dst)


def _answered(o: Obs) -> str | None:
    kind = o.get("kind")
    if kind == "DnsAnswer" and o.get("responded"):
        return str(o.get("server"))
    if kind == "NtpAnswer" and o.get("responded"):
        return str(o.get("address") or o.get("server"))
    if kind == "PortResult" and o.get("state") in ("open", "reset"):
        return str(o.get("dst"))
    if kind == "EchoResult" and o.get("outcome") == "reply":
        return str(o.get("dst"))
    return None


def failures(doc: Mapping[str, Any]) -> list[Failure]:
    out = []
    for c in _checks(doc):
        if c.get("outcome") not in FAILED:
            continue
        out.append(
            Failure(
                id=str(c["id"]),
                area=str(c.get("area") or "other"),
                message=str(c.get("message") or ""),
                observations=tuple(observations(c)),
                notes=_notes(c),
                requests=tuple(r for r, _ in exchanges(c)),
            )
        )
    return out


# ------------------------------------------------------------------------------- one failure


def first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


#: what evidence of an unexpected shape raises when read: it then ties nothing
UNREADABLE = (AttributeError, TypeError, ValueError, KeyError, IndexError)


def symptom(f: Failure, facts: Facts) -> Symptom:
    """The symptom of one failed check: the most specific reading its evidence allows. Evidence
    this version cannot read (an older or newer probe's, a hand-edited file) leaves the failure
    a cause of its own."""
    try:
        return _read(f, facts)
    except UNREADABLE:
        return _own(f)


def _read(f: Failure, facts: Facts) -> Symptom:
    for reader in (
        _probe_failed,
        _dhcpv6,
        _sysctl,
        _ra,
        _neighbor,
        _addresses,
        _default_route,
        _route_get,
        _tunnel,
        _vpn,
        _ntp_answer,
    ):
        s = reader(f, facts)
        if s is not None:
            return s
    return _service(f, facts) or _own(f)


def _own(f: Failure) -> Symptom:
    return Symptom(
        f, f"check:{f.id}", AREA_LAYER.get(f.area, "service"), first_line(f.message) or f.id
    )


def _probe_failed(f: Failure, facts: Facts) -> Symptom | None:
    """A probe that broke: every check that waited on the same request shares its one error."""
    for req, o in zip(f.requests, f.observations, strict=False):
        if o.get("kind") == "ProbeFailed":
            args = ", ".join(f"{k}={v}" for k, v in req.items() if k != "probe" and v is not None)
            return Symptom(
                f,
                f"probe:{req.get('probe', '?')}({args})",
                AREA_LAYER.get(f.area, "service"),
                f"could not tell: {req.get('probe', 'a probe')} failed: {o.get('error')}",
                {"request": dict(req), "could_not_tell": True},
            )
    return None


def _dhcpv6(f: Failure, facts: Facts) -> Symptom | None:
    """An exchange that got no answer at all: every check that waited on it shows one silence."""
    obs = f.of_kind("Dhcpv6Observation")
    if not obs or obs[0].get("error") or obs[0].get("replies"):
        return None
    o = obs[0]
    iface = str(o.get("interface"))
    return Symptom(
        f,
        f"dhcpv6.silent@{iface}",
        AREA_LAYER["dhcpv6"],
        f"no DHCPv6 server answers on {iface} ({o.get('message')} sent {o.get('sent')} times)",
        {"interface": iface, "asked": [str(a) for a in o.get("asked") or ()]},
    )


def _sysctl(f: Failure, facts: Facts) -> Symptom | None:
    if f.func == "test_upstream_ras_are_accepted":
        return _ra_ignored(f, f.param)
    if f.func != "test_sysctl":
        return None
    vals = [o for o in f.of_kind("SysctlValue") if o.get("error") is None]
    if not vals:
        return None
    key, value = str(vals[0].get("key")), str(vals[0].get("value"))
    m = re.fullmatch(r"net\.ipv6\.conf\.([^.]+)\.(.+)", key)
    iface, leaf = (m.group(1), m.group(2)) if m else ("", key)
    fwd = facts.sysctl_int(f"net.ipv6.conf.{iface}.forwarding")
    if leaf == "accept_ra" and value == "1" and fwd == 1:
        return _ra_ignored(f, iface)  # the fault the upstream-RA check names: one cause
    return Symptom(
        f,
        f"sysctl:{key}",
        "node",
        f"{key} is {value}"
        + (f" (expected {f.notes['expected']})" if "expected" in f.notes else ""),
        {"key": key, "value": value, "interface": iface, "leaf": leaf},
    )


def _ra_ignored(f: Failure, iface: str) -> Symptom:
    return Symptom(
        f,
        f"sysctl.ra-ignored@{iface}",
        "node",
        f"{iface} ignores upstream RAs (accept_ra=1 with forwarding=1): no default route",
        {"interface": iface},
    )


def _expected(f: Failure) -> Mapping[str, Any]:
    """The check's expectation when it is a mapping (some checks note a list or a sentence)."""
    exp = f.notes.get("expected")
    return exp if isinstance(exp, Mapping) else {}


def _ra(f: Failure, facts: Facts) -> Symptom | None:
    ras = f.of_kind("RaObservation")
    if not ras or f.area != "nd":
        return None
    o = ras[0]
    iface = str(o.get("interface"))
    adverts = list(o.get("adverts") or ())
    if not adverts and o.get("error"):
        return Symptom(
            f,
            f"nd.ra-probe@{iface}",
            "link",
            f"could not listen for RAs on {iface}: {o.get('error')}",
            {"interface": iface},
        )
    if not adverts:
        return Symptom(
            f,
            f"nd.no-ra@{iface}",
            "link",
            f"no router advertisement on {iface} (within {o.get('listen_seconds')} s, "
            f"{o.get('rs_sent')} RS sent): the RA daemon does not answer",
            {"interface": iface},
        )
    expected = str(_expected(f).get("routers", ""))
    prefixes = sorted({str(p.get("prefix")) for ra in adverts for p in ra.get("prefixes") or ()})
    if f.func == "test_ra_prefixes":
        wanted = [
            str(p.get("prefix")) for p in f.notes.get("expected") or () if isinstance(p, Mapping)
        ]
        missing = [p for p in wanted if p not in prefixes]
        if missing:
            strange = [p for p in prefixes if p not in wanted]
            return Symptom(
                f,
                f"nd.prefix@{iface}",
                "link",
                f"the RA on {iface} advertises {', '.join(strange) or 'no prefix'} instead of "
                f"{', '.join(missing)}",
                {"interface": iface, "advertised": strange, "missing": missing},
            )
    if f.func == "test_no_rogue_router":
        rogue = [ra for ra in adverts if str(ra.get("router")) not in expected]
        if rogue:
            return Symptom(
                f,
                f"nd.rogue@{iface}",
                "link",
                "rogue router "
                + ", ".join(f"{ra.get('router')}" for ra in rogue)
                + f" advertises on {iface}",
                {
                    "interface": iface,
                    "routers": [str(ra.get("router")) for ra in rogue],
                    "prefixes": sorted(
                        {str(p.get("prefix")) for ra in rogue for p in ra.get("prefixes") or ()}
                    ),
                },
            )
    return None


def _neighbor(f: Failure, facts: Facts) -> Symptom | None:
    obs = f.of_kind("NeighborObservation")
    if not obs or obs[0].get("error"):
        return None
    o = obs[0]
    iface = str(o.get("interface"))
    for r in o.get("results") or ():
        router = str(r.get("target"))
        data = {"interface": iface, "router": router}
        if not r.get("na_received"):
            return Symptom(
                f,
                f"nd.silent@{iface}",
                "link",
                f"router {router} does not answer Neighbor Solicitations on {iface}",
                data,
            )
        if not r.get("na_router"):
            return Symptom(
                f,
                f"nd.not-router@{iface}",
                "link",
                f"{router} on {iface} answers without the Router flag: it does not forward IPv6 "
                "(forwarding off there)",
                data,
            )
        if not r.get("echo_ok"):
            # the NA was on the wire but this node cannot reach the router: the answer never got
            # into its kernel (its own firewall). Only stable fields decide; the neighbour entry's
            # state belongs to one moment of one run.
            return Symptom(
                f,
                "firewall.icmpv6-input",
                "link",
                f"this node drops ICMPv6 it receives: {router}'s Neighbor Advertisement reached "
                f"{iface} but not the kernel (its echo gets no answer either)",
                data,
                area="firewall",
            )
    return None


def _addresses(f: Failure, facts: Facts) -> Symptom | None:
    if f.func != "test_addresses":
        return None
    lists = f.of_kind("AddressList")
    if not lists or lists[0].get("error"):
        return None
    iface = str(lists[0].get("interface"))
    have = [
        str(a.get("address"))
        for a in lists[0].get("addresses") or ()
        if is_global(a.get("address"))
    ]
    expected = [
        str(e.get("prefix")) for e in f.notes.get("expected") or () if isinstance(e, Mapping)
    ]
    missing = [p for p in expected if not any(in_prefix(a, p) for a in have)]
    extra = [a for a in have if expected and not any(in_prefix(a, p) for p in expected)]
    data = {"interface": iface, "have": have, "missing": missing, "extra": extra}
    if missing:
        return Symptom(
            f,
            f"addr.missing@{iface}",
            "address",
            f"no address in {', '.join(missing)} on {iface}"
            + (f" (has {', '.join(have)})" if have else " (no global address)"),
            data,
        )
    if extra:
        return Symptom(
            f, f"addr.extra@{iface}", "address", f"unexpected address {extra[0]} on {iface}", data
        )
    return None


def _default_route(f: Failure, facts: Facts) -> Symptom | None:
    if f.func != "test_default_route":
        return None
    tables = f.of_kind("RouteTable")
    if not tables or tables[0].get("error"):
        return None
    iface = str(_expected(f).get("interface") or f.param)
    mine = [
        r
        for r in tables[0].get("routes") or ()
        if r.get("dst") in ("default", "::/0") and r.get("dev") == iface
    ]
    sysctls = {
        str(o.get("key")).rsplit(".", 1)[-1]: str(o.get("value")) for o in f.of_kind("SysctlValue")
    }
    data = {"interface": iface, "sysctl": sysctls, "gateways": [r.get("gateway") for r in mine]}
    if not mine or f.message.startswith(("no default route", "accept_ra", "IPv6 is disabled")):
        why = f.message.split(";")[0] if not f.message.startswith("no default route") else ""
        return Symptom(
            f,
            f"route.no-default@{iface}",
            "route",
            f"no default route on {iface}" + (f" ({why})" if why else ""),
            data,
        )
    return Symptom(
        f,
        f"route.extra-default@{iface}",
        "route",
        f"unexpected default route on {iface} via " + ", ".join(str(g) for g in data["gateways"]),
        data,
    )


def _route_get(f: Failure, facts: Facts) -> Symptom | None:
    lookups = f.of_kind("RouteLookup")
    if f.func != "test_route_get" or not lookups:
        return None
    o = lookups[0]
    if o.get("error"):
        if "unreachable" in str(o.get("error")).lower():
            return _no_route(f, str(o.get("destination")))
        return None
    return Symptom(
        f,
        f"route.source:{o.get('source')}",
        "route",
        f"traffic to {o.get('destination')} leaves from {o.get('source')}",
        {"destination": o.get("destination"), "source": o.get("source")},
    )


def _no_route(f: Failure, dst: str) -> Symptom:
    return Symptom(
        f,
        "route.unreachable",
        "route",
        "this node has no route to off-link destinations (Network is unreachable)",
        {"destination": dst},
    )


def _tunnel(f: Failure, facts: Facts) -> Symptom | None:
    if f.area != "tunnel":
        return None
    for o in f.of_kind("PathMtuResult"):
        if o.get("verdict") == "blackhole":
            return Symptom(
                f,
                f"tunnel.blackhole:{o.get('dst')}",
                "path",
                f"{o.get('blackhole_size')}-byte packets to {o.get('dst')} vanish without "
                "Packet Too Big (PMTU black hole)",
                {"size": o.get("blackhole_size"), "destination": o.get("dst")},
            )
    if f.func != "test_tunnel_interface":
        return None
    lists = f.of_kind("AddressList")
    if not lists:
        return None
    iface = str(lists[0].get("interface"))
    if lists[0].get("exists") is False:
        return Symptom(
            f,
            f"tunnel.missing@{iface}",
            "path",
            f"tunnel interface {iface} does not exist (the tunnel client is not running)",
            {"interface": iface},
        )
    link = lists[0].get("link") or {}
    want = _expected(f).get("mtu")
    if want is not None and link.get("mtu") is not None and link.get("mtu") != want:
        return Symptom(
            f,
            f"tunnel.mtu@{iface}",
            "path",
            f"{iface} has MTU {link.get('mtu')}, expected {want}",
            {"interface": iface, "mtu": link.get("mtu"), "expected": want},
        )
    return None


def _vpn(f: Failure, facts: Facts) -> Symptom | None:
    """A protected destination whose IPv6 leaves by another interface than the VPN's."""
    if f.area != "vpn" or not facts.links:
        return None
    out: set[str] = set()
    for o in f.observations:
        for d in o.get("decisions") or ():
            if isinstance(d, Mapping) and d.get("family") == 6 and d.get("interface"):
                out.add(str(d["interface"]))
        if (
            o.get("kind") == "RouteDecision"
            and o.get("route_type") == "unicast"
            and o.get("family") == 6
            and o.get("interface")
        ):
            out.add(str(o["interface"]))
        if o.get("kind") == "CaptureResult" and o.get("family") == 6:
            for p in o.get("probes") or ():
                out.update(str(i) for i in p.get("seen_on") or ())
    leaks = sorted(out - set(facts.links))
    if not leaks:
        return None
    vpn = sorted(facts.links)[0]
    no_v6 = not (facts.links[vpn].get("addresses") or {}).get("6")
    return Symptom(
        f,
        f"vpn.leak@{vpn}",
        "path",
        f"IPv6 to the protected networks leaves by {', '.join(leaks)} around {vpn}"
        + (f": {vpn} carries no IPv6 (no IPv6 address or route on it)" if no_v6 else ""),
        {"interface": vpn, "leaks": leaks, "no_ipv6": no_v6},
    )


def _ntp_answer(f: Failure, facts: Facts) -> Symptom | None:
    """An NTP server that answers wrongly: every check of the same server shows one fault."""
    for o in f.of_kind("NtpAnswer"):
        if o.get("responded"):
            addr = str(o.get("address") or o.get("server"))
            return Symptom(
                f,
                f"ntp:{addr}",
                "service",
                f"NTP server {addr}: {first_line(f.message, 140)}",
                {"destination": addr},
            )
    return None


# ------------------------------------------------------------------------------- services

#: DNS answers that refuse every question alike (wrong data for one name is that name's failure)
REFUSALS = ("REFUSED", "SERVFAIL", "NOTIMP", "FORMERR")

_LOCAL_NO_ROUTE = re.compile(r"network is unreachable|errno 101|no route to its network", re.I)


def _inbound_open(f: Failure) -> Symptom | None:
    """A deny claim whose own probe (the check's first) reached the host behind the firewall."""
    ports = f.of_kind("PortResult")
    if f.func != "test_inbound_denied" or not ports:
        return None
    o = ports[0]
    reached = o.get("state") in ("open", "reset") or (
        o.get("state") == "icmp" and o.get("from_target")
    )
    if not reached:
        return None
    where = f"[{o.get('dst')}]:{o.get('port')}/{o.get('proto')}"
    return Symptom(
        f,
        "firewall.inbound-open",
        "path",
        f"NEW connections from here get through the firewall to the hosts behind it ({where} "
        f"answered {o.get('state')} itself)",
        {"destination": o.get("dst"), "state": o.get("state")},
    )


def _service(f: Failure, facts: Facts) -> Symptom | None:
    """DNS, NTP, TCP/UDP and echo probes: who failed to answer, and how."""
    if (inbound := _inbound_open(f)) is not None:
        return inbound
    for seen in f.observations:
        o, kind = seen, seen.get("kind")
        if kind == "PathMtuResult" and o.get("verdict") == "path-broken":
            o, kind = {**(o.get("fits") or o), "kind": "EchoResult"}, "EchoResult"
        if kind == "DnsAnswer" and not o.get("responded") and o.get("error"):
            return _failed_exchange(f, str(o.get("server")), o, str(o.get("error_kind")))
        if kind == "DnsAnswer" and o.get("responded") and o.get("rcode") in REFUSALS:
            # the resolver answers, but not this node's questions: one fault for every name
            return _failed_exchange(f, str(o.get("server")), o, str(o.get("rcode")))
        if kind == "NtpAnswer" and not o.get("responded") and o.get("error"):
            if o.get("error_kind") == "resolve":
                return Symptom(
                    f,
                    "dns.resolve",
                    "service",
                    "names do not resolve through this node's resolvers",
                    {"error": str(o.get("error")), "server": str(o.get("server"))},
                )
            dst = str(o.get("address") or o.get("server"))
            return _failed_exchange(f, dst, o, str(o.get("error_kind")))
        if kind == "PortResult" and o.get("state") not in ("open", None):
            return _failed_exchange(f, str(o.get("dst")), o, str(o.get("state")))
        if kind == "EchoResult" and o.get("outcome") not in ("reply", None):
            return _failed_exchange(f, str(o.get("dst")), o, str(o.get("outcome")))
    return None


def _failed_exchange(f: Failure, dst: str, o: Obs, how: str) -> Symptom:
    err = str(o.get("error") or "")
    # "Network is unreachable" before anything was sent (no source address chosen): this node
    # has no route; the same words with a source are a router's ICMPv6 error on the way
    no_route = bool(_LOCAL_NO_ROUTE.search(err))
    if no_route and (how in ("local-error", "local") or o.get("source") is None):
        return _no_route(f, dst)
    if how in ("local-error", "local"):
        # refused by this node's own stack for another reason (a route gone mid-run, an OUTPUT
        # rule): nothing left, so it says nothing about the path
        return Symptom(
            f,
            "local.cannot-send",
            "route",
            f"this node could not send to {dst}: {first_line(err or how, 120)}",
            {"destination": dst, "how": how},
        )
    icmp = o.get("icmp") if isinstance(o.get("icmp"), Mapping) else None
    offender = str(icmp.get("offender")) if icmp and icmp.get("offender") else None
    name = str(icmp.get("name")) if icmp else None
    if "administratively prohibited" in err:
        name = "admin-prohibited"
    layer = AREA_LAYER.get(f.area, "service")
    data = {
        "destination": dst,
        "how": how,
        "source": o.get("source"),
        "interface": o.get("interface"),
        "icmp": name,
        "offender": offender,
        "silent": how in ("timeout", "dropped", "silent") and name is None,
        "no_route": no_route,
        "echo": o.get("kind") == "EchoResult",
        "via": next(
            (str(r.get("gateway")) for r in f.of_kind("RouteLookup") if r.get("gateway")), None
        ),
    }
    if name and name not in ("port-unreachable",) and offender != dst:
        # a router on the way said no: every failure with its same answer is one cause
        who = offender or "a router"
        return Symptom(
            f,
            f"path.icmp:{name}@{offender or '?'}",
            "path",
            f"{who} answers ICMPv6 {name}"
            + (": it has no route onward" if name == "no-route" else "")
            + (": a firewall rejects the traffic" if name == "admin-prohibited" else ""),
            data,
        )
    if how in REFUSALS:
        title = f"resolver {dst} answers {how} to this node's questions"
    elif data["silent"]:
        title = f"{dst} does not answer from here (no answer at all)"
    elif (
        how in ("connection-refused", "reset")
        or name == "port-unreachable"
        or ("port unreachable" in err)
    ):
        title = f"nothing listens on {dst} (port unreachable or connection refused)"
    else:
        title = f"{dst} does not answer: {first_line(err or how, 100)}"
    return Symptom(f, f"dst:{dst}", layer, title, data)
