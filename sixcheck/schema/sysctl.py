"""Area `sysctl`: the kernel's IPv6 switches that decide whether a node routes and learns routes."""

from __future__ import annotations

from typing import Annotated, Literal

from .base import IfName
from .model import Field, Strict, invariant

#: The per-interface IPv6 keys sixcheck knows, with the values the kernel accepts.
KNOWN_KEYS: dict[str, tuple[int, int]] = {
    "forwarding": (0, 1),
    "accept_ra": (0, 2),
    "accept_ra_defrtr": (0, 1),
    "accept_ra_pinfo": (0, 1),
    "autoconf": (0, 1),
    "disable_ipv6": (0, 1),
    "use_tempaddr": (-1, 2),
    "accept_dad": (0, 2),
}

Flag = Annotated[int, Field(ge=0, le=1)]
AcceptRa = Annotated[int, Field(ge=0, le=2)]
TempAddr = Annotated[int, Field(ge=-1, le=2)]
Dad = Annotated[int, Field(ge=0, le=2)]


class ConfKeys(Strict):
    """Expected values under `net.ipv6.conf.<scope>.`; keys left out are not checked."""

    forwarding: Flag | None = None
    accept_ra: AcceptRa | None = None
    accept_ra_defrtr: Flag | None = None
    accept_ra_pinfo: Flag | None = None
    autoconf: Flag | None = None
    disable_ipv6: Flag | None = None
    use_tempaddr: TempAddr | None = None
    accept_dad: Dad | None = None

    def items(self) -> list[tuple[str, int]]:
        """The keys the profile set, in a stable order."""
        return [(k, v) for k in KNOWN_KEYS if (v := getattr(self, k)) is not None]


class SysctlArea(Strict):
    """`sysctl:` section.

    `all` and `default` are the kernel's pseudo-interfaces; `interfaces` holds one block per real
    interface (each must be declared under the top-level `interfaces:`). `ipv4_forwarding` is
    `net.ipv4.ip_forward`, listed because a dual-stack router needs both.
    """

    all: ConfKeys = ConfKeys()
    default: ConfKeys = ConfKeys()
    interfaces: dict[IfName, ConfKeys] = {}
    ipv4_forwarding: Flag | None = None
    upstream_ra_rule: Literal["check", "off"] = "check"

    def interface_refs(self) -> dict[str, str]:
        return {f"interfaces.{name}": name for name in self.interfaces}

    @invariant
    def _something_to_check(self) -> None:
        if (
            not (
                self.all.items()
                or self.default.items()
                or any(k.items() for k in self.interfaces.values())
                or self.ipv4_forwarding is not None
            )
            and self.upstream_ra_rule == "off"
        ):
            raise ValueError("the sysctl area is empty: list at least one key to check")
