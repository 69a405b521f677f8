"""Area nd without a network: the profile section, RA decoding from scapy-built packets, and the
judgements the checks make over decoded RAs."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sixcheck.probes.nd import (
    RaObservation,
    RouterAdvert,
    _solicited_node,
    decode_ra,
    merge_adverts,
)
from sixcheck.schema import ProfileError, parse
from sixcheck.schema.nd import NdArea, NdInterface

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))
import test_nd as nd_checks

ROUTER_LL = "fe80::ff:fe00:101"
ROUTER_MAC = "02:00:00:00:01:01"


def _ra(**kw: Any) -> Any:
    from scapy.layers.inet6 import (
        ICMPv6ND_RA,
        ICMPv6NDOptDNSSL,
        ICMPv6NDOptMTU,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptRDNSS,
        ICMPv6NDOptRouteInfo,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )
    from scapy.layers.l2 import Ether

    src = kw.get("src", ROUTER_LL)
    mac = kw.get("mac", ROUTER_MAC)
    pkt = (
        Ether(src=mac, dst="33:33:00:00:00:01")
        / IPv6(src=src, dst="ff02::1", hlim=kw.get("hlim", 255))
        / ICMPv6ND_RA(
            chlim=64,
            M=kw.get("M", 0),
            O=kw.get("O", 0),
            prf=kw.get("prf", 0),
            routerlifetime=kw.get("lifetime", 1800),
        )
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )
    for prefix, L, A, valid, pref in kw.get("prefixes", [("2001:db8:1:1::", 1, 1, 86400, 14400)]):
        pkt = pkt / ICMPv6NDOptPrefixInfo(
            prefix=prefix, prefixlen=64, L=L, A=A, validlifetime=valid, preferredlifetime=pref
        )
    if kw.get("mtu"):
        pkt = pkt / ICMPv6NDOptMTU(mtu=kw["mtu"])
    if kw.get("rdnss"):
        pkt = pkt / ICMPv6NDOptRDNSS(dns=kw["rdnss"], lifetime=30)
    if kw.get("dnssl"):
        pkt = pkt / ICMPv6NDOptDNSSL(searchlist=kw["dnssl"], lifetime=30)
    if kw.get("route"):
        pkt = pkt / ICMPv6NDOptRouteInfo(prefix=kw["route"], plen=48, prf=1, rtlifetime=600)
    return Ether(bytes(pkt))  # through the wire format, as a capture would give it


def test_decode_every_option() -> None:
    ra = decode_ra(
        _ra(
            M=1,
            O=1,
            mtu=1280,
            rdnss=["2001:db8:53::53", "2001:db8:53::54"],
            dnssl=["example.net"],
            route="2001:db8:77::",
            prf=3,
        ),
        at=0.5,
    )
    assert ra is not None
    assert (ra.router, ra.mac, ra.ip_hop_limit) == (ROUTER_LL, ROUTER_MAC, 255)
    assert ra.managed
    assert ra.other
    assert ra.preference == "low"
    assert ra.router_lifetime == 1800
    assert ra.cur_hop_limit == 64
    assert ra.prefixes[0].prefix == "2001:db8:1:1::/64"
    assert (ra.prefixes[0].on_link, ra.prefixes[0].autonomous) == (True, True)
    assert (ra.prefixes[0].valid_lifetime, ra.prefixes[0].preferred_lifetime) == (86400, 14400)
    assert ra.rdnss_servers() == ["2001:db8:53::53", "2001:db8:53::54"]
    assert ra.dnssl_domains() == ["example.net"]
    assert ra.mtu == 1280
    assert ra.routes[0].prefix == "2001:db8:77::/48"
    assert ra.routes[0].preference == "high"
    assert ra.source_lladdr == ROUTER_MAC
    assert ra.link_local
    assert ra.at == 0.5


def test_decode_ignores_other_packets() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NS, IPv6

    assert decode_ra(IPv6(src=ROUTER_LL, dst="ff02::1") / ICMPv6ND_NS(tgt=ROUTER_LL)) is None


def test_merge_counts_repeats_per_router() -> None:
    a = decode_ra(_ra(), at=0.1)
    b = decode_ra(_ra(), at=3.0)
    c = decode_ra(_ra(src="fe80::66", mac="02:00:00:00:01:66"), at=1.0)
    assert a
    assert b
    assert c
    merged = merge_adverts([a, b, c])
    assert [m.count for m in merged] == [2, 1]


def test_solicited_node_group() -> None:
    assert _solicited_node("fe80::ff:fe00:101") == ("ff02::1:ff00:101", "33:33:ff:00:01:01")


def test_evidence_is_json_ready() -> None:
    ra = decode_ra(_ra(rdnss=["2001:db8:53::53"]))
    assert ra is not None
    obs = RaObservation(interface="eth0", source="fe80::1", rs_sent=1, adverts=(ra,))
    ev = obs.evidence()
    assert ev["adverts"][0]["prefixes"][0]["prefix"] == "2001:db8:1:1::/64"
    assert ev["family"] == "ipv6"
    assert ev["source"] == "fe80::1"


# ------------------------------------------------------------------------------- schema

BASE = "node: {role: host}\ninterfaces:\n  eth0: {role: lan, upstream_ra: true}\n"


def test_profile_section_parses() -> None:
    p = parse(
        BASE
        + """nd:
  interfaces:
    eth0:
      routers: [{address: "fe80::1", mac: "02-00-00-00-01-01"}, {mac: "02:00:00:00:01:02"}]
      managed: false
      prefixes: [{prefix: "2001:db8:1:1::/64", autonomous: true}]
      rdnss: ["2001:db8:53::53"]
      dnssl: [Example.NET]
      mtu: 1500
