"""Firewall area without a lab: schema rules, error-queue decoding, pacing, and the TCP/UDP
classification against loopback (the only place a unit test may send to)."""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import replace
from typing import Any

import pytest

from conftest import load_checks
from sixcheck.check import Simple
from sixcheck.probes import sockio
from sixcheck.probes.icmp import Echo, EchoResult
from sixcheck.probes.tcp import PortResult, TcpConnect, tcp_connect
from sixcheck.probes.udp import PAYLOADS, payload_bytes, udp_probe
from sixcheck.schema import ProfileError
from sixcheck.schema.profile import parse

HEAD = "node: {role: outside}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as exc:
        parse(HEAD + text, "p.yaml")
    return [p.message for p in exc.value.problems]


def test_schema_accepts_a_full_section() -> None:
    p = parse(
        HEAD
        + """
firewall:
  rate: 200
  concurrency: 16
  inbound_deny:
    - {hosts: ["2001:db8::1", "2001:db8::2"], tcp: [22, 80], udp: [53], deny: drop}
  inbound_allow:
    - {hosts: ["2001:db8::1"], tcp: [443]}
  echo: {policy: denied, hosts: ["2001:db8::1"]}
  outbound_allow:
    - {hosts: ["2001:db8:53::53"], udp: [53], udp_payload: dns}
""",
        "p.yaml",
    )
    assert p.firewall is not None
    assert p.firewall.inbound_deny[0].count() == 6
    assert p.firewall.inbound_deny[0].deny == "drop"
    assert p.firewall.echo is not None
    assert p.firewall.echo.policy == "denied"


def test_schema_rejects_prefixes_bad_styles_and_empty_groups() -> None:
    msgs = _problems(
        """
firewall:
  inbound_deny:
    - {hosts: ["2001:db8::/64"], tcp: [22]}
    - {hosts: ["2001:db8::1"], tcp: [22], deny: silently}
    - {hosts: ["2001:db8::1"]}
"""
    )
    assert any("is not an IPv6 address" in m for m in msgs), msgs
    assert any("'drop', 'reject' or 'any'" in m for m in msgs), msgs
    assert any("at least one port" in m for m in msgs), msgs


def test_schema_caps_the_audit() -> None:
    hosts = ", ".join(f'"2001:db8::{i:x}"' for i in range(1, 1400))
    msgs = _problems(
        f"firewall:\n  inbound_deny:\n    - {{hosts: [{hosts}], tcp: [22, 80, 443]}}\n"
    )
    assert any("at most 4096" in m and "never sweeps" in m for m in msgs), msgs


def test_schema_udp_allow_needs_a_payload_the_service_answers() -> None:
    msgs = _problems('firewall:\n  outbound_allow:\n    - {hosts: ["2001:db8::1"], udp: [53]}\n')
    assert any("udp_payload" in m and "cannot be told from a filtered one" in m for m in msgs)
    msgs = _problems(
        'firewall:\n  outbound_allow:\n    - {hosts: ["2001:db8::1"], udp: [53], udp_payload: zz}\n'
    )
    assert any("not a UDP payload" in m for m in msgs), msgs


def test_payloads() -> None:
    assert payload_bytes("ntp")[0] == 0x23
    assert len(payload_bytes("ntp")) == 48
    assert payload_bytes("dns") == PAYLOADS["dns"]
    assert payload_bytes("dead") == b"\xde\xad"


def _ee(origin: int, itype: int, code: int, info: int, offender: str | None) -> bytes:
    ee = struct.pack("=IBBBBII", 13, origin, itype, code, 0, info, 0)
    if offender is None:
        return ee + bytes(28)
    addr = socket.inet_pton(socket.AF_INET6, offender)
    return ee + struct.pack("=HHI", socket.AF_INET6, 0, 0) + addr + struct.pack("=I", 0)


