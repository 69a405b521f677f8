"""One SNTP exchange with an NTP server over IPv6: its answer, and our clock's offset against it.

Why not `chronyc`/`ntpq`: they report on the local daemon's associations, not on whether a given
server answers *this node* over IPv6 now. The 48-byte header is built and parsed with struct
(`NtpHeader`, cross-checked in the tests against scapy's NTP layer, whose import cost every run
~0.2 s and ~20 MiB) and sent over a plain UDP socket (no raw socket, no privilege).
Offset and delay follow RFC 5905 section 8 from the four timestamps:
    offset = ((T2 - T1) + (T3 - T4)) / 2        delay = (T4 - T1) - (T3 - T2)
A server given by name is resolved to AAAA only: an A record cannot serve an IPv6-only host.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .base import Fields, Observation, ProbeContext, ProbeRequest, Threshold
from .dns import _address_owners, _owner, _split_sockname

# The request lives apart (pytest's collection imports only it); this module answers it.
from .ntp_requests import NtpQuery

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
LEAP_TEXT = {
    0: "no warning",
    1: "last minute of the day has 61 seconds",
    2: "last minute of the day has 59 seconds",
    3: "alarm: clock not synchronised",
}
#: RFC 5905 section 7.4 (and RFC 8633 3.4): what a Kiss-o'-Death code means, and what to do.
KISS_CODES: dict[str, tuple[str, str]] = {
    "DENY": (
        "access denied: the server refuses this node",
        "ask the server's operator to allow this node's address (chrony `allow`, ntpd "
        "`restrict`), or use another server; a client must stop querying it",
    ),
    "RSTR": (
        "access restricted: the server refuses this node",
        "ask the server's operator to allow this node's address (chrony `allow`, ntpd "
        "`restrict`), or use another server; a client must stop querying it",
    ),
    "RATE": (
        "rate exceeded: the server limits how often it is asked",
        "query less often (raise the clients' poll interval, e.g. minpoll), or spread the "
        "clients behind one address (NAT) over more servers; ask the operator about its "
        "rate limit",
    ),
    "INIT": (
        "the server has not synchronised yet (it has just started)",
        "wait a few minutes and run again; if it persists, fix the server's upstream",
    ),
    "STEP": (
        "the server's clock is being stepped",
        "run again shortly; if it persists, the server's upstream is unstable",
    ),
    "AUTH": ("server authentication failed", "check the NTP keys on both sides"),
    "AUTO": ("Autokey sequence failed", "check the Autokey setup on both sides"),
    "CRYP": ("cryptographic authentication failed", "check the NTP keys on both sides"),
    "NKEY": ("no key found", "configure the key this node uses on the server"),
    "ACST": ("the association belongs to a unicast server", "check the server's configuration"),
    "BCST": ("the association belongs to a broadcast server", "check the server's configuration"),
    "MCST": ("the association belongs to a manycast server", "check the server's configuration"),
    "DROP": ("lost peer in symmetric mode", "check the server's peer configuration"),
    "RMOT": ("alteration of association from a remote host", "check the server's configuration"),
}
#: Stratum 0 carries a kiss code in the refid only when it is printable ASCII (RFC 5905 7.3);
#: anything else (chronyd without sources sends no code) is an unsynchronised server.
_KISS = re.compile(rb"[\x21-\x7e]{1,4}")
#: NTP versions whose header we understand (NTPv3 servers still answer NTPv4 clients).
VERSIONS = (3, 4)

State = Literal["time", "kiss", "unsynchronised"]

ErrorKind = Literal["timeout", "unreachable", "resolve", "malformed", "bogus", "local"]


@dataclass(frozen=True, kw_only=True)
class NtpAnswer(Observation):
    """What one SNTP exchange gave. `responded`: a valid server reply matched our request.

    Times are in seconds; `offset` is the server's clock minus ours (positive: we are behind).
    `state` is how RFC 5905 7.3/7.4 reads the reply: `time` (usable), `kiss` (a Kiss-o'-Death:
    stratum 0 with a printable code in the refid, `kiss_code`; its timestamps mean nothing) or
    `unsynchronised` (leap 3, stratum 16, or stratum 0 without a code: the server has no time
    source; `unsynchronised_why` says which). A reply that is not an answer to our request
    (origin timestamp not ours, wrong mode or version, zero transmit timestamp) is an error of
    kind `bogus`, with the raw header fields kept for the evidence.
    `reference_age` is the server's transmit time minus its reference time: how long ago it
    last set its clock from a source, by its own clock.
    """

    server: str  # as the profile gave it (address or name)
    address: str | None = None  # the IPv6 address asked
    addresses: tuple[str, ...] = ()  # every AAAA of a name
    port: int = 123
    family: Literal["ipv6"] = "ipv6"
    source: str | None = None
    interface: str | None = None
    responded: bool = False
    version: int | None = None
    mode: int | None = None
    stratum: int | None = None
    leap: int | None = None
    leap_text: str | None = None
    refid: str | None = None  # kiss/reference-clock code (stratum 0-1) or dotted quad
    refid_hex: str | None = None  # the same 4 bytes as hex: what the wire said, whatever it is
    state: State | None = None
    kiss_code: str | None = None
    unsynchronised_why: str | None = None
    reference_time: float | None = None  # Unix seconds; None when the server sent 0 (never set)
    reference_age: float | None = None
    poll: int | None = None
    precision: int | None = None
    root_delay: float | None = None
    root_dispersion: float | None = None
    offset: float | None = None
    delay: float | None = None
    rtt: float | None = None  # wall round trip measured here (T4 - T1)
    t1: float | None = None
    t2: float | None = None
    t3: float | None = None
    t4: float | None = None
    error_kind: ErrorKind | None = None

    compared = Fields(
        stable=(
            "error",
            "error_kind",
            "address",
            "addresses",
            "source",
            "interface",
            "responded",
            "version",
            "mode",
            "stratum",
            "leap",
            "kiss_code",
            "state",
            "unsynchronised_why",
            "offset",
            "reference_age",
        ),
        volatile=(
            "poll",
            "precision",
            "root_delay",
            "root_dispersion",
            "delay",
            "rtt",
            "t1",
            "t2",
            "t3",
            "t4",
            "refid",
            "refid_hex",
            "reference_time",
        ),
        thresholds={
            "offset": Threshold(limits=(0.128,), magnitude=True, profile_limit="max_offset_s"),
            # it ticks between polls: only crossing the profile's bound (stale) is news
            "reference_age": Threshold(profile_limit="max_reference_age_s"),
        },
    )

    def where(self) -> str:
        addr = self.address or "?"
        name = self.server if self.server == addr else f"{self.server} ({addr})"
        return f"NTP server {name}"


async def query_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """All servers at once under one deadline: a dead server costs one timeout per run."""
    import asyncio

    owners = await asyncio.to_thread(_address_owners)
    reqs = [r for r in requests if isinstance(r, NtpQuery)]
    results = await asyncio.gather(*(query(r, ctx.probe_timeout, owners) for r in reqs))
    return dict(zip(reqs, results, strict=True))


async def query_one(req: NtpQuery, ctx: ProbeContext) -> NtpAnswer:
    """`NtpQuery.run_one`: one query outside a batch."""
    import asyncio

    return await query(req, ctx.probe_timeout, await asyncio.to_thread(_address_owners))


async def query(
    req: NtpQuery, default_timeout: float, owners: dict[str, str] | None = None
) -> NtpAnswer:
    """Resolve (if a name), send one request, wait for the matching reply; never raises
    (`NtpQuery.query` calls this)."""
    timeout = req.timeout or default_timeout
    start = time.monotonic()
    base: dict[str, Any] = {"server": req.server, "port": req.port}
    try:
        addresses = await _resolve(req, timeout)
    except _NoAddress as exc:
        return NtpAnswer(**base, error_kind="resolve", error=str(exc))
    base["address"] = addresses[0]
    base["addresses"] = tuple(addresses)
    remaining = max(0.01, timeout - (time.monotonic() - start))
    return await exchange(base, remaining, owners, stated=timeout)


async def _resolve(req: NtpQuery, timeout: float) -> list[str]:
    """The server's IPv6 addresses: itself if an address, else its AAAA records, asked of
    this node's resolvers (resolv.conf) with dnspython so the deadline really holds (a
    getaddrinfo thread cannot be cancelled and would outlive the run)."""
    try:
        return [str(ipaddress.IPv6Address(req.server))]
    except ValueError:
        pass
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    what = f"{req.server} (AAAA, via this node's resolvers)"
    try:
        resolver = dns.asyncresolver.Resolver()
        answer = await resolver.resolve(req.server, "AAAA", lifetime=timeout, search=False)
    except dns.resolver.NXDOMAIN:
        raise _NoAddress(
            f"{req.server} does not exist (NXDOMAIN): it cannot be reached by name"
        ) from None
    except dns.resolver.NoAnswer:
        raise _NoAddress(
            f"{req.server} has no AAAA record: it cannot be reached over IPv6 by name"
        ) from None
    except dns.resolver.LifetimeTimeout:
        raise _NoAddress(
            f"could not resolve {what} within {timeout:g} s: no resolver answered"
        ) from None
    except dns.resolver.NoNameservers as exc:
        raise _NoAddress(f"could not resolve {what}: no resolver gave an answer ({exc})") from None
    except (dns.exception.DNSException, OSError) as exc:
        raise _NoAddress(f"could not resolve {what}: {exc}") from None
    return list(dict.fromkeys(str(ipaddress.IPv6Address(r.address)) for r in answer))


class _NoAddress(Exception):
    """The server's name gave no IPv6 address; the message says why."""


