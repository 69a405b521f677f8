"""The ICMP(v6) probes a check can ask for, without the probing (`sixcheck.probes.icmp`).

pytest imports the checks to collect them, and the checks build these requests from the profile,
so this module is all of icmp that collection loads; the observations, the echo code and the
socket plumbing of `sockio` (with their frozen dataclasses) are imported when the probe runs: the
plan preloads `imports` before it starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import DEFAULT_CONCURRENCY, DEFAULT_RATE, Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .base import ProbeUnavailable
    from .icmp import EchoResult, PathMtuResult  # noqa: F401

ICMP = "sixcheck.probes.icmp"


@dataclass(frozen=True)
class Echo(ProbeRequest["EchoResult"]):
    """Send an ICMP(v6) echo request of `size` bytes (whole IP packet) to `dst` and wait.

    `dst` is a literal address (IPv6, or IPv4 for a tunnel's underlay). `dont_fragment` gives
    IPv6 DF semantics (never fragmented by this node). `rate`/`concurrency` bound the run.
    """

    dst: str
    size: int = 64
    dont_fragment: bool = True
    tries: int = 2
    rate: int = DEFAULT_RATE
    concurrency: int = DEFAULT_CONCURRENCY
    imports = (ICMP,)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .icmp import echo_batch

        return await echo_batch(requests, ctx)


@dataclass(frozen=True)
class PathMtu(ProbeRequest["PathMtuResult"]):
    """Does `mtu` bytes reach `dst`, and does anything larger get a Packet Too Big (or this
    node's own refusal) rather than vanishing? Starts at `start` bytes (e.g. 1500, what a LAN
    host sends) and follows the signalled MTU down, at most `max_steps` times.
    """

    dst: str
    mtu: int
    start: int = 1500
    max_steps: int = 4
    imports = (ICMP,)

    async def run_one(self, ctx: ProbeContext) -> PathMtuResult | ProbeUnavailable:
        from .icmp import path_mtu_walk

        return await path_mtu_walk(self, ctx)
