"""NTP area without a lab: schema, RFC 5905 arithmetic and KoD parsing on crafted replies, and
the probe against tiny servers on ::1 (the lab's skewed responder, a KoD sender, a silent one)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import REPO
from sixcheck.probes.base import ProbeContext
from sixcheck.probes.ntp import NTP_EPOCH_OFFSET, NtpAnswer, NtpQuery, _evaluate
from sixcheck.probes.plan import run_plan
from sixcheck.schema import ProfileError, parse

HEAD = "node: {role: host}\n"


def test_schema_servers_by_address_or_name_never_ipv4() -> None:
    p = parse(HEAD + "ntp: {servers: ['2001:DB8::123', ntp.example.net], max_offset: 0.5}\n", "p")
    assert p.ntp is not None
    assert p.ntp.servers == ["2001:db8::123", "ntp.example.net"]
    with pytest.raises(ProfileError) as exc:
        parse(HEAD + "ntp: {servers: [192.0.2.123]}\n", "p")
    assert "is an IPv4 address; NTP over IPv6 needs an IPv6 address or a name" in str(exc.value)
    with pytest.raises(ProfileError) as exc:
        parse(HEAD + "ntp: {servers: ['2001:db8::1'], max_stratum: 16}\n", "p")
    assert "ntp.max_stratum" in str(exc.value)


def _reply(stratum: int = 2, leap: int = 0, skew: float = 0.0, refid: bytes = b"") -> object:
    from scapy.layers.ntp import NTPHeader

    now = time.time() + skew + NTP_EPOCH_OFFSET
    fields: dict[str, object] = {
        "leap": leap,
        "mode": 4,
        "stratum": stratum,
        "recv": now,
        "sent": now + 0.001,
        "delay": 0.5,
        "dispersion": 0.25,
    }
    if stratum < 2:
        fields["ref_id"] = refid
    else:
        fields["id"] = "192.0.2.1"
    return NTPHeader(bytes(NTPHeader(**fields)))


BASE = {"server": "2001:db8::123", "address": "2001:db8::123", "port": 123}


def test_offset_and_delay_follow_rfc5905() -> None:
    reply = _reply(skew=120.0)
    t1 = time.time()
    ans = _evaluate(dict(BASE), reply, t1, t1 + 0.01, ("2001:db8::1", 4000, 0, 0), {})
    assert ans.responded
    assert ans.error is None
    assert ans.offset is not None
    assert 119.9 < ans.offset < 120.1
    assert ans.delay is not None
    assert -0.01 < ans.delay < 0.02
    assert ans.root_delay == 0.5
    assert ans.root_dispersion == 0.25
    assert ans.refid == "192.0.2.1"
    assert ans.source == "2001:db8::1"


def test_kiss_of_death_names_its_code() -> None:
    t1 = time.time()
    ans = _evaluate(dict(BASE), _reply(stratum=0, refid=b"RATE"), t1, t1, None, None)
    assert ans.kiss_code == "RATE"
    assert ans.offset is None  # a KoD's timestamps mean nothing


def test_leap_alarm_is_reported() -> None:
    t1 = time.time()
    ans = _evaluate(dict(BASE), _reply(stratum=16, leap=3), t1, t1, None, None)
    assert ans.leap == 3
    assert ans.leap_text == "alarm: clock not synchronised"
    assert ans.stratum == 16


@pytest.fixture
def liar() -> Iterator[int]:
    """The lab's skewed responder on [::1]:port (+300 s)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "sixcheck/lab/ntpliar.py"),
            "--bind",
            "::1",
            "--port",
            str(port),
            "--skew",
            "300",
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving on ..." once bound
    yield port
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_probe_measures_a_skewed_server(liar: int) -> None:
    ans = asyncio.run(NtpQuery("::1", liar).query(1.0))
    assert ans.responded, ans.error
    assert ans.stratum == 2
    assert ans.offset is not None
    assert 299 < ans.offset < 301
    assert ans.family == "ipv6"
    assert ans.source == "::1"


def _kod_server(sock: socket.socket, stop: threading.Event) -> None:
    from scapy.layers.ntp import NTPHeader

    sock.settimeout(0.1)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(512)
        except TimeoutError:
            continue
        req = NTPHeader(data)
        kod = NTPHeader(mode=4, stratum=0, leap=3, ref_id=b"DENY", orig=None, sent=0, recv=0)
        raw = bytearray(bytes(kod))
        raw[24:32] = bytes(req)[40:48]  # origin = the client's transmit timestamp
        sock.sendto(bytes(raw), peer)


def test_probe_reports_kiss_of_death() -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", 0))
    stop = threading.Event()
    th = threading.Thread(target=_kod_server, args=(sock, stop), daemon=True)
    th.start()
    try:
        ans = asyncio.run(NtpQuery("::1", sock.getsockname()[1]).query(1.0))
    finally:
        stop.set()
        th.join()
        sock.close()
    assert ans.responded, ans.error
    assert ans.kiss_code == "DENY"


def test_silent_servers_cost_one_timeout() -> None:
    socks = []
    for _ in range(5):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        socks.append(s)
    try:
        reqs = [NtpQuery("::1", s.getsockname()[1]) for s in socks]
        start = time.monotonic()
        results, _ = run_plan(reqs, ProbeContext(0.5, 1.0, 10.0, False))
        took = time.monotonic() - start
    finally:
        for s in socks:
            s.close()
    answers = [r for r in results.values() if isinstance(r, NtpAnswer)]
    assert [a.error_kind for a in answers] == ["timeout"] * 5
    assert "did not answer over UDP/IPv6 within 0.5 s (timeout)" in (answers[0].error or "")
    assert took < 2.5
