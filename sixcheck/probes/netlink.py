"""What the kernel made of the network, read over netlink (pyroute2): links, IPv6 addresses,
routes, policy rules, neighbours and `ip route get`.

These reads need no privilege and change nothing, so they run for every user: the passive half of
the `nd` and `routes` areas (and any area that needs to know an interface, an address or a route).
One IPRoute socket serves a whole batch; the blocking calls run in a thread under the probe deadline.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import Fields, Observation, ProbeContext, ProbeFailed, ProbeRequest

# The requests live apart (pytest's collection imports only them); this module answers them.
from .netlink_requests import (
    NetlinkRead,
    ReadAddresses,
    ReadNeighbors,
    ReadRoutes,
    ReadRules,
    RouteGet,
)

# IFA_F_* (linux/if_addr.h): the flags `ip -6 addr` prints.
IFA_FLAGS: dict[int, str] = {
    0x01: "temporary",
    0x02: "nodad",
    0x04: "optimistic",
    0x08: "dadfailed",
    0x10: "homeaddress",
    0x20: "deprecated",
    0x40: "tentative",
    0x80: "permanent",
    0x100: "mngtmpaddr",
    0x200: "noprefixroute",
    0x400: "autojoin",
    0x800: "stable-privacy",
}
# rtm_protocol values (linux/rtnetlink.h) as `ip route` names them.
RT_PROTO: dict[int, str] = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    9: "ra",
    11: "zebra",
    12: "bird",
    16: "dhcp",
    42: "babel",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
}
RT_TYPE: dict[int, str] = {
    0: "unspec",
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
}
RT_TABLE: dict[int, str] = {253: "default", 254: "main", 255: "local"}
NUD_STATE: dict[int, str] = {
    0x01: "INCOMPLETE",
    0x02: "REACHABLE",
    0x04: "STALE",
    0x08: "DELAY",
    0x10: "PROBE",
    0x20: "FAILED",
    0x40: "NOARP",
    0x80: "PERMANENT",
}
NTF_ROUTER = 0x80
INFINITY_LIFETIME = 0xFFFFFFFF
#: USER_HZ: rta_expires is in clock ticks of 1/100 s.
USER_HZ = 100


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class Link:
    index: int
    name: str
    mac: str | None
    up: bool
    operstate: str | None
    mtu: int | None


@dataclass(frozen=True, kw_only=True)
class Address:
    """One IPv6 address as `ip -6 addr` shows it; lifetimes None mean forever."""

    interface: str
    address: str
    prefixlen: int
    scope: str
    flags: tuple[str, ...]
    valid_lft: int | None
    preferred_lft: int | None

    @property
    def is_global(self) -> bool:
        return self.scope == "global"

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def deprecated(self) -> bool:
        return self.has("deprecated") or self.preferred_lft == 0

    def describe(self) -> str:
        """`2001:db8::1/64 dynamic mngtmpaddr valid 86397s preferred 14397s`."""
        flags = [f for f in self.flags if f != "permanent"]
        kind = "permanent" if self.has("permanent") else "dynamic"
        life = ""
        if self.valid_lft is not None:
            life = f" valid {self.valid_lft}s preferred {self.preferred_lft}s"
        return (
            f"{self.address}/{self.prefixlen} {kind}{' ' if flags else ''}{' '.join(flags)}{life}"
        )


@dataclass(frozen=True, kw_only=True)
class Route:
    """One IPv6 route; `expires` (seconds) is set for routes learnt from RAs."""

    table: int
    type: str
    dst: str  # "default" or PREFIX/LEN
    gateway: str | None
    dev: str | None
    metric: int | None
    proto: str
    expires: int | None
    pref: str | None

    def describe(self) -> str:
        """`default via fe80::1 dev wan0 proto ra metric 1024 expires 1797s table main`."""
        parts = [] if self.type == "unicast" else [self.type]
        parts.append(self.dst)
        if self.gateway:
            parts.append(f"via {self.gateway}")
        if self.dev:
            parts.append(f"dev {self.dev}")
        parts.append(f"proto {self.proto}")
        if self.metric is not None:
            parts.append(f"metric {self.metric}")
        if self.expires:
            parts.append(f"expires {self.expires}s")
        parts.append(f"table {RT_TABLE.get(self.table, str(self.table))}")
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One IPv6 policy rule (`ip -6 rule`)."""

    priority: int
    src: str | None  # PREFIX/LEN, None for "all"
    dst: str | None
    table: int
    fwmark: int | None
    iif: str | None
    oif: str | None
    action: str

    def describe(self) -> str:
        parts = [f"{self.priority}:", f"from {self.src or 'all'}"]
        if self.dst:
            parts.append(f"to {self.dst}")
        if self.fwmark is not None:
            parts.append(f"fwmark {self.fwmark:#x}")
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.oif:
            parts.append(f"oif {self.oif}")
        if self.action == "lookup":
            parts.append(f"lookup {RT_TABLE.get(self.table, str(self.table))}")
        else:
            parts.append(self.action)
        return " ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Neighbor:
    interface: str
    address: str
    mac: str | None
    state: str
    router: bool


