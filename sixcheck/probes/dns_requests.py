"""The DNS queries and reads a check can ask for, without the asking (`sixcheck.probes.dns`).

pytest imports the checks to collect them, and the checks build these requests from the profile,
so this module is all of dns that collection loads; the observations and the query code (three
frozen dataclasses and the error tables) are imported when the probe runs: the plan preloads
`imports` before it starts the batch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .base import Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .dns import DnsAnswer, HostResolvers

Transport = Literal["udp", "tcp"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DNS = "sixcheck.probes.dns"


@dataclass(frozen=True)
class DnsQuery(ProbeRequest["DnsAnswer"]):
    """Ask `server` for `name`/`rdtype` over `transport`, once, within the probe deadline.

    `server` is an address (never a name: which resolver answered must be certain); its family is
    the transport's family. `iface` scopes a link-local server (fe80::1 learnt from RDNSS).
    `recursion` sets RD (the open-resolver check asks with RD=1 for a name outside the site).
    `timeout` overrides the profile's probe deadline for this query.
    """

    server: IPAddress
    name: str
    rdtype: str = "AAAA"
    transport: Transport = "udp"
    port: int = 53
    recursion: bool = True
    iface: str | None = None
    timeout: float | None = None

    needs_raw: ClassVar[bool] = False
    # dnspython's first import takes 0.1 s quiet and seconds on a loaded machine: loaded by the
    # plan before any deadline starts, so a query's 1.5 s measures the resolver, not the import
    imports: ClassVar[tuple[str, ...]] = (
        DNS,
        "dns.asyncbackend",
        "dns._asyncio_backend",
        "dns.asyncquery",
        "dns.exception",
        "dns.flags",
        "dns.message",
        "dns.rcode",
        "dns.rdatatype",
    )

    def __post_init__(self) -> None:
        # accept strings for convenience; keep one canonical, hashable form for de-duplication
        if not isinstance(self.server, ipaddress.IPv4Address | ipaddress.IPv6Address):
            object.__setattr__(self, "server", ipaddress.ip_address(str(self.server)))
        object.__setattr__(self, "name", self.name.rstrip(".").lower() or ".")
        object.__setattr__(self, "rdtype", self.rdtype.upper())
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be udp or tcp, not {self.transport!r}")

    @property
    def family(self) -> Literal["ipv6", "ipv4"]:
        return "ipv6" if self.server.version == 6 else "ipv4"

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .dns import query_batch

        return await query_batch(requests, ctx)

    async def run_one(self, ctx: ProbeContext) -> DnsAnswer:
        from .dns import query_one

        return await query_one(self, ctx)

    async def query(
        self, default_timeout: float, owners: dict[str, str] | None = None
    ) -> DnsAnswer:
        """Send the query and describe what happened; never raises."""
        from .dns import query

        return await query(self, default_timeout, owners)

    def _where(self) -> str:
        fam = "IPv6" if self.family == "ipv6" else "IPv4"
        port = "" if self.port == 53 else f" port {self.port}"
        return f"resolver {self.server}{port} over {self.transport.upper()}/{fam}"


@dataclass(frozen=True)
class ReadHostResolvers(ProbeRequest["HostResolvers"]):
    """Read the node's resolver configuration (files only: no query is sent)."""

    root: str = "/"
    imports = (DNS,)

    async def run_one(self, ctx: ProbeContext) -> HostResolvers:
        from .dns import read_host_resolvers

        return read_host_resolvers(self.root)
