"""Area `tunnel`: an IPv6 tunnel (a broker's 6in4/6in-UDP, gif, sit...) works end to end."""

from __future__ import annotations

from typing import Annotated

from .base import IfName, IPAddr, IPv6Addr
from .model import Field, Strict, invariant

Mtu = Annotated[int, Field(ge=1280, le=65535)]


class PathMtu(Strict):
    """A `mtu`-byte packet must reach `target` through the tunnel, and anything larger (starting
    at `start` bytes, what a LAN host sends) must be signalled (Packet Too Big, or this node's
    own MTU) rather than vanish."""

    target: IPv6Addr
    mtu: Mtu = 1280
    start: Mtu = 1500

    @invariant
    def _start_above(self) -> None:
        if self.start <= self.mtu:
            raise ValueError(
                f"start ({self.start}) must be larger than mtu ({self.mtu}): the check sends a "
                "larger packet to see that it is signalled, not lost"
            )


class TunnelArea(Strict):
    """`tunnel:` section. Keys left out are not checked.

    `underlay` is the tunnel's outer endpoint (usually IPv4): it must answer echo. `far_end` is
    the far side's IPv6 tunnel address: it must answer ping6. `default_route: true` means the
    IPv6 default route must go through the tunnel, `false` that it must not.
    """

    interface: IfName
    mtu: Mtu | None = None
    addresses: list[IPv6Addr] = []
    underlay: IPAddr | None = None
    far_end: IPv6Addr | None = None
    default_route: bool | None = None
    path_mtu: PathMtu | None = None

    def interface_refs(self) -> dict[str, str]:
        return {"interface": self.interface}
