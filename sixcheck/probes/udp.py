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
from dataclasses import dataclass
from typing import Any

from . import sockio
from .base import Observation, ProbeContext, ProbeRequest
from .tcp import PortResult, _fam, is_from, run_paced

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


@dataclass(frozen=True)
class UdpProbe(ProbeRequest[PortResult]):
    """Send `payload` (a name in PAYLOADS or hex) to [dst]:port; classify the answer."""

    dst: str
    port: int
    payload: str = "empty"
    tries: int = 2
    rate: int = sockio.DEFAULT_RATE
    concurrency: int = sockio.DEFAULT_CONCURRENCY

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        reqs = [r for r in requests if isinstance(r, UdpProbe)]
        return await run_paced(
            reqs,
            lambda r, pace: udp_probe(
                r.dst, r.port, payload_bytes(r.payload), ctx.probe_timeout, r.tries, pace
            ),
            lambda r, err: PortResult(
                dst=r.dst, port=r.port, proto="udp", family=_fam(r.dst), error=err
            ),
        )


async def udp_probe(
    dst: str,
    port: int,
    payload: bytes,
    timeout: float,
    tries: int = 2,
    pace: sockio.Pacer | None = None,
) -> PortResult:
    """One classified exchange (plus retries for silence) on one connected UDP socket."""
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
        while attempt < max(1, tries):
            attempt += 1
            if pace is not None:
                await pace.take()
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
            deadline = t0 + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not await sockio.wait_readable(sock, left):
                    break
                rtt = (time.monotonic() - t0) * 1000
                icmp = next((e for e, _ in sockio.read_errqueue(sock) if e.origin != "local"), None)
                if icmp is not None:
                    return PortResult(
                        **common,
                        state="icmp",
                        icmp=icmp,
                        attempts=attempt,
                        rtt_ms=rtt,
                        from_target=is_from(icmp.offender, dst),
                    )
                try:
                    data = sock.recv(65535)
                except OSError:
                    continue
                return PortResult(
                    **common, state="open", attempts=attempt, rtt_ms=rtt, reply_bytes=len(data)
                )
        return PortResult(**common, state="silent", attempts=attempt)
