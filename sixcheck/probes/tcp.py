"""TCP connect probes: is HOST:PORT open, and if not, *how* was the connection denied?

The classification a firewall audit needs: `open` (the handshake completed), `reset` (a TCP RST
came back: nothing listens there, or a firewall rejects with tcp-reset), `icmp` (an ICMPv6 error
came back; its type/code and the node that sent it are recorded: administratively prohibited from
the gateway, port unreachable from the host itself, reject-route...), `dropped` (nothing at all
within the deadline, twice).

A full connect() needs no privilege: the ICMPv6 detail comes from the socket error queue
(IPV6_RECVERR), see `sockio`. An open connection is closed at once with an RST (SO_LINGER 0), as
`nmap -sT` does, and nothing is ever sent on it.

Scale: every request of a run goes out in one wave, bounded by a semaphore (sockets in flight) and
a token bucket (packets per second), with one retry for silence on a fresh socket, so a single
lost SYN never reads as "filtered" and an all-dropped audit costs about two probe timeouts plus the
sending time, not one timeout per target.

Adaptive first attempt: the targets that answer (open, reset, ICMP error) teach the batch their
round trip (`sockio.RttEstimator`); a first attempt still waiting shrinks its wait to a few round
trips, as nmap does. The retry for silence waits the profile's full timeout, so "dropped" still
means "no answer within the profile's deadline" and one lost SYN is retried, not concluded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from . import sockio
from .base import Fields, Observation, ProbeContext, ProbeRequest

# The request lives apart (pytest's collection imports only it); this module answers it.
from .tcp_requests import TcpConnect

PortState = Literal["open", "reset", "icmp", "dropped", "silent", "local-error"]

#: Words for each state, for messages and evidence.
STATE_WORDS: dict[str, str] = {
    "open": "connection established (open)",
    "reset": "rejected with a TCP reset",
    "icmp": "rejected with an ICMP error",
    "dropped": "dropped (no answer at all)",
    "silent": "no answer (UDP: open|filtered: a dropped datagram and an open port that ignores "
    "it look the same)",
    "local-error": "could not be sent from here",
}


@dataclass(frozen=True, kw_only=True)
class PortResult(Observation):
    """What one attempt to reach `dst` `proto`/`port` found (after at most one retry).

    `from_target` is True when the ICMP error was sent by the target itself (the packet got
    through every firewall on the way; the port is closed, not filtered).
    """

    dst: str
    port: int
    proto: Literal["tcp", "udp"]
    family: Literal["ipv6", "ipv4"]
    state: PortState | None = None
    icmp: sockio.IcmpError | None = None
    from_target: bool = False
    rtt_ms: float | None = None
    attempts: int = 0
    reply_bytes: int | None = None  # UDP: size of the datagram that came back
    #: seconds each attempt waited (the first may be shorter: see the module doc)
    waited: tuple[float, ...] = ()
    source: str | None = None
    interface: str | None = None
    sent_at: str | None = None

    compared = Fields(
        stable=(
            "error",
            "state",
            "icmp.name",
            "icmp.offender",
            "from_target",
            "source",
            "interface",
        ),
        volatile=("rtt_ms", "attempts", "reply_bytes", "sent_at", "waited"),
    )

    @property
    def target(self) -> str:
        return (
            f"[{self.dst}]:{self.port}/{self.proto}"
            if ":" in self.dst
            else (f"{self.dst}:{self.port}/{self.proto}")
        )

    def how(self) -> str:
        """How it was answered, in words: `rejected with ICMPv6 admin-prohibited ... from X`."""
        if self.state == "icmp" and self.icmp is not None:
            who = ""
            if self.from_target and self.icmp.name in ("port-unreachable", "protocol-unreachable"):
                who = " (sent by the target itself: the packet got through, the port is closed)"
            elif self.from_target:
                who = " (sent by the target itself: its own firewall)"
            return f"rejected with {self.icmp.describe()}{who}"
        if self.state == "local-error":
            return f"could not be sent from here: {self.error}"
        if self.state == "open" and self.proto == "udp":
            return f"answered ({self.reply_bytes} bytes came back)"
        return STATE_WORDS.get(self.state or "", str(self.state))

    def attempts_text(self, timeout: float) -> str:
        """`2 attempts, waited 0.1 s then 1.5 s` (or `..., 1.5 s each` without the detail)."""
        if not self.waited:
            return f"{self.attempts} attempts, {timeout:g} s each"
        waits = " then ".join(f"{w:.2g} s" for w in self.waited)
        return f"{self.attempts} attempts, waited {waits}"


async def connect_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of TcpConnect (see `tcp_requests`): one paced wave."""
    reqs = [r for r in requests if isinstance(r, TcpConnect)]
    return await run_paced(
        reqs,
        lambda r, pace, est: tcp_connect(r.dst, r.port, ctx.probe_timeout, r.tries, pace, est),
        lambda r, err: PortResult(
            dst=r.dst, port=r.port, proto="tcp", family=_fam(r.dst), error=err
        ),
        ctx.probe_timeout,
    )