def _to_unix(ntp_fixed: int) -> float:
    """A 64-bit NTP timestamp (32.32 fixed point, era 0) as Unix seconds."""
    return ntp_fixed / 2**32 - NTP_EPOCH_OFFSET


async def exchange(
    base: dict[str, Any],
    timeout: float,
    owners: dict[str, str] | None,
    stated: float | None = None,
) -> NtpAnswer:
    """Send one request to base['address'] and wait for the reply whose origin timestamp is ours.

    `timeout` is what is left of the deadline; `stated` is the deadline messages quote."""
    import asyncio

    class _Reply(asyncio.DatagramProtocol):
        """Collects datagrams with their arrival time (T4 is taken as early as asyncio allows).

        Defined here, where asyncio is imported: the module is imported while pytest collects,
        which needs NtpQuery but no event loop (a class per exchange costs microseconds)."""

        def __init__(self) -> None:
            self.queue: asyncio.Queue[tuple[bytes, float] | BaseException] = asyncio.Queue()

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.queue.put_nowait((data, time.time()))

        def error_received(self, exc: Exception) -> None:
            self.queue.put_nowait(exc)

    address, port = base["address"], base["port"]
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    sockname: Any = None
    icmp_why = {
        errno.ECONNREFUSED: "answered with ICMPv6 port unreachable: no NTP server listens on "
        f"udp/{port} there",
        errno.ENETUNREACH: "is unreachable: no route to its network",
        errno.EHOSTUNREACH: "is unreachable: host unreachable (ICMPv6 address unreachable, or no "
        "neighbour answered)",
        errno.EACCES: "is unreachable: administratively prohibited (ICMPv6 reject by a firewall)",
    }

    def fail(kind: ErrorKind, why: str) -> NtpAnswer:
        src, _ = _split_sockname(sockname)
        where = NtpAnswer(**base).where()
        return NtpAnswer(
            **base,
            source=src,
            interface=_owner(src, owners, None),
            rtt=round(time.monotonic() - start, 6),
            error_kind=kind,
            error=f"{where} {why}",
        )

    transport = None
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _Reply, remote_addr=(address, port), family=socket.AF_INET6
        )
        sockname = transport.get_extra_info("sockname")
        t1 = time.time()
        raw = NtpHeader.request(t1 + NTP_EPOCH_OFFSET)
        sent_fixed = NtpHeader(raw).getfieldval("sent")  # raw 32.32, compared exactly
        transport.sendto(raw)
        deadline = start + timeout
        stray: tuple[Any, float] | None = None  # the first reply whose origin is not ours
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            item = await asyncio.wait_for(proto.queue.get(), left)
            if isinstance(item, BaseException):
                raise item
            data, t4 = item
            if len(data) < 48:
                return fail("malformed", f"sent a {len(data)}-byte reply (an NTP header is 48)")
            reply = NtpHeader(data[:48])
            if reply.getfieldval("orig") != sent_fixed:
                # Not the answer to this request (late, spoofed, or a broken server): RFC 5905
                # 8 discards it; keep waiting, and say so if nothing better comes.
                stray = stray or (reply, t4)
                continue
            break
    except TimeoutError:
        if stray is not None:
            got = int(stray[0].getfieldval("orig"))
            return _evaluate(
                base,
                stray[0],
                t1,
                stray[1],
                sockname,
                owners,
                bogus=f"answered, but not this request: the reply's origin timestamp "
                f"{got:#018x} is not our transmit timestamp {sent_fixed:#018x} (RFC 5905 "
                "bogus packet; no matching reply within "
                f"{stated or timeout:g} s)",
            )
        return fail(
            "timeout", f"did not answer over UDP/IPv6 within {stated or timeout:g} s (timeout)"
        )
    except OSError as exc:
        why = icmp_why.get(exc.errno or 0)
        if why is None:
            return fail("local", f"could not be queried: {exc.strerror or exc}")
        return fail("unreachable", why + " (unreachable)")
    finally:
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()
    return _evaluate(base, reply, t1, t4, sockname, owners)


