"""The Neighbor Discovery probes a check can ask for, without the probing (`sixcheck.probes.nd`).

pytest imports the checks to collect them, and the checks build these requests from the profile,
so this module is all of nd that collection loads; the observations, the wire code and netlink
(22 frozen dataclasses, ~0.4 ms each to create on Python 3.11) are imported when the probe runs:
the plan preloads `imports` before it starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .nd import NeighborObservation, RaObservation  # noqa: F401


@dataclass(frozen=True)
class RouterAdverts(ProbeRequest["RaObservation"]):
    """Solicit RAs on `interface` and collect every RA (solicited or not).

    With `expect` (the routers the profile lists, as (link-local address, MAC), either may be
    None) the window closes once each has answered, MAX_RA_DELAY_TIME has passed since the RS and
    nobody else has advertised; while one is missing or a stranger was seen it stays open up to
    `ctx.ra_listen`. Without `expect` (discovery: nobody is known) it lasts `ctx.ra_listen`.
    """

    interface: str
    expect: tuple[tuple[str | None, str | None], ...] = ()
    needs_raw = True
    opens_window = True
    imports = ("sixcheck.probes.nd",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .nd import listen_batch

        return await listen_batch(requests, ctx)


@dataclass(frozen=True)
class RouterNeighbors(ProbeRequest["NeighborObservation"]):
    """NS/NA with `targets` on `interface` (empty: the gateways of its default routes), then an
    echo through the kernel so its neighbour cache must resolve them too, then read that cache."""

    interface: str
    targets: tuple[str, ...] = ()
    needs_raw = True
    imports = ("sixcheck.probes.nd",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .nd import neighbors_batch

        return await neighbors_batch(requests, ctx)
