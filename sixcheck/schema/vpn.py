"""Area `vpn`: what a VPN client must protect, per address family, and which resolvers it trusts.

The failure this area exists for (seed 004, World IPv6 Day): an IPv4-only VPN, a host with native
IPv6, and dual-stacked internal services. Applications prefer AAAA, the kernel routes that IPv6
traffic by the public default route, and the "protected" traffic leaves around the tunnel. So the
profile names the protected destinations once and the checks ask the kernel, family by family,
where each of them would go.
"""

from __future__ import annotations

from typing import Literal

from .base import DnsName, IfName, IPAddr, IPPrefix, Port
from .model import Strict, invariant

#: What a family of protected traffic may do: `tunnel` = it must enter a VPN interface;
#: `tunnel-or-blackhole` = entering the VPN or being refused locally (blackhole, unreachable,
#: prohibit: fail closed) both pass. Leaving by any other interface always fails.
FamilyPolicy = Literal["tunnel", "tunnel-or-blackhole"]


class VpnArea(Strict):
    """`vpn:` section.

    `interfaces` are the VPN's interfaces (traffic entering them is protected); `public` the
    interfaces that must never carry protected traffic (named in messages). `names`,
    `addresses` and `prefixes` are the protected destinations; each name is resolved for A
    and AAAA through the host's resolvers and, when `resolvers` lists the VPN's own, through
    those too. `ipv4`/`ipv6` say what each family may do (see FamilyPolicy). `confirm` sends
    one UDP datagram per protected address and captures on the public interfaces, so a misread
    routing decision cannot pass (needs raw sockets; `confirm_port` is the datagram's port).
    """

    interfaces: list[IfName]
    public: list[IfName]
    names: list[DnsName] = []
    addresses: list[IPAddr] = []
    prefixes: list[IPPrefix] = []
    resolvers: list[IPAddr] = []
    ipv4: FamilyPolicy = "tunnel-or-blackhole"
    ipv6: FamilyPolicy = "tunnel-or-blackhole"
    confirm: bool = True
    confirm_port: Port = 33434

    def interface_refs(self) -> dict[str, str]:
        refs = {f"interfaces.{i}": name for i, name in enumerate(self.interfaces)}
        refs.update({f"public.{i}": name for i, name in enumerate(self.public)})
        return refs

    def policy(self, family: int) -> FamilyPolicy:
        """The policy of an address family given as 4 or 6."""
        return self.ipv4 if family == 4 else self.ipv6

    @invariant
    def _coherent(self) -> None:
        problems = []
        if not self.interfaces:
            problems.append("interfaces: list at least one VPN interface")
        if not self.public:
            problems.append("public: list at least one public interface")
        if both := sorted(set(self.interfaces) & set(self.public)):
            problems.append(f"{', '.join(both)} cannot be both a VPN and a public interface")
        if not (self.names or self.addresses or self.prefixes):
            problems.append("nothing to protect: list names, addresses or prefixes")
        for kind, values in (
            ("names", self.names),
            ("addresses", self.addresses),
            ("prefixes", self.prefixes),
            ("resolvers", self.resolvers),
        ):
            if len(set(values)) != len(values):
                problems.append(f"{kind} lists a value twice")
        if problems:
            raise ValueError("; ".join(problems))
