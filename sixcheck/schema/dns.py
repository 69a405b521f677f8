"""Area `dns`: resolvers that answer over IPv6 transport, and names that resolve as the site expects.

Two claims are kept apart on purpose (seed 000 mixes them up for half a page): *how* a question
travels (UDP or TCP over IPv6 to a resolver's IPv6 address) and *what* is asked (AAAA, A, PTR...).
Resolver addresses are therefore IPv6 only: an IPv4 resolver can return AAAA records, yet an
IPv6-only host cannot reach it.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from .base import DnsName, IfName, IPv6Addr, IPv6Prefix
from .model import Before, Field, Strict, invariant

Transport = Literal["udp", "tcp"]
#: Record types a lookup may ask for.
RecordType = Literal["AAAA", "A", "PTR", "MX", "CNAME", "TXT", "NS", "SRV", "SOA"]
Outcome = Literal["any", "nxdomain", "nodata"]


def _expect(value: Any) -> Any:
    """`expect:` is a keyword (any / nxdomain / nodata) or a list of values; a lone value is a
    list of one, so `expect: 2001:db8::1` is not silently read as something else."""
    if isinstance(value, str) and value.strip().lower() in ("any", "nxdomain", "nodata"):
        return value.strip().lower()
    if isinstance(value, str):
        return [value]
    return value


def _both_transports() -> list[Transport]:
    return ["udp", "tcp"]


class Lookup(Strict):
    """One name the site needs: ask `type` for `name` and compare with `expect`.

    `expect`: a list of values (addresses for AAAA/A, names for PTR/CNAME/NS, text for others),
    compared as a set; `any` (at least one record); `nxdomain` (the name must not exist);
    `nodata` (the name exists, this type must not - an A-only name that must have no AAAA).
    `resolvers` defaults to the area's `resolvers`.
    """

    name: DnsName
    type: RecordType = "AAAA"
    expect: Annotated[Outcome | list[str], Before(_expect)] = "any"
    resolvers: list[IPv6Addr] | None = None

    @invariant
    def _values_fit_type(self) -> None:
        if isinstance(self.expect, list):
            if not self.expect:
                raise ValueError("expect: an empty list; write nodata or nxdomain instead")
            want = {"AAAA": 6, "A": 4}.get(self.type)
            for v in self.expect:
                if want is None:
                    continue
                try:
                    addr = ipaddress.ip_address(v)
                except ValueError:
                    raise ValueError(f"expect: {v!r} is not an address ({self.type})") from None
                if addr.version != want:
                    fam = "IPv6" if want == 6 else "IPv4"
                    raise ValueError(
                        f"expect: {v!r} is not an {fam} address; a {self.type} "
                        f"record holds {fam} addresses"
                    )


class Reverse(Strict):
    """The PTR of one of the site's addresses: `address` must resolve to `name` in ip6.arpa."""

    address: IPv6Addr
    name: DnsName | None = None  # None: any PTR will do, but there must be one


class HostResolvers(Strict):
    """What this node's own resolver configuration must hold (resolv.conf, systemd-resolved,
    rdnssd). `require_ipv6`: at least one IPv6 resolver; `expected`: the effective list must be
    exactly these (order ignored)."""

    require_ipv6: bool = True
    expected: list[IPv6Addr] | None = None


class Dns64(Strict):
    """DNS64 on the listed resolvers (RFC 7050: synthesized AAAA for ipv4only.arpa).

    `nat64: required` - they must synthesize (IPv6-only network), `forbidden` - they must not
    (dual-stack: synthesized answers would route IPv4 destinations through a NAT64 needlessly),
    `any` - only report. `prefix` pins the NAT64 prefix when required.
    """

    nat64: Literal["required", "forbidden", "any"] = "any"
    prefix: IPv6Prefix | None = None

    @invariant
    def _prefix_needs_required(self) -> None:
        if self.prefix is not None and self.nat64 != "required":
            raise ValueError("prefix is only checked with nat64: required")
        if self.prefix is not None and self.prefix.prefixlen not in (32, 40, 48, 56, 64, 96):
            raise ValueError(
                f"{self.prefix} cannot be a NAT64 prefix (RFC 6052 lengths: 32/40/48/56/64/96)"
            )


class Ddns(Strict):
    """DDNS freshness: the AAAA of `name` must be a current global address of `interface`
    (after a prefix change the record must follow, seed 002)."""

    name: DnsName
    interface: IfName


class OpenResolver(Strict):
    """From an outside vantage: `resolver` serves only its site, so a recursive question for a
    name outside the site (`name`) must be REFUSED (an open resolver is an amplifier)."""

    resolver: IPv6Addr
    name: DnsName = "example.com"
    transport: Transport = "udp"


class DnsArea(Strict):
    """`dns:` section.

    `resolvers` must each answer over IPv6, by every transport in `transports`, a question for
    `probe_name` (its rcode must be NOERROR or NXDOMAIN: the server works). Lookups, reverse
    lookups, DNS64 and DDNS ask the `resolvers` over UDP (TCP when the answer is truncated).
    """

    resolvers: list[IPv6Addr] = []
    transports: list[Transport] = Field(default_factory=_both_transports, min_length=1)
    probe_name: DnsName = "."
    lookups: list[Lookup] = []
    reverse: list[Reverse] = []
    host_resolvers: HostResolvers | None = None
    dns64: Dns64 | None = None
    ddns: list[Ddns] = []
    open_resolver: list[OpenResolver] = []

    def interface_refs(self) -> dict[str, str]:
        return {f"ddns.{i}.interface": d.interface for i, d in enumerate(self.ddns)}

    @invariant
    def _consistent(self) -> None:
        needs = [k for k in ("reverse", "dns64", "ddns") if getattr(self, k)] + (
            ["lookups"] if any(lk.resolvers is None for lk in self.lookups) else []
        )
        if needs and not self.resolvers:
            raise ValueError(
                f"{', '.join(needs)} need resolvers to ask: list them under 'resolvers:'"
            )
        if len(set(self.resolvers)) != len(self.resolvers):
            raise ValueError("resolvers: an address is listed twice")
        if len(set(self.transports)) != len(self.transports):
            raise ValueError("transports: a transport is listed twice")
        if not (self.resolvers or self.lookups or self.host_resolvers or self.open_resolver):
            raise ValueError(
                "the dns area is empty: list resolvers, lookups, host_resolvers or open_resolver"
            )
