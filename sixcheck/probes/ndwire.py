"""Neighbor Discovery frames on the wire without scapy: build RS and NS, parse RA and NA.

Why not scapy here: importing `scapy.layers.inet6` costs ~0.2 s and ~22 MiB on every run with nd
checks, and the RA window cannot open before it is done (issue 15). Four message types with a
handful of options (RFC 4861 4.1-4.4 and 4.6, RFC 4191 route information, RFC 8106 RDNSS/DNSSL)
are short to build and parse with `struct`; tests cross-check the parser against scapy-built
packets.

The socket is AF_PACKET with a classic BPF filter attached before it is bound, so it only ever
queues ICMPv6 of the wanted type from the wanted interface, and it never enables promiscuous
mode (a probe must not change the interface's state).
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

ALL_ROUTERS = "ff02::2"
ALL_ROUTERS_MAC = "33:33:00:00:00:02"
ETH_P_IPV6 = 0x86DD
ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
ICMP6 = 58
UDP = 17
RS, RA, NS, NA = 133, 134, 135, 136

OPT_SLLA, OPT_TLLA, OPT_PREFIX, OPT_MTU, OPT_ROUTE, OPT_RDNSS, OPT_DNSSL = 1, 2, 3, 5, 24, 25, 31


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _checksum(src: bytes, dst: bytes, icmp: bytes, next_header: int = ICMP6) -> int:
    """ICMPv6 (or UDP) checksum over the IPv6 pseudo-header (RFC 8200 8.1)."""
    data = src + dst + struct.pack("!I3xB", len(icmp), next_header) + icmp
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip6_frame(
    src_mac: str, dst_mac: str, s: bytes, d: bytes, next_header: int, hop_limit: int, l4: bytes
) -> bytes:
    ip6 = struct.pack("!IHBB", 6 << 28, len(l4), next_header, hop_limit) + s + d
    return _mac_bytes(dst_mac) + _mac_bytes(src_mac) + struct.pack("!H", ETH_P_IPV6) + ip6 + l4


def frame(src_mac: str, dst_mac: str, src: str, dst: str, icmp: bytes) -> bytes:
    """An Ethernet frame carrying `icmp` (checksum field zero) in IPv6 with hop limit 255."""
    s = ipaddress.IPv6Address(src).packed
    d = ipaddress.IPv6Address(dst).packed
    csum = _checksum(s, d, icmp)
    icmp = icmp[:2] + struct.pack("!H", csum) + icmp[4:]
    return _ip6_frame(src_mac, dst_mac, s, d, ICMP6, 255, icmp)


def udp_frame(
    src_mac: str,
    dst_mac: str,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes,
    hop_limit: int = 1,
) -> bytes:
    """An Ethernet frame carrying a UDP datagram in IPv6 (a link-scoped multicast by default:
    hop limit 1, as DHCPv6 clients send to ff02::1:2). The checksum is mandatory in IPv6."""
    s = ipaddress.IPv6Address(src).packed
    d = ipaddress.IPv6Address(dst).packed
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = _checksum(s, d, udp, UDP) or 0xFFFF  # RFC 8200 8.1: a zero result is sent as all-ones
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return _ip6_frame(src_mac, dst_mac, s, d, UDP, hop_limit, udp)


def router_solicitation(mac: str, src: str | None) -> bytes:
    """RS to all-routers; with the source link-layer option unless sent from `::` (RFC 4861 4.1)."""
    icmp = struct.pack("!BBH4x", RS, 0, 0)
    if src:
        icmp += struct.pack("!BB", OPT_SLLA, 1) + _mac_bytes(mac)
    return frame(mac, ALL_ROUTERS_MAC, src or "::", ALL_ROUTERS, icmp)


def neighbor_solicitation(mac: str, src: str, target: str, group: str, group_mac: str) -> bytes:
    """NS for `target` to its solicited-node group, with our link-layer address."""
    icmp = struct.pack("!BBH4x", NS, 0, 0) + ipaddress.IPv6Address(target).packed
    icmp += struct.pack("!BB", OPT_SLLA, 1) + _mac_bytes(mac)
    return frame(mac, group_mac, src, group, icmp)


@dataclass(frozen=True)
class Icmp6Frame:
    """The parts of a received frame every ND parser needs."""

    src_mac: str
    src: str
    dst: str
    hop_limit: int
    icmp: bytes


def icmp6_of(data: bytes, ether: bool = True) -> Icmp6Frame | None:
    """Split an Ethernet frame (or a bare IPv6 packet) carrying ICMPv6 directly; None otherwise."""
    mac = ""
    if ether:
        if len(data) < 14 or struct.unpack("!H", data[12:14])[0] != ETH_P_IPV6:
            return None
        mac, data = _mac_text(data[6:12]), data[14:]
    if len(data) < 40 or data[0] >> 4 != 6 or data[6] != ICMP6:
        return None
    plen = struct.unpack("!H", data[4:6])[0]
    icmp = data[40 : 40 + plen]
    if len(icmp) < 4:
        return None
    return Icmp6Frame(
        src_mac=mac,
        src=str(ipaddress.IPv6Address(data[8:24])),
        dst=str(ipaddress.IPv6Address(data[24:40])),
        hop_limit=data[7],
        icmp=icmp,
    )


def options(raw: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each ND option; stops at a zero length (malformed: RFC 4861 says drop)."""
    out = []
    while len(raw) >= 2:
        typ, units = raw[0], raw[1]
        if units == 0 or len(raw) < units * 8:
            break
        out.append((typ, raw[2 : units * 8]))
        raw = raw[units * 8 :]
    return out


