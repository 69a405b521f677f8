"""Area `dhcpv6`: who answers DHCPv6 on a link and what they offer, and the prefix this router holds
by delegation.

Per interface the profile names the servers allowed to answer (any other is a rogue DHCPv6 server),
what to ask for (addresses by IA_NA, a prefix by IA_PD, or only options by Information-Request),
and what the answers must carry. `delegated` is the passive half on a router: the delegated prefix
it holds (as its DHCPv6 client installs it) and that its LANs are numbered from it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from .base import DnsName, IfName, IPv6Addr, IPv6Prefix, Seconds, _text
from .model import Before, Field, Strict, invariant
from .nd import LINK_LOCAL

_DUID = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){2,129}$")


def _duid(value: object) -> str:
    text = _text(value, "a DUID").lower().replace("-", ":")
    if ":" not in text and len(text) % 2 == 0:  # plain hex: 000300010200...
        text = ":".join(text[i : i + 2] for i in range(0, len(text), 2))
    if not _DUID.match(text):
        raise ValueError(
            f"{value!r} is not a DUID: write its bytes in hex, e.g. 00:03:00:01:02:00:5e:00:53:01"
        )
    return text


Duid = Annotated[str, Before(_duid)]


def _ntp(value: object) -> str:
    text = _text(value, "an NTP server address or name")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        from .base import _dnsname

        return _dnsname(text)
    if addr.version != 6:
        raise ValueError(f"{text!r} is an IPv4 address; DHCPv6 hands out IPv6 addresses or names")
    return str(addr)


NtpEntry = Annotated[str, Before(_ntp)]


class Server(Strict):
    """A DHCPv6 server allowed to answer on the link, by its DUID and/or link-local address."""

    duid: Duid | None = None
    address: IPv6Addr | None = None

    @invariant
    def _identified(self) -> None:
        if self.duid is None and self.address is None:
            raise ValueError("a server needs its 'duid', its link-local 'address', or both")
        if self.address is not None and self.address not in LINK_LOCAL:
            raise ValueError(
                f"{self.address} is not link-local: servers on the link answer from their fe80:: "
                "address (a relayed server is known by its 'duid')"
            )

    def matches(self, address: str, duid: str | None) -> bool:
        """True when an answer from (address, duid) comes from this server."""
        if self.address is not None and ipaddress.IPv6Address(address) != self.address:
            return False
        return not (self.duid is not None and (duid or "").lower() != self.duid)

    def label(self) -> str:
        parts = [str(self.address)] if self.address is not None else []
        if self.duid:
            parts.append(f"(DUID {self.duid})")
        return " ".join(parts)


class OfferedPrefix(Strict):
    """What a delegated prefix offered by IA_PD must look like."""

    length: Annotated[int, Field(ge=1, le=128)] | None = None
    within: IPv6Prefix | None = None

    @invariant
    def _something(self) -> None:
        if self.length is None and self.within is None:
            raise ValueError("say the expected 'length', the aggregate it lies 'within', or both")
        if (
            self.length is not None
            and self.within is not None
            and self.length < self.within.prefixlen
        ):
            raise ValueError(
                f"a /{self.length} cannot lie within {self.within} (a /{self.within.prefixlen})"
            )


class BootOptions(Strict):
    """What a client class must be offered (option 59 bootfile-url, option 60 its parameters)."""

    bootfile_url: str | None = None
    bootfile_params: list[str] | None = None


class ClientClass(Strict):
    """Ask as a given kind of client (option 61 client architecture, option 15 user class) and
    expect the options it is given: `arch: 7` (EFI x64) gets `ipxe.efi`, iPXE the next stage."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
    arch: Annotated[int, Field(ge=0, le=65535)] | None = None
    user_class: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    expect: BootOptions

    @invariant
    def _a_class(self) -> None:
        if self.arch is None and self.user_class is None:
            raise ValueError(f"client class {self.name!r}: give 'arch', 'user_class', or both")


