"""Socket plumbing shared by the tcp, udp and icmp probes: the error queue, pacing, waiting.

Why the socket error queue: a plain `connect()` or `recv()` only says "refused", "unreachable" or
"timed out". To tell *how* a packet was denied (ICMPv6 administratively prohibited vs. port
unreachable vs. reject-route, and by which router) the probes set `IPV6_RECVERR`; the kernel
then queues every ICMPv6 error that refers to the socket's traffic, with its type, code, the MTU
of a Packet Too Big and the address of the node that sent it (`MSG_ERRQUEUE`). That needs no raw
socket, so the TCP and UDP audits work unprivileged; only ICMP echo may need CAP_NET_RAW (when
the kernel's unprivileged ping sockets are not allowed for this group, see `ping_group_range`).

Why a pacer: an audit of many hosts x ports must be safe to point at production. Every packet a
probe sends first takes a token from one bucket per run (the profile's rate; a burst of a quarter
second of it, at most `concurrency`), and the number of sockets in flight is bounded separately,
so neither the network nor this host's file descriptors are flooded, while a whole audit of a few
hundred targets still goes out as one wave.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a probe runs (see sixcheck.probes.base)
    import asyncio

# Linux constants Python's socket module does not export.
SOL_IPV6 = 41
SOL_IP = 0
IPV6_RECVERR = 25
IP_RECVERR = 11
IPV6_MTU_DISCOVER = 23
IPV6_MTU = 24
IP_MTU_DISCOVER = 10
IP_MTU = 14
PMTUDISC_DONT = 0
PMTUDISC_WANT = 1
PMTUDISC_DO = 2
MSG_ERRQUEUE = 0x2000
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err


ICMP6_UNREACH_CODES = {
    0: "no-route",
    1: "admin-prohibited",
    2: "beyond-scope",
    3: "address-unreachable",
    4: "port-unreachable",
    5: "source-policy-failed",
    6: "reject-route",
}
ICMP4_UNREACH_CODES = {
    0: "net-unreachable",
    1: "host-unreachable",
    2: "protocol-unreachable",
    3: "port-unreachable",
    4: "fragmentation-needed",
    9: "net-prohibited",
    10: "host-prohibited",
    13: "admin-prohibited",
}


def icmp_name(origin: int, itype: int, code: int) -> str:
    """A short name for an ICMP(v6) error: `admin-prohibited`, `packet-too-big`, `time-exceeded`."""
    if origin == SO_EE_ORIGIN_ICMP6:
        if itype == 1:
            return ICMP6_UNREACH_CODES.get(code, f"unreachable-code-{code}")
        if itype == 2:
            return "packet-too-big"
        if itype == 3:
            return "time-exceeded"
        if itype == 4:
            return "parameter-problem"
        return f"icmpv6-type-{itype}-code-{code}"
    if origin == SO_EE_ORIGIN_ICMP:
        if itype == 3:
            return ICMP4_UNREACH_CODES.get(code, f"unreachable-code-{code}")
        if itype == 11:
            return "time-exceeded"
        return f"icmp-type-{itype}-code-{code}"
    return "local"


@dataclass(frozen=True)
class IcmpError:
    """One entry of the socket error queue: an ICMP(v6) error about our packet, or a local one.

    `origin` is `icmp6`, `icmp` or `local` (this node refused to send, e.g. larger than the MTU it
    knows); `info` is the MTU for Packet Too Big / local EMSGSIZE; `offender` is the node that sent
    the error (a router, or the target itself).
    """

    origin: str
    type: int
    code: int
    name: str
    errno: int
    info: int = 0
    offender: str | None = None

    def describe(self) -> str:
        """`ICMPv6 admin-prohibited (type 1 code 1) from 2001:db8:0:1::2`."""
        if self.origin == "local":
            extra = f", MTU {self.info}" if self.info else ""
            return f"refused locally (errno {self.errno}{extra})"
        fam = "ICMPv6" if self.origin == "icmp6" else "ICMP"
        frm = f" from {self.offender}" if self.offender else ""
        mtu = (
            f", MTU {self.info}" if self.name in ("packet-too-big", "fragmentation-needed") else ""
        )
        return f"{fam} {self.name} (type {self.type} code {self.code}{mtu}){frm}"


def enable_recverr(sock: socket.socket) -> None:
    """Ask the kernel to queue ICMP errors about this socket's packets (readable unprivileged)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(SOL_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(SOL_IP, IP_RECVERR, 1)


