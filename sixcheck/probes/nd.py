"""Neighbor Discovery on the wire (packet sockets, frames by `ndwire`): solicit and collect Router Advertisements, ask the
routers for Neighbor Advertisements, then reach them by an ICMPv6 echo through the kernel (so the
kernel's own neighbour cache must resolve them too). A ping as a probe of its own, for any area, is
`sixcheck.probes.icmp.Echo`.

Why on the wire: what a host *made* of the RAs (addresses, routes) can look right while the RAs
themselves are wrong (a rogue router, a missing RDNSS the host ignores). Every interface is probed
in its own thread; all of them listen during the same window, so a run costs one window
whatever the number of interfaces, and sends exactly one Router Solicitation per interface (radvd
rate-limits answers; a probe must not count on a second one).

The window is adaptive: it closes MAX_RA_DELAY_TIME (0.5 s, RFC 4861 10) after the RS once every
router the profile lists has answered and nobody else advertised; it lasts the whole `ra_listen`
only while a listed router is missing or a stranger was heard. What a short window cannot hear (a
router that only sends periodic RAs) the kernel may have heard before: the observation carries
the kernel's RA-installed default routes, router-flagged neighbours and RA prefixes.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import ndwire
from .base import Fields, Observation, ProbeContext, ProbeFailed, ProbeRequest, Threshold

# The requests live apart (pytest's collection imports only them); this module answers them.
from .nd_requests import RouterAdverts, RouterNeighbors
from .netlink import Netlink

ALL_ROUTERS = ndwire.ALL_ROUTERS
ALL_ROUTERS_MAC = ndwire.ALL_ROUTERS_MAC
ICMP6_RA = 134
ICMP6_NA = 136
#: An RA flood must not grow the observation without bound.
MAX_RAS = 200
#: RFC 4861 10: a router delays its answer to a Router Solicitation by up to this many seconds
#: (MAX_RA_DELAY_TIME). A router that answers solicitations at all has answered by then.
MAX_RA_DELAY_TIME = 0.5


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class PrefixInfo:
    prefix: str  # PREFIX/LEN
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int


@dataclass(frozen=True, kw_only=True)
class Rdnss:
    servers: tuple[str, ...]
    lifetime: int


@dataclass(frozen=True, kw_only=True)
class Dnssl:
    domains: tuple[str, ...]
    lifetime: int


@dataclass(frozen=True, kw_only=True)
class RouteInfo:
    prefix: str
    preference: str
    lifetime: int


@dataclass(frozen=True, kw_only=True)
class RouterAdvert:
    """One decoded RA: who sent it, its header fields and every option sixcheck knows."""

    router: str  # IPv6 source address
    mac: str | None  # Ethernet source
    destination: str
    ip_hop_limit: int  # must be 255 (RFC 4861 6.1.2): anything less came through a router
    cur_hop_limit: int
    managed: bool
    other: bool
    preference: str
    router_lifetime: int
    reachable_time: int
    retrans_timer: int
    prefixes: tuple[PrefixInfo, ...] = ()
    rdnss: tuple[Rdnss, ...] = ()
    dnssl: tuple[Dnssl, ...] = ()
    mtu: int | None = None
    routes: tuple[RouteInfo, ...] = ()
    source_lladdr: str | None = None
    at: float = 0.0  # seconds after the RS was sent
    count: int = 1  # RAs with this content from this router during the window

    @property
    def link_local(self) -> bool:
        return ipaddress.IPv6Address(self.router).is_link_local

    def rdnss_servers(self) -> list[str]:
        return [s for o in self.rdnss for s in o.servers]

    def dnssl_domains(self) -> list[str]:
        return [d for o in self.dnssl for d in o.domains]

    def label(self) -> str:
        return f"{self.router} ({self.mac})" if self.mac else self.router


_PRF = {0: "medium", 1: "high", 2: "reserved", 3: "low"}


def decode_ra(pkt: Any, at: float = 0.0) -> RouterAdvert | None:
    """Decode an RA into a RouterAdvert; None if `pkt` is no RA. `pkt` is a received Ethernet
    frame (bytes), or a scapy packet with Ether or IPv6 at the top (tests build those)."""
    if isinstance(pkt, bytes | bytearray):
        f = ndwire.icmp6_of(bytes(pkt))
    else:
        f = ndwire.icmp6_of(bytes(pkt), ether=getattr(pkt, "name", "") == "Ethernet")
    if f is None or f.icmp[0] != ndwire.RA or len(f.icmp) < 16:
        return None
    cur_hl, flags, lifetime, reachable, retrans = struct.unpack("!BBHII", f.icmp[4:16])
    prefixes, rdnss, dnssl, routes = [], [], [], []
    mtu = slla = None
    for typ, body in ndwire.options(f.icmp[16:]):
        if typ == ndwire.OPT_PREFIX and len(body) >= 30:
            plen, pflags, valid, preferred = struct.unpack("!BBII", body[:10])
            addr = ipaddress.IPv6Address(body[14:30])
            prefixes.append(
                PrefixInfo(
                    prefix=str(ipaddress.IPv6Network(f"{addr}/{min(plen, 128)}", strict=False)),
                    on_link=bool(pflags & 0x80),
                    autonomous=bool(pflags & 0x40),
                    valid_lifetime=valid,
                    preferred_lifetime=preferred,
                )
            )
        elif typ == ndwire.OPT_RDNSS and len(body) >= 22:
            servers = tuple(
                str(ipaddress.IPv6Address(body[i : i + 16])) for i in range(6, len(body) - 15, 16)
            )
            rdnss.append(Rdnss(servers=servers, lifetime=struct.unpack("!I", body[2:6])[0]))
        elif typ == ndwire.OPT_DNSSL and len(body) >= 6:
            doms = tuple(d.rstrip(".") for d in ndwire.dns_names(body[6:]))
            dnssl.append(Dnssl(domains=doms, lifetime=struct.unpack("!I", body[2:6])[0]))
        elif typ == ndwire.OPT_MTU and len(body) >= 6:
            mtu = struct.unpack("!I", body[2:6])[0]
        elif typ == ndwire.OPT_ROUTE and len(body) >= 6:
            plen, rflags, rlife = struct.unpack("!BBI", body[:6])
            addr = ipaddress.IPv6Address(body[6:22].ljust(16, b"\0")[:16])
            net = ipaddress.IPv6Network(f"{addr}/{min(plen, 128)}", strict=False)
            routes.append(
                RouteInfo(prefix=str(net), preference=_PRF[(rflags >> 3) & 3], lifetime=rlife)
            )
        elif typ == ndwire.OPT_SLLA and len(body) >= 6:
            slla = ":".join(f"{b:02x}" for b in body[:6])
    return RouterAdvert(
        router=f.src,
        mac=f.src_mac or None,
        destination=f.dst,
        ip_hop_limit=f.hop_limit,
        cur_hop_limit=cur_hl,
        managed=bool(flags & 0x80),
        other=bool(flags & 0x40),
        preference=_PRF[(flags >> 3) & 3],
        router_lifetime=lifetime,
        reachable_time=reachable,
        retrans_timer=retrans,
        prefixes=tuple(prefixes),
        rdnss=tuple(rdnss),
        dnssl=tuple(dnssl),
        mtu=mtu,
        routes=tuple(routes),
        source_lladdr=slla,
        at=round(at, 3),
    )


def merge_adverts(adverts: Sequence[RouterAdvert]) -> tuple[RouterAdvert, ...]:
    """One entry per router and content: periodic RAs repeat, the report needs each once."""
    out: dict[tuple[Any, ...], RouterAdvert] = {}
    for ra in adverts:
        key = (ra.router, ra.mac, replace(ra, at=0.0, count=1, destination=""))
        if key in out:
            out[key] = replace(out[key], count=out[key].count + 1)
        else:
            out[key] = ra
    return tuple(out.values())


# ------------------------------------------------------------------------------- RA probe


@dataclass(frozen=True, kw_only=True)
class KernelRouter:
    """A router the kernel knows on this link: by an RA-installed default route, or by a
    neighbour entry with the router flag (set by an RA from it, or an NA with R=1)."""

    address: str
    mac: str | None = None
    default_route: bool = False  # a default route via it with proto ra
    router_flag: bool = False  # its neighbour entry carries the router flag
    state: str | None = None  # neighbour cache state


@dataclass(frozen=True, kw_only=True)
class KernelRas:
    """What this node's kernel made of RAs on one interface (read by netlink, nothing sent)."""

    routers: tuple[KernelRouter, ...] = ()
    prefixes: tuple[str, ...] = ()  # on-link prefixes with a lifetime: learnt from an RA


