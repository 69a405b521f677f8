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
from typing import Any

import pytest

from conftest import REPO, load_checks
from sixcheck.check import Simple
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


def _reply(
    stratum: int = 2,
    leap: int = 0,
    skew: float = 0.0,
    refid: bytes = b"",
    ref_age: float = 30.0,
    **extra: object,
) -> object:
    """A server reply as scapy's NTP layer builds it; `extra` overrides header fields."""
    from scapy.layers.ntp import NTPHeader

    now = time.time() + skew + NTP_EPOCH_OFFSET
    fields: dict[str, object] = {
        "leap": leap,
        "mode": 4,
        "stratum": stratum,
        "ref": now - ref_age,
        "recv": now,
        "sent": now + 0.001,
        "delay": 0.5,
        "dispersion": 0.25,
        **extra,
    }
    if stratum < 2:
        fields["ref_id"] = refid
    else:
        fields["id"] = "192.0.2.1"
    raw = bytearray(bytes(NTPHeader(**fields)))
    if stratum < 2:
        raw[12:16] = refid.ljust(4, b"\0")  # exactly these bytes, whatever scapy makes of them
    return NTPHeader(bytes(raw))


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


def _eval(reply: object) -> NtpAnswer:
    t1 = time.time()
    return _evaluate(dict(BASE), reply, t1, t1 + 0.001, None, None)


def test_kiss_of_death_names_its_code() -> None:
    ans = _eval(_reply(stratum=0, refid=b"RATE"))
    assert (ans.state, ans.kiss_code, ans.unsynchronised_why) == ("kiss", "RATE", None)
    assert ans.responded
    assert ans.refid == "RATE"
    assert ans.refid_hex == "0x52415445"
    assert ans.offset is None  # a KoD's timestamps mean nothing
    # ntpd sends its kisses with leap 3: still a kiss, not "unsynchronised"
    deny = _eval(_reply(stratum=0, leap=3, refid=b"DENY"))
    assert (deny.state, deny.kiss_code) == ("kiss", "DENY")


@pytest.mark.parametrize(
    ("stratum", "leap", "refid", "why"),
    [
        (0, 3, b"\0\0\0\0", "leap indicator 3 (alarm: clock not synchronised)"),
        (0, 0, b"\0\0\0\0", "stratum 0 with no kiss code in the refid"),
        (0, 0, b"\x7f\x7f\x01\x00", "stratum 0 with no kiss code in the refid"),
        (16, 0, b"", "stratum 16 (unsynchronised)"),
        (16, 3, b"", "leap indicator 3 (alarm: clock not synchronised)"),
        (3, 3, b"", "leap indicator 3 (alarm: clock not synchronised)"),
    ],
)
def test_unsynchronised_is_never_a_kiss(stratum: int, leap: int, refid: bytes, why: str) -> None:
    ans = _eval(_reply(stratum=stratum, leap=leap, refid=refid))
    assert ans.responded, ans.error
    assert (ans.state, ans.kiss_code, ans.unsynchronised_why) == ("unsynchronised", None, why)
    assert (ans.stratum, ans.leap) == (stratum, leap)
    assert ans.offset is None
    if stratum == 0:
        assert ans.refid_hex == "0x" + refid.hex()


def test_stale_reply_keeps_its_reference_age() -> None:
    ans = _eval(_reply(stratum=3, ref_age=5 * 3600))
    assert ans.state == "time"
    assert ans.reference_age is not None
    assert 5 * 3600 - 1 < ans.reference_age < 5 * 3600 + 1
    assert ans.reference_time is not None
    assert abs(time.time() - 5 * 3600 - ans.reference_time) < 2
    assert ans.offset is not None  # a stale server's time is still what clients follow
    never = _eval(_reply(stratum=3, ref=0))
    assert (never.reference_time, never.reference_age) == (None, None)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"mode": 3}, "replied in mode 3, not 4 (server)"),
        ({"mode": 5}, "replied in mode 5, not 4 (server)"),
        ({"version": 2}, "replied with NTP version 2, expected 4 (or 3)"),
        ({"version": 7}, "replied with NTP version 7, expected 4 (or 3)"),
        ({"sent": 0}, "replied with a zero transmit timestamp"),
    ],
)
def test_bogus_replies_are_errors_with_their_fields(fields: dict[str, object], why: str) -> None:
    ans = _eval(_reply(**fields))
    assert not ans.responded
    assert ans.error_kind == "bogus"
    assert ans.error is not None
    assert ans.error.startswith("NTP server 2001:db8::123 " + why), ans.error
    assert ans.stratum == 2  # the raw header stays in the evidence
    assert ans.offset is None


def test_ntpv3_reply_is_accepted() -> None:
    ans = _eval(_reply(version=3))
    assert ans.responded, ans.error
    assert ans.version == 3


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


def _kod_server(sock: socket.socket, stop: threading.Event, stray: bool) -> None:
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
        raw[40:48] = bytes(req)[40:48]  # ntpd's kisses echo it as transmit time too
        if stray:
            raw[24] ^= 0xFF  # an origin that is not ours
        sock.sendto(bytes(raw), peer)


def _ask_kod_server(stray: bool, timeout: float = 1.0) -> NtpAnswer:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", 0))
    stop = threading.Event()
    th = threading.Thread(target=_kod_server, args=(sock, stop, stray), daemon=True)
    th.start()
    try:
        return asyncio.run(NtpQuery("::1", sock.getsockname()[1]).query(timeout))
    finally:
        stop.set()
        th.join()
        sock.close()


