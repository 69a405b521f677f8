"""Adaptive first attempts in audits (issue 15): the round trips of targets that answered shorten
the first wait of a silent one, and the retry still waits the profile's whole timeout, so silence
is concluded only after that deadline (one lost packet is retried, never read as dropped).

Loopback only: a UDP socket that echoes and one that never answers.
"""

from __future__ import annotations

import asyncio
import socket

from sixcheck.probes import sockio
from sixcheck.probes.udp import UdpProbe, udp_probe


def test_estimator_waits_the_ceiling_until_something_answers() -> None:
    est = sockio.RttEstimator(1.5, floor=0.1)
    assert est.timeout() == 1.5
    for _ in range(5):
        est.add(0.001)
    assert est.timeout() == 0.1  # the floor: a millisecond LAN is not waited for 1.5 s
    est.add(0.4)  # one slow target raises the wait to twice the slowest round trip
    assert est.timeout() == 0.8
    est.add(2.0)
    assert est.timeout() == 1.5  # never beyond the profile's timeout


def test_silent_port_first_wait_shrinks_the_retry_keeps_the_deadline() -> None:
    timeout = 1.0
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as echo,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as mute,
    ):
        echo.bind(("::1", 0))
        mute.bind(("::1", 0))  # bound: no port unreachable, never answers
        echo.setblocking(False)

        async def echo_back() -> None:
            loop = asyncio.get_running_loop()
            data, addr = await loop.sock_recvfrom(echo, 100)
            await loop.sock_sendto(echo, data, addr)

        async def main() -> tuple[object, object]:
            est = sockio.RttEstimator(timeout)
            task = asyncio.create_task(echo_back())
            answered = await udp_probe("::1", echo.getsockname()[1], b"hi", timeout, 2, None, est)
            await task
            silent = await udp_probe("::1", mute.getsockname()[1], b"hi", timeout, 2, None, est)
            return answered, silent

        answered, silent = asyncio.run(main())
    assert getattr(answered, "state", None) == "open", answered
    assert getattr(silent, "state", None) == "silent", silent
    waited = getattr(silent, "waited", ())
    assert getattr(silent, "attempts", None) == 2
    assert len(waited) == 2, waited
    assert waited[0] < waited[1], waited  # first attempt: a few round trips, not the timeout
    assert waited[1] >= timeout, waited  # the retry waited the profile's whole timeout
    assert "waited" in silent.attempts_text(timeout)  # type: ignore[attr-defined]


def test_batches_share_one_estimator() -> None:
    """Through run_batch, as the plugin runs an audit: the mute port learns from the echo."""
    from sixcheck.probes.base import ProbeContext

    with (
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as echo,
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as mute,
    ):
        echo.bind(("::1", 0))
        mute.bind(("::1", 0))
        echo.setblocking(False)
        fast = UdpProbe("::1", echo.getsockname()[1], payload="68690a")
        slow = UdpProbe("::1", mute.getsockname()[1], payload="68690a")
        ctx = ProbeContext(probe_timeout=1.0, ra_listen=1.0, run_timeout=10, has_raw=False)

        async def main() -> dict[object, object]:
            loop = asyncio.get_running_loop()

            async def echo_back() -> None:
                data, addr = await loop.sock_recvfrom(echo, 100)
                await loop.sock_sendto(echo, data, addr)

            task = asyncio.create_task(echo_back())
            out = await UdpProbe.run_batch([fast, slow], ctx)
            await task
            return dict(out)

        out = asyncio.run(main())
    assert getattr(out[fast], "state", None) == "open"
    waited = getattr(out[slow], "waited", ())
    assert getattr(out[slow], "state", None) == "silent"
    assert waited[0] < waited[1], waited