@dataclass(frozen=True, kw_only=True)
class RaObservation(Observation):
    """Every RA seen on one interface during the listening window (one RS sent at its start)."""

    family: str = "ipv6"
    interface: str
    source: str | None = None  # the link-local address the RS was sent from
    mac: str | None = None
    rs_sent: int = 0
    listen_seconds: float = 0.0
    adverts: tuple[RouterAdvert, ...] = ()
    dropped: int = 0  # RAs beyond MAX_RAS, not decoded
    listened: float = 0.0  # seconds it did listen: `listen_seconds` (ra_listen) or less
    #: why listening stopped: "expected routers answered" (early) or "ra_listen elapsed"
    stopped: str = ""
    #: what the kernel learnt from RAs before and during the window (a periodic RA of a router
    #: that does not answer solicitations may come outside any short window)
    kernel: KernelRas | None = None

    compared = Fields(
        stable=(
            "error",
            "adverts.router",
            "adverts.mac",
            "adverts.ip_hop_limit",
            "adverts.cur_hop_limit",
            "adverts.managed",
            "adverts.other",
            "adverts.preference",
            "adverts.router_lifetime",
            "adverts.prefixes.{prefix,on_link,autonomous}",
            "adverts.prefixes.valid_lifetime",
            "adverts.prefixes.preferred_lifetime",
            "adverts.rdnss.servers",
            "adverts.dnssl.domains",
            "adverts.mtu",
            "adverts.routes.{prefix,preference}",
        ),
        volatile=(
            "rs_sent",
            "listen_seconds",
            "listened",
            "stopped",
            "kernel",
            "dropped",
            "adverts.at",
            "adverts.count",
            "adverts.rdnss.lifetime",
            "adverts.dnssl.lifetime",
        ),
        thresholds={
            "adverts.router_lifetime": Threshold(limits=(0,)),
            "adverts.prefixes.valid_lifetime": Threshold(limits=(0,)),
            "adverts.prefixes.preferred_lifetime": Threshold(limits=(0,)),
        },
    )


