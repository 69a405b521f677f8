"""Per kind of observation: what differs between two runs of a healthy site (ports, timestamps,
round trips, lifetimes ticking down) is no change; what describes the network is, one line each."""

from __future__ import annotations

import dataclasses
from typing import Any

from sixcheck import baseline as bl
from sixcheck.probes.base import Observation, ProbeRequest
from sixcheck.probes.dns import DnsAnswer, DnsQuery, DnsRecord
from sixcheck.probes.icmp import Echo, EchoResult, PathMtu, PathMtuResult
from sixcheck.probes.nd import (
    NeighborObservation,
    NeighborResult,
    PrefixInfo,
    RaObservation,
    RouterAdvert,
    RouterAdverts,
    RouterNeighbors,
)
from sixcheck.probes.netlink import (
    Address,
    AddressList,
    ReadAddresses,
    ReadRoutes,
    Route,
    RouteTable,
)
from sixcheck.probes.ntp import NtpAnswer, NtpQuery
from sixcheck.probes.sockio import IcmpError
from sixcheck.probes.sysctl import SysctlRead, SysctlValue
from sixcheck.probes.tcp import PortResult, TcpConnect


def _lines(
    req: ProbeRequest[Any],
    before: Observation,
    after: Observation,
    notes: dict[str, Any] | None = None,
) -> list[str]:
    """The comparison's lines for one check observing `req`, through the results JSON."""

    def doc(obs: Observation, outcome: str) -> dict[str, Any]:
        ev: list[dict[str, Any]] = [{"notes": notes}] if notes else []
        ev.append(
            {
                "request": req.describe(),
                "observation": {"kind": type(obs).__name__, **obs.evidence()},
            }
        )
        check = {"id": "checks/test_x.py::test_x", "area": "x", "outcome": "passed", "evidence": ev}
        return {"schema": "sixcheck-results/1", "checks": [check]}

    (change,) = bl.compare(doc(before, "passed"), doc(after, "passed"), "b.json").changes
    return [f"{f.request}: {f.text()}" for f in change.evidence]


# ---- DNS

Q = DnsQuery(server="2001:db8::53", name="www.example.net")  # type: ignore[arg-type]
REC = DnsRecord(name="www.example.net.", rdtype="AAAA", ttl=300, value="2001:db8:80::80")
OK = DnsAnswer(
    server="2001:db8::53", port=53, transport="udp", family="ipv6", name="www.example.net",
    rdtype="AAAA", source="2001:db8:1::10", source_port=40001, responded=True, rcode="NOERROR",
    flags=("QR", "RD", "RA"), answers=(REC,), elapsed=0.004,
)  # fmt: skip


def test_dns_port_ttl_and_time_are_not_changes() -> None:
    again = dataclasses.replace(
        OK, source_port=51234, elapsed=0.09, answers=(dataclasses.replace(REC, ttl=17),)
    )
    assert _lines(Q, OK, again) == []


def test_dns_refused_reads_as_rcode_and_answers() -> None:
    refused = dataclasses.replace(OK, rcode="REFUSED", answers=(), source_port=333)
    assert _lines(Q, OK, refused) == [
        "AAAA www.example.net @ 2001:db8::53 over UDP: rcode NOERROR → REFUSED",
        "AAAA www.example.net @ 2001:db8::53 over UDP: answers 2001:db8:80::80 → none",
    ]


def test_dns_timeout() -> None:
    silent = dataclasses.replace(OK, responded=False, rcode=None, answers=(), error_kind="timeout")
    lines = _lines(Q, OK, silent)
    assert "AAAA www.example.net @ 2001:db8::53 over UDP: error_kind none → timeout" in lines
    assert "AAAA www.example.net @ 2001:db8::53 over UDP: responded yes → no" in lines


# ---- NTP: timestamps and round trips never; the offset when it crosses a limit

NQ = NtpQuery(server="2001:db8::123")
NTP = NtpAnswer(
    server="2001:db8::123", address="2001:db8::123", responded=True, version=4, mode=4,
    stratum=2, leap=0, offset=0.0012, delay=0.0004, rtt=0.0005, t1=1.0, t2=1.1, t3=1.2, t4=1.3,
    root_delay=0.01, root_dispersion=0.02, poll=6,
)  # fmt: skip


def test_ntp_timestamps_and_small_offsets_are_not_changes() -> None:
    again = dataclasses.replace(
        NTP, offset=-0.0031, delay=0.002, rtt=0.003, t1=9.0, t2=9.1, t3=9.2, t4=9.3, poll=7
    )
    assert _lines(NQ, NTP, again) == []


