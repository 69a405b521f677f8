"""Tunnel area without a lab: the schema, and the path-MTU walk's verdicts on scripted echoes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sixcheck.probes import icmp
from sixcheck.probes.base import ProbeContext
from sixcheck.probes.icmp import EchoResult, PathMtu
from sixcheck.schema import ProfileError
from sixcheck.schema.profile import parse

GW = """node: {role: router}
interfaces:
  tun6: {role: tunnel}
"""
CTX = ProbeContext(probe_timeout=0.1, ra_listen=0.1, run_timeout=5, has_raw=True)


def test_schema() -> None:
    p = parse(
        GW
        + """tunnel:
  interface: tun6
  mtu: 1280
  addresses: ["2001:db8:0:7::2"]
  underlay: 192.0.2.1
  far_end: "2001:db8:0:7::1"
  default_route: false
  path_mtu: {target: "2001:db8:77::1"}
""",
        "gw.yaml",
    )
    assert p.tunnel is not None
    assert p.tunnel.path_mtu is not None
    assert (p.tunnel.path_mtu.mtu, p.tunnel.path_mtu.start) == (1280, 1500)


def test_schema_errors() -> None:
    with pytest.raises(ProfileError) as exc:
        parse(
            "node: {role: router}\ntunnel:\n  interface: tun9\n  mtu: 1000\n"
            "  path_mtu: {target: '2001:db8::1', mtu: 1400, start: 1400}\n",
            "gw.yaml",
        )
    text = str(exc.value)
    assert "tunnel.mtu" in text
    assert "start (1400) must be larger than mtu (1400)" in text


def test_schema_tunnel_interface_must_be_declared() -> None:
    with pytest.raises(ProfileError) as exc:
        parse("node: {role: router}\ntunnel: {interface: tun9}\n", "gw.yaml")
    assert "names interface 'tun9', not declared" in str(exc.value)


def _scripted(monkeypatch: pytest.MonkeyPatch, answers: dict[int, dict[str, Any]]) -> None:
    async def fake_echo(
        dst: str,
        size: int,
        timeout: float,
        dont_fragment: bool = True,
        tries: int = 2,
        pace: Any = None,
    ) -> EchoResult:
        return EchoResult(dst=dst, family="ipv6", size=size, dont_fragment=True, **answers[size])

    monkeypatch.setattr(icmp, "echo", fake_echo)


def test_walk_follows_local_mtu_and_finds_the_black_hole(monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted(
        monkeypatch,
        {
            1280: {"outcome": "reply", "rtt_ms": 1.0},
            1500: {"outcome": "too-big-local", "mtu": 1400},
            1400: {"outcome": "timeout", "attempts": 2},
        },
    )
    r = asyncio.run(PathMtu("2001:db8:77::1", 1280).run_one(CTX))
    assert r.verdict == "blackhole"
    assert r.blackhole_size == 1400
    assert r.signalled_mtu == 1400


def test_walk_ok_when_packet_too_big_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from sixcheck.probes.sockio import IcmpError

    ptb = IcmpError(origin="icmp6", type=2, code=0, name="packet-too-big", errno=90, info=1280)
    _scripted(
        monkeypatch,
        {
            1280: {"outcome": "reply", "rtt_ms": 1.0},
            1500: {"outcome": "icmp-error", "icmp": ptb},
        },
    )
    r = asyncio.run(PathMtu("2001:db8:77::1", 1280).run_one(CTX))
    assert r.verdict == "ok"
    assert r.signalled_mtu == 1280


def test_walk_path_broken_when_even_the_mtu_does_not_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _scripted(monkeypatch, {1280: {"outcome": "timeout", "attempts": 2}})
    r = asyncio.run(PathMtu("2001:db8:77::1", 1280).run_one(CTX))
    assert r.verdict == "path-broken"
