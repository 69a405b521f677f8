"""Area `routes`: what the kernel made of the site's addressing: addresses, routes, rules.

Everything here is read passively (netlink) except the AnyIP `answers` probe, which pings an
address of the local prefix from the node itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from .base import IfName, IPv6Addr, IPv6Prefix
from .model import Field, Strict, invariant

Table = Annotated[int, Field(ge=1, le=0xFFFFFFFF)]


class ExpectedAddress(Strict):
    """An address the interface must hold in `prefix`, formed by `method`.

    method: `slaac` (dynamic, prefix length of the prefix), `dhcpv6` (dynamic /128), `static`
    (permanent), `any`. kind: `stable` (not a privacy address), `temporary` (RFC 8981 privacy
    address), `any`. `deprecated_ok` allows the address to be deprecated (preferred lifetime 0).
    """

    prefix: IPv6Prefix
    method: Literal["slaac", "dhcpv6", "static", "any"] = "any"
    kind: Literal["stable", "temporary", "any"] = "any"
    deprecated_ok: bool = False


class InterfaceAddresses(Strict):
    """Addresses one interface must hold; `only_listed` fails on global addresses outside them."""

    expect: list[ExpectedAddress] = Field(min_length=1)
    only_listed: bool = True


class DefaultRoute(Strict):
    """A default route that must exist in the main table.

    via: `link-local` (a router's fe80:: address, as RAs install), an address, or `none` (a
    point-to-point tunnel device without gateway). proto: `ra`, `static` (anything not from an
    RA) or `any`. `exclusive`: no other default route may exist on this interface.
    """

    interface: IfName
    via: Literal["link-local", "none"] | IPv6Addr = "link-local"
    proto: Literal["ra", "static", "any"] = "any"
    exclusive: bool = True


class RouteGetExpectation(Strict):
    """`ip -6 route get DESTINATION [from SOURCE]` must leave by `interface` from `source_prefix`."""

    destination: IPv6Addr
    source: IPv6Addr | None = None
    interface: IfName
    source_prefix: IPv6Prefix | None = None
    via: IPv6Addr | None = None


class PolicyRule(Strict):
    """`ip -6 rule`: `from PREFIX [fwmark N] lookup TABLE [priority P]`, and the table's default."""

    from_: IPv6Prefix | None = Field(default=None, alias="from")
    fwmark: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] | None = None
    table: Table
    priority: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] | None = None
    #: the table must hold a default route out of this interface
    default_dev: IfName | None = None
    default_via: IPv6Addr | None = None

    @invariant
    def _selects_something(self) -> None:
        if self.from_ is None and self.fwmark is None:
            raise ValueError("a rule needs 'from' and/or 'fwmark'")

    def label(self) -> str:
        parts = [f"from {self.from_}" if self.from_ else "from all"]
        if self.fwmark is not None:
            parts.append(f"fwmark {self.fwmark:#x}")
        parts.append(f"lookup {self.table}")
        return " ".join(parts)


class AnyIp(Strict):
    """A prefix bound as a whole (`ip -6 route add local PREFIX dev lo`): every address is ours.

    `answers: true` pings one random address of the prefix from this node (needs raw sockets).
    """

    prefix: IPv6Prefix
    dev: IfName = "lo"
    answers: bool = True


class RoutesArea(Strict):
    """`routes:` section; every key is optional, keys left out are not checked."""

    addresses: dict[IfName, InterfaceAddresses] = {}
    default: list[DefaultRoute] = []
    route_get: list[RouteGetExpectation] = []
    rules: list[PolicyRule] = []
    anyip: list[AnyIp] = []

    @invariant
    def _something_to_check(self) -> None:
        if not (self.addresses or self.default or self.route_get or self.rules or self.anyip):
            raise ValueError(
                "the routes area is empty: list addresses, default, route_get, rules or anyip"
            )

    def interface_refs(self) -> dict[str, str]:
        refs = {f"addresses.{name}": name for name in self.addresses}
        refs |= {f"default.{i}.interface": d.interface for i, d in enumerate(self.default)}
        refs |= {f"route_get.{i}.interface": r.interface for i, r in enumerate(self.route_get)}
        refs |= {
            f"rules.{i}.default_dev": r.default_dev
            for i, r in enumerate(self.rules)
            if r.default_dev
        }
        return refs
