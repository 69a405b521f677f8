"""The TCP connect a check can ask for, without the connecting (`sixcheck.probes.tcp`).

pytest imports the checks to collect them, and the checks build this request from the profile,
so this module is all of tcp that collection loads; the observation and the socket code of
`tcp` and `sockio` (with their frozen dataclasses) are imported when the probe runs: the plan
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
class TcpConnect(ProbeRequest["PortResult"]):
    """Try a TCP handshake with [dst]:port; classify the answer (see `sixcheck.probes.tcp`)."""

    dst: str
    port: int
    tries: int = 2
    rate: int = DEFAULT_RATE
    concurrency: int = DEFAULT_CONCURRENCY
    imports = ("sixcheck.probes.tcp",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .tcp import connect_batch

        return await connect_batch(requests, ctx)
