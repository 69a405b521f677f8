"""The netlink reads a check can ask for, without the reading (`sixcheck.probes.netlink`).

pytest imports the checks to collect them, and the checks build these requests from the profile,
so this module is all of netlink that collection loads. The observations, their records and the
pyroute2 plumbing (ten frozen dataclasses, ~0.4 ms each to create on Python 3.11) are imported
when a read runs: the plan preloads `imports` before it starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import O, Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .netlink import AddressList, NeighborList, RouteLookup, RouteTable, RuleList  # noqa: F401


class NetlinkRead(ProbeRequest[O]):
    """A read of the kernel's state; a batch of one kind shares one netlink socket."""

    imports = ("sixcheck.probes.netlink",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .netlink import read_batch

        return await read_batch(cls, requests, ctx)


@dataclass(frozen=True)
class ReadAddresses(NetlinkRead["AddressList"]):
    """IPv6 addresses of an interface, with their flags and lifetimes."""

    interface: str


@dataclass(frozen=True)
class ReadRoutes(NetlinkRead["RouteTable"]):
    """IPv6 routes of one table (254 = main, 255 = local)."""

    table: int = 254


@dataclass(frozen=True)
class ReadRules(NetlinkRead["RuleList"]):
    """IPv6 policy rules."""


@dataclass(frozen=True)
class RouteGet(NetlinkRead["RouteLookup"]):
    """`ip -6 route get DESTINATION [from SOURCE]`, asked of the kernel; sends nothing."""

    destination: str
    source: str | None = None


@dataclass(frozen=True)
class ReadNeighbors(NetlinkRead["NeighborList"]):
    """The IPv6 neighbour cache of one interface."""

    interface: str
