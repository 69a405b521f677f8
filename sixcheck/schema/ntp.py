"""Area `ntp`: time servers reachable over IPv6 whose clocks are synchronised and agree with ours.

"It answers" is not "it is right": a server can answer unsynchronised (stratum 16, leap alarm) or
minutes off. Servers are IPv6 addresses or names resolved to AAAA only (an A record cannot serve
an IPv6-only host).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from .base import Port, Seconds, _dnsname, _text
from .model import Before, Field, Strict, invariant


def _server(value: Any) -> str:
    """An IPv6 address (normalised) or a DNS name; an IPv4 address is refused with the reason."""
    text = _text(value, "an IPv6 address or a name")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        if text.replace(".", "").isdigit():
            raise ValueError(f"{text!r} is neither an address nor a name") from None
        return _dnsname(text)
    if addr.version != 6:
        raise ValueError(
            f"{text!r} is an IPv4 address; NTP over IPv6 needs an IPv6 address or a name with AAAA"
        )
    return str(addr)


NtpServer = Annotated[str, Before(_server)]


class NtpArea(Strict):
    """`ntp:` section.

    Each of `servers` must answer over IPv6 within the probe timeout, with stratum 1 to
    `max_stratum`, no leap alarm, and an offset against the local clock within `max_offset`
    seconds. A name is resolved to AAAA with the node's resolver (A records are ignored).

    A server that lost its sources keeps answering "synchronised" for hours: its reference
    time must be at most `max_reference_age` old (default 2 h: chrony and ntpd poll at most
    every 1024 s by default, busybox's ntpd every ~68 min, so a healthy home or office server
    sets its clock well within that), and its root distance (root delay / 2 + root dispersion)
    at most `max_root_distance` (RFC 5905's MAXDIST, beyond which clients reject it).
    """

    servers: list[NtpServer] = Field(min_length=1)
    max_stratum: Annotated[int, Field(ge=1, le=15)] = 15
    max_offset: Seconds = 1.0
    max_reference_age: Annotated[float, Field(gt=0, le=30 * 86400, allow_inf_nan=False)] = 7200.0
    max_root_distance: Annotated[float, Field(gt=0, le=16, allow_inf_nan=False)] = 1.5
    port: Port = 123

    @invariant
    def _unique(self) -> None:
        if len(set(self.servers)) != len(self.servers):
            raise ValueError("servers: a server is listed twice")
