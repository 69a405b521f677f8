"""Area dhcpv6 without a network: Advertise decoding from scapy-built packets (status codes,
several servers, IA_PD with several prefixes, malformed options), and the probe's receive loop
over a fake packet socket (several servers, this node's ICMPv6 errors pinned to the answer)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from sixcheck.probes import dhcpv6 as d

CLIENT_MAC = "02:00:00:00:01:10"
CLIENT_LL = "fe80::ff:fe00:110"
DUID = d.probe_duid(CLIENT_MAC)


def _opts(*opts: Any) -> Any:
    from scapy.layers.dhcp6 import DUID_LL, DHCP6OptClientId, DHCP6OptServerId

    out: Any = DHCP6OptClientId(duid=DUID_LL(lladdr="00:00:00:00:00:00"))
    out = out / DHCP6OptServerId(duid=DUID_LL(lladdr="02:00:00:00:00:01"))
    for o in opts:
        out = out / o
    return out


def _advertise(xid: int, *opts: Any, reply: bool = False) -> bytes:
    from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6_Reply

    msg: Any = DHCP6_Reply(trid=xid) if reply else DHCP6_Advertise(trid=xid)
    return bytes(msg / _opts(*opts))


def test_advertise_with_addresses_prefixes_and_options() -> None:
    from scapy.layers.dhcp6 import (
        DHCP6OptDNSDomains,
        DHCP6OptDNSServers,
        DHCP6OptIA_NA,
        DHCP6OptIA_PD,
        DHCP6OptIAAddress,
        DHCP6OptIAPrefix,
        DHCP6OptPref,
        DHCP6OptSNTPServers,
    )

    raw = _advertise(
        0xABCDEF,
        DHCP6OptIA_NA(
            iaid=1, T1=1000, T2=2000, ianaopts=[DHCP6OptIAAddress(addr="2001:db8::1000")]
        ),
        DHCP6OptIA_PD(
            iaid=2,
            T1=1000,
            T2=2000,
            iapdopt=[
                DHCP6OptIAPrefix(prefix="2001:db8:100::", plen=48, preflft=300, validlft=600),
                DHCP6OptIAPrefix(prefix="2001:db8:101::", plen=48, preflft=300, validlft=600),
            ],
        ),
        DHCP6OptDNSServers(dnsservers=["2001:db8:53::53", "2001:db8:53::54"]),
        DHCP6OptDNSDomains(dnsdomains=["lan.example.net", "Example.NET"]),
        DHCP6OptSNTPServers(sntpservers=["2001:db8:123::123"]),
        DHCP6OptPref(prefval=255),
    )
    xid, r = d.decode_message(raw, server="fe80::1")
    assert xid == 0xABCDEF
    assert r.message == "advertise"
    assert not r.problems
    assert r.server_duid == "00:03:00:01:02:00:00:00:00:01"
    assert [x.value for x in r.addresses()] == ["2001:db8::1000"]
    assert [x.value for x in r.prefixes()] == ["2001:db8:100::/48", "2001:db8:101::/48"]
    assert r.prefixes()[0].preferred_lifetime == 300
    assert r.ia("IA_PD")[0].t1 == 1000
    assert r.ia("IA_PD")[0].failure() is None
    assert r.dns_servers == ("2001:db8:53::53", "2001:db8:53::54")
    assert r.domains == ("lan.example.net", "example.net")
    assert r.sntp_servers == ("2001:db8:123::123",)
    assert r.preference == 255


@pytest.mark.parametrize(
    ("kind", "code", "name"), [("IA_NA", 2, "NoAddrsAvail"), ("IA_PD", 6, "NoPrefixAvail")]
)
def test_status_codes_in_ias(kind: str, code: int, name: str) -> None:
    from scapy.layers.dhcp6 import DHCP6OptIA_NA, DHCP6OptIA_PD, DHCP6OptStatusCode

    status = DHCP6OptStatusCode(statuscode=code, statusmsg=b"none left")
    ia = (
        DHCP6OptIA_NA(iaid=1, ianaopts=[status])
        if kind == "IA_NA"
        else DHCP6OptIA_PD(iaid=1, iapdopt=[status])
    )
    _, r = d.decode_message(_advertise(1, ia))
    (offer,) = r.ia(kind)
    failure = offer.failure()
    assert failure is not None
    assert failure.name == name
    assert failure.code == code
    assert failure.describe() == f"{name} ({code}): 'none left'"
    assert not r.addresses()
    assert not r.prefixes()


def test_message_level_status_and_bootfile() -> None:
    from scapy.layers.dhcp6 import DHCP6OptBootFileUrl, DHCP6OptStatusCode

    _, r = d.decode_message(
        _advertise(
            7,
            DHCP6OptStatusCode(statuscode=5, statusmsg=b"use multicast"),
            DHCP6OptBootFileUrl(optdata=b"http://[2001:db8::1]/ipxe.efi"),
            reply=True,
        )
    )
    assert r.message == "reply"
    assert r.status is not None
    assert r.status.name == "UseMulticast"
    assert r.bootfile_url == "http://[2001:db8::1]/ipxe.efi"


def test_ntp_suboptions() -> None:
    # option 56: suboption 1 (address) and 3 (FQDN), as Kea sends them
    sub1 = struct.pack("!HH", 1, 16) + socket.inet_pton(socket.AF_INET6, "2001:db8:123::123")
    name = b"\x03ntp\x07example\x03net\x00"
    sub3 = struct.pack("!HH", 3, len(name)) + name
    opt = struct.pack("!HH", 56, len(sub1 + sub3)) + sub1 + sub3
    _, r = d.decode_message(b"\x02\x00\x00\x09" + opt)
    assert r.ntp_servers == ("2001:db8:123::123", "ntp.example.net")
    assert not r.problems


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\x02\x00", "shorter than its header"),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 23, 40) + b"\x00" * 8, "claims 40 bytes"),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 23, 10) + b"\x00" * 10, "not a list of IPv6"),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 25, 4) + b"\x00" * 4, "shorter than its 12-byte"),
        (
            b"\x02\x00\x00\x01"
            + struct.pack("!HH", 25, 16)
            + b"\x00" * 12
            + struct.pack("!HH", 26, 30),
            "claims 30 bytes",
        ),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 24, 3) + b"\x05ab", "malformed name"),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 7, 2) + b"\x00\x01", "preference option"),
        (b"\x02\x00\x00\x01" + struct.pack("!HH", 13, 1) + b"\x00", "status code option"),
        (b"\x02\x00\x00\x01\x00\x17\x00", "stray byte"),
    ],
)
def test_malformed_options_are_named_problems(payload: bytes, problem: str) -> None:
    _, r = d.decode_message(payload, server="fe80::66")
    assert r.problems, "a malformed answer must carry a named problem"
    assert any(problem in p for p in r.problems), r.problems


def test_echoed_client_id() -> None:
    from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6OptUnknown

    raw = bytes(DHCP6_Advertise(trid=1) / DHCP6OptUnknown(optcode=1, data=DUID))
    assert d.decode_message(raw, client_duid=DUID)[1].echoes_client_id
    assert not d.decode_message(raw, client_duid=b"\x00\x04other")[1].echoes_client_id


def test_built_solicit_has_no_rapid_commit_and_asks_what_profile_wants() -> None:
    raw = d.build_message(
        information=False,
        xid=5,
        duid=DUID,
        ia_na=True,
        ia_pd=True,
        client_arch=7,
        user_class="iPXE",
    )
    assert raw[0] == d.MSG_SOLICIT
    assert raw[1:4] == b"\x00\x00\x05"
    codes = [c for c, _ in d._options(raw[4:], "t", [])]
    assert d.OPT_RAPID_COMMIT not in codes
    assert {d.OPT_IA_NA, d.OPT_IA_PD, d.OPT_CLIENT_ARCH, d.OPT_USER_CLASS, d.OPT_ORO} <= set(codes)
    info = d.build_message(information=True, xid=5, duid=DUID, ia_na=True)
    assert info[0] == d.MSG_INFORMATION_REQUEST
    assert d.OPT_IA_NA not in [c for c, _ in d._options(info[4:], "t", [])]


# ------------------------------------------------------------------------------- receive loop


def _eth(src_mac: str, src: str, dst: str, nh: int, l4: bytes) -> bytes:
    ip = struct.pack("!IHBB", 6 << 28, len(l4), nh, 64)
    ip += socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    macs = bytes.fromhex(CLIENT_MAC.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    return macs + b"\x86\xdd" + ip + l4


def _udp(payload: bytes, sport: int = 547, dport: int = 546) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


class FakePacketSocket:
    """Answers each frame the probe sends with the frames `respond(sent_payload)` returns."""

    def __init__(self, respond: Any) -> None:
        self.a, self.b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.respond = respond
        self.sent: list[bytes] = []

    def fileno(self) -> int:
        return self.a.fileno()

    def send(self, frame: bytes) -> int:
        self.sent.append(frame)
        dhcp = frame[14 + 40 + 8 :]
        for pkttype, data in self.respond(dhcp):
            self.b.send(bytes([pkttype]) + data)
        return len(frame)

    def setblocking(self, flag: bool) -> None:
        self.a.setblocking(flag)

    def recvfrom(self, n: int) -> tuple[bytes, tuple[Any, ...]]:
        data = self.a.recv(n)
        return data[1:], ("eth0", 0x86DD, data[0], 1, b"")


def _observe(respond: Any, window: float = 0.3, **kw: Any) -> d.Dhcpv6Observation:
    req = d.Dhcpv6Exchange("eth0", window=window, **kw)
    base = d.Dhcpv6Observation(interface="eth0", asked=req.asked(), window=window)
    sock: Any = FakePacketSocket(respond)
    try:
        return asyncio.run(d._run(req, sock, base, DUID, 0x010203, CLIENT_MAC, CLIENT_LL))
    finally:
        sock.a.close()
        sock.b.close()


def test_receive_loop_keeps_every_server_and_pins_local_rejects() -> None:
    from scapy.layers.dhcp6 import DHCP6OptIA_PD, DHCP6OptIAPrefix

    def respond(sent: bytes) -> list[tuple[int, bytes]]:
        xid = int.from_bytes(sent[1:4], "big")
        good = _advertise(
            xid, DHCP6OptIA_PD(iaid=2, iapdopt=[DHCP6OptIAPrefix(prefix="2001:db8:1::", plen=48)])
        )
        rogue = _advertise(xid) + struct.pack("!HH", 23, 3) + b"bad"
        frames = [
            (0, _eth("02:00:00:00:00:01", "fe80::1", CLIENT_LL, 17, _udp(good))),
            (0, _eth("02:00:00:00:00:66", "fe80::66", CLIENT_LL, 17, _udp(rogue))),
            (0, _eth("02:00:00:00:00:01", "fe80::1", CLIENT_LL, 17, _udp(_advertise(xid ^ 1)))),
        ]
        # this node's firewall rejects the first answer: ICMPv6 admin-prohibited quoting it
        quoted = frames[0][1][14:]
        icmp = struct.pack("!BBHI", 1, 1, 0, 0) + quoted
        frames.append((d.PACKET_OUTGOING, _eth(CLIENT_MAC, CLIENT_LL, "fe80::1", 58, icmp)))
        return frames

    obs = _observe(respond, ia_pd=True)
    assert obs.sent == 1
    assert obs.error is None
    assert [r.server for r in obs.replies] == ["fe80::1", "fe80::66"]
    assert obs.other_transactions == 1
    good, rogue = obs.replies
    assert good.local_response == "admin-prohibited"
    assert [p.value for p in good.prefixes()] == ["2001:db8:1::/48"]
    assert rogue.local_response is None
    assert any("not a list" in p for p in rogue.problems)


def test_receive_loop_retransmits_once_when_nothing_comes_back() -> None:
    obs = _observe(lambda sent: [], window=0.2)
    assert obs.sent == 2
    assert obs.replies == ()
    assert obs.error is None
    assert obs.evidence()["replies"] == []


# ------------------------------------------------------------------------------- schema

_BASE = """
node: {role: router}
interfaces:
  wan0: {role: wan}
  lan0: {role: lan}