def test_probe_reports_kiss_of_death() -> None:
    ans = _ask_kod_server(stray=False)
    assert ans.responded, ans.error
    assert ans.kiss_code == "DENY"


def test_reply_to_someone_else_is_bogus_not_a_timeout() -> None:
    """A KoD whose origin is not ours must not be obeyed (RFC 8633: it may be spoofed); the
    probe waits for a real answer and then says what it got instead."""
    ans = _ask_kod_server(stray=True, timeout=0.3)
    assert not ans.responded
    assert ans.kiss_code is None
    assert ans.error_kind == "bogus"
    assert "answered, but not this request: the reply's origin timestamp" in (ans.error or "")


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


CHECKS = load_checks("ntp")
PROFILE = parse(HEAD + "ntp: {servers: ['2001:db8::123']}\n", "p")


def _verdicts(reply: object) -> tuple[dict[str, str | None], dict[str, Any]]:
    """Each ntp check's failure message (None: passed) on one crafted reply, and the evidence."""
    ans = _eval(reply)
    target = Simple("2001:db8::123", (NtpQuery("2001:db8::123"),))
    out: dict[str, str | None] = {}
    evidence: dict[str, Any] = {}
    for name in ("answers", "synchronised", "offset"):
        fn = getattr(CHECKS, f"test_ntp_{name}")
        kwargs: dict[str, Any] = {"profile": PROFILE} if name != "answers" else {}
        try:
            fn(target, lambda _r: ans, evidence, **kwargs)
            out[name] = None
        except AssertionError as exc:
            out[name] = str(exc)
    return out, evidence


def test_schema_stale_limits_have_defaults_and_bounds() -> None:
    assert PROFILE.ntp is not None
    assert (PROFILE.ntp.max_reference_age, PROFILE.ntp.max_root_distance) == (7200.0, 1.5)
    p = parse(HEAD + "ntp: {servers: ['2001:db8::1'], max_reference_age: 86400}\n", "p")
    assert p.ntp is not None
    assert p.ntp.max_reference_age == 86400
    with pytest.raises(ProfileError) as exc:
        parse(HEAD + "ntp: {servers: ['2001:db8::1'], max_reference_age: 0}\n", "p")
    assert "ntp.max_reference_age" in str(exc.value)


def test_healthy_reply_passes_every_check() -> None:
    got, evidence = _verdicts(_reply(stratum=2))
    assert got == {"answers": None, "synchronised": None, "offset": None}
    assert evidence["refid_hex"] == "0xc0000201"
    assert evidence["refid"] == "192.0.2.1"
    assert 29 < evidence["reference_age_s"] < 31
    assert evidence["reference_time"].endswith("Z")


def test_kiss_message_names_code_meaning_and_fix() -> None:
    got, evidence = _verdicts(_reply(stratum=0, refid=b"RATE"))
    assert got["answers"] is not None
    assert "answered with a Kiss-o'-Death, code RATE (rate exceeded" in got["answers"]
    assert "refid 0x52415445" in got["answers"]
    assert "query less often" in got["answers"]
    assert (got["synchronised"] or "").startswith("could not tell whether it is synchronised")
    assert (evidence["stratum"], evidence["refid"]) == (0, "RATE")
    deny, _ = _verdicts(_reply(stratum=0, refid=b"DENY"))
    assert "allow this node's address" in (deny["answers"] or "")
    odd, _ = _verdicts(_reply(stratum=0, refid=b"XYZW"))
    assert "code XYZW (a code RFC 5905 does not define" in (odd["answers"] or "")


def test_unsynchronised_message_is_no_kiss_and_names_the_upstream() -> None:
    got, evidence = _verdicts(_reply(stratum=0, leap=3, refid=b"\0\0\0\0"))
    assert got["answers"] is None  # it answered; not a Kiss-o'-Death
    msg = got["synchronised"] or ""
    assert "is unsynchronised: leap indicator 3 (alarm" in msg
    assert "leap 3, stratum 0, refid 0x00000000" in msg
    assert "The server has no time source; fix its upstream" in msg
    assert "Kiss" not in msg
    assert (got["offset"] or "").startswith("could not tell the clock offset")
    assert (evidence["leap"], evidence["stratum"], evidence["refid_hex"]) == (3, 0, "0x00000000")
    s16, _ = _verdicts(_reply(stratum=16))
    assert "is unsynchronised: stratum 16" in (s16["synchronised"] or "")


def test_stale_message_names_the_age_and_the_limit() -> None:
    got, evidence = _verdicts(_reply(stratum=3, ref_age=5 * 3600 + 60))
    assert got["answers"] is None
    assert got["offset"] is None
    msg = got["synchronised"] or ""
    assert "claims to be synchronised (leap 0, stratum 3" in msg
    assert "last set its clock 5 h 1 min ago" in msg
    assert "expected within 2 h 0 min" in msg
    assert "stale" in msg
    assert evidence["max_reference_age_s"] == 7200.0
    far, _ = _verdicts(_reply(stratum=3, dispersion=2.0))
    assert "root distance is 2.25 s" in (far["synchronised"] or "")


def test_bogus_message_says_what_was_wrong() -> None:
    got, _ = _verdicts(_reply(mode=3))
    assert "replied in mode 3, not 4 (server)" in (got["answers"] or "")
    assert "expected a server-mode (4) NTPv4 reply" in (got["answers"] or "")
    assert (got["offset"] or "").startswith("could not tell the clock offset")
