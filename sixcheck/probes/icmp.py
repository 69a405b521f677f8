"""ICMP(v6) echo of a given size, with the ICMP errors that came back instead, and path-MTU walks.

`Echo(dst)` answers "does this address answer ping, and if not, what did the network say" for any
area (a tunnel's far end, an AnyIP address, the outside view of a LAN host). `Echo(dst, size=N)`
sends an N-byte packet (the whole IP packet, headers included) with IPv6's DF semantics: the
sender never fragments it, so it either arrives whole, comes back as Packet Too Big, or vanishes.
`PathMtu(dst, mtu, start)` is what a TCP sender does: send big, follow Packet Too Big (or this
node's own MTU) down, and report where packets vanish without a signal (a PMTU black hole).

Socket choice, in order: the kernel's unprivileged ICMP "ping" socket (allowed when the process's
group is inside `net.ipv4.ping_group_range`), else a raw socket (CAP_NET_RAW), else the probe is
unavailable with the reason. Both are connected to the destination and set IP(V6)_RECVERR, so
errors (with type, code, MTU and the router that sent them) come from the socket's error queue
and never have to be parsed out of other traffic. Each request has one retry: a single lost echo
must not read as "no answer".
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from . import sockio
from .base import Fields, Observation, ProbeContext, ProbeRequest, ProbeUnavailable

# The requests live apart (pytest's collection imports only them); this module answers them.
from .icmp_requests import Echo, PathMtu

EchoOutcome = Literal["reply", "icmp-error", "too-big-local", "timeout", "local-error"]

IPV6_HDR = 40
IPV4_HDR = 20
ICMP_HDR = 8
ICMP6_FILTER = 1
ICMP_FILTER = 1
SOL_RAW = 255


@dataclass(frozen=True, kw_only=True)
class EchoResult(Observation):
    """One echo exchange (up to `tries` attempts).

    `outcome`: `reply` (an echo reply came back), `icmp-error` (`icmp` says which, from whom),
    `too-big-local` (this node refused to send it: larger than the MTU it knows, `mtu`),
    `timeout` (nothing at all), `local-error` (could not send: no route, no address).
    """

    dst: str
    family: Literal["ipv6", "ipv4"]
    size: int
    dont_fragment: bool
    outcome: EchoOutcome | None = None
    rtt_ms: float | None = None
    reply_from: str | None = None
    reply_size: int | None = None
    icmp: sockio.IcmpError | None = None
    mtu: int | None = None  # the path MTU this node knows toward dst after the attempt
    source: str | None = None
    interface: str | None = None
    socket_kind: str | None = None  # "ping" (unprivileged) or "raw"
    attempts: int = 0
    sent_at: str | None = None

    compared = Fields(
        stable=(
            "error",
            "outcome",
            "reply_from",
            "icmp.name",
            "icmp.offender",
            "mtu",
            "source",
            "interface",
            "socket_kind",
        ),
        volatile=("rtt_ms", "attempts", "sent_at", "reply_size"),
    )

    @property
    def answered(self) -> bool:
        return self.outcome == "reply"

    def summary(self) -> str:
        """`a 1280-byte echo to 2001:db8::1: reply in 0.3 ms`, for messages."""
        what = f"a {self.size}-byte echo to {self.dst}"
        if self.outcome == "reply":
            return f"{what}: reply in {self.rtt_ms:.1f} ms"
        if self.outcome == "icmp-error" and self.icmp:
            return f"{what}: {self.icmp.describe()}"
        if self.outcome == "too-big-local":
            return f"{what}: refused by this node (its MTU toward {self.dst} is {self.mtu})"
        if self.outcome == "timeout":
            return f"{what}: no answer ({self.attempts} attempts)"
        return f"{what}: {self.error or self.outcome}"


async def echo_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of Echo (see `icmp_requests`): one wave under the smallest rate and
    concurrency any of them asks for."""
    import asyncio

    reqs = [r for r in requests if isinstance(r, Echo)]
    if not reqs:
        return {}
    rate = min(r.rate for r in reqs)
    inflight = min(r.concurrency for r in reqs)
    sem = asyncio.Semaphore(inflight)
    pace = sockio.pacer(rate, inflight)

    async def one(r: Echo) -> Observation:
        async with sem:
            return await echo(r.dst, r.size, ctx.probe_timeout, r.dont_fragment, r.tries, pace)

    results = await asyncio.gather(*(one(r) for r in reqs), return_exceptions=True)
    out: dict[ProbeRequest[Any], Observation] = {}
    srcs = {o.source for o in results if isinstance(o, EchoResult) and o.source}
    ifaces = sockio.interfaces_of(srcs)
    for r, res in zip(reqs, results, strict=True):
        if isinstance(res, BaseException):
            out[r] = EchoResult(
                dst=r.dst,
                family=_fam(r.dst),
                size=r.size,
                dont_fragment=r.dont_fragment,
                error=f"echo crashed: {type(res).__name__}: {res}",
            )
        elif isinstance(res, EchoResult) and res.source is not None and res.source in ifaces:
            out[r] = replace(res, interface=ifaces[res.source])
        else:
            out[r] = res
    return out


