"""DNS queries to one named resolver, over a pinned transport (UDP or TCP) and address family.

Why a probe of its own instead of the system resolver: a site's claim is "resolver R answers over
IPv6 transport", which the stub resolver cannot tell (it falls back across servers, families and
transports silently). Here every query goes to exactly one server address, by exactly one
transport, and the observation says what came back or which layer failed: no answer in time, an
ICMPv6 error, a TCP reset, a malformed or truncated reply - or an answer with its rcode.

The transport's family (how the question travelled) and the record type (what was asked) are
separate fields on purpose: "DNS over IPv6" and "AAAA records" are different claims.

Used by the `dns` checks and by other areas (the VPN area resolves protected names through given
resolvers): build `DnsQuery(server, name, rdtype, transport, port)` and read `DnsAnswer`.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .base import Fields, Observation, ProbeContext, ProbeFailed, ProbeRequest

# The requests live apart (pytest's collection imports only them); this module answers them.
from .dns_requests import DnsQuery, IPAddress, Transport

#: How a query can fail below DNS. An answer with rcode REFUSED/SERVFAIL is *not* here: the server
#: answered, and `rcode` says what it said.
ErrorKind = Literal[
    "timeout",  # nothing came back before the deadline
    "unreachable",  # an ICMPv6/ICMP error (port/host/net unreachable, administratively prohibited)
    "connection-refused",  # TCP: the connection was reset (nothing listens on the port)
    "closed",  # TCP: the server closed the connection before answering
    "truncated",  # UDP answer with TC set: the answer is incomplete, TCP is needed
    "malformed",  # something came back that is not a valid answer to the question
    "local",  # this node could not send at all (no route, no address of the family)
]

#: At most this many queries are in flight at once: bounded, yet a whole profile fits one wave.
MAX_IN_FLIGHT = 128


@dataclass(frozen=True)
class DnsRecord:
    """One resource record of the answer section, as text."""

    name: str
    rdtype: str
    ttl: int
    value: str


@dataclass(frozen=True, kw_only=True)
class DnsAnswer(Observation):
    """What one query to one resolver gave.

    `responded` is True when a DNS message came back (whatever its rcode); `error_kind` names the
    layer that failed otherwise. A truncated UDP answer is both: it responded, but the answer set
    is incomplete (`error_kind == "truncated"`).
    """

    server: str
    port: int
    transport: Transport
    family: Literal["ipv6", "ipv4"]
    name: str
    rdtype: str
    recursion_desired: bool = True
    source: str | None = None  # the local address the query left from
    source_port: int | None = None
    interface: str | None = None  # the interface owning `source`, when it can be told
    responded: bool = False
    rcode: str | None = None
    flags: tuple[str, ...] = ()
    answers: tuple[DnsRecord, ...] = ()
    authority: tuple[DnsRecord, ...] = ()
    elapsed: float | None = None  # seconds from sending to the answer (or the failure)
    error_kind: ErrorKind | None = None

    compared = Fields(
        stable=(
            "error",
            "error_kind",
            "responded",
            "rcode",
            "answers.value",
            "authority.rdtype",
            "source",
            "interface",
        ),
        volatile=("source_port", "elapsed", "answers.ttl", "authority.ttl", "flags"),
    )

    def values(self, rdtype: str | None = None) -> list[str]:
        """The answer values of `rdtype` (default: the queried type), CNAMEs excluded."""
        want = (rdtype or self.rdtype).upper()
        return [r.value for r in self.answers if r.rdtype == want]

    def addresses(self) -> set[IPAddress]:
        """A/AAAA answers of the queried type, parsed (so `2001:db8::1` equals `2001:DB8:0::1`)."""
        out: set[IPAddress] = set()
        for v in self.values():
            with contextlib.suppress(ValueError):
                out.add(ipaddress.ip_address(v))
        return out

    def ttls(self) -> list[int]:
        return [r.ttl for r in self.answers]

    @property
    def nxdomain(self) -> bool:
        return self.rcode == "NXDOMAIN"

    @property
    def nodata(self) -> bool:
        """NOERROR but no record of the asked type: the name exists, this type does not."""
        return self.rcode == "NOERROR" and not self.values() and self.error_kind is None

    def where(self) -> str:
        """`resolver 2001:db8::53 over UDP/IPv6` - the phrase every message starts from."""
        fam = "IPv6" if self.family == "ipv6" else "IPv4"
        port = "" if self.port == 53 else f" port {self.port}"
        return f"resolver {self.server}{port} over {self.transport.upper()}/{fam}"


# ------------------------------------------------------------------------------- querying


async def query_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Start every query at once, all bounded by the same deadline, so a dead resolver costs
    one timeout for the whole run, however many names are asked of it."""
    import asyncio

    limit = asyncio.Semaphore(MAX_IN_FLIGHT)
    owners = await asyncio.to_thread(_address_owners)  # pyroute2's sync API wants no loop

    async def one(req: DnsQuery) -> Observation:
        async with limit:
            try:
                return await query(req, ctx.probe_timeout, owners)
            except Exception as exc:  # one broken query must not take the batch with it
                return ProbeFailed(error=f"DnsQuery crashed: {type(exc).__name__}: {exc}")

    queries = [r for r in requests if isinstance(r, DnsQuery)]
    answers = await asyncio.gather(*(one(r) for r in queries))
    return dict(zip(queries, answers, strict=True))