dhcpv6:
"""


def test_schema_accepts_the_readme_shape() -> None:
    from sixcheck.schema import parse

    p = parse(
        _BASE
        + """
  interfaces:
    wan0:
      servers: [{duid: "00:03:00:01:02:00:5E:00:53:01"}, {address: "fe80::1"}]
      ia_pd: true
      prefix: {length: 56, within: "2001:db8::/32"}
      ntp: ["2001:db8::123", ntp.example.net]
      client_classes:
        - {name: efi, arch: 7, expect: {bootfile_url: "http://[2001:db8::1]/ipxe.efi"}}
  delegated: {length: 56, within: "2001:db8::/32", held_by: route, lan: [lan0]}
""",
        "p.yaml",
    )
    assert p.dhcpv6 is not None
    wan = p.dhcpv6.interfaces["wan0"]
    assert wan.servers[0].duid == "00:03:00:01:02:00:5e:00:53:01"
    assert wan.servers[0].matches("fe80::9", "00:03:00:01:02:00:5e:00:53:01")
    assert not wan.servers[1].matches("fe80::9", None)
    assert p.dhcpv6.window == 2.0
    assert "dhcpv6" in p.areas()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  interfaces:\n    wan0: {servers: [{address: 'fe80::1'}]}", "ask for something"),
        (
            "  interfaces:\n    wan0: {servers: [{address: '2001:db8::1'}], ia_na: true}",
            "link-local",
        ),
        ("  interfaces:\n    wan0: {servers: [{duid: 'xyz'}], ia_na: true}", "not a DUID"),
        ("  interfaces:\n    wan0: {servers: [{}], ia_na: true}", "'duid'"),
        (
            "  interfaces:\n    wan0: {servers: [{address: 'fe80::1'}], ia_na: true, "
            "prefix: {length: 48}}",
            "prefix needs ia_pd",
        ),
        (
            "  interfaces:\n    wan0: {servers: [{address: 'fe80::1'}], ia_pd: true, "
            "prefix: {length: 40, within: '2001:db8::/48'}}",
            "cannot lie within",
        ),
        ("  interfaces:\n    eth9: {servers: [{address: 'fe80::1'}], ia_na: true}", "eth9"),
        ("  delegated: {prefix: '2001:db8::/48', length: 48}", "'prefix' is exact"),
        ("  delegated: {length: 48, lan: [lan9]}", "lan9"),
        ("  window: 0", "greater than 0"),
        ("  listen_whole_window: 'yes'\n  delegated: {length: 48, held_by: route}", "boolean"),
        ("  listen_whole_window: 1\n  delegated: {length: 48, held_by: route}", "boolean"),
        ("  {}", "list 'interfaces'"),
    ],
)
def test_schema_problems_are_one_clear_line(section: str, message: str) -> None:
    from sixcheck.schema import ProfileError, parse

    with pytest.raises(ProfileError) as exc:
        parse(_BASE + section + "\n", "p.yaml")
    assert message in str(exc.value), str(exc.value)


# ------------------------------------------------------------------------------- verdicts


def _reach(*obs: d.Dhcpv6Observation) -> str | None:
    """test_dhcpv6_replies_reach_this_node's message (None: passed) over crafted exchanges."""
    from conftest import load_checks
    from sixcheck.check import Simple

    reqs = tuple(d.Dhcpv6Exchange("wan0", information=i == 1) for i in range(len(obs)))
    found = dict(zip(reqs, obs, strict=True))
    try:
        load_checks("dhcpv6").test_dhcpv6_replies_reach_this_node(
            Simple("wan0", reqs), found.__getitem__, {}
        )
    except AssertionError as exc:
        return str(exc)
    return None


