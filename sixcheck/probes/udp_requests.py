"""The UDP probe a check can ask for, without the probing (`sixcheck.probes.udp`).

pytest imports the checks to collect them, and the checks build this request from the profile,
so this module is all of udp that collection loads; the probe code and what it shares with tcp
(the PortResult observation, the pacing of `sockio`) are imported when the probe runs: the plan
preloads `imports` before it starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import DEFAULT_CONCURRENCY, DEFAULT_RATE, Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observation, named in the quoted base class for mypy
    from .tcp import PortResult  # noqa: F401


@dataclass(frozen=True)
class UdpProbe(ProbeRequest["PortResult"]):
    """Send `payload` (a name in `udp.PAYLOADS` or hex) to [dst]:port; classify the answer."""

    dst: str
    port: int
    payload: str = "empty"
    tries: int = 2
    rate: int = DEFAULT_RATE
    concurrency: int = DEFAULT_CONCURRENCY
    imports = ("sixcheck.probes.udp",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .udp import probe_batch

        return await probe_batch(requests, ctx)