R = TypeVar("R", bound=Any)


async def run_paced(
    reqs: Sequence[R],
    fn: Callable[[R, sockio.Pacer, sockio.RttEstimator], Awaitable[PortResult]],
    on_crash: Callable[[R, str], Observation],
    timeout: float,
) -> dict[ProbeRequest[Any], Observation]:
    """Run `fn` for every request at once, under the smallest rate/concurrency they ask for,
    sharing one RTT estimator (`timeout` its ceiling), and fill in the interface each
    observation's source address belongs to."""
    import asyncio

    if not reqs:
        return {}
    inflight = min(r.concurrency for r in reqs)
    pace = sockio.pacer(min(r.rate for r in reqs), inflight)
    sem = asyncio.Semaphore(inflight)
    est = sockio.RttEstimator(timeout)

    async def one(r: R) -> PortResult:
        async with sem:
            return await fn(r, pace, est)

    results = await asyncio.gather(*(one(r) for r in reqs), return_exceptions=True)
    srcs = {getattr(o, "source", None) for o in results} - {None}
    ifaces = sockio.interfaces_of({s for s in srcs if isinstance(s, str)})
    out: dict[ProbeRequest[Any], Observation] = {}
    for r, res in zip(reqs, results, strict=True):
        if isinstance(res, BaseException):
            out[r] = on_crash(r, f"probe crashed: {type(res).__name__}: {res}")
        elif res.source is not None and res.source in ifaces and res.interface is None:
            out[r] = dataclasses.replace(res, interface=ifaces[res.source])
        else:
            out[r] = res
    return out


def _fam(dst: str) -> Literal["ipv6", "ipv4"]:
    return "ipv6" if sockio.family_of(dst) == socket.AF_INET6 else "ipv4"


def is_from(offender: str | None, dst: str) -> bool:
    """True when `offender` is the address `dst` (compared as addresses, not strings)."""
    import ipaddress

    if not offender:
        return False
    try:
        return ipaddress.ip_address(offender) == ipaddress.ip_address(dst)
    except ValueError:
        return False


#: struct tcp_info up to tcpi_retrans: 8 bytes, then rto ato snd_mss rcv_mss unacked sacked
#: lost retrans (linux/tcp.h)
_TCP_INFO = struct.Struct("=8B8I")


def refused_locally(sock: socket.socket) -> bool:
    """True when the kernel retried this socket's SYN and none of the retries left the node.

    A SYN dropped by this node's own OUTPUT rules fails with EPERM inside the kernel, which TCP
    does not report: connect() just waits, exactly as for a SYN dropped on the way, and the
    audit would read "dropped" (denied) for a packet that never left. `tcpi_retransmits` counts
    the retransmission timeouts, `tcpi_retrans` only the retransmissions handed to the network
    (retrans_out grows only when the send succeeds), so a timeout with nothing retransmitted is
    the local refusal. The same holds while the first SYN still waits in this node for the next
    hop's neighbour resolution (the kernel skips the retransmission): it never left either.
    Before the first retransmission (1 s) nothing can be told: False.
    """
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    except OSError:
        return False
    if len(raw) < _TCP_INFO.size:
        return False
    fields = _TCP_INFO.unpack_from(raw)
    retransmits: int = fields[2]
    retrans: int = fields[15]
    return retransmits >= 1 and retrans == 0


