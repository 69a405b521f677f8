"""The ntp checks against the lab's real chrony (and its skewed responder): all pass on the healthy
site from the LAN host; ntp-down and ntp-skewed fail with messages naming server and cause."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_dns_lab import failed, outcomes, run_lan

from conftest import needs_root
from sixcheck.lab import Lab

pytestmark = [needs_root, pytest.mark.lab]

CHECKS = ["checks/test_ntp.py"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(f"n{os.getpid()}") as lab:
        yield lab


def test_healthy_chrony_passes(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 0, out
    got = outcomes(data)
    assert set(got.values()) == {"passed"}
    assert len(got) == 6  # 3 checks x (address, name)
    (entry,) = [c for c in data["checks"] if c["id"].endswith("test_ntp_offset[ntp.example.net]")]
    text = str(entry)
    assert "'stratum': 3" in text  # chrony's local stratum 3
    assert "'address': '2001:db8:123::123'" in text  # the name resolved to its AAAA


def test_ntp_down_fails_naming_server_and_cause(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["ntp-down"])
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 1, out
    bad = failed(data)
    assert set(bad) == set(outcomes(data))  # nothing to judge without an answer
    msg = bad["test_ntp_answers[2001:db8:123::123]"]
    assert msg.startswith("NTP server 2001:db8:123::123 answered with ICMPv6 port unreachable") or (
        "did not answer over UDP/IPv6 within 1.5 s (timeout)" in msg
    ), msg
    assert bad["test_ntp_offset[2001:db8:123::123]"].startswith("could not tell the clock offset")


def test_ntp_skewed_fails_only_the_offset(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["ntp-skewed"])
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 1, out
    bad = failed(data)
    assert set(bad) == {"test_ntp_offset[2001:db8:123::123]", "test_ntp_offset[ntp.example.net]"}
    msg = bad["test_ntp_offset[2001:db8:123::123]"]
    assert "NTP server 2001:db8:123::123 differs from the local clock by +300.0" in msg or (
        "NTP server 2001:db8:123::123 differs from the local clock by +299.9" in msg
    ), msg
    assert "expected within ±1 s" in msg


def test_ntp_unsynchronised_is_no_kiss(lab: Lab, tmp_path: Path) -> None:
    """chronyd with no source and no `local` line: leap 3, stratum 0, no kiss code."""
    lab.up(faults=["ntp-unsynchronised"])
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 1, out
    bad = failed(data)
    assert set(bad) == {
        f"test_ntp_{c}[{s}]"
        for c in ("synchronised", "offset")
        for s in ("2001:db8:123::123", "ntp.example.net")
    }, bad  # it answers: test_ntp_answers passes
    msg = bad["test_ntp_synchronised[2001:db8:123::123]"]
    assert "NTP server 2001:db8:123::123 is unsynchronised: leap indicator 3" in msg, msg
    assert "stratum 0" in msg
    assert "The server has no time source; fix its upstream" in msg
    assert "Kiss" not in msg
    (entry,) = [c for c in data["checks"] if c["id"].endswith("synchronised[2001:db8:123::123]")]
    assert "'refid_hex': '0x" in str(entry)


def test_ntp_rate_kiss_names_the_code(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["ntp-kiss-rate"])
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 1, out
    bad = failed(data)
    assert set(bad) == set(outcomes(data))  # nothing to judge in a kiss
    msg = bad["test_ntp_answers[2001:db8:123::123]"]
    assert "answered with a Kiss-o'-Death, code RATE (rate exceeded" in msg, msg
    assert "refid 0x52415445" in msg
    assert "query less often" in msg
    assert "Kiss-o'-Death (RATE)" in bad["test_ntp_synchronised[2001:db8:123::123]"]


def test_ntp_stale_fails_only_synchronised(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["ntp-stale"])
    rc, data, out = run_lan(lab, tmp_path, CHECKS)
    assert rc == 1, out
    bad = failed(data)
    assert set(bad) == {
        "test_ntp_synchronised[2001:db8:123::123]",
        "test_ntp_synchronised[ntp.example.net]",
    }, bad
    msg = bad["test_ntp_synchronised[2001:db8:123::123]"]
    assert "claims to be synchronised (leap 0, stratum 2" in msg, msg
    assert "last set its clock 5 h 0 min ago" in msg
    assert "expected within 2 h 0 min" in msg
    assert "coasting on its own clock (stale)" in msg
