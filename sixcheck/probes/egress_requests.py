"""The egress probes a vpn check can ask for, without the probing (`sixcheck.probes.egress`).

pytest imports the checks to collect them, and the checks build these requests from the profile,
so this module is all of egress that collection loads; the observations, the rule walk and the
netlink module behind them (19 frozen dataclasses, ~0.4 ms each to create on Python 3.11) are
imported when the probes run: the plan preloads `imports` before it starts a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .egress import (  # noqa: F401
        CaptureResult,
        LinkInfo,
        NameRoutes,
        ResolverRoutes,
        RouteDecision,
    )

EGRESS = "sixcheck.probes.egress"


@dataclass(frozen=True)
class RouteGet(ProbeRequest["RouteDecision"]):
    """The kernel's routing decision for one address (IPv4 or IPv6)."""

    dst: str
    imports = (EGRESS,)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .egress import route_get_batch

        return await route_get_batch(requests, ctx)


@dataclass(frozen=True)
class NameEgress(ProbeRequest["NameRoutes"]):
    """Resolve `name` for `family` (4 or 6), then decide each address.

    Without `resolver` the name is resolved as applications do (getaddrinfo, the host's
    resolv.conf); with it, by one query to that resolver (the VPN's own), through the `dns`
    area's DnsQuery probe, so there is one DNS client in sixcheck.
    """

    name: str
    family: int
    resolver: str | None = None
    imports = (EGRESS,)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .egress import name_egress_batch

        return await name_egress_batch(requests, ctx)


@dataclass(frozen=True)
class ResolverEgress(ProbeRequest["ResolverRoutes"]):
    """Read the host's resolvers (the `dns` area's reader) and decide the route to each."""

    imports = (EGRESS,)

    async def run_one(self, ctx: ProbeContext) -> ResolverRoutes:
        from .egress import resolver_egress

        return await resolver_egress(self, ctx)


@dataclass(frozen=True)
class LinkFamilies(ProbeRequest["LinkInfo"]):
    """Read one interface's global addresses and the routes into it, per family."""

    interface: str
    imports = (EGRESS,)

    async def run_one(self, ctx: ProbeContext) -> LinkInfo:
        from .egress import link_families

        return await link_families(self, ctx)


@dataclass(frozen=True)
class CaptureEgress(ProbeRequest["CaptureResult"]):
    """Send one UDP datagram to `target` (an address, or a name resolved for `family`) and
    capture on `watch` interfaces which of them it leaves by. All requests of a run share one
    sniffer per interface and one short window."""

    needs_raw = True
    imports = (
        EGRESS,
        "scapy.layers.inet",
        "scapy.layers.inet6",
        "scapy.layers.l2",
        "scapy.sendrecv",
    )

    target: str
    family: int
    port: int
    watch: tuple[str, ...]

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .egress import capture_egress_batch

        return await capture_egress_batch(requests, ctx)