def _fam(dst: str) -> Literal["ipv6", "ipv4"]:
    return "ipv6" if sockio.family_of(dst) == socket.AF_INET6 else "ipv4"


def open_echo_socket(family: int) -> tuple[socket.socket, str]:
    """An ICMP socket for `family`: the unprivileged ping socket if allowed, else raw.

    Raises PermissionError naming both ways when neither is allowed.
    """
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), "ping"
    except PermissionError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise
    try:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
    except PermissionError:
        raise PermissionError(
            "ICMP echo needs an unprivileged ping socket (this group is outside "
            "net.ipv4.ping_group_range) or CAP_NET_RAW for a raw socket; run as root, or "
            "sysctl -w net.ipv4.ping_group_range='0 2147483647'"
        ) from None
    if family == socket.AF_INET6:
        # let only echo replies through the normal queue; errors arrive on the error queue
        bits = bytearray(b"\xff" * 32)
        bits[129 >> 3] &= ~(1 << (129 & 7)) & 0xFF
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, bytes(bits))
    else:
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF & ~1))
    return sock, "raw"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _echo_packet(family: int, ident: int, seq: int, payload: bytes, raw: bool) -> bytes:
    itype = 128 if family == socket.AF_INET6 else 8
    hdr = struct.pack("!BBHHH", itype, 0, 0, ident, seq)
    if family == socket.AF_INET and raw:  # the kernel checksums ICMPv6 and ping sockets itself
        hdr = struct.pack("!BBHHH", itype, 0, _checksum(hdr + payload), ident, seq)
    return hdr + payload


def _parse_reply(family: int, data: bytes, raw: bool) -> tuple[int, int, int] | None:
    """(ident, seq, icmp length) of an echo reply, or None."""
    if family == socket.AF_INET and raw and data:
        data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets hand over the IP header too
    if len(data) < ICMP_HDR:
        return None
    itype, _code, _ck, ident, seq = struct.unpack_from("!BBHHH", data)
    if itype not in (129, 0):
        return None
    return ident, seq, len(data)