def test_errqueue_decoding_names_type_code_and_sender() -> None:
    err = sockio.parse_errqueue(
        [(sockio.SOL_IPV6, sockio.IPV6_RECVERR, _ee(3, 1, 1, 0, "2001:db8:0:1::2"))]
    )
    assert err is not None
    assert (err.origin, err.type, err.code, err.name) == ("icmp6", 1, 1, "admin-prohibited")
    assert err.offender == "2001:db8:0:1::2"
    assert err.describe() == "ICMPv6 admin-prohibited (type 1 code 1) from 2001:db8:0:1::2"
    ptb = sockio.parse_errqueue([(sockio.SOL_IPV6, sockio.IPV6_RECVERR, _ee(3, 2, 0, 1280, None))])
    assert ptb is not None
    assert ptb.name == "packet-too-big"
    assert ptb.info == 1280
    assert "MTU 1280" in ptb.describe()
    local = sockio.parse_errqueue(
        [(sockio.SOL_IPV6, sockio.IPV6_RECVERR, _ee(1, 0, 0, 1400, None))]
    )
    assert local is not None
    assert local.origin == "local"
    assert local.info == 1400
    assert sockio.icmp_name(3, 1, 6) == "reject-route"
    assert sockio.icmp_name(3, 1, 4) == "port-unreachable"
    assert sockio.parse_errqueue([(0, 99, b"")]) is None


def _listener() -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.bind(("::1", 0))
    s.listen(8)
    return s


def test_tcp_open_and_reset_on_loopback() -> None:
    with _listener() as srv:
        port = srv.getsockname()[1]
        o = asyncio.run(tcp_connect("::1", port, 1.0))
        assert o.state == "open", o
        assert o.family == "ipv6"
        assert o.source == "::1"
        assert o.interface is None
    closed = asyncio.run(tcp_connect("::1", port, 1.0))
    assert closed.state == "reset", closed
    assert closed.how() == "rejected with a TCP reset"


def test_udp_closed_port_is_port_unreachable_from_the_target() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    o = asyncio.run(udp_probe("::1", port, b"x", 1.0))
    assert o.state == "icmp", o
    assert o.icmp is not None
    assert o.icmp.name == "port-unreachable"
    assert o.from_target
    assert "the port is closed" in o.how()


def test_udp_answer_is_open_and_silence_is_honest() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]

        async def echo_back() -> None:
            loop = asyncio.get_running_loop()
            s.setblocking(False)
            data, addr = await loop.sock_recvfrom(s, 100)
            await loop.sock_sendto(s, data, addr)

        async def main() -> object:
            task = asyncio.create_task(echo_back())
            res = await udp_probe("::1", port, b"hello", 1.0)
            await task
            return res

        o = asyncio.run(main())
        assert getattr(o, "state", None) == "open"
        assert getattr(o, "reply_bytes", None) == 5
        silent = asyncio.run(udp_probe("::1", port, b"hello", 0.2))
        assert silent.state == "silent"
        assert silent.attempts == 2
        assert "open|filtered" in silent.how()


# ------------------------------------------------------------------------------- verdicts


CHECKS = load_checks("firewall")
PROFILE = parse(HEAD + "firewall:\n  inbound_deny: [{hosts: ['2001:db8:1::10'], tcp: [22]}]\n", "p")
HERE = "2001:db8:f::2"  # the vantage's own source address


def _denied(style: str, o: PortResult) -> str | None:
    """test_inbound_denied's failure message (None: passed) on one crafted observation."""
    req = TcpConnect(o.dst, o.port)
    target = CHECKS.PortTarget(f"{o.dst}-{o.proto}-{o.port}", req, style, (req,))
    try:
        CHECKS.test_inbound_denied(target, lambda _r: o, {}, PROFILE)
    except AssertionError as exc:
        return str(exc)
    return None


def _port(**kw: Any) -> PortResult:
    base: dict[str, Any] = {"dst": "2001:db8:1::10", "port": 22, "proto": "tcp"}
    return PortResult(family="ipv6", source=HERE, attempts=2, **{**base, **kw})


def _icmp(name: str, offender: str) -> sockio.IcmpError:
    return sockio.IcmpError("icmp6", 1, 1, name, 13, offender=offender)