# ------------------------------------------------------------------------------- observations


@dataclass(frozen=True, kw_only=True)
class AddressList(Observation):
    """The IPv6 addresses of one interface (`exists` False: no such interface)."""

    family: str = "ipv6"
    interface: str
    exists: bool = True
    link: Link | None = None
    addresses: tuple[Address, ...] = ()

    compared = Fields(
        stable=(
            "error",
            "exists",
            "link.up",
            "link.mtu",
            "addresses.{address,prefixlen,scope}",
            "addresses.flags",
        ),
        volatile=("addresses.valid_lft", "addresses.preferred_lft"),
    )


@dataclass(frozen=True, kw_only=True)
class RouteTable(Observation):
    """The IPv6 routes of one routing table."""

    family: str = "ipv6"
    table: int
    routes: tuple[Route, ...] = ()

    compared = Fields(
        stable=("error", "routes.{dst,type,gateway,dev,metric,pref}"), volatile=("routes.expires",)
    )

    def defaults(self) -> list[Route]:
        return [r for r in self.routes if r.dst == "default" and r.type == "unicast"]


@dataclass(frozen=True, kw_only=True)
class RuleList(Observation):
    family: str = "ipv6"
    rules: tuple[Rule, ...] = ()

    compared = Fields(stable=("error", "rules.{priority,src,dst,table,fwmark,iif,oif,action}"))


@dataclass(frozen=True, kw_only=True)
class RouteLookup(Observation):
    """`ip -6 route get DST [from SRC]`: where the kernel would send a packet, and from what."""

    family: str = "ipv6"
    destination: str
    source_hint: str | None = None
    type: str | None = None
    dev: str | None = None
    source: str | None = None
    gateway: str | None = None
    table: int | None = None

    compared = Fields(stable=("error", "type", "dev", "source", "gateway", "table"))


@dataclass(frozen=True, kw_only=True)
class NeighborList(Observation):
    family: str = "ipv6"
    interface: str
    neighbors: tuple[Neighbor, ...] = ()

    compared = Fields(stable=("error", "neighbors.router"), volatile=("neighbors.state",))


# ------------------------------------------------------------------------------- reading