async def echo(
    dst: str,
    size: int,
    timeout: float,
    dont_fragment: bool = True,
    tries: int = 2,
    pace: sockio.Pacer | None = None,
) -> Observation:
    """One echo exchange with up to `tries` attempts; see EchoResult."""
    family = sockio.family_of(dst)
    fam: Literal["ipv6", "ipv4"] = "ipv6" if family == socket.AF_INET6 else "ipv4"
    base = EchoResult(dst=dst, family=fam, size=size, dont_fragment=dont_fragment)
    hdr = IPV6_HDR if family == socket.AF_INET6 else IPV4_HDR
    if size < hdr + ICMP_HDR or size > 65535:
        return replace(base, error=f"size {size} cannot hold an echo request")
    try:
        sock, kind = open_echo_socket(family)
    except PermissionError as exc:
        return ProbeUnavailable(error=str(exc))
    with sock:
        sock.setblocking(False)
        sockio.enable_recverr(sock)
        sockio.set_pmtudisc(sock, sockio.PMTUDISC_DO if dont_fragment else sockio.PMTUDISC_WANT)
        try:
            sock.connect((dst, 0))
        except OSError as exc:
            return replace(
                base,
                outcome="local-error",
                socket_kind=kind,
                error=f"cannot send to {dst}: {exc.strerror}",
            )
        source = sockio.local_source(sock)
        ident = (os.getpid() ^ id(sock)) & 0xFFFF
        payload = (b"sixcheck" * ((size // 8) + 1))[: size - hdr - ICMP_HDR]
        sent_at = sockio.now_iso()
        attempt = 0
        common = replace(base, socket_kind=kind, source=source, sent_at=sent_at)
        while attempt < max(1, tries):
            attempt += 1
            seq = attempt
            if pace is not None:
                await pace.take(retry=attempt > 1)
            t0 = time.monotonic()
            try:
                sock.send(_echo_packet(family, ident, seq, payload, kind == "raw"))
            except OSError as exc:
                errs = sockio.read_errqueue(sock)
                mtu = sockio.path_mtu(sock)
                if exc.errno == errno.EMSGSIZE:
                    local = next((e for e, _ in errs if e.origin == "local"), None)
                    return replace(
                        common,
                        outcome="too-big-local",
                        attempts=attempt,
                        mtu=(local.info if local and local.info else mtu),
                    )
                if errs:  # an earlier ICMP error surfaced on this send
                    return replace(
                        common, outcome="icmp-error", icmp=errs[0][0], attempts=attempt, mtu=mtu
                    )
                return replace(
                    common,
                    outcome="local-error",
                    attempts=attempt,
                    mtu=mtu,
                    error=f"cannot send to {dst}: {exc.strerror}",
                )
            got = await _await_answer(sock, family, kind, ident, attempt, t0, timeout)
            if got is not None:
                outcome, icmp_err, addr, length = got
                return replace(
                    common,
                    outcome=outcome,
                    icmp=icmp_err,
                    attempts=attempt,
                    rtt_ms=(time.monotonic() - t0) * 1000,
                    reply_from=addr,
                    reply_size=length + hdr if length else None,
                    mtu=sockio.path_mtu(sock),
                )
        return replace(common, outcome="timeout", attempts=attempt, mtu=sockio.path_mtu(sock))


# ------------------------------------------------------------------------------- path MTU


@dataclass(frozen=True, kw_only=True)
class PathMtuResult(Observation):
    """A path-MTU walk toward `dst`.

    `fits` is the echo at the expected path MTU. `steps` are the DF echoes of the walk from
    `start` down, each following the MTU that came back (Packet Too Big, or this node's own MTU).
    `verdict`: `ok` (every size either arrived or was signalled), `blackhole` (packets of
    `blackhole_size` vanished without any signal), `path-broken` (even `mtu` bytes do not arrive),
    `inconclusive` (something else; `error` says what).
    """

    dst: str
    mtu: int
    start: int
    fits: EchoResult | None = None
    steps: tuple[EchoResult, ...] = ()
    verdict: Literal["ok", "blackhole", "path-broken", "inconclusive"] | None = None
    blackhole_size: int | None = None
    signalled_mtu: int | None = None  # the MTU the network or this node told us

    compared = Fields(
        stable=("error", "mtu", "verdict", "blackhole_size", "signalled_mtu", "fits.outcome"),
        volatile=("steps",),
    )


async def path_mtu_walk(req: PathMtu, ctx: ProbeContext) -> PathMtuResult | ProbeUnavailable:
    """Answer one PathMtu (see `icmp_requests`): the walk its doc describes."""
    t = ctx.probe_timeout
    fits = await echo(req.dst, req.mtu, t, dont_fragment=True)
    if isinstance(fits, ProbeUnavailable):
        # no ping socket and no CAP_NET_RAW: the check skips saying so, like other raw probes
        return fits
    assert isinstance(fits, EchoResult)
    base = PathMtuResult(dst=req.dst, mtu=req.mtu, start=req.start, fits=fits)
    if not fits.answered:
        return replace(base, verdict="path-broken")
    steps: list[EchoResult] = []
    size = req.start
    signalled: int | None = None
    for _ in range(req.max_steps):
        if size <= req.mtu:
            return replace(base, steps=tuple(steps), verdict="ok", signalled_mtu=signalled)
        step = await echo(req.dst, size, t, dont_fragment=True)
        assert isinstance(step, EchoResult)
        steps.append(step)
        if step.outcome == "reply":
            return replace(base, steps=tuple(steps), verdict="ok", signalled_mtu=signalled)
        if step.outcome == "timeout":
            return replace(
                base,
                steps=tuple(steps),
                verdict="blackhole",
                blackhole_size=size,
                signalled_mtu=signalled,
            )
        nxt: int | None = None
        if step.outcome == "too-big-local":
            nxt = step.mtu
        elif step.icmp is not None and step.icmp.name == "packet-too-big":
            nxt = step.icmp.info or step.mtu
        if not nxt or nxt >= size:
            return replace(
                base,
                steps=tuple(steps),
                verdict="inconclusive",
                error=f"{step.summary()}: no smaller MTU to follow",
            )
        signalled = nxt
        size = nxt
    return replace(
        base,
        steps=tuple(steps),
        verdict="inconclusive",
        error=f"still no answer after {req.max_steps} steps",
    )


async def _await_answer(
    sock: socket.socket, family: int, kind: str, ident: int, attempt: int, t0: float, timeout: float
) -> tuple[EchoOutcome, sockio.IcmpError | None, str | None, int | None] | None:
    """Wait for the reply to one of this socket's echoes (any attempt so far) or an ICMP error;
    None when the deadline passes."""
    deadline = t0 + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not await sockio.wait_readable(sock, left):
            return None
        icmp_errs = [e for e, _ in sockio.read_errqueue(sock) if e.origin != "local"]
        if icmp_errs:
            return "icmp-error", icmp_errs[0], None, None
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except OSError:
                break  # nothing more queued (or an error already read from the queue)
            parsed = _parse_reply(family, data, kind == "raw")
            if parsed is None:
                continue
            rid, rseq, length = parsed
            if not (1 <= rseq <= attempt) or (kind == "raw" and rid != ident):
                continue
            return "reply", None, str(addr[0]).split("%")[0], length
    return None