def test_ntp_offset_beyond_the_step_threshold_and_stratum() -> None:
    off = dataclasses.replace(NTP, offset=-0.5, stratum=16)
    assert _lines(NQ, NTP, off) == [
        "NTP 2001:db8::123: stratum 2 → 16",
        "NTP 2001:db8::123: offset 0.0012 → -0.5",
    ]


def test_ntp_offset_beyond_the_profiles_bound() -> None:
    # 20 ms: below NTP's step, beyond this profile's 10 ms bound (the check records it as a note)
    off = dataclasses.replace(NTP, offset=0.02)
    assert _lines(NQ, NTP, off) == []
    assert _lines(NQ, NTP, off, notes={"max_offset_s": 0.01}) == [
        "NTP 2001:db8::123: offset 0.0012 → 0.02"
    ]


# ---- RA: a new router and prefix named; lifetimes only when they reach zero

RQ = RouterAdverts(interface="eth0")
PFX = PrefixInfo(
    prefix="2001:db8:1::/64", on_link=True, autonomous=True, valid_lifetime=86400,
    preferred_lifetime=14400,
)  # fmt: skip
ADV = RouterAdvert(
    router="fe80::1", mac="02:00:00:00:00:01", destination="ff02::1", ip_hop_limit=255,
    cur_hop_limit=64, managed=False, other=False, preference="medium", router_lifetime=1800,
    reachable_time=0, retrans_timer=0, prefixes=(PFX,), at=0.01, count=1,
)  # fmt: skip
RA = RaObservation(
    interface="eth0", source="fe80::10", rs_sent=1, listen_seconds=2.0, adverts=(ADV,)
)


def test_ra_timing_and_counts_are_not_changes() -> None:
    again = dataclasses.replace(
        RA,
        rs_sent=2,
        listen_seconds=3.0,
        adverts=(
            dataclasses.replace(
                ADV,
                at=1.5,
                count=3,
                prefixes=(
                    dataclasses.replace(PFX, valid_lifetime=86000, preferred_lifetime=14000),
                ),
            ),
        ),
    )
    assert _lines(RQ, RA, again) == []


def test_ra_rogue_router_and_prefix_named() -> None:
    rogue = RouterAdvert(
        **{
            **dataclasses.asdict(ADV),
            "router": "fe80::bad",
            "mac": "02:00:00:00:0b:ad",
            "prefixes": (dataclasses.replace(PFX, prefix="2001:db8:bad::/64"),),
        }
    )
    lines = _lines(RQ, RA, dataclasses.replace(RA, adverts=(ADV, rogue)))
    assert "RA on eth0: adverts router + fe80::bad" in lines
    assert "RA on eth0: adverts prefixes + 2001:db8:bad::/64 on-link autonomous" in lines
    assert not any("lifetime" in line for line in lines)


def test_ra_router_lifetime_zero() -> None:
    gone = dataclasses.replace(RA, adverts=(dataclasses.replace(ADV, router_lifetime=0),))
    assert _lines(RQ, RA, gone) == ["RA on eth0: adverts router_lifetime 1800 → 0"]


# ---- ports: deny style and who sent the error, never the round trip


def test_port_deny_style_and_offender() -> None:
    req = TcpConnect(dst="2001:db8:80::80", port=443)
    open_ = PortResult(dst="2001:db8:80::80", port=443, proto="tcp", family="ipv6", state="open",
                       rtt_ms=1.2, attempts=1, sent_at="t0")  # fmt: skip
    assert (
        _lines(req, open_, dataclasses.replace(open_, rtt_ms=9.9, attempts=2, sent_at="t1")) == []
    )
    denied = dataclasses.replace(
        open_,
        state="icmp",
        icmp=IcmpError(
            origin="icmp6",
            type=1,
            code=1,
            name="admin-prohibited",
            errno=13,
            offender="2001:db8::1",
        ),
    )
    assert _lines(req, open_, denied) == [
        "TCP [2001:db8:80::80]:443: state open → icmp",
        "TCP [2001:db8:80::80]:443: icmp name none → admin-prohibited",
        "TCP [2001:db8:80::80]:443: icmp offender none → 2001:db8::1",
    ]


# ---- echo, path MTU, sysctl, addresses, routes, neighbours


