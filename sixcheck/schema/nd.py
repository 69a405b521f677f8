"""Area `nd`: what the routers on a link advertise, and who may advertise at all.

Per interface the profile names the routers allowed to send Router Advertisements there (any other
is a rogue router) and what their RAs must carry: prefixes with their flags, M/O, RDNSS/DNSSL, MTU,
and whether the router must offer itself as a default router.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from .base import DnsName, IfName, IPv6Addr, IPv6Prefix
from .model import Before, Field, Strict, invariant

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")


def _mac(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a MAC address as a string, got {type(value).__name__} {value!r}"
        )
    text = value.strip().lower().replace("-", ":")
    if not _MAC.match(text):
        raise ValueError(f"{value!r} is not a MAC address (write it as 02:00:5e:00:53:01)")
    return text


Mac = Annotated[str, Before(_mac)]


class Router(Strict):
    """A router allowed to advertise on the link, known by its link-local address and/or MAC."""

    address: IPv6Addr | None = None
    mac: Mac | None = None

    @invariant
    def _identified(self) -> None:
        if self.address is None and self.mac is None:
            raise ValueError("a router needs its link-local 'address', its 'mac', or both")
        if self.address is not None and self.address not in LINK_LOCAL:
            raise ValueError(
                f"{self.address} is not link-local: routers advertise from their fe80:: address"
            )

    def matches(self, address: str, mac: str | None) -> bool:
        """True when an RA from (address, mac) comes from this router."""
        if self.address is not None and ipaddress.IPv6Address(address) != self.address:
            return False
        return not (self.mac is not None and (mac or "").lower() != self.mac)

    def label(self) -> str:
        return " ".join(str(x) for x in (self.address, f"({self.mac})" if self.mac else None) if x)


class AdvertisedPrefix(Strict):
    """A Prefix Information option the RA must carry, with its L (on-link) and A (SLAAC) flags.

    Lifetimes are checked for sanity: valid > 0, preferred <= valid, preferred > 0 unless the
    prefix is being retired on purpose (`deprecated: true`); `min_valid` asks for at least that many
    seconds of valid lifetime.
    """

    prefix: IPv6Prefix
    on_link: bool = True
    autonomous: bool = True
    deprecated: bool = False
    min_valid: Annotated[int, Field(ge=0)] | None = None


class NdInterface(Strict):
    """What RAs on one interface must look like (keys left out are not checked)."""

    routers: list[Router] = Field(min_length=1)
    #: router lifetime > 0 required (the router must offer itself as a default router)
    default_router: bool = True
    managed: bool | None = None
    other: bool | None = None
    prefixes: list[AdvertisedPrefix] | None = None
    #: any prefix not listed under `prefixes` fails the check
    only_listed_prefixes: bool = True
    rdnss: list[IPv6Addr] | None = None
    dnssl: list[DnsName] | None = None
    mtu: Annotated[int, Field(ge=1280, le=65535)] | None = None
    #: NS/NA with each listed router (by address, or the default route's gateway on this link)
    neighbor: bool = True


class NdArea(Strict):
    """`nd:` section: one block per interface on which RAs are expected."""

    interfaces: dict[IfName, NdInterface] = Field(min_length=1)

    def interface_refs(self) -> dict[str, str]:
        return {f"interfaces.{name}": name for name in self.interfaces}
