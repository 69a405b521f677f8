"""Which address an application tries first: getaddrinfo's order (RFC 6724 on glibc).

Seed 004's leak was not a routing accident alone: applications *prefer* AAAA, so a host with
global IPv6 sends protected traffic by IPv6 first. Knowing the order tells whether a leaking
family is the one actually used, or only a fallback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .base import Fields, Observation, ProbeContext, ProbeRequest


@dataclass(frozen=True, kw_only=True)
class AddrOrder(Observation):
    """getaddrinfo(name, AF_UNSPEC, SOCK_STREAM) in the order the C library returned it."""

    name: str
    addresses: tuple[str, ...] = ()
    families: tuple[int, ...] = ()  # 4 or 6, parallel to `addresses`
    no_records: bool = False

    compared = Fields(stable=("error", "addresses", "families", "no_records"))

    @property
    def first(self) -> str | None:
        return self.addresses[0] if self.addresses else None


def addr_order(name: str) -> AddrOrder:
    """Resolve as a connecting application does; a name without records is not an error."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)}:
            return AddrOrder(name=name, no_records=True)
        return AddrOrder(name=name, error=f"getaddrinfo({name}) failed: {exc}")
    addrs: list[str] = []
    fams: list[int] = []
    for family, *_rest, sockaddr in infos:
        addr = str(sockaddr[0]).split("%")[0]
        if addr not in addrs:
            addrs.append(addr)
            fams.append(6 if family == socket.AF_INET6 else 4)
    return AddrOrder(name=name, addresses=tuple(addrs), families=tuple(fams))


@dataclass(frozen=True)
class AddrInfo(ProbeRequest[AddrOrder]):
    """getaddrinfo order of one name through the host's own resolver configuration."""

    name: str

    async def run_one(self, ctx: ProbeContext) -> AddrOrder:
        import asyncio

        try:
            return await asyncio.wait_for(
                asyncio.to_thread(addr_order, self.name), timeout=ctx.probe_timeout
            )
        except TimeoutError:
            return AddrOrder(
                name=self.name,
                error=f"getaddrinfo({self.name}) did not answer within {ctx.probe_timeout:g} s",
            )
