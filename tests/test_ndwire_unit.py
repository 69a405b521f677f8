"""The scapy-free ND frames (issue 15: scapy cost ~0.2 s and ~22 MiB per run) checked against
scapy: what we build, scapy decodes with a valid checksum; what scapy builds, we decode alike."""

from __future__ import annotations

from typing import Any

from sixcheck.probes import ndwire
from sixcheck.probes.nd import _solicited_node, decode_na

MAC = "02:00:00:00:01:10"
LL = "fe80::ff:fe00:110"
ROUTER = "fe80::ff:fe00:101"


def _checksum_ok(frame: bytes) -> Any:
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    pkt = Ether(frame)
    icmp = pkt[IPv6].payload
    sent = icmp.cksum
    del icmp.cksum
    return pkt, sent == Ether(bytes(pkt))[IPv6].payload.cksum


def test_router_solicitation_is_what_scapy_reads() -> None:
    from scapy.layers.inet6 import ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr, IPv6

    pkt, ok = _checksum_ok(ndwire.router_solicitation(MAC, LL))
    assert ok
    assert ICMPv6ND_RS in pkt
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim) == (LL, "ff02::2", 255)
    assert pkt.dst == "33:33:00:00:00:02"
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == MAC
    unspecified, ok = _checksum_ok(ndwire.router_solicitation(MAC, None))
    assert ok
    assert unspecified[IPv6].src == "::"
    assert ICMPv6NDOptSrcLLAddr not in unspecified  # RFC 4861 4.1: not from ::


def test_neighbor_solicitation_is_what_scapy_reads() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6

    group, gmac = _solicited_node(ROUTER)
    pkt, ok = _checksum_ok(ndwire.neighbor_solicitation(MAC, LL, ROUTER, group, gmac))
    assert ok
    assert pkt[ICMPv6ND_NS].tgt == ROUTER
    assert (pkt[IPv6].dst, pkt.dst) == ("ff02::1:ff00:101", "33:33:ff:00:01:01")


def test_neighbor_advertisement_decoded_like_scapy() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    na = (
        Ether(src="02:00:00:00:01:01", dst=MAC)
        / IPv6(src=ROUTER, dst=LL, hlim=255)
        / ICMPv6ND_NA(tgt=ROUTER, R=1, S=1, O=0)
        / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:01:02")
    )
    target, flags, mac = decode_na(bytes(na)) or ("", 0, "")
    assert target == ROUTER
    assert (bool(flags & 0x80), bool(flags & 0x40), bool(flags & 0x20)) == (True, True, False)
    assert mac == "02:00:00:00:01:02"  # the target link-layer option wins over the frame source
    bare = (
        Ether(src="02:00:00:00:01:01", dst=MAC) / IPv6(src=ROUTER, dst=LL) / ICMPv6ND_NA(tgt=ROUTER)
    )
    assert (decode_na(bytes(bare)) or ("", 0, ""))[2] == "02:00:00:00:01:01"
    assert decode_na(ndwire.router_solicitation(MAC, LL)) is None


def test_options_stop_at_a_zero_length() -> None:
    assert ndwire.options(b"\x01\x01" + b"\0" * 6 + b"\x05\x00rest") == [(1, b"\0" * 6)]


def test_dnssl_names() -> None:
    raw = b"\x07example\x03net\x00\x03lab\x00\x00\x00"
    assert ndwire.dns_names(raw) == ["example.net", "lab"]