def _exchange(bound: bool | None, *local: str | None) -> d.Dhcpv6Observation:
    replies = tuple(
        d.Dhcpv6Reply(message="advertise", server="fe80::1", at=i, local_response=lr)
        for i, lr in enumerate(local)
    )
    return d.Dhcpv6Observation(
        interface="wan0", sent=1, window=1.0, replies=replies, client_port_bound=bound
    )


def test_replies_vanishing_inside_this_node_are_not_accepted() -> None:
    """Nothing listens on 546, yet no port unreachable went back: the answers were dropped
    inside this node (an INPUT DROP), which must not read as "accepted"."""
    msg = _reach(_exchange(False, None), _exchange(False, None, None))
    assert msg is not None
    assert msg.startswith(
        "could not tell whether this node accepts DHCPv6 answers on wan0: the answers of "
        "fe80::1 got no ICMPv6 back from this node although nothing on this node listens on "
        "UDP port 546"
    ), msg
    unread = _reach(_exchange(None, None))
    assert "could not be read" in (unread or ""), unread


def test_replies_reach_when_port_unreachable_or_a_client_takes_them() -> None:
    # one port unreachable per server is proof enough (the rest may hit the ICMPv6 rate limit)
    assert _reach(_exchange(False, "port-unreachable"), _exchange(False, None)) is None
    assert _reach(_exchange(True, None)) is None
    rejected = _reach(_exchange(False, "admin-prohibited"))
    assert "this node sent back ICMPv6 admin-prohibited" in (rejected or "")


