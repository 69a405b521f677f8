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