async def listen_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of RouterAdverts (see `nd_requests`): one listener thread each."""
    import asyncio

    reqs = [r for r in requests if isinstance(r, RouterAdverts)]
    results = await asyncio.gather(
        *(
            asyncio.wait_for(
                asyncio.to_thread(listen_for_ras, r.interface, ctx.ra_listen, r.expect),
                timeout=ctx.ra_listen + ctx.probe_timeout + 1,
            )
            for r in reqs
        ),
        return_exceptions=True,
    )
    out: dict[ProbeRequest[Any], Observation] = {}
    for req, res in zip(reqs, results, strict=True):
        if isinstance(res, TimeoutError):
            out[req] = ProbeFailed(error=f"RA listener on {req.interface} did not finish")
        elif isinstance(res, BaseException):
            out[req] = ProbeFailed(
                error=f"RA probe on {req.interface}: {type(res).__name__}: {res}"
            )
        else:
            out[req] = res
    return out


def _solicited_node(addr: str) -> tuple[str, str]:
    """The solicited-node multicast address of `addr` and its Ethernet group MAC."""
    packed = ipaddress.IPv6Address(addr).packed
    group = ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + packed[13:])
    mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[12:])
    return str(group), mac


def _open_l2(iface: str, icmp_type: int) -> socket.socket:
    """A packet socket on `iface` for one ICMPv6 type (never promiscuous: see ndwire)."""
    return ndwire.packet_socket(iface, icmp_type)


def _recv_frame(sock: socket.socket, own_mac: str) -> bytes | None:
    """One queued frame, None for our own (an outgoing copy, or our RAs when a router probes
    the link it serves: not evidence)."""
    try:
        data, addr = sock.recvfrom(65535)
    except BlockingIOError:
        return None
    if addr[2] == ndwire.PACKET_OUTGOING or data[6:12].hex(":") == own_mac:
        return None
    return data


def _known(expect: Sequence[tuple[str | None, str | None]], ra: RouterAdvert) -> int | None:
    """Index of the expected router `ra` comes from, None for a stranger."""
    for i, (addr, mac) in enumerate(expect):
        if addr is not None and ipaddress.IPv6Address(ra.router) != ipaddress.IPv6Address(addr):
            continue
        if mac is not None and (ra.mac or "").lower() != mac.lower():
            continue
        return i
    return None


def _link_local(prefix: str) -> bool:
    return ipaddress.IPv6Network(prefix, strict=False).network_address.is_link_local


def kernel_ras(nl: Netlink, iface: str) -> KernelRas:
    """Routers and prefixes the kernel learnt from RAs on `iface` (its routes and neighbours)."""
    routes = [r for r in nl.routes() if r.dev == iface]
    gateways = {
        ipaddress.IPv6Address(r.gateway)
        for r in routes
        if r.dst == "default" and r.proto == "ra" and r.gateway
    }
    found: dict[ipaddress.IPv6Address, KernelRouter] = {}
    for n in nl.neighbors(iface):
        if not n.address:
            continue
        addr = ipaddress.IPv6Address(n.address)
        if n.router or addr in gateways:
            found[addr] = KernelRouter(
                address=str(addr),
                mac=n.mac,
                default_route=addr in gateways,
                router_flag=n.router,
                state=n.state,
            )
    for addr in gateways - set(found):
        found[addr] = KernelRouter(address=str(addr), default_route=True)
    # the kernel marks prefixes learnt from an RA by their finite lifetime (`expires`)
    prefixes = sorted(
        {
            r.dst
            for r in routes
            if r.dst != "default" and r.expires is not None and not _link_local(r.dst)
        }
    )
    return KernelRas(routers=tuple(found.values()), prefixes=tuple(prefixes))


def _collect_ras(
    sock: Any,
    mac: str,
    start: float,
    window: float,
    expect: Sequence[tuple[str | None, str | None]],
) -> tuple[list[RouterAdvert], int, str]:
    """Read RAs until `start + window`, or earlier once every `expect`ed router has answered,
    MAX_RA_DELAY_TIME has passed and no stranger advertised: (RAs, RAs dropped, why it stopped)."""
    seen: list[RouterAdvert] = []
    dropped = 0
    deadline = start + window
    missing = set(range(len(expect)))
    stranger = False
    while (left := deadline - time.monotonic()) > 0:
        if expect and not missing and not stranger:
            early = start + MAX_RA_DELAY_TIME - time.monotonic()
            if early <= 0:
                return seen, dropped, "expected routers answered"
            left = min(left, early)
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        pkt = _recv_frame(sock, mac)
        if pkt is None:
            continue
        ra = decode_ra(pkt, time.monotonic() - start)
        if ra is None:
            continue
        idx = _known(expect, ra)
        if idx is None:
            stranger = True
        else:
            missing.discard(idx)
        if len(seen) >= MAX_RAS:
            dropped += 1
            continue
        seen.append(ra)
    return seen, dropped, "ra_listen elapsed"


def listen_for_ras(
    iface: str, window: float, expect: Sequence[tuple[str | None, str | None]] = ()
) -> RaObservation:
    """Open a listener on `iface`, send one RS from its link-local, collect RAs for up to `window`
    s (see RouterAdverts for when it stops earlier), then read what the kernel learnt."""
    link = ndwire.sending_link(iface)  # not netlink: the RS must not wait for pyroute2's import
    ll = link.link_local if link else None
    if link is None:
        return RaObservation(
            interface=iface, error=f"interface {iface} does not exist on this node"
        )
    if not link.up:
        return RaObservation(interface=iface, mac=link.mac, error=f"interface {iface} is down")
    mac = (link.mac or "").lower()
    sock = _open_l2(iface, ICMP6_RA)
    try:
        src = ll or "::"  # RFC 4861: no source link-layer option from the unspecified address
        rs = ndwire.router_solicitation(mac, ll)
        start = time.monotonic()
        sent, err = 0, None
        try:
            sock.send(rs)
            sent = 1
        except OSError as exc:
            err = f"could not send the RS on {iface}: {exc.strerror or exc}"
        seen, dropped, stopped = _collect_ras(sock, mac, start, window, expect if sent else ())
        listened = time.monotonic() - start
    finally:
        sock.close()
    with Netlink() as nl:
        kernel = kernel_ras(nl, iface)
    return RaObservation(
        interface=iface,
        source=src,
        mac=mac,
        rs_sent=sent,
        listen_seconds=window,
        adverts=merge_adverts(seen),
        dropped=dropped,
        error=err if not seen else None,
        listened=round(listened, 3),
        stopped=stopped,
        kernel=kernel,
    )


# ------------------------------------------------------------------------------- NS/NA probe


@dataclass(frozen=True, kw_only=True)
class NeighborResult:
    """One router asked by NS (on the wire) and reached through the kernel (echo)."""

    target: str
    na_received: bool = False
    na_router: bool | None = None
    na_solicited: bool | None = None
    na_override: bool | None = None
    na_mac: str | None = None
    na_rtt_ms: float | None = None
    echo_ok: bool | None = None
    echo_error: str | None = None
    cache_state: str | None = None  # the kernel's neighbour entry after the exchange
    cache_mac: str | None = None
    cache_router: bool | None = None


@dataclass(frozen=True, kw_only=True)
class NeighborObservation(Observation):
    family: str = "ipv6"
    interface: str
    source: str | None = None
    mac: str | None = None
    targets_from: str = "profile"  # or "default route"
    results: tuple[NeighborResult, ...] = ()

    compared = Fields(
        stable=("error", "results.{target,na_received,na_router,na_mac,echo_ok}"),
        volatile=("results.na_rtt_ms", "results.cache_state"),
    )


async def neighbors_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of RouterNeighbors (see `nd_requests`): one NS/NA thread each."""
    import asyncio

    reqs = [r for r in requests if isinstance(r, RouterNeighbors)]
    results = await asyncio.gather(
        *(
            asyncio.wait_for(
                asyncio.to_thread(ask_neighbors, r.interface, r.targets, ctx.probe_timeout),
                timeout=3 * ctx.probe_timeout + 2,
            )
            for r in reqs
        ),
        return_exceptions=True,
    )
    out: dict[ProbeRequest[Any], Observation] = {}
    for req, res in zip(reqs, results, strict=True):
        if isinstance(res, BaseException):
            what = "timed out" if isinstance(res, TimeoutError) else f"{type(res).__name__}: {res}"
            out[req] = ProbeFailed(error=f"NS/NA probe on {req.interface}: {what}")
        else:
            out[req] = res
    return out


