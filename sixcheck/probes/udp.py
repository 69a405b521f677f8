"""UDP probes: send one datagram to [dst]:port and classify what comes back.

`open` means a datagram came back (the service answered and the reply made it through every
stateful firewall on the way); `icmp` means an ICMPv6 error (port unreachable from the host
itself, administratively prohibited from a firewall...); `silent` means nothing came back, twice.
Silence is honest "open|filtered": UDP has no handshake, so a dropped datagram and an open port
that ignores an unexpected datagram look the same. To make an open service answer, send a payload
it understands: `dns` (a query for the root's NS records, which any resolver answers), `ntp` (an
NTPv4 client request), `empty`, or hex bytes.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

from . import sockio
from .base import Observation, ProbeContext, ProbeRequest
from .tcp import PortResult, _fam, is_from, run_paced

# The request lives apart (pytest's collection imports only it); this module answers it.
from .udp_requests import UdpProbe

#: Named payloads a profile may ask for.
PAYLOADS: dict[str, bytes] = {
    "empty": b"",
    # DNS: id 0x5c6b, RD, one question: ". IN NS"
    "dns": struct.pack("!HHHHHH", 0x5C6B, 0x0100, 1, 0, 0, 0) + b"\x00" + struct.pack("!HH", 2, 1),
    # NTPv4 client request (LI 0, VN 4, mode 3), 48 bytes
    "ntp": bytes([0x23]) + bytes(47),
}


def payload_bytes(spec: str) -> bytes:
    """`dns`, `ntp`, `empty` or hex digits."""
    if spec in PAYLOADS:
        return PAYLOADS[spec]
    return bytes.fromhex(spec)


async def probe_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of UdpProbe (see `udp_requests`): one paced wave, as TCP's."""
    reqs = [r for r in requests if isinstance(r, UdpProbe)]
    return await run_paced(
        reqs,
        lambda r, pace, est: udp_probe(
            r.dst, r.port, payload_bytes(r.payload), ctx.probe_timeout, r.tries, pace, est
        ),
        lambda r, err: PortResult(
            dst=r.dst, port=r.port, proto="udp", family=_fam(r.dst), error=err
        ),
        ctx.probe_timeout,
    )


async def udp_probe(
    dst: str,
    port: int,
    payload: bytes,
    timeout: float,
    tries: int = 2,
    pace: sockio.Pacer | None = None,
    est: sockio.RttEstimator | None = None,
) -> PortResult:
    """One classified exchange (plus retries for silence) on one connected UDP socket. With
    `est`, the first attempt waits as long as the batch's round trips suggest (see `tcp`)."""
    family = sockio.family_of(dst)
    base: dict[str, Any] = {"dst": dst, "port": port, "proto": "udp", "family": _fam(dst)}
    sent_at = sockio.now_iso()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sockio.enable_recverr(sock)
        try:
            sock.connect((dst, port))
        except OSError as exc:
            return PortResult(
                **base,
                state="local-error",
                sent_at=sent_at,
                error=f"cannot send to {dst} port {port}: {exc.strerror}",
            )
        common = {**base, "sent_at": sent_at, "source": sockio.local_source(sock)}
        attempt = 0
        waited: list[float] = []
        while attempt < max(1, tries):
            attempt += 1
            if pace is not None:
                # a retry while other targets answered may re-ask for an answer lost to the
                # responder's ICMP limit: it goes gently (see sockio.Pacer)
                await pace.take(retry=attempt > 1 and (est is None or est.samples > 0))
            t0 = time.monotonic()
            try:
                sock.send(payload)
            except OSError as exc:
                icmp = next((e for e, _ in sockio.read_errqueue(sock) if e.origin != "local"), None)
                if icmp is not None:  # an error about the previous attempt surfaced here
                    return PortResult(
                        **common,
                        state="icmp",
                        icmp=icmp,
                        attempts=attempt,
                        from_target=is_from(icmp.offender, dst),
                    )
                return PortResult(
                    **common,
                    state="local-error",
                    attempts=attempt,
                    error=f"cannot send to {dst} port {port}: {exc.strerror}",
                )
            adaptive = est is not None and attempt == 1 and tries > 1
            while True:
                limit = est.timeout() if est is not None and adaptive else timeout
                left = t0 + limit - time.monotonic()
                if left <= 0:
                    break
                slice_ = min(left, sockio.ADAPT_SLICE) if adaptive else left
                if not await sockio.wait_readable(sock, slice_):
                    continue
                rtt = (time.monotonic() - t0) * 1000
                done: dict[str, Any] = {
                    "attempts": attempt,
                    "rtt_ms": rtt,
                    "waited": (*waited, round(rtt / 1000, 3)),
                }
                icmp = next((e for e, _ in sockio.read_errqueue(sock) if e.origin != "local"), None)
                if icmp is not None:
                    if est is not None:
                        est.add(rtt / 1000)
                    return PortResult(
                        **common,
                        **done,
                        state="icmp",
                        icmp=icmp,
                        from_target=is_from(icmp.offender, dst),
                    )
                try:
                    data = sock.recv(65535)
                except OSError:
                    continue
                if est is not None:
                    est.add(rtt / 1000)
                return PortResult(**common, **done, state="open", reply_bytes=len(data))
            waited.append(round(time.monotonic() - t0, 3))
        return PortResult(**common, state="silent", attempts=attempt, waited=tuple(waited))