async def read_batch(
    kind: type[NetlinkRead[Any]], requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of one kind of `netlink_requests` read over one socket, in a thread."""
    import asyncio

    fn: Any = _READERS[kind]

    def work() -> dict[ProbeRequest[Any], Observation]:
        out: dict[ProbeRequest[Any], Observation] = {}
        try:
            with Netlink() as nl:
                for req in requests:
                    try:
                        out[req] = fn(nl, req)
                    except Exception as exc:
                        out[req] = ProbeFailed(error=f"netlink: {type(exc).__name__}: {exc}")
        except OSError as exc:
            err = f"cannot open a netlink socket: {exc.strerror or exc}"
            return {r: ProbeFailed(error=err) for r in requests}
        return out

    try:
        return await asyncio.wait_for(asyncio.to_thread(work), timeout=ctx.probe_timeout * 2)
    except TimeoutError:
        err = f"netlink did not answer within {ctx.probe_timeout * 2:g} s"
        return {r: ProbeFailed(error=err) for r in requests}


def ip_route() -> Any:
    """A new pyroute2 `IPRoute` socket (the caller closes it); see `_ip_route_class`."""
    return _ip_route_class()()


def _ip_route_class() -> Any:
    """pyroute2's IPRoute, imported without running `pyroute2/__init__.py` first when possible.

    The package's `__init__` imports all of pyroute2 (163 modules: conntrack, ipset, IPVS, nl80211,
    NDB, ...), 6 MiB and 0.06 s more than the 99 that IPRoute needs, in every run. The package
    module is created from its spec without executing it; the first access to a name it does not
    have yet (`from pyroute2 import NDB` elsewhere in the process) executes the real `__init__`,
    so nothing else in the process sees a difference. If the layout is not what this expects,
    the package is imported the ordinary way.
    """
    with _IMPORT_LOCK:  # probe threads and the vantage read ask at the same time
        if _IP_ROUTE:
            return _IP_ROUTE[0]
        _IP_ROUTE.append(_import_ip_route())
        return _IP_ROUTE[0]


_IMPORT_LOCK = threading.Lock()
_IP_ROUTE: list[Any] = []


def _import_ip_route() -> Any:
    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations:
            sys.modules["pyroute2"] = _package_on_demand(spec)
    try:
        from pyroute2.iproute.linux import IPRoute
    except ImportError:
        from pyroute2 import IPRoute
    return IPRoute


def _package_on_demand(spec: Any) -> Any:
    """The `pyroute2` package module, its `__init__` executed on the first access to a name it
    lacks. Threads ask at once (probe threads, the vantage read, a user's `from pyroute2 import
    NDB`): one executes it while the others wait, and the hook goes only once it is done."""
    pkg = importlib.util.module_from_spec(spec)
    lock = threading.RLock()
    state = {"done": False}

    def complete(name: str) -> Any:
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            raise AttributeError(name)  # a submodule: the import system loads it
        with lock:
            if not state["done"]:
                state["done"] = True  # names the __init__ itself asks for meanwhile: not yet
                try:
                    spec.loader.exec_module(pkg)  # the real __init__, once
                finally:
                    pkg.__dict__.pop("__getattr__", None)
        if name in pkg.__dict__:
            return pkg.__dict__[name]
        raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")

    pkg.__dict__["__getattr__"] = complete
    return pkg


class Netlink:
    """A small read-only view of the kernel's IPv6 state over one pyroute2 socket.

    Other areas may use it directly (inside a probe's thread) to resolve interface names,
    addresses or routes; every method returns the plain records above.
    """

    def __init__(self) -> None:
        self._ipr = ip_route()
        self._names: dict[int, str] | None = None

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ipr.close()

    def links(self) -> list[Link]:
        out = []
        for m in self._ipr.get_links():
            out.append(
                Link(
                    index=m["index"],
                    name=m.get("IFLA_IFNAME"),
                    mac=m.get("IFLA_ADDRESS"),
                    up=bool(m["flags"] & 1),
                    operstate=m.get("IFLA_OPERSTATE"),
                    mtu=m.get("IFLA_MTU"),
                )
            )
        self._names = {link.index: link.name for link in out}
        return out

    def name_of(self, index: int | None) -> str | None:
        if index is None:
            return None
        if self._names is None or index not in self._names:
            self.links()
        assert self._names is not None
        return self._names.get(index, f"if{index}")

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links() if link.name == name), None)

    def addresses(self, interface: str | None = None) -> list[Address]:
        idx = None
        if interface is not None:
            link = self.link(interface)
            if link is None:
                return []
            idx = link.index
        out = []
        for m in self._ipr.get_addr(family=socket.AF_INET6):
            if idx is not None and m["index"] != idx:
                continue
            flag_bits = m.get("IFA_FLAGS") or m["flags"]
            cache = m.get("IFA_CACHEINFO") or {}
            valid = cache.get("ifa_valid")
            pref = cache.get("ifa_preferred")
            out.append(
                Address(
                    interface=self.name_of(m["index"]) or "",
                    address=m.get("IFA_ADDRESS"),
                    prefixlen=m["prefixlen"],
                    scope={0: "global", 200: "site", 253: "link", 254: "host"}.get(
                        m["scope"], str(m["scope"])
                    ),
                    flags=tuple(n for bit, n in IFA_FLAGS.items() if flag_bits & bit),
                    valid_lft=None if valid in (None, INFINITY_LIFETIME) else valid,
                    preferred_lft=None if pref in (None, INFINITY_LIFETIME) else pref,
                )
            )
        return out

    def link_local(self, interface: str) -> str | None:
        """The interface's usable link-local address (not tentative or dadfailed), if any."""
        for a in self.addresses(interface):
            if a.scope == "link" and not (a.has("tentative") or a.has("dadfailed")):
                return a.address
        return None

    def routes(self, table: int = 254) -> list[Route]:
        out = []
        for m in self._ipr.get_routes(family=socket.AF_INET6, table=table):
            tbl = m.get("RTA_TABLE") or m["table"]
            if tbl != table:
                continue
            out.append(self._route(m, tbl))
        return out

    def _route(self, m: Any, table: int) -> Route:
        dst = m.get("RTA_DST")
        cache = m.get("RTA_CACHEINFO") or {}
        expires = cache.get("rta_expires") or 0
        gateway = m.get("RTA_GATEWAY")
        oif = m.get("RTA_OIF")
        multipath = m.get("RTA_MULTIPATH")
        if multipath and not gateway:  # ECMP: record the first hop; enough for "via whom"
            first = multipath[0]
            gateway = first.get("RTA_GATEWAY")
            oif = first["oif"]
        return Route(
            table=table,
            type=RT_TYPE.get(m["type"], str(m["type"])),
            dst="default" if not dst and m["dst_len"] == 0 else f"{dst}/{m['dst_len']}",
            gateway=gateway,
            dev=self.name_of(oif),
            metric=m.get("RTA_PRIORITY"),
            proto=RT_PROTO.get(m["proto"], str(m["proto"])),
            expires=expires // USER_HZ if expires else None,
            # ICMPV6_ROUTER_PREF_* of linux/icmpv6.h: 0 medium, 1 high, 3 low (as RFC 4191 codes)
            pref={0: "medium", 1: "high", 3: "low"}.get(m.get("RTA_PREF") or 0),
        )

    def rules(self) -> list[Rule]:
        out = []
        actions = {
            1: "lookup",
            2: "goto",
            3: "nop",
            6: "blackhole",
            7: "unreachable",
            8: "prohibit",
        }
        for m in self._ipr.get_rules(family=socket.AF_INET6):
            src = m.get("FRA_SRC")
            dst = m.get("FRA_DST")
            out.append(
                Rule(
                    priority=m.get("FRA_PRIORITY") or 0,
                    src=f"{src}/{m['src_len']}" if src else None,
                    dst=f"{dst}/{m['dst_len']}" if dst else None,
                    table=m.get("FRA_TABLE") or m["table"],
                    fwmark=m.get("FRA_FWMARK"),
                    iif=m.get("FRA_IIFNAME"),
                    oif=m.get("FRA_OIFNAME"),
                    action=actions.get(m["action"], str(m["action"])),
                )
            )
        return sorted(out, key=lambda r: r.priority)

    def route_get(self, destination: str, source: str | None = None) -> RouteLookup:
        kwargs: dict[str, Any] = {"dst": destination, "family": socket.AF_INET6}
        if source:  # a source-specific lookup (what policy rules act on)
            kwargs["src"] = source
            kwargs["src_len"] = 128
        try:
            msgs = self._ipr.route("get", **kwargs)
        except Exception as exc:
            code = getattr(exc, "code", None)
            text = {
                101: "network is unreachable (no route)",
                113: "no route to host",
                13: "permission denied (prohibit route)",
                22: "invalid argument",
                99: f"{source} is not an address of this node",
            }.get(code or 0, str(exc))
            return RouteLookup(destination=destination, source_hint=source, error=text)
        m = msgs[0]
        return RouteLookup(
            destination=destination,
            source_hint=source,
            type=RT_TYPE.get(m["type"], str(m["type"])),
            dev=self.name_of(m.get("RTA_OIF")),
            source=(m.get("RTA_SRC") if source else None) or m.get("RTA_PREFSRC"),
            gateway=m.get("RTA_GATEWAY"),
            table=m.get("RTA_TABLE") or m["table"],
        )

    def neighbors(self, interface: str | None = None) -> list[Neighbor]:
        out = []
        for m in self._ipr.get_neighbours(family=socket.AF_INET6):
            name = self.name_of(m["ifindex"]) or ""
            if interface is not None and name != interface:
                continue
            state = m["state"]
            out.append(
                Neighbor(
                    interface=name,
                    address=m.get("NDA_DST"),
                    mac=m.get("NDA_LLADDR"),
                    state="|".join(n for bit, n in NUD_STATE.items() if state & bit) or "NONE",
                    router=bool(m["flags"] & NTF_ROUTER),
                )
            )
        return out


def _read_addresses(nl: Netlink, req: ReadAddresses) -> AddressList:
    link = nl.link(req.interface)
    if link is None:
        return AddressList(
            interface=req.interface,
            exists=False,
            error=f"interface {req.interface} does not exist on this node",
        )
    return AddressList(
        interface=req.interface, link=link, addresses=tuple(nl.addresses(req.interface))
    )


def _read_routes(nl: Netlink, req: ReadRoutes) -> RouteTable:
    return RouteTable(table=req.table, routes=tuple(nl.routes(req.table)))


def _read_rules(nl: Netlink, req: ReadRules) -> RuleList:
    return RuleList(rules=tuple(nl.rules()))


def _route_get(nl: Netlink, req: RouteGet) -> RouteLookup:
    return nl.route_get(req.destination, req.source)


def _read_neighbors(nl: Netlink, req: ReadNeighbors) -> NeighborList:
    if nl.link(req.interface) is None:
        return NeighborList(
            interface=req.interface, error=f"interface {req.interface} does not exist on this node"
        )
    return NeighborList(interface=req.interface, neighbors=tuple(nl.neighbors(req.interface)))


_READERS: dict[type[NetlinkRead[Any]], Any] = {
    ReadAddresses: _read_addresses,
    ReadRoutes: _read_routes,
    ReadRules: _read_rules,
    RouteGet: _route_get,
    ReadNeighbors: _read_neighbors,
}