def decode_na(pkt: bytes | None) -> tuple[str, int, str] | None:
    """(target, R/S/O flags byte, MAC: the target link-layer option, else the frame's source)
    of a Neighbor Advertisement frame; None for anything else."""
    f = ndwire.icmp6_of(pkt) if pkt else None
    if f is None or f.icmp[0] != ndwire.NA or len(f.icmp) < 24:
        return None
    mac = f.src_mac
    for typ, body in ndwire.options(f.icmp[24:]):
        if typ == ndwire.OPT_TLLA and len(body) >= 6:
            mac = ":".join(f"{b:02x}" for b in body[:6])
    return str(ipaddress.IPv6Address(f.icmp[8:24])), f.icmp[4], mac


def ask_neighbors(iface: str, targets: tuple[str, ...], timeout: float) -> NeighborObservation:
    with Netlink() as nl:
        link = nl.link(iface)
        if link is None:
            return NeighborObservation(
                interface=iface, error=f"interface {iface} does not exist on this node"
            )
        ll = nl.link_local(iface)
        origin = "profile"
        if not targets:
            origin = "default route"
            targets = tuple(
                dict.fromkeys(
                    r.gateway
                    for r in nl.routes()
                    if r.dst == "default" and r.dev == iface and r.gateway
                )
            )
    mac = (link.mac or "").lower()
    if not ll:
        return NeighborObservation(
            interface=iface,
            mac=mac,
            targets_from=origin,
            error=f"{iface} has no usable link-local address to send a Neighbor Solicitation from",
        )
    if not targets:
        return NeighborObservation(
            interface=iface,
            source=ll,
            mac=mac,
            targets_from=origin,
            error=f"no router to ask on {iface}: the profile names none by address and there is "
            f"no default route via {iface}",
        )
    results: list[NeighborResult] = []
    sock = _open_l2(iface, ICMP6_NA)
    try:
        for target in targets:
            group, gmac = _solicited_node(target)
            ns = ndwire.neighbor_solicitation(mac, ll, target, group, gmac)
            start = time.monotonic()
            res = NeighborResult(target=target)
            sock.send(ns)
            deadline = start + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                na = decode_na(_recv_frame(sock, mac))
                if na is None or ipaddress.IPv6Address(na[0]) != ipaddress.IPv6Address(target):
                    continue
                _, flags, na_mac = na
                res = replace(
                    res,
                    na_received=True,
                    na_router=bool(flags & 0x80),
                    na_solicited=bool(flags & 0x40),
                    na_override=bool(flags & 0x20),
                    na_mac=na_mac,
                    na_rtt_ms=round((time.monotonic() - start) * 1000, 2),
                )
                break
            ok, err = echo6(target, link.index, timeout)
            results.append(replace(res, echo_ok=ok, echo_error=err))
    finally:
        sock.close()
    with Netlink() as nl:
        cache = {ipaddress.IPv6Address(n.address): n for n in nl.neighbors(iface) if n.address}
    final = []
    for res in results:
        entry = cache.get(ipaddress.IPv6Address(res.target))
        final.append(
            replace(
                res,
                cache_state=entry.state if entry else "absent",
                cache_mac=entry.mac if entry else None,
                cache_router=entry.router if entry else None,
            )
        )
    return NeighborObservation(
        interface=iface, source=ll, mac=mac, targets_from=origin, results=tuple(final)
    )