# ------------------------------------------------------------------------------- adaptive window

LISTED_DUID = "00:03:00:01:02:00:00:00:00:01"  # what _advertise's DUID_LL server id reads as


def _answers(*servers: tuple[str, str]) -> Any:
    """A responder: each (MAC, link-local) answers every message sent, at once."""

    def respond(sent: bytes) -> list[tuple[int, bytes]]:
        xid = int.from_bytes(sent[1:4], "big")
        return [(0, _eth(mac, ll, CLIENT_LL, 17, _udp(_advertise(xid)))) for mac, ll in servers]

    return respond


SERVER = ("02:00:00:00:00:01", "fe80::1")
ROGUE = ("02:00:00:00:00:66", "fe80::66")


@pytest.mark.parametrize(
    ("servers", "kw", "stopped"),
    [
        ((SERVER,), {"servers": (("fe80::1", None),)}, "listed servers answered"),
        ((SERVER,), {"servers": ((None, LISTED_DUID),)}, "listed servers answered"),
        ((SERVER,), {"servers": (("fe80::1", LISTED_DUID.upper()),)}, "listed servers answered"),
        ((SERVER, ROGUE), {"servers": (("fe80::1", None),)}, "an unlisted server answered"),
        ((SERVER,), {"servers": (("fe80::1", None), ("fe80::2", None))}, "did not answer"),
        ((SERVER,), {"servers": (("fe80::1", "00:01"),)}, "an unlisted server answered"),
        ((SERVER,), {"servers": (("fe80::1", None),), "whole_window": True}, "listen_whole_window"),
        ((SERVER,), {}, "no servers listed"),
    ],
)
def test_window_closes_early_only_when_every_listed_server_and_nobody_else_answered(
    monkeypatch: pytest.MonkeyPatch, servers: Any, kw: dict[str, Any], stopped: str
) -> None:
    monkeypatch.setattr(d, "SETTLE_TIME", 0.05)
    obs = _observe(_answers(*servers), window=0.6, **kw)
    assert stopped in obs.stopped
    assert obs.stopped.startswith("window elapsed") == (stopped != "listed servers answered")
    assert [r.server for r in obs.replies] == [ll for _, ll in servers]
    assert obs.sent == 1  # answered: no retransmission
    assert obs.evidence()["stopped"] == obs.stopped


