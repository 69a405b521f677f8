"""The NTP query a check can ask for, without the asking (`sixcheck.probes.ntp`).

pytest imports the checks to collect them, and the checks build this request from the profile,
so this module is all of ntp that collection loads; the observation, the header code and the
`dns` helpers it uses are imported when the probe runs: the plan preloads `imports` before it
starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observation, named in the quoted base class for mypy
    from .ntp import NtpAnswer


@dataclass(frozen=True)
class NtpQuery(ProbeRequest["NtpAnswer"]):
    """One client-mode (3) NTPv4 request to `server` (an IPv6 address or a name), over UDP/IPv6."""

    server: str
    port: int = 123
    timeout: float | None = None
    imports = ("sixcheck.probes.ntp",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .ntp import query_batch

        return await query_batch(requests, ctx)

    async def run_one(self, ctx: ProbeContext) -> NtpAnswer:
        from .ntp import query_one

        return await query_one(self, ctx)

    async def query(
        self, default_timeout: float, owners: dict[str, str] | None = None
    ) -> NtpAnswer:
        """Resolve (if a name), send one request, wait for the matching reply; never raises."""
        from .ntp import query

        return await query(self, default_timeout, owners)
