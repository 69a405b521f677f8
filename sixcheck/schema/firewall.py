"""Area `firewall`: what a site's firewall must let in, keep out, and let out.

Targets are always listed (hosts x ports), never ranges: an audit must be safe to point at
production, so the schema caps the total and paces the run (`rate`, `concurrency`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from .base import IPv6Addr, Port
from .model import After, Field, Strict, invariant

#: At most this many host x port probes per profile: an audit, never a sweep.
MAX_TARGETS = 4096
#: Named UDP payloads (see sixcheck.probes.udp.PAYLOADS); anything else must be hex bytes.
UDP_PAYLOADS = ("empty", "dns", "ntp")

Rate = Annotated[int, Field(ge=1, le=100_000)]
Concurrency = Annotated[int, Field(ge=1, le=4096)]


def _payload(value: str) -> str:
    if value in UDP_PAYLOADS:
        return value
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a UDP payload: use one of {', '.join(UDP_PAYLOADS)} or hex bytes"
        ) from None
    return value


Payload = Annotated[str, After(_payload)]


class _Group(Strict):
    """Some hosts, each probed on every listed port."""

    hosts: Annotated[list[IPv6Addr], Field(min_length=1)]
    tcp: list[Port] = []
    udp: list[Port] = []

    @invariant
    def _some_port(self) -> None:
        if not self.tcp and not self.udp:
            raise ValueError("list at least one port under tcp: or udp:")
        for proto in ("tcp", "udp"):
            ports = getattr(self, proto)
            if len(set(ports)) != len(ports):
                raise ValueError(f"{proto}: a port is listed twice")
        if len(set(self.hosts)) != len(self.hosts):
            raise ValueError("hosts: an address is listed twice")

    def count(self) -> int:
        return len(self.hosts) * (len(self.tcp) + len(self.udp))


class DenyGroup(_Group):
    """Inbound from outside: none of these may connect. `deny` is the style required:
    `drop` (no answer), `reject` (TCP reset or an ICMPv6 error) or `any`."""

    deny: Literal["drop", "reject", "any"] = "any"
    udp_payload: Payload = "empty"


class AllowGroup(_Group):
    """Services that must be reachable. UDP needs a payload the service answers (`dns`,
    `ntp`, hex), because a UDP port that says nothing cannot be told from a filtered one."""

    udp_payload: Payload | None = None

    @invariant
    def _payload_for_udp(self) -> None:
        if self.udp and self.udp_payload in (None, "empty"):
            raise ValueError(
                "udp: needs udp_payload: (dns, ntp or hex bytes) that the service answers; "
                "an open UDP port that says nothing cannot be told from a filtered one"
            )


class EchoPolicy(Strict):
    """ICMPv6 echo to these hosts is `allowed` (must answer) or `denied` (must not)."""

    policy: Literal["allowed", "denied"]
    hosts: Annotated[list[IPv6Addr], Field(min_length=1)]


class FirewallArea(Strict):
    """`firewall:` section.

    `inbound_deny`, `inbound_allow` and `echo` are claims seen from outside the site (run them
    from a vantage outside, `node.role: outside`); `outbound_allow` from inside (a LAN host).
    `rate` (packets per second, every probe of the run together) and `concurrency` (probes in
    flight) bound the audit: in any t seconds at most `min(concurrency, rate / 4) + rate * t`
    probe packets (at least one at once; `sixcheck.probes.sockio.Pacer` says what counts).
    """

    rate: Rate = 1000
    concurrency: Concurrency = 256
    inbound_deny: list[DenyGroup] = []
    inbound_allow: list[AllowGroup] = []
    echo: EchoPolicy | None = None
    outbound_allow: list[AllowGroup] = []

    @invariant
    def _bounded(self) -> None:
        groups = [*self.inbound_deny, *self.inbound_allow, *self.outbound_allow]
        if not groups and self.echo is None:
            raise ValueError(
                "the firewall area is empty: list inbound_deny, inbound_allow, echo or "
                "outbound_allow"
            )
        total = sum(g.count() for g in groups) + (len(self.echo.hosts) if self.echo else 0)
        if total > MAX_TARGETS:
            raise ValueError(
                f"{total} host x port probes listed; at most {MAX_TARGETS} per profile. sixcheck "
                "audits listed targets and never sweeps: split the audit into several profiles"
            )