def test_early_close_still_pins_this_nodes_reject_of_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(d, "SETTLE_TIME", 0.0)

    def respond(sent: bytes) -> list[tuple[int, bytes]]:
        answer = _answers(SERVER)(sent)[0][1]
        icmp = struct.pack("!BBHI", 1, 1, 0, 0) + answer[14:]
        return [(0, answer), (d.PACKET_OUTGOING, _eth(CLIENT_MAC, CLIENT_LL, "fe80::1", 58, icmp))]

    obs = _observe(respond, window=0.6, servers=(("fe80::1", None),))
    assert obs.stopped == "listed servers answered"
    assert obs.replies[0].local_response == "admin-prohibited"


def test_settle_time_is_rfc_bounded() -> None:
    from sixcheck.probes.nd import MAX_RA_DELAY_TIME

    # no server-side delay in RFC 8415; never longer than the RA window's, never a whole window
    assert 0 < d.SETTLE_TIME <= MAX_RA_DELAY_TIME < 2.0


# ------------------------------------------------------------------------------- frames vs scapy


def _scapy_message(information: bool, **kw: Any) -> bytes:
    """What the probe built with scapy's DHCP6 layers before issue 15's rewrite."""
    from scapy.layers.dhcp6 import (
        USER_CLASS_DATA,
        DHCP6_InfoRequest,
        DHCP6_Solicit,
        DHCP6OptClientArchType,
        DHCP6OptElapsedTime,
        DHCP6OptIA_NA,
        DHCP6OptIA_PD,
        DHCP6OptOptReq,
        DHCP6OptUnknown,
        DHCP6OptUserClass,
    )

    msg: Any = DHCP6_InfoRequest(trid=kw["xid"]) if information else DHCP6_Solicit(trid=kw["xid"])
    msg = msg / DHCP6OptUnknown(optcode=d.OPT_CLIENTID, data=kw["duid"])
    msg = msg / DHCP6OptElapsedTime(elapsedtime=kw.get("elapsed_cs", 0))
    msg = msg / DHCP6OptOptReq(reqopts=list(d.DEFAULT_ORO))
    if kw.get("ia_na") and not information:
        msg = msg / DHCP6OptIA_NA(iaid=d.IAID_NA, T1=0, T2=0)
    if kw.get("ia_pd") and not information:
        msg = msg / DHCP6OptIA_PD(iaid=d.IAID_PD, T1=0, T2=0)
    if kw.get("client_arch") is not None:
        msg = msg / DHCP6OptClientArchType(archtypes=[kw["client_arch"]])
    if kw.get("user_class") is not None:
        msg = msg / DHCP6OptUserClass(
            userclassdata=[USER_CLASS_DATA(data=kw["user_class"].encode())]
        )
    return bytes(msg)