# ------------------------------------------------------------------------------- echo


def echo6(dst: str, ifindex: int, timeout: float) -> tuple[bool, str | None]:
    """One ICMPv6 echo through the kernel (raw ICMPv6 socket): (answered, why not).

    Going through the kernel, not scapy, is the point: it must resolve the neighbour itself.
    """
    ident = os.getpid() & 0xFFFF
    seq = int(time.monotonic() * 1000) & 0xFFFF
    payload = b"sixcheck"
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    except OSError as exc:
        return False, f"cannot open an ICMPv6 socket: {exc.strerror}"
    try:
        s.setblocking(False)
        s.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload, (dst, 0, 0, ifindex))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                break
            data, addr = s.recvfrom(2048)
            if len(data) < 8:
                continue
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
            same = ipaddress.IPv6Address(addr[0].split("%")[0]) == ipaddress.IPv6Address(dst)
            if typ == 129 and rid == ident and rseq == seq and same:
                return True, None
            if typ == 1 and data[8 + 40 + 4 : 8 + 40 + 8] == struct.pack("!HH", ident, seq):
                return False, f"destination unreachable (code {data[1]}) from {addr[0]}"
        return False, f"no echo reply within {timeout:g} s"
    except OSError as exc:
        return False, f"{exc.strerror or exc}"
    finally:
        s.close()