def set_pmtudisc(sock: socket.socket, mode: int) -> None:
    """DO: never fragment locally, fail with EMSGSIZE above the known path MTU (IPv6's DF)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(SOL_IPV6, IPV6_MTU_DISCOVER, mode)
    else:
        sock.setsockopt(SOL_IP, IP_MTU_DISCOVER, mode)


def path_mtu(sock: socket.socket) -> int | None:
    """The path MTU the kernel knows for a connected socket (route MTU or a learned PMTU)."""
    try:
        if sock.family == socket.AF_INET6:
            return int(sock.getsockopt(SOL_IPV6, IPV6_MTU))
        return int(sock.getsockopt(SOL_IP, IP_MTU))
    except OSError:
        return None


def parse_errqueue(ancdata: list[tuple[int, int, bytes]]) -> IcmpError | None:
    """Decode the `sock_extended_err` (+ offender sockaddr) of one MSG_ERRQUEUE message."""
    for level, ctype, data in ancdata:
        if (level, ctype) not in ((SOL_IPV6, IPV6_RECVERR), (SOL_IP, IP_RECVERR)):
            continue
        if len(data) < _EE.size:
            continue
        err, origin, itype, code, _pad, info, _data = _EE.unpack_from(data)
        offender = _sockaddr_addr(data[_EE.size :])
        kind = {SO_EE_ORIGIN_ICMP6: "icmp6", SO_EE_ORIGIN_ICMP: "icmp"}.get(origin, "local")
        return IcmpError(
            origin=kind,
            type=itype if kind != "local" else 0,
            code=code if kind != "local" else 0,
            name=icmp_name(origin, itype, code),
            errno=err,
            info=info,
            offender=offender,
        )
    return None


def _sockaddr_addr(raw: bytes) -> str | None:
    if len(raw) < 2:
        return None
    fam = struct.unpack_from("=H", raw)[0]
    if fam == socket.AF_INET6 and len(raw) >= 24:
        addr = ipaddress.IPv6Address(raw[8:24])
        return None if addr.is_unspecified else str(addr)
    if fam == socket.AF_INET and len(raw) >= 8:
        addr4 = ipaddress.IPv4Address(raw[4:8])
        return None if addr4.is_unspecified else str(addr4)
    return None


def read_errqueue(sock: socket.socket) -> list[tuple[IcmpError, bytes]]:
    """Drain the error queue: each error with the start of the offending packet we sent."""
    out: list[tuple[IcmpError, bytes]] = []
    for _ in range(16):
        try:
            data, anc, _flags, _addr = sock.recvmsg(2048, 1024, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        err = parse_errqueue(anc)
        if err is not None:
            out.append((err, data))
    return out


async def wait_readable(sock: socket.socket, timeout: float) -> bool:
    """Wait until `sock` is readable or has a queued error (EPOLLERR counts); False on timeout."""
    return await _wait_ready(sock, timeout, writable=False)


async def wait_writable(sock: socket.socket, timeout: float) -> bool:
    """Wait until `sock` is writable (a non-blocking connect finished, either way)."""
    return await _wait_ready(sock, timeout, writable=True)


async def _wait_ready(sock: socket.socket, timeout: float, *, writable: bool) -> bool:
    import asyncio

    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if writable else loop.add_reader)(fd, ready)
    try:
        await asyncio.wait_for(fut, timeout=max(timeout, 0))
        return True
    except TimeoutError:
        return False
    finally:
        (loop.remove_writer if writable else loop.remove_reader)(fd)


class RttEstimator:
    """How long to wait for an answer, learnt from the targets of an audit that did answer.

    As nmap does: the first attempt at a silent target need not wait the profile's whole timeout
    once the targets that answered show round trips of a millisecond. Smoothed RTT and variance
    as TCP's retransmission timer (RFC 6298); the wait is `srtt + 4 * rttvar`, at least twice the
    slowest round trip seen and `floor`, at most `ceiling` (the profile's probe timeout). With no
    answer yet it is the ceiling. Only the *first* attempt waits this: the retry for silence
    always waits the full ceiling, so a lost packet, or a target slower than the rest, never
    reads as dropped (the verdict "no answer" keeps the profile's deadline).
    """

    def __init__(self, ceiling: float, floor: float = 0.1) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.slowest = 0.0
        self.samples = 0

    def add(self, rtt: float) -> None:
        """Record one round trip (seconds) of an attempt that got an answer."""
        self.samples += 1
        self.slowest = max(self.slowest, rtt)
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def timeout(self) -> float:
        if self.srtt is None:
            return self.ceiling
        wait = max(self.floor, self.srtt + 4 * self.rttvar, 2 * self.slowest)
        return min(self.ceiling, wait)


#: How often a waiting first attempt looks again at the estimator's (shrinking) timeout.
ADAPT_SLICE = 0.05


async def wait_adaptive(
    sock: socket.socket, t0: float, est: RttEstimator, *, writable: bool
) -> tuple[bool, float]:
    """Wait for `sock` until `t0 + est.timeout()`, re-reading the timeout as answers of other
    targets come in: (ready, seconds waited)."""
    while True:
        left = t0 + est.timeout() - time.monotonic()
        if left <= 0:
            return False, time.monotonic() - t0
        if await _wait_ready(sock, min(left, ADAPT_SLICE), writable=writable):
            return True, time.monotonic() - t0


class Pacer:
    """Token bucket shared by every probe kind of a run: the profile's `rate` as a hard bound.

    What `rate` guarantees: in any window of t seconds the run starts at most
    `burst + rate * t` probe attempts, where `burst = min(concurrency, rate // 4)`, at least 1
    (so at most `max(1, rate / 4) + rate * t`). An attempt is one packet handed to the kernel
    (a TCP SYN, a UDP datagram, an echo request); not counted are what the kernel adds to an
    attempt on its own: the handshake's ACK and closing RST of an open port, and the SYN it
    retransmits after 1 s while a connect still waits (a `timeouts.probe` above 1 s).
    Retries after silence while other targets of the run answered (the TCP and UDP probes pass
    `take(retry=True)` then; echo, which learns no round trips, for each retry) are in that
    count and, besides, at most `min(burst, 25) + min(rate, 500) * t`.

    Why a quarter second of tokens: an audit of a few hundred targets (the usual profile) then
    goes out as one wave, as fast as `nmap -T4`, instead of being stretched to `len / rate`
    seconds when every target answers at once; a large audit still settles at `rate`. Why
    capped by `concurrency`: a profile that lowers it to go gently gets no larger first wave.

    Why such retries go gentler: a Linux node sends at most 50 ICMP errors at once, then 1000 a
    second, for all destinations together (`net.ipv4.icmp_msgs_burst`, `icmp_msgs_per_sec`,
    IPv6 included), so a firewall that rejects a whole wave answers part of it with silence.
    The retry is what tells those lost answers from a drop, so it asks within half that budget
    (the limiter refills in steps and recent kernels charge an error a random 0-2 credits: at
    the full budget, retries measured still lost some answers). When nothing answered at all,
    no limiter is at work and retries go at the run's rate, so an all-dropped audit does not
    pay for it. The buckets start full. One per event loop and rate (see `pacer`), so the
    bound holds for the whole run, not for each probe kind separately.
    """

    #: Half a Linux node's default ICMP error budget (see above): the retries' bucket.
    RETRY_BURST = 25
    RETRY_RATE = 500

    def __init__(
        self, rate: float, burst: int | None = None, concurrency: int | None = None
    ) -> None:
        import asyncio

        self.rate = float(rate)
        if burst is None:
            burst = int(rate // 4)
            if concurrency is not None:
                burst = min(burst, concurrency)
        self.burst = float(max(1, burst))
        self.tokens = self.burst
        self.retry_rate = min(self.rate, float(self.RETRY_RATE))
        self.retry_burst = min(self.burst, float(self.RETRY_BURST))
        self.retry_tokens = self.retry_burst
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()
        self.sent = 0

    def cap(self, concurrency: int) -> None:
        """Lower the burst to `concurrency` when a probe kind of the run asks for fewer in flight."""
        self.burst = min(self.burst, float(max(1, concurrency)))
        self.tokens = min(self.tokens, self.burst)
        self.retry_burst = min(self.retry_burst, self.burst)
        self.retry_tokens = min(self.retry_tokens, self.retry_burst)

    async def take(self, *, retry: bool = False) -> None:
        """Wait for one token (one packet); a `retry` also waits for one of the retries' bucket.

        Both buckets are looked at under one lock at the same instant, so neither bound can be
        overrun by a taker that got one token and then waited for the other.
        """
        import asyncio

        async with self.lock:
            while True:
                now = time.monotonic()
                elapsed = now - self.stamp
                self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
                self.retry_tokens = min(
                    self.retry_burst, self.retry_tokens + elapsed * self.retry_rate
                )
                self.stamp = now
                if self.tokens >= 1 and (not retry or self.retry_tokens >= 1):
                    self.tokens -= 1
                    if retry:
                        self.retry_tokens -= 1
                    self.sent += 1
                    return
                wait = max(0.0, (1 - self.tokens) / self.rate)
                if retry:
                    wait = max(wait, (1 - self.retry_tokens) / self.retry_rate)
                await asyncio.sleep(wait)


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Pacer]] = (
    weakref.WeakKeyDictionary()
)


def pacer(rate: float, concurrency: int | None = None) -> Pacer:
    """The run's pacer for `rate` (one per event loop, so separate runs never share tokens),
    its burst capped by the smallest `concurrency` any probe kind of the run asked for."""
    import asyncio

    loop = asyncio.get_running_loop()
    per_loop = _PACERS.setdefault(loop, {})
    if rate not in per_loop:
        per_loop[rate] = Pacer(rate, concurrency=concurrency)
    elif concurrency is not None:
        per_loop[rate].cap(concurrency)
    return per_loop[rate]


def now_iso() -> str:
    """Wall-clock time for evidence ("when was it sent")."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def family_of(addr: str) -> int:
    """AF_INET6 or AF_INET for a literal address (probes never resolve names)."""
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def local_source(sock: socket.socket) -> str | None:
    """The source address the kernel chose for a connected socket."""
    with contextlib.suppress(OSError):
        return str(sock.getsockname()[0]).split("%")[0] or None
    return None


def interfaces_of(sources: set[str]) -> dict[str, str]:
    """Map local addresses to the interface that holds them (for the evidence), best effort.

    Read from `/proc/net/if_inet6` (IPv6) without privileges or extra imports; IPv4 addresses
    are looked up with `socket.if_nameindex` + an ioctl-free fallback of "unknown".
    """
    out: dict[str, str] = {}
    want6 = {}
    for s in sources:
        with contextlib.suppress(ValueError):
            a = ipaddress.ip_address(s)
            if a.version == 6:
                want6[a.packed.hex()] = s
    if want6:
        with contextlib.suppress(OSError), open("/proc/net/if_inet6", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[0] in want6:
                    out[want6[parts[0]]] = parts[5]
    return out