@pytest.mark.parametrize(
    "kw",
    [
        {"information": False, "ia_na": True},
        {"information": False, "ia_pd": True, "elapsed_cs": 100},
        {"information": False, "ia_na": True, "ia_pd": True, "client_arch": 7},
        {"information": True, "user_class": "iPXE"},
        {"information": True, "client_arch": 16, "user_class": "iPXE", "ia_na": True},
    ],
)
def test_built_message_is_byte_for_byte_what_scapy_builds(kw: dict[str, Any]) -> None:
    kw = {"xid": 0xA1B2C3, "duid": DUID, **kw}
    assert d.build_message(**kw) == _scapy_message(**kw)


def test_sent_frame_is_what_scapy_builds_and_reads() -> None:
    from scapy.layers.dhcp6 import DHCP6_Solicit
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    payload = d.build_message(information=False, xid=7, duid=DUID, ia_na=True)
    frame = d._frame(CLIENT_MAC, CLIENT_LL, payload)
    want = (
        Ether(src=CLIENT_MAC, dst=d.ALL_DHCP_AGENTS_MAC)
        / IPv6(src=CLIENT_LL, dst=d.ALL_DHCP_AGENTS, hlim=1)
        / UDP(sport=d.CLIENT_PORT, dport=d.SERVER_PORT)
    )
    assert frame == bytes(want / payload)
    pkt = Ether(frame)
    assert DHCP6_Solicit in pkt
    assert pkt[DHCP6_Solicit].trid == 7
    sent = pkt[UDP].chksum
    del pkt[UDP].chksum
    assert Ether(bytes(pkt))[UDP].chksum == sent


def test_hot_path_imports_no_scapy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from sixcheck.probes import dhcpv6 as d; "
        "d._frame('02:00:00:00:01:10', 'fe80::1', d.build_message(information=False, xid=1, "
        "duid=d.probe_duid('02:00:00:00:01:10'), ia_na=True)); "
        "print(any(m.startswith('scapy') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checks_ask_with_the_profiles_servers_and_listening() -> None:
    """Every check's exchange carries the listed servers (the early close waits for them) and the
    area's `listen_whole_window`; one request per exchange, whichever check builds it."""
    from conftest import load_checks
    from sixcheck.schema import parse

    p = parse(
        _BASE
        + """
  listen_whole_window: true
  interfaces:
    lan0:
      servers: [{duid: "00:03:00:01:02:00:5E:00:53:01", address: "fe80::1"}, {address: "fe80::2"}]
      ia_na: true
      information: true
""",
        "p.yaml",
    )
    assert p.dhcpv6 is not None
    checks = load_checks("dhcpv6")
    reqs = checks._exchanges("lan0", p.dhcpv6.interfaces["lan0"], p.dhcpv6)
    assert [r.information for r in reqs] == [False, True]
    for r in reqs:
        assert r.servers == (("fe80::1", "00:03:00:01:02:00:5e:00:53:01"), ("fe80::2", None))
        assert r.whole_window
    assert checks._main("lan0", p.dhcpv6.interfaces["lan0"], p.dhcpv6, ia_na=True) == reqs[0]


def test_default_oro_is_the_named_options() -> None:
    """dhcpv6_requests spells the ORO in numbers (collection must not import dhcpv6 for names)."""
    assert d.DEFAULT_ORO == (
        d.OPT_DNS,
        d.OPT_DOMAINS,
        d.OPT_SNTP,
        d.OPT_NTP,
        d.OPT_BOOTFILE_URL,
        d.OPT_BOOTFILE_PARAM,
    )