class Dhcpv6Interface(Strict):
    """What DHCPv6 on one interface must look like (keys left out are not checked)."""

    servers: list[Server] = Field(min_length=1)
    #: any other server answering fails the rogue check
    only_listed_servers: bool = True
    #: what the Solicit asks for; with neither, only an Information-Request is sent
    ia_na: bool = False
    ia_pd: bool = False
    #: also send an Information-Request (stateless DHCPv6, what an RA with O=1 asks hosts to do)
    information: bool = False
    #: offered addresses (IA_NA) must lie inside this pool
    address_pool: IPv6Prefix | None = None
    prefix: OfferedPrefix | None = None
    dns: list[IPv6Addr] | None = None
    domains: list[DnsName] | None = None
    ntp: list[NtpEntry] | None = None
    sntp: list[IPv6Addr] | None = None
    #: compare the RA's M/O flags on this link with what answers
    ra_flags: bool = True
    client_classes: list[ClientClass] = []

    @invariant
    def _consistent(self) -> None:
        if not (self.ia_na or self.ia_pd or self.information):
            raise ValueError(
                "ask for something: ia_na (addresses), ia_pd (a prefix) and/or information"
            )
        if self.address_pool is not None and not self.ia_na:
            raise ValueError("address_pool needs ia_na: true (the addresses are asked by IA_NA)")
        if self.prefix is not None and not self.ia_pd:
            raise ValueError("prefix needs ia_pd: true (a prefix is asked by IA_PD)")
        names = [c.name for c in self.client_classes]
        if len(set(names)) != len(names):
            raise ValueError("client_classes: a name is used twice")

    def solicits(self) -> bool:
        return self.ia_na or self.ia_pd


class Delegation(Strict):
    """The delegated prefix this router holds (read from its routing table, nothing sent).

    `held_by: route` wants the unreachable/blackhole route DHCPv6-PD clients install for the
    whole prefix (dhclient hooks, dhcpcd, odhcp6c, systemd-networkd); `lan` accepts LAN prefixes
    carved out of it instead; `either` accepts both.
    """

    prefix: IPv6Prefix | None = None
    length: Annotated[int, Field(ge=1, le=128)] | None = None
    within: IPv6Prefix | None = None
    held_by: Literal["route", "lan", "either"] = "either"
    #: LAN interfaces whose global prefixes must lie inside the delegated prefix
    lan: list[IfName] = []

    @invariant
    def _something(self) -> None:
        if self.prefix is None and self.length is None and self.within is None:
            raise ValueError("name the delegated 'prefix', or its 'length' and/or 'within'")
        if self.prefix is not None and (self.length is not None or self.within is not None):
            raise ValueError("'prefix' is exact: leave out 'length' and 'within' with it")
        if self.held_by != "route" and self.prefix is None and not self.lan:
            raise ValueError("held_by lan/either needs 'lan' interfaces to look at")

    def expected_length(self) -> int | None:
        return self.prefix.prefixlen if self.prefix is not None else self.length

    def describe(self) -> str:
        if self.prefix is not None:
            return str(self.prefix)
        parts = [f"a /{self.length}"] if self.length is not None else ["a prefix"]
        if self.within is not None:
            parts.append(f"within {self.within}")
        return " ".join(parts)

    def fits(self, net: ipaddress.IPv6Network) -> bool:
        if self.prefix is not None:
            return net == self.prefix
        if self.length is not None and net.prefixlen != self.length:
            return False
        return self.within is None or net.subnet_of(self.within)

    def region(self) -> ipaddress.IPv6Network | None:
        """Where a delegated prefix must lie (for spotting one of the wrong length)."""
        return self.prefix if self.prefix is not None else self.within


class Dhcpv6Area(Strict):
    """`dhcpv6:` section."""

    #: the longest to collect answers after a Solicit / Information-Request: an exchange ends
    #: 0.5 s after its send once every listed server has answered and no other one has
    window: Annotated[Seconds, Field(le=30)] = 2.0
    #: listen the whole `window` even when the listed servers have answered: also hears a rogue
    #: server that answers more than 0.5 s after them (costs `window` on every run)
    listen_whole_window: bool = False
    interfaces: dict[IfName, Dhcpv6Interface] = {}
    delegated: Delegation | None = None

    @invariant
    def _something(self) -> None:
        if not self.interfaces and self.delegated is None:
            raise ValueError("list 'interfaces' to probe and/or the 'delegated' prefix to check")

    def interface_refs(self) -> dict[str, str]:
        refs = {f"interfaces.{name}": name for name in self.interfaces}
        if self.delegated is not None:
            refs.update({f"delegated.lan.{i}": n for i, n in enumerate(self.delegated.lan)})
        return refs