@pytest.mark.parametrize("style", ["any", "drop", "reject"])
def test_inbound_denied_never_passes_on_a_probe_that_broke(style: str) -> None:
    crashed = _port(error="probe crashed: OSError: [Errno 24] Too many open files")
    msg = _denied(style, crashed)
    assert msg is not None
    assert msg.startswith(
        "could not tell whether [2001:db8:1::10]:22/tcp is denied: the probe failed: probe "
        "crashed: OSError"
    ), msg


@pytest.mark.parametrize("style", ["any", "reject"])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_inbound_denied_never_passes_on_an_error_from_this_node(style: str, proto: str) -> None:
    """This node's own OUTPUT REJECT (or an unanswered neighbour solicitation for the next hop)
    sends the ICMPv6 error from its own address: the probe never left, nothing was denied."""
    local = _port(proto=proto, state="icmp", icmp=_icmp("admin-prohibited", HERE))
    msg = _denied(style, local)
    assert msg is not None
    assert msg.startswith(
        f"could not tell whether [2001:db8:1::10]:22/{proto} is denied: the ICMPv6 "
        f"admin-prohibited (type 1 code 1) from {HERE} came from this node itself"
    ), msg
    assert "never left it" in msg
    nd = _port(proto=proto, state="icmp", icmp=_icmp("address-unreachable", HERE))
    assert (_denied(style, nd) or "").startswith("could not tell whether"), style


def test_inbound_denied_still_passes_on_real_denials() -> None:
    gw = _port(state="icmp", icmp=_icmp("admin-prohibited", "2001:db8:0:1::1"))
    assert _denied("reject", gw) is None
    assert _denied("any", gw) is None
    assert _denied("drop", _port(state="dropped")) is None
    assert _denied("any", _port(state="reset")) is None
    assert "accepts connections from outside" in (
        _denied("any", _port(state="open", rtt_ms=1.0)) or ""
    )


def _echo_verdict(o: EchoResult) -> str | None:
    target = Simple(o.dst, (Echo(o.dst),), {"policy": "denied"})
    try:
        CHECKS.test_echo_policy(target, lambda _r: o, {})
    except AssertionError as exc:
        return str(exc)
    return None


def test_echo_denied_never_passes_on_a_probe_that_broke_or_never_left() -> None:
    base = EchoResult(dst="2001:db8:1::10", family="ipv6", size=64, dont_fragment=True, source=HERE)
    crashed = replace(base, error="echo crashed: OSError: boom")
    assert (_echo_verdict(crashed) or "").startswith("could not tell: a 64-byte echo"), crashed
    local = replace(base, outcome="icmp-error", icmp=_icmp("admin-prohibited", HERE))
    msg = _echo_verdict(local)
    assert msg is not None
    assert msg.startswith("could not tell whether 2001:db8:1::10 answers ICMPv6 echo"), msg
    assert _echo_verdict(replace(base, outcome="timeout", attempts=2)) is None
    gw = replace(base, outcome="icmp-error", icmp=_icmp("admin-prohibited", "2001:db8:0:1::1"))
    assert _echo_verdict(gw) is None


class _InfoSocket:
    """Hands out a crafted struct tcp_info (only the fields refused_locally reads)."""

    def __init__(self, retransmits: int, retrans: int) -> None:
        self.raw = struct.pack("=8B8I", 2, 0, retransmits, 0, 0, 0, 0, 0, *([0] * 7), retrans)

    def getsockopt(self, level: int, opt: int, size: int) -> bytes:
        assert (level, opt) == (socket.IPPROTO_TCP, socket.TCP_INFO)
        return self.raw[:size]


def test_a_syn_retried_but_never_sent_is_a_local_refusal() -> None:
    from sixcheck.probes.tcp import refused_locally

    def refused(retransmits: int, retrans: int) -> bool:
        sock: Any = _InfoSocket(retransmits, retrans)
        return refused_locally(sock)

    assert refused(1, 0)  # retried, nothing left this node: its own OUTPUT drop
    assert not refused(1, 1)  # the retry went out: dropped on the way
    assert not refused(0, 0)  # before the first retry nothing can be told
