"""The DHCPv6 exchange a check can ask for, without the exchanging (`sixcheck.probes.dhcpv6`).

pytest imports the checks to collect them, and the checks build this request from the profile,
so this module is all of dhcpv6 that collection loads; the observations and the wire code (nine
frozen dataclasses, ~0.4 ms each to create on Python 3.11) are imported when the probe runs: the
plan preloads `imports` before it starts the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Observation, ProbeContext, ProbeRequest

if TYPE_CHECKING:  # the observations, named in the quoted base classes for mypy
    from .dhcpv6 import Dhcpv6Observation  # noqa: F401

#: What the probe asks every server for (Option Request Option): DNS servers 23, domain list 24,
#: SNTP 31, NTP 56, boot file URL 59 and parameters 60 (the OPT_* names in `dhcpv6`).
DEFAULT_ORO = (23, 24, 31, 56, 59, 60)


@dataclass(frozen=True)
class Dhcpv6Exchange(ProbeRequest["Dhcpv6Observation"]):
    """Solicit (or, with `information`, Information-Request) on `interface`; collect every
    answer for up to `window` seconds. Never a Request: nothing is allocated on any server.

    `servers` are the profile's servers as (link-local address, DUID), either may be None: once
    each has answered, SETTLE_TIME has passed since the send and no other server was heard, the
    exchange ends early. With `whole_window`, or without `servers` (nothing to wait for: any
    answer could be the first of several unknown ones), it listens the whole `window`.
    """

    interface: str
    information: bool = False
    ia_na: bool = False
    ia_pd: bool = False
    client_arch: int | None = None
    user_class: str | None = None
    window: float = 2.0
    oro: tuple[int, ...] = field(default=DEFAULT_ORO)
    servers: tuple[tuple[str | None, str | None], ...] = ()
    whole_window: bool = False
    needs_raw = True
    opens_window = True
    imports = ("sixcheck.probes.dhcpv6",)

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        from .dhcpv6 import exchange_batch

        return await exchange_batch(requests, ctx)

    def asked(self) -> tuple[str, ...]:
        parts = [k for k, on in (("IA_NA", self.ia_na), ("IA_PD", self.ia_pd)) if on]
        parts.append("ORO " + ",".join(str(o) for o in self.oro))
        if self.client_arch is not None:
            parts.append(f"client-arch {self.client_arch}")
        if self.user_class is not None:
            parts.append(f"user-class {self.user_class}")
        return tuple(parts)