def dns_names(raw: bytes) -> list[str]:
    """Domain names in DNS wire format (no compression), as DNSSL carries them, zero-padded."""
    names: list[str] = []
    labels: list[str] = []
    i = 0
    while i < len(raw):
        n = raw[i]
        i += 1
        if n == 0:
            if labels:
                names.append(".".join(labels))
            labels = []
            continue
        if n > 63 or i + n > len(raw):
            break
        labels.append(raw[i : i + n].decode("ascii", "replace"))
        i += n
    return names


SIOCGIFFLAGS, SIOCGIFHWADDR, IFF_UP, ARPHRD_ETHER = 0x8913, 0x8927, 0x1, 1
IFA_F_DADFAILED, IFA_F_TENTATIVE, SCOPE_LINK = 0x08, 0x40, 0x20


@dataclass(frozen=True)
class SendingLink:
    """What a probe needs before its first frame: the interface's MAC (Ethernet only), whether it
    is up, and a usable link-local address to send from."""

    index: int
    mac: str | None
    up: bool
    link_local: str | None


def sending_link(iface: str) -> SendingLink | None:
    """Read `iface` for sending, or None when it does not exist.

    Two ioctls and `/proc/net/if_inet6` (both answer for the caller's network namespace), not
    netlink: the Router Solicitation and the DHCPv6 Solicit go out before pyroute2 is imported
    (0.1-0.2 s), so their windows open at once. What the kernel learnt is read over netlink later.
    """
    try:
        index = socket.if_nametoindex(iface)
    except OSError:
        return None

    ifreq = struct.pack("16s16x", iface.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = struct.unpack_from("H", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq), 16)[0]
            hw = fcntl.ioctl(s, SIOCGIFHWADDR, ifreq)
    except OSError:
        return None
    family = struct.unpack_from("H", hw, 16)[0]
    mac = _mac_text(hw[18:24]) if family == ARPHRD_ETHER else None
    return SendingLink(index, mac, bool(flags & IFF_UP), _link_local(index))


def _link_local(index: int) -> str | None:
    """The first link-scope address of interface `index` that is neither tentative nor failed."""
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or int(parts[1], 16) != index or int(parts[3], 16) != SCOPE_LINK:
            continue
        if int(parts[4], 16) & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            continue
        return str(ipaddress.IPv6Address(bytes.fromhex(parts[0])))
    return None


def packet_socket(iface: str, icmp_type: int) -> socket.socket:
    """An AF_PACKET socket on `iface` that only queues ICMPv6 messages of `icmp_type`."""
    prog = [  # ldh [12]; jeq 0x86dd; ldb [20]; jeq 58; ldb [54]; jeq TYPE; ret all; ret 0
        (0x28, 0, 0, 12),
        (0x15, 0, 5, ETH_P_IPV6),
        (0x30, 0, 0, 20),
        (0x15, 0, 3, ICMP6),
        (0x30, 0, 0, 54),
        (0x15, 0, 1, icmp_type),
        (0x06, 0, 0, 0x40000),
        (0x06, 0, 0, 0),
    ]
    return filtered_socket(iface, prog, ETH_P_IPV6)


def udp_or_icmp6_error_socket(iface: str, dport: int) -> socket.socket:
    """An AF_PACKET socket on `iface` that queues IPv6 UDP to `dport` and ICMPv6 Destination
    Unreachable, in both directions (ETH_P_ALL: only such sockets see outgoing frames, and this
    node's own ICMPv6 errors are how its firewall's reject of an answer shows). Both are matched
    right after the fixed IPv6 header (no extension headers: what DHCPv6 answers carry)."""
    prog = [
        (0x28, 0, 0, 12),  # ldh [12]: ethertype
        (0x15, 0, 8, ETH_P_IPV6),
        (0x30, 0, 0, 20),  # ldb [20]: next header
        (0x15, 0, 2, UDP),
        (0x28, 0, 0, 56),  # ldh [56]: UDP destination port
        (0x15, 3, 4, dport),
        (0x15, 0, 3, ICMP6),
        (0x30, 0, 0, 54),  # ldb [54]: ICMPv6 type
        (0x15, 0, 1, 1),  # Destination Unreachable
        (0x06, 0, 0, 0x40000),
        (0x06, 0, 0, 0),
    ]
    return filtered_socket(iface, prog, ETH_P_ALL)


def filtered_socket(
    iface: str, prog: list[tuple[int, int, int, int]], protocol: int
) -> socket.socket:
    """A non-blocking AF_PACKET socket bound to `iface` and `protocol`, with the classic BPF
    `prog` attached before the bind (so nothing unfiltered is ever queued)."""
    import ctypes  # only opening the socket needs it; pytest's collection imports this module

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing yet
    try:
        insns = b"".join(struct.pack("HBBI", *ins) for ins in prog)
        buf = ctypes.create_string_buffer(insns)
        fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.bind((iface, protocol))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
