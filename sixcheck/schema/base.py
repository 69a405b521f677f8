"""Value types shared by every area of a profile.

Addresses and prefixes are parsed here, once, so that a check never meets a string where it needs an
address, and a typo in a profile is reported with its key path before anything is probed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from .model import NO_VALUE, Before, Field

_IFNAME = re.compile(r"^[^/\s:%]{1,15}$")
_DNSNAME = re.compile(
    r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _text(value: Any, what: str) -> str:
    if value is None:
        raise ValueError(f"expected {what} as a string, got {NO_VALUE}")
    if not isinstance(value, str):
        raise ValueError(f"expected {what} as a string, got {type(value).__name__} {value!r}")
    return value.strip()


def _ipv6(value: Any) -> ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv6Address):
        return value
    text = _text(value, "an IPv6 address")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address") from None
    if addr.version != 6:
        raise ValueError(f"{text!r} is an IPv4 address; an IPv6 address is needed here")
    return addr


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    text = _text(value, "an IPv4 address")
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    text = _text(value, "an IP address")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _network(value: Any, version: int | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    text = _text(value, "a prefix")
    if "/" not in text:
        raise ValueError(f"{text!r} is not a prefix: write it as ADDRESS/LENGTH")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            base = ipaddress.ip_network(text, strict=False)
            raise ValueError(f"{text!r} has host bits set; did you mean {base}?") from None
        raise ValueError(f"{text!r} is not a prefix") from None
    if version == 6 and net.version != 6:
        raise ValueError(f"{text!r} is an IPv4 prefix; an IPv6 prefix is needed here")
    return net


def _ifname(value: Any) -> str:
    text = _text(value, "an interface name")
    if not _IFNAME.match(text) or text in {".", ".."}:
        raise ValueError(
            f"{text!r} cannot be a Linux interface name (1-15 characters, no '/', ':', '%' or space)"
        )
    return text


def _dnsname(value: Any) -> str:
    text = _text(value, "a DNS name")
    if not _DNSNAME.match(text):
        raise ValueError(f"{text!r} is not a DNS name")
    return text.rstrip(".").lower()


IPv6Addr = Annotated[ipaddress.IPv6Address, Before(_ipv6)]
IPv4Addr = Annotated[ipaddress.IPv4Address, Before(_ipv4)]
IPAddr = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address, Before(_ip)]
IPv6Prefix = Annotated[ipaddress.IPv6Network, Before(lambda v: _network(v, 6))]
IPPrefix = Annotated[
    ipaddress.IPv4Network | ipaddress.IPv6Network, Before(lambda v: _network(v, None))
]
IfName = Annotated[str, Before(_ifname)]
DnsName = Annotated[str, Before(_dnsname)]
Seconds = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]
Port = Annotated[int, Field(ge=1, le=65535)]