class NtpHeader:
    """The 48-byte NTP header (RFC 5905 7.3), read and written with struct.

    Why not scapy's NTP layer: importing it pulls in scapy's IP layers (~0.2 s, ~20 MiB) on every
    run with ntp checks (issue 15). The interface is the part of scapy's NTPHeader `_evaluate`
    reads (fields as attributes, `getfieldval` for the raw fixed-point values, `bytes()`), so
    replies built by scapy in tests read the same.
    """

    _FMT = struct.Struct("!BBbbII4sQQQQ")

    def __init__(self, data: bytes) -> None:
        if len(data) < 48:
            raise ValueError(f"an NTP header is 48 bytes, got {len(data)}")
        self._raw = bytes(data[:48])
        (first, self.stratum, self.poll, self.precision, delay, disp, _refid, ref, orig, recv,
         sent) = self._FMT.unpack(self._raw)  # fmt: skip
        self.leap, self.version, self.mode = first >> 6, (first >> 3) & 7, first & 7
        self._fields: dict[str, int] = {
            "delay": delay,
            "dispersion": disp,
            "ref": ref,
            "orig": orig,
            "recv": recv,
            "sent": sent,
        }

    @classmethod
    def request(cls, transmit: float) -> bytes:
        """A client request (version 4, mode 3) whose transmit timestamp is `transmit` (NTP era
        seconds), encoded 32.32 as scapy does."""
        whole = int(transmit)
        fixed = (whole << 32) | int((transmit - whole) * 2**32)
        return cls._FMT.pack((0 << 6) | (4 << 3) | 3, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, fixed)

    def getfieldval(self, name: str) -> int:
        return self._fields[name]

    def __bytes__(self) -> bytes:
        return self._raw