def test_echo_rtt_is_not_a_change_the_replier_is() -> None:
    req = Echo(dst="2001:db8::1")
    ok = EchoResult(dst="2001:db8::1", family="ipv6", size=64, dont_fragment=True, outcome="reply",
                    rtt_ms=0.3, reply_from="2001:db8::1", attempts=1)  # fmt: skip
    assert _lines(req, ok, dataclasses.replace(ok, rtt_ms=5.0, attempts=2)) == []
    assert _lines(req, ok, dataclasses.replace(ok, outcome="timeout", reply_from=None)) == [
        "ping 2001:db8::1: outcome reply → timeout",
        "ping 2001:db8::1: reply_from 2001:db8::1 → none",
    ]


def test_path_mtu_steps_are_not_changes() -> None:
    req = PathMtu(dst="2001:db8::1", mtu=1500)
    ok = PathMtuResult(dst="2001:db8::1", mtu=1500, start=1500, verdict="ok")
    step = EchoResult(dst="2001:db8::1", family="ipv6", size=1500, dont_fragment=True, rtt_ms=2.0)
    assert _lines(req, ok, dataclasses.replace(ok, steps=(step,))) == []
    assert _lines(req, ok, dataclasses.replace(ok, verdict="blackhole", blackhole_size=1500)) == [
        "path MTU to 2001:db8::1: verdict ok → blackhole",
        "path MTU to 2001:db8::1: blackhole_size none → 1500",
    ]


def test_sysctl_value() -> None:
    req = SysctlRead(key="net.ipv6.conf.all.forwarding")
    one = SysctlValue(key="net.ipv6.conf.all.forwarding", value="1")
    assert _lines(req, one, dataclasses.replace(one, value="0")) == [
        "sysctl net.ipv6.conf.all.forwarding: value 1 → 0"
    ]


def test_address_lifetimes_tick_down_addresses_do_not() -> None:
    req = ReadAddresses(interface="eth0")
    addr = Address(interface="eth0", address="2001:db8:1::10", prefixlen=64, scope="global",
                   flags=("dynamic",), valid_lft=86400, preferred_lft=14400)  # fmt: skip
    al = AddressList(interface="eth0", addresses=(addr,))
    older = dataclasses.replace(addr, valid_lft=80000, preferred_lft=8000)
    assert _lines(req, al, dataclasses.replace(al, addresses=(older,))) == []
    assert _lines(req, al, dataclasses.replace(al, addresses=())) == [
        "addresses of eth0: addresses 2001:db8:1::10 prefixlen 64 scope global → none",
        "addresses of eth0: addresses flags dynamic → none",
    ]


def test_route_expiry_is_not_a_change_the_gateway_is() -> None:
    req = ReadRoutes()
    r = Route(table=254, type="unicast", dst="default", gateway="fe80::1", dev="eth0", metric=1024,
              proto="ra", expires=1790, pref="medium")  # fmt: skip
    rt = RouteTable(table=254, routes=(r,))
    assert _lines(req, rt, RouteTable(table=254, routes=(dataclasses.replace(r, expires=5),))) == []
    moved = RouteTable(table=254, routes=(dataclasses.replace(r, gateway="fe80::bad"),))
    (line,) = _lines(req, rt, moved)
    assert line.startswith("routes in table main: routes default type unicast gateway fe80::1 ")
    assert line.endswith(
        "→ default type unicast gateway fe80::bad dev eth0 metric 1024 pref medium"
    )


def test_neighbour_rtt_and_cache_state_are_not_changes() -> None:
    req = RouterNeighbors(interface="eth0", targets=("fe80::1",))
    nr = NeighborResult(target="fe80::1", na_received=True, na_router=True, na_mac="02:00:00:00:00:01",
                        na_rtt_ms=0.2, echo_ok=True, cache_state="REACHABLE")  # fmt: skip
    no = NeighborObservation(interface="eth0", results=(nr,))
    again = NeighborObservation(
        interface="eth0", results=(dataclasses.replace(nr, na_rtt_ms=3.0, cache_state="STALE"),)
    )
    assert _lines(req, no, again) == []


def test_older_json_without_the_table_compares_with_this_sixchecks_table() -> None:
    refused = dataclasses.replace(OK, rcode="REFUSED", answers=(), source_port=333)

    def doc(obs: Observation, outcome: str) -> dict[str, Any]:
        ev = {"request": Q.describe(), "observation": {"kind": "DnsAnswer", **obs.evidence()}}
        check = {"id": "c::t", "area": "dns", "outcome": outcome, "evidence": [ev]}
        return {"schema": "sixcheck-results/1", "checks": [check]}

    old = doc(OK, "passed")
    assert "observation_fields" not in old
    (change,) = bl.compare(old, doc(refused, "failed"), "old.json").changes
    assert [f.field for f in change.evidence] == ["rcode", "answers"]