""",
        "t.yaml",
    )
    assert p.nd is not None
    cfg = p.nd.interfaces["eth0"]
    assert cfg.routers[0].mac == "02:00:00:00:01:01"
    assert cfg.dnssl == ["example.net"]
    assert cfg.routers[1].matches("fe80::99", "02:00:00:00:01:02")
    assert not cfg.routers[0].matches("fe80::1", "02:00:00:00:01:99")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("routers: [{address: '2001:db8::1'}]", "is not link-local"),
        ("routers: [{}]", "needs its link-local 'address', its 'mac', or both"),
        ("routers: [{mac: '02:00'}]", "is not a MAC address"),
        ("routers: []", "at least 1"),
        ("routers: [{mac: '02:00:00:00:00:01'}]\n      mtu: 1000", "greater than or equal to 1280"),
        ("routers: [{mac: '02:00:00:00:00:01'}]\n      rdns: []", "unknown key"),
    ],
)
def test_profile_section_errors(section: str, message: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse(BASE + f"nd:\n  interfaces:\n    eth0:\n      {section}\n", "t.yaml")
    assert message in str(exc.value)


def test_undeclared_interface_is_an_error() -> None:
    with pytest.raises(ProfileError) as exc:
        parse(BASE + "nd:\n  interfaces:\n    lan9: {routers: [{mac: '02:00:00:00:00:01'}]}\n", "t")
    assert "nd.interfaces.lan9 names interface 'lan9'" in str(exc.value)


# ------------------------------------------------------------------------------- judgements


def _cfg(**kw: Any) -> NdInterface:
    base: dict[str, Any] = {"routers": [{"address": ROUTER_LL, "mac": ROUTER_MAC}]}
    return NdArea.model_validate({"interfaces": {"eth0": {**base, **kw}}}).interfaces["eth0"]


def _obs(*ras: RouterAdvert | None) -> RaObservation:
    return RaObservation(
        interface="eth0",
        source="fe80::110",
        rs_sent=1,
        listen_seconds=3.5,
        adverts=tuple(r for r in ras if r),
    )


def _run(check: Any, cfg: NdInterface, obs: RaObservation) -> str | None:
    from sixcheck.check import Simple
    from sixcheck.probes.nd import RouterAdverts

    target = Simple("eth0", (RouterAdverts("eth0"),), {"cfg": cfg})
    try:
        check(target, lambda req: obs, {})
    except AssertionError as exc:
        return str(exc)
    return None


def test_rogue_router_named_with_mac_and_prefix() -> None:
    rogue = decode_ra(
        _ra(
            src="fe80::ff:fe00:166",
            mac="02:00:00:00:01:66",
            prefixes=[("2001:db8:bad::", 1, 1, 86400, 14400)],
            prf=3,
        )
    )
    msg = _run(nd_checks.test_no_rogue_router, _cfg(), _obs(decode_ra(_ra()), rogue))
    assert msg is not None
    assert msg.startswith(
        "rogue router fe80::ff:fe00:166 (02:00:00:00:01:66) on eth0 advertises 2001:db8:bad::/64"
    )
    assert _run(nd_checks.test_no_rogue_router, _cfg(), _obs(decode_ra(_ra()))) is None


def test_no_ra_message() -> None:
    msg = _run(nd_checks.test_ra_received, _cfg(), _obs())
    assert msg is not None
    assert msg.startswith(
        "no RA within 3.5 s on eth0 (sent 1 RS from fe80::110): is radvd running?"
    )


def test_router_lifetime_zero_fails_only_when_a_default_router_is_required() -> None:
    obs = _obs(decode_ra(_ra(lifetime=0)))
    msg = _run(nd_checks.test_ra_received, _cfg(), obs)
    assert msg is not None
    assert "router lifetime 0" in msg
    assert _run(nd_checks.test_ra_received, _cfg(default_router=False), obs) is None


def test_forwarded_ra_fails() -> None:
    msg = _run(nd_checks.test_ra_received, _cfg(), _obs(decode_ra(_ra(hlim=254))))
    assert msg is not None
    assert "hop limit 254" in msg


def test_prefix_checks() -> None:
    want = {"prefixes": [{"prefix": "2001:db8:1:1::/64"}]}
    ok = _obs(decode_ra(_ra()))
    assert _run(nd_checks.test_ra_prefixes, _cfg(**want), ok) is None
    wrong = _obs(decode_ra(_ra(prefixes=[("2001:db8:2:1::", 1, 1, 86400, 14400)])))
    msg = _run(nd_checks.test_ra_prefixes, _cfg(**want), wrong)
    assert msg
    assert msg.startswith("2001:db8:1:1::/64 is not advertised on eth0")
    assert "advertises 2001:db8:2:1::/64" in msg
    flags = _obs(decode_ra(_ra(prefixes=[("2001:db8:1:1::", 1, 0, 86400, 14400)])))
    msg = _run(nd_checks.test_ra_prefixes, _cfg(**want), flags)
    assert msg
    assert "L=1 A=0, expected L=1 A=1" in msg
    insane = _obs(decode_ra(_ra(prefixes=[("2001:db8:1:1::", 1, 1, 100, 200)])))
    msg = _run(nd_checks.test_ra_prefixes, _cfg(**want), insane)
    assert msg
    assert "preferred lifetime 200 s > valid lifetime 100 s" in msg
    extra = _obs(
        decode_ra(
            _ra(
                prefixes=[
                    ("2001:db8:1:1::", 1, 1, 86400, 14400),
                    ("2001:db8:9::", 1, 1, 86400, 14400),
                ]
            )
        )
    )
    msg = _run(nd_checks.test_ra_prefixes, _cfg(**want), extra)
    assert msg
    assert "also advertises 2001:db8:9::/64" in msg
    assert _run(nd_checks.test_ra_prefixes, _cfg(only_listed_prefixes=False, **want), extra) is None


def test_rdnss_dnssl_mtu_flags() -> None:
    cfg = _cfg(rdnss=["2001:db8:53::53"], mtu=1500, managed=False, other=True)
    msg = _run(nd_checks.test_ra_dns, cfg, _obs(decode_ra(_ra())))
    assert msg
    assert msg.startswith("no RDNSS in the RA from fe80::ff:fe00:101 (02:00:00:00:01:01)")
    good = _obs(decode_ra(_ra(rdnss=["2001:db8:53::53"], mtu=1500, O=1)))
    assert _run(nd_checks.test_ra_dns, cfg, good) is None
    assert _run(nd_checks.test_ra_mtu, cfg, good) is None
    assert _run(nd_checks.test_ra_flags, cfg, good) is None
    msg = _run(nd_checks.test_ra_mtu, cfg, _obs(decode_ra(_ra(mtu=1280))))
    assert msg
    assert "carries MTU 1280, expected 1500" in msg
    msg = _run(nd_checks.test_ra_flags, cfg, _obs(decode_ra(_ra(M=1, O=1))))
    assert msg
    assert "has M=1, expected M=0" in msg


def test_no_rogue_router_needs_the_solicitation_sent() -> None:
    """Periodic RAs heard while the RS could not be sent are no proof that nobody else answers
    solicitations: "no rogue router" must not pass on half a probe."""
    unsolicited = replace(_obs(decode_ra(_ra())), rs_sent=0)
    msg = _run(nd_checks.test_no_rogue_router, _cfg(), unsolicited)
    assert msg is not None
    assert msg.startswith(
        "could not tell whether a rogue router is present on eth0: the Router Solicitation "
        "could not be sent"
    ), msg
    assert _run(nd_checks.test_ra_received, _cfg(), unsolicited) is None  # what was heard holds