async def tcp_connect(
    dst: str,
    port: int,
    timeout: float,
    tries: int = 2,
    pace: sockio.Pacer | None = None,
    est: sockio.RttEstimator | None = None,
) -> PortResult:
    """One classified connection attempt (plus retries for silence); see the module doc."""
    family = sockio.family_of(dst)
    base: dict[str, Any] = {"dst": dst, "port": port, "proto": "tcp", "family": _fam(dst)}
    sent_at = sockio.now_iso()
    attempt = 0
    source: str | None = None
    waited: list[float] = []
    while attempt < max(1, tries):
        attempt += 1
        if pace is not None:
            # a retry while other targets answered may re-ask for an answer lost to the
            # responder's ICMP limit: it goes gently (see sockio.Pacer)
            await pace.take(retry=attempt > 1 and (est is None or est.samples > 0))
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sockio.enable_recverr(sock)
            t0 = time.monotonic()
            try:
                sock.connect((dst, port))
            except BlockingIOError:
                pass
            except OSError as exc:
                return PortResult(
                    **base,
                    state="local-error",
                    attempts=attempt,
                    sent_at=sent_at,
                    error=f"connect to {dst} port {port}: {exc.strerror}",
                )
            source = sockio.local_source(sock) or source
            if est is not None and attempt == 1 and tries > 1:
                done, took = await sockio.wait_adaptive(sock, t0, est, writable=True)
            else:
                done = await sockio.wait_writable(sock, timeout)
                took = time.monotonic() - t0
            waited.append(round(took, 3))
            rtt = (time.monotonic() - t0) * 1000
            common = {
                **base,
                "attempts": attempt,
                "sent_at": sent_at,
                "source": source,
                "waited": tuple(waited),
            }
            if not done:
                # a SYN that never left is retried once before it is reported: the first wave
                # of an audit from a node whose neighbour cache is cold (a fresh container) can
                # overflow the kernel's queue for the unresolved next hop (101 packets); an
                # OUTPUT rule of this node drops the retry as well
                if refused_locally(sock) and attempt >= max(1, tries):
                    return PortResult(
                        **common,
                        state="local-error",
                        error=f"connect to {dst} port {port}: the SYN never left this node "
                        "(its retransmission was not sent: an OUTPUT rule of this node's "
                        "firewall drops it, or no neighbour answers for the next hop)",
                    )
                continue  # silence: retry on a fresh socket (new source port)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if est is not None and err != errno.ETIMEDOUT:
                est.add(rtt / 1000)
            icmp = next((e for e, _ in sockio.read_errqueue(sock) if e.origin != "local"), None)
            if err == 0:
                with contextlib.suppress(OSError):  # close with RST: nothing is ever sent
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return PortResult(**common, state="open", rtt_ms=rtt)
            if icmp is not None:
                return PortResult(
                    **common,
                    state="icmp",
                    icmp=icmp,
                    rtt_ms=rtt,
                    from_target=is_from(icmp.offender, dst),
                )
            if err == errno.ECONNREFUSED:
                return PortResult(**common, state="reset", rtt_ms=rtt)
            if err == errno.ETIMEDOUT:
                continue
            return PortResult(
                **common,
                state="local-error",
                rtt_ms=rtt,
                error=f"connect failed: {errno.errorcode.get(err, err)} "
                f"({os.strerror(err)}) with no ICMP error to say why",
            )
        finally:
            sock.close()
    return PortResult(
        **base,
        state="dropped",
        attempts=attempt,
        sent_at=sent_at,
        source=source,
        waited=tuple(waited),
    )
