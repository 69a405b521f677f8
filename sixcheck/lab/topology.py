"""The lab site's fixed names and addresses, and the knobs a fault may turn.

Everything other engineers write lab profiles from lives here, in one place, so the README, the
builder and the faults cannot drift apart. Interface names are fixed because they live inside
namespaces (two instances never collide on them); namespace names carry the instance prefix.

Only documentation prefixes are used (2001:db8::/32, 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24), and all of them exist only inside the lab's namespaces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

#: Environment variable naming the lab instance (so several engineers can run labs at once).
INSTANCE_ENV = "SIXCHECK_LAB"
DEFAULT_INSTANCE = "sx"

#: Nodes of the site, in build order. ``rogue`` exists only with the rogue-router fault.
NODES: tuple[str, ...] = ("inet", "gw", "sw", "lan", "out", "vpn", "rogue")

#: Lab profile (file name under ``profiles/``) -> node it runs in. The matrix runs each that exists.
PROFILE_NODES: dict[str, str] = {
    "lab-gw.yaml": "gw",
    "lab-lan.yaml": "lan",
    "lab-out.yaml": "out",
    "lab-vpn.yaml": "vpn",
}

#: Where an instance keeps pids, generated configs and logs.
STATE_ROOT = "/run/sixcheck-lab"


def instance_from_env() -> str:
    """The instance name from ``SIXCHECK_LAB``, or the default ``sx``."""
    return os.environ.get(INSTANCE_ENV) or DEFAULT_INSTANCE


# ---------------------------------------------------------------------------------------------
# Link: inet gw0 <-> gw wan0 (the ISP uplink)
INET_WAN_IF = "gw0"
GW_WAN_IF = "wan0"
INET_WAN6 = "2001:db8:0:1::1"
GW_WAN6 = "2001:db8:0:1::2"
WAN6_PREFIX = "2001:db8:0:1::/64"
INET_WAN4 = "192.0.2.1"
GW_WAN4 = "192.0.2.2"
WAN4_PLEN = 24

# Link: inet out0 <-> out eth0 (the outside vantage point)
INET_OUT_IF = "out0"
OUT_IF = "eth0"
INET_OUT6 = "2001:db8:0:2::1"
OUT6 = "2001:db8:0:2::2"
INET_OUT4 = "198.51.100.1"
OUT4 = "198.51.100.2"

# The delegated prefix routed to the gateway, and the LAN /64 out of it.
DELEGATED6 = "2001:db8:1::/48"
LAN6_PREFIX = "2001:db8:1:1::/64"
GW_LAN_IF = "lan0"
GW_LAN6 = "2001:db8:1:1::1"
LAN4_PREFIX = "203.0.113.0/26"
GW_LAN4 = "203.0.113.1"
LAN_IF = "eth0"
LAN_HOST4 = "203.0.113.10"
VPN_IF = "eth0"
VPN_HOST4 = "203.0.113.20"
ROGUE_IF = "eth0"
BRIDGE = "br0"

# Pinned MACs make every EUI-64 address (and the gateway's link-local) predictable.
MACS: dict[tuple[str, str], str] = {
    ("inet", INET_WAN_IF): "02:00:00:00:00:01",
    ("gw", GW_WAN_IF): "02:00:00:00:00:02",
    ("inet", INET_OUT_IF): "02:00:00:00:02:01",
    ("out", OUT_IF): "02:00:00:00:02:02",
    ("gw", GW_LAN_IF): "02:00:00:00:01:01",
    ("lan", LAN_IF): "02:00:00:00:01:10",
    ("vpn", VPN_IF): "02:00:00:00:01:20",
    ("rogue", ROGUE_IF): "02:00:00:00:01:66",
}
INET_WAN_LL = "fe80::ff:fe00:1"  # the gateway's upstream router, as learned from RAs
GW_LAN_LL = "fe80::ff:fe00:101"  # the LAN's default router
LAN_HOST6 = "2001:db8:1:1::ff:fe00:110"  # SLAAC (EUI-64) address of the LAN host
VPN_HOST6 = "2001:db8:1:1::ff:fe00:120"  # SLAAC (EUI-64) address of the VPN client
ROGUE_LL = "fe80::ff:fe00:166"

# Services on inet's lo.
RESOLVER6 = "2001:db8:53::53"
# 203.0.113.53 (the spec's first choice) lies inside the LAN's 203.0.113.0/26, which inet routes
# to the gateway: nobody behind the gateway could reach it. Public services use 203.0.113.64/26.
RESOLVER4 = "203.0.113.100"
NTP6 = "2001:db8:123::123"
WEB6 = "2001:db8:80::80"
#: UDP echo (socat) on the web address: the outside UDP service for outbound-allow checks.
UDP_ECHO_PORT = 7
WEB4 = "203.0.113.80"
V4ONLY4 = "203.0.113.81"
INTRANET6 = "2001:db8:10::10"
INTRANET4 = "203.0.113.210"
INTRANET_DB6 = "2001:db8:10::11"  # a name only the VPN's resolver knows
INTRANET_DB4 = "203.0.113.211"
PROTECTED6 = "2001:db8:10::/64"
PROTECTED4 = "203.0.113.192/26"
FAR_TARGET6 = "2001:db8:77::1"  # reachable only through the tunnel
FAR_PREFIX6 = "2001:db8:77::/64"
GW_WEB_PORT = 443  # the gateway's own public service, on GW_LAN6

# The tunnel-broker tunnel: IPv6 in UDP over IPv4 between gw and inet (socat TUN).
TUN_IF = "tun6"
TUN_PREFIX6 = "2001:db8:0:7::/64"
TUN_FAR6 = "2001:db8:0:7::1"  # inet's end (the broker)
TUN_NEAR6 = "2001:db8:0:7::2"  # gw's end
TUN_UDP_PORT = 5072
TUN_MTU = 1280
TUN_PATH_MAX_INNER = 1280  # what the underlay carries; larger inner packets vanish
#: Source routing on the gateway: what is sent from the tunnel's prefix leaves by the tunnel
#: (seed 002's `ip -6 rule from PREFIX lookup TABLE`), and an AnyIP prefix bound to gw's lo
#: (seed 003: `ip -6 route add local PREFIX dev lo`; inside the delegated /48, so reachable).
TUN_TABLE = 7
TUN_RULE_PRIORITY = 1000
ANYIP6_PREFIX = "2001:db8:1:ff::/64"

# The VPN (wireguard-go): server on inet, client on the vpn node.
WG_IF = "wg0"
WG_PORT = 51820
WG_SERVER4 = "203.0.113.129"
WG_SERVER6 = "2001:db8:f::1"
WG_CLIENT4 = "203.0.113.130"
WG_CLIENT6 = "2001:db8:f::2"
WG_INNER4_PREFIX = "203.0.113.128/26"
WG_INNER6_PREFIX = "2001:db8:f::/64"
VPN_RESOLVER6 = "2001:db8:f::53"
VPN_RESOLVER4 = "203.0.113.153"

# DNS data served by the public resolver (the VPN's resolver serves it too, plus INTERNAL_NAMES).
ZONE = "example.net"
PUBLIC_NAMES: dict[str, dict[str, str]] = {
    "www.example.net": {"AAAA": WEB6, "A": WEB4},
    "v4only.example.net": {"A": V4ONLY4},
    "ntp.example.net": {"AAAA": NTP6},
    "intranet.example.net": {"AAAA": INTRANET6, "A": INTRANET4},
}
INTERNAL_NAMES: dict[str, dict[str, str]] = {
    "db.intranet.example.net": {"AAAA": INTRANET_DB6, "A": INTRANET_DB4},
}
LAN_HOST_NAME = "host.lan.example.net"  # PTR (and AAAA) for the LAN host's SLAAC address
ROGUE_PREFIX6 = "2001:db8:bad::/64"
WRONG_PREFIX6 = "2001:db8:2:1::/64"  # a stale, no longer delegated prefix

# DHCPv6 (issue 13): the ISP's Kea on inet gw0, the gateway's PD client (dhclient -6 -P -D LL) on
# wan0, the LAN's stateless Kea on gw lan0 (DNS, NTP, iPXE boot URLs), a rogue Kea with a fault.
ALL_DHCP_AGENTS = "ff02::1:2"
INET_DUID = "00:03:00:01:02:00:00:00:00:01"  # DUID-LL of inet gw0's MAC
GW_CLIENT_DUID = "00:03:00:01:02:00:00:00:00:02"  # dhclient -D LL on gw wan0
GW_LAN_DUID = "00:03:00:01:02:00:00:00:01:01"
ROGUE_DUID = "00:03:00:01:02:00:00:00:01:66"
WAN_NA_POOL6 = "2001:db8:0:1::1000/116"  # IA_NA addresses on the WAN link
PD_POOL6 = "2001:db8:100::/40"  # prefixes for new customers; the gateway's is a reservation
PD_POOL_LENGTH = 40
PD_LENGTH = 48
LAN_DOMAINS = ("lan.example.net", "example.net")
EFI_X64_ARCH = 7
IPXE_USER_CLASS = "iPXE"
BOOT_URL_EFI = f"http://[{GW_LAN6}]/ipxe.efi"
BOOT_URL_IPXE = f"http://[{GW_LAN6}]/boot.ipxe"
ROGUE_NA_POOL6 = "2001:db8:bad::100/120"
ROGUE_DNS6 = "2001:db8:bad::53"


@dataclass(frozen=True)
class SiteConfig:
    """The knobs of the site. Healthy is the default; a fault is a ``replace()`` of some knobs.

    Keeping faults as data on one config (instead of ad-hoc commands sprinkled through the
    builder) means every fault is built by the same code path as the healthy site, so a fault
    scenario differs from healthy only in what the fault says.
    """

    gw_forwarding: int = 1
    gw_wan_accept_ra: int = 2
    lan_radvd: bool = True
    lan_rdnss: bool = True
    lan_prefix: str = LAN6_PREFIX
    lan_accept_ra_defrtr: int = 1
    fw_inbound_new: Literal["reject", "accept"] = "reject"
    fw_outbound_new: Literal["accept", "drop"] = "accept"
    fw_drop_ptb: bool = False
    resolver: Literal["dual", "ipv4-only", "down", "refuses-lan"] = "dual"
    www_aaaa: bool = True
    ntp: Literal["chrony", "down", "skewed", "unsynchronised", "kiss", "stale"] = "chrony"
    ntp_skew_seconds: float = 300.0
    ntp_kiss_code: str = "RATE"
    ntp_reference_age: float = 5 * 3600.0
    tunnel_far_end: bool = True
    gw_tunnel_mtu: int = TUN_MTU
    vpn_ipv6: Literal["tunnel", "none", "blackhole"] = "tunnel"
    vpn_resolv: Literal["vpn", "vpn-ipv4", "public"] = "vpn"
    rogue_router: bool = False
    dhcpv6_upstream: Literal["kea", "down"] = "kea"
    pd_pool: Literal["free", "exhausted"] = "free"
    pd_length: int = PD_LENGTH
    gw_fw_dhcpv6_client: bool = True  # gw accepts UDP 547 -> 546 from fe80::/10 on wan0
    lan_dhcpv6: bool = True
    lan_boot_efi: bool = True
    lan_ra_managed: bool = False
    lan_ra_other: bool = True
    rogue_dhcpv6: bool = False