async def query_one(req: DnsQuery, ctx: ProbeContext) -> DnsAnswer:
    """`DnsQuery.run_one`: one query outside a batch."""
    import asyncio

    return await query(req, ctx.probe_timeout, await asyncio.to_thread(_address_owners))


async def query(
    req: DnsQuery, default_timeout: float, owners: dict[str, str] | None = None
) -> DnsAnswer:
    """Send `req` and describe what happened; never raises (`DnsQuery.query` calls this)."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype

    timeout = req.timeout or default_timeout
    base: dict[str, Any] = {
        "server": str(req.server),
        "port": req.port,
        "transport": req.transport,
        "family": req.family,
        "name": req.name,
        "rdtype": req.rdtype,
        "recursion_desired": req.recursion,
    }
    try:
        rdtype = dns.rdatatype.from_text(req.rdtype)
        q = dns.message.make_query(req.name.rstrip(".") + ".", rdtype)
    except dns.exception.DNSException as exc:
        return DnsAnswer(
            **base, error_kind="local", error=f"cannot ask {req.name} {req.rdtype}: {exc}"
        )
    if not req.recursion:
        q.flags &= ~dns.flags.RD
    host = str(req.server)
    if req.iface and req.server.version == 6 and req.server.is_link_local:
        host = f"{host}%{req.iface}"
    start = time.monotonic()
    local: dict[str, Any] = {}  # the socket's own address, once it has one
    icmp = "ICMPv6" if req.family == "ipv6" else "ICMP"

    def fail(kind: ErrorKind, why: str) -> DnsAnswer:
        source, source_port = _split_sockname(local.get("sockname"))
        return DnsAnswer(
            **base,
            source=source,
            source_port=source_port,
            interface=_owner(source, owners, req.iface),
            elapsed=round(time.monotonic() - start, 4),
            error_kind=kind,
            error=f"{req._where()} {why}",
        )

    try:
        resp = await _exchange(req, q, (host, req.port), timeout, start, local)
    except _ConnectTimeout:
        return fail("timeout", f"did not accept a TCP connection within {timeout:g} s (timeout)")
    except (TimeoutError, dns.exception.Timeout):
        return fail("timeout", f"did not answer within {timeout:g} s (timeout)")
    except ConnectionRefusedError:
        if req.transport == "udp":
            return fail(
                "unreachable",
                f"answered with {icmp} port unreachable: nothing listens on udp/{req.port} "
                "there (unreachable)",
            )
        return fail(
            "connection-refused",
            f"refused the TCP connection to port {req.port} (reset or {icmp} port "
            "unreachable: nothing listens there)",
        )
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return fail("closed", "closed the connection without answering")
    except dns.exception.DNSException as exc:
        return fail("malformed", f"sent a malformed answer: {type(exc).__name__}: {exc}")
    except OSError as exc:
        kind, why = _oserror(exc, icmp)
        return fail(kind, why)
    source, source_port = _split_sockname(local.get("sockname"))
    elapsed = round(time.monotonic() - start, 4)
    flags = tuple(dns.flags.to_text(resp.flags).split())
    truncated = "TC" in flags
    return DnsAnswer(
        **base,
        source=source,
        source_port=source_port,
        interface=_owner(source, owners, req.iface),
        responded=True,
        rcode=dns.rcode.to_text(resp.rcode()),
        flags=flags,
        answers=_records(resp.answer),
        authority=_records(resp.authority),
        elapsed=elapsed,
        error_kind="truncated" if truncated else None,
        error=(
            f"{req._where()} sent a truncated answer (TC set): the full answer needs TCP"
            if truncated
            else None
        ),
    )


async def _exchange(
    req: DnsQuery,
    q: Any,
    dest: tuple[str, int],
    timeout: float,
    start: float,
    local: dict[str, Any],
) -> Any:
    """Open a socket to the server (connected, so ICMP errors reach us), record its local
    address, send the query and return the parsed answer; raises what went wrong."""
    import asyncio

    import dns.asyncbackend
    import dns.asyncquery

    backend = dns.asyncbackend.get_backend("asyncio")
    af = socket.AF_INET6 if req.server.version == 6 else socket.AF_INET
    kind = socket.SOCK_DGRAM if req.transport == "udp" else socket.SOCK_STREAM
    try:
        sock = await asyncio.wait_for(
            backend.make_socket(af, kind, 0, None, dest, timeout),  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
            timeout,
        )
    except TimeoutError as exc:
        raise _ConnectTimeout from exc
    except Exception as exc:
        if type(exc).__name__ == "Timeout":  # dns.exception.Timeout from the backend
            raise _ConnectTimeout from exc
        raise
    try:
        local["sockname"] = await sock.getsockname()
        remaining = max(0.01, timeout - (time.monotonic() - start))
        if req.transport == "udp":
            return await dns.asyncquery.udp(
                q, dest[0], timeout=remaining, port=dest[1], sock=sock, ignore_unexpected=True
            )
        return await dns.asyncquery.tcp(q, dest[0], timeout=remaining, port=dest[1], sock=sock)
    finally:
        with contextlib.suppress(Exception):  # closing never turns an answer into a crash
            await sock.close()


def _records(section: Any) -> tuple[DnsRecord, ...]:
    import dns.rdatatype

    out = []
    for rrset in section:
        for rd in rrset:
            out.append(
                DnsRecord(
                    name=rrset.name.to_text().rstrip(".").lower() or ".",
                    rdtype=dns.rdatatype.to_text(rrset.rdtype),
                    ttl=int(rrset.ttl),
                    value=rd.to_text(),
                )
            )
    return tuple(out)


def _split_sockname(name: Any) -> tuple[str | None, int | None]:
    if not name:
        return None, None
    addr = str(name[0]).split("%", 1)[0]
    return addr, int(name[1])


_ERRNO_WHY = {
    errno.ENETUNREACH: "is unreachable: no route to its network (ICMP net unreachable or no "
    "local route)",
    errno.EHOSTUNREACH: "is unreachable: host unreachable (ICMP address unreachable, or no "
    "neighbour answered)",
    errno.EACCES: "is unreachable: administratively prohibited (ICMP reject by a firewall)",
    errno.EPERM: "could not be reached: a local firewall rule forbids the packet",
    errno.EADDRNOTAVAIL: "could not be reached: this node has no usable source address of "
    "that family",
    errno.EAFNOSUPPORT: "could not be reached: the address family is not supported here",
}


class _ConnectTimeout(Exception):
    """TCP: the connection itself was not accepted in time (distinct from a silent server)."""


def _oserror(exc: OSError, icmp: str) -> tuple[ErrorKind, str]:
    why = _ERRNO_WHY.get(exc.errno or 0)
    if why is not None:
        why = why.replace("ICMP", icmp)
    if why is None:
        return "local", f"could not be queried: {exc.strerror or exc}"
    local = exc.errno in (errno.EPERM, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    return ("local" if local else "unreachable"), why


def _address_owners() -> dict[str, str]:
    """{local address: interface} so an observation can say which interface a query left by.

    Best effort: a node without pyroute2 or netlink access still queries, without the name."""
    try:
        from .netlink import ip_route

        ipr_socket = ip_route()
    except Exception:  # no pyroute2, or no netlink here
        return {}
    out: dict[str, str] = {}
    try:
        with ipr_socket as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            for a in ipr.get_addr():
                addr = a.get_attr("IFA_ADDRESS")
                if addr:
                    out[str(ipaddress.ip_address(addr))] = names.get(a["index"], str(a["index"]))
    except Exception:  # naming the interface is a nicety, never a reason to fail
        return {}
    return out


def _owner(source: str | None, owners: dict[str, str] | None, iface: str | None) -> str | None:
    if iface:
        return iface
    if not source or not owners:
        return None
    try:
        return owners.get(str(ipaddress.ip_address(source)))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# DNS64 (RFC 7050 / RFC 8880): which NAT64 prefix a resolver synthesizes with.

#: The well-known IPv4 addresses of ipv4only.arpa.
WKA = (ipaddress.IPv4Address("192.0.0.170"), ipaddress.IPv4Address("192.0.0.171"))
#: RFC 6052 prefix lengths and the bit offsets of the embedded IPv4 address (bits 64-71 are u).
_EMBED = {96: (96,), 64: (72,), 56: (56, 72), 48: (48, 72), 40: (40, 72), 32: (32,)}


def nat64_prefixes(addresses: set[IPAddress] | list[IPAddress]) -> list[ipaddress.IPv6Network]:
    """NAT64 prefixes inferred from synthesized AAAA answers for ipv4only.arpa (RFC 7050 3).

    For each answer, try every RFC 6052 prefix length and keep the one where a well-known
    address sits in the right bits; an answer that embeds neither is not a synthesis.
    """
    found: list[ipaddress.IPv6Network] = []
    for addr in addresses:
        if addr.version != 6:
            continue
        value = int(addr)
        for plen in (96, 64, 56, 48, 40, 32):
            v4 = _extract_v4(value, plen)
            if v4 in WKA:
                net = ipaddress.IPv6Network((value >> (128 - plen) << (128 - plen), plen))
                if net not in found:
                    found.append(net)
                break
    return found


def _extract_v4(value: int, plen: int) -> ipaddress.IPv4Address:
    bits = 0
    collected = 0
    pos = plen
    while collected < 32:
        if 64 <= pos < 72:  # skip the u octet
            pos = 72
            continue
        bit = (value >> (127 - pos)) & 1
        bits = (bits << 1) | bit
        collected += 1
        pos += 1
    return ipaddress.IPv4Address(bits)


# ---------------------------------------------------------------------------------------------
# The resolvers this host really uses.

#: Files that list resolvers, in the order a person would look: the libc stub's list first.
RESOLV_FILES: tuple[tuple[str, str], ...] = (
    ("resolv.conf", "/etc/resolv.conf"),
    ("systemd-resolved", "/run/systemd/resolve/resolv.conf"),  # resolved's upstream servers
    ("rdnssd", "/run/rdnssd/resolv.conf"),  # RDNSS learnt from RAs by rdnssd
    ("networkmanager", "/run/NetworkManager/no-stub-resolv.conf"),
)
#: Stub listeners that forward to the servers of another file (systemd-resolved's 127.0.0.53).
STUBS = frozenset({"127.0.0.53", "127.0.0.54"})


@dataclass(frozen=True, kw_only=True)
class HostResolvers(Observation):
    """The resolvers configured on this node, per source, and the effective list.

    `effective` is what libc asks: resolv.conf's servers, with systemd-resolved's stub replaced
    by the upstream servers resolved uses. RDNSS options from RAs are only visible when a daemon
    (rdnssd, systemd-networkd, NetworkManager) wrote them down; the kernel keeps none.
    """

    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    via_stub: bool = False

    compared = Fields(stable=("error", "sources", "missing", "effective", "via_stub"))


def parse_resolv_conf(text: str) -> tuple[str, ...]:
    """`nameserver` lines of a resolv.conf, in order, scope ids kept (`fe80::1%eth0`)."""
    out: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return tuple(out)


def read_host_resolvers(root: str = "/") -> HostResolvers:
    """Read every known resolver list; a missing file is recorded, not an error."""
    from pathlib import Path

    sources: dict[str, tuple[str, ...]] = {}
    missing: list[str] = []
    for label, path in RESOLV_FILES:
        p = Path(root) / path.lstrip("/")
        try:
            sources[label] = parse_resolv_conf(p.read_text(errors="replace"))
        except FileNotFoundError:
            missing.append(label)
        except OSError as exc:
            return HostResolvers(sources=sources, error=f"cannot read {p}: {exc.strerror}")
    if "resolv.conf" not in sources:
        return HostResolvers(
            sources=sources,
            missing=tuple(missing),
            error="/etc/resolv.conf does not exist: this node has no resolver configured for libc",
        )
    effective: list[str] = []
    via_stub = False
    for server in sources["resolv.conf"]:
        if server in STUBS and "systemd-resolved" in sources:
            via_stub = True
            effective += [s for s in sources["systemd-resolved"] if s not in effective]
        elif server not in effective:
            effective.append(server)
    return HostResolvers(
        sources=sources, missing=tuple(missing), effective=tuple(effective), via_stub=via_stub
    )