def kiss_code(stratum: int, refid: bytes) -> str | None:
    """The Kiss-o'-Death code of a reply, if it is one: stratum 0 and a printable refid."""
    code = refid.rstrip(b"\0 ")
    if stratum != 0 or not _KISS.fullmatch(code):
        return None
    return code.decode("ascii")


def unsynchronised(leap: int, stratum: int, kiss: str | None) -> str | None:
    """Why RFC 5905 calls the server unsynchronised (7.3: leap 3 alarm; stratum 0 "unspecified
    or invalid" unless it is a kiss; 16 "unsynchronized"), or None when it is not."""
    if leap == 3:
        return "leap indicator 3 (alarm: clock not synchronised)"
    if stratum == 16:
        return "stratum 16 (unsynchronised)"
    if stratum == 0 and kiss is None:
        return "stratum 0 with no kiss code in the refid"
    return None


def _evaluate(
    base: dict[str, Any],
    reply: Any,
    t1: float,
    t4: float,
    sockname: Any,
    owners: dict[str, str] | None,
    bogus: str | None = None,
) -> NtpAnswer:
    """Turn a reply into an observation: classify it (RFC 5905 7.3/7.4, 8) and, when it is
    time, compute offset and delay. `bogus` is why the reply is not an answer to our request."""
    src, _ = _split_sockname(sockname)
    stratum = int(reply.stratum)
    leap = int(reply.leap)
    mode = int(reply.mode)
    version = int(reply.version)
    raw_refid = bytes(reply)[12:16]  # raw: scapy decodes the refid by stratum
    kiss = kiss_code(stratum, raw_refid)
    refid: str
    if stratum < 2:
        refid = raw_refid.rstrip(b"\0").decode("ascii", "replace")
    else:
        refid = ".".join(str(b) for b in raw_refid)
    ref_fixed = int(reply.getfieldval("ref"))
    t2 = _to_unix(int(reply.getfieldval("recv")))  # raw fields: getattr gives decimals
    xmt_fixed = int(reply.getfieldval("sent"))
    t3 = _to_unix(xmt_fixed)
    ref = _to_unix(ref_fixed) if ref_fixed else None
    why_unsync = unsynchronised(leap, stratum, kiss)
    state: State = "kiss" if kiss else "unsynchronised" if why_unsync else "time"
    common: dict[str, Any] = {
        **base,
        "source": src,
        "interface": _owner(src, owners, None),
        "version": version,
        "mode": mode,
        "stratum": stratum,
        "leap": leap,
        "leap_text": LEAP_TEXT.get(leap),
        "refid": refid,
        "refid_hex": "0x" + raw_refid.hex(),
        "state": state,
        "kiss_code": kiss,
        "unsynchronised_why": None if kiss else why_unsync,
        "reference_time": ref,
        "reference_age": round(t3 - ref, 3) if ref is not None and xmt_fixed else None,
        "poll": int(reply.poll),
        "precision": int(reply.precision),
        "root_delay": round(int(reply.getfieldval("delay")) / 2**16, 6),
        "root_dispersion": round(int(reply.getfieldval("dispersion")) / 2**16, 6),
        "t1": t1,
        "t2": t2,
        "t3": t3,
        "t4": t4,
        "rtt": round(t4 - t1, 6),
    }
    where = NtpAnswer(**base).where()
    if bogus is None and mode != 4:
        bogus = f"replied in mode {mode}, not 4 (server): not an answer to a client request"
    if bogus is None and version not in VERSIONS:
        bogus = f"replied with NTP version {version}, expected 4 (or 3)"
    if bogus is None and not xmt_fixed:
        bogus = "replied with a zero transmit timestamp: the reply carries no time (RFC 5905 8)"
    if bogus is not None:  # raw fields kept as evidence; what they would mean is not claimed
        common.update(state=None, kiss_code=None, unsynchronised_why=None)
        return NtpAnswer(**common, error_kind="bogus", error=f"{where} {bogus}")
    if state == "time":
        offset = ((t2 - t1) + (t3 - t4)) / 2
        delay = (t4 - t1) - (t3 - t2)
        return NtpAnswer(**common, responded=True, offset=round(offset, 6), delay=round(delay, 6))
    # A kiss's or an unsynchronised server's time is not to be used (RFC 5905 8): no offset.
    return NtpAnswer(**common, responded=True)
