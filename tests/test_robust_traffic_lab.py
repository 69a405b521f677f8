"""Bounded traffic: a full run of the LAN host's profile sends a small, bounded number of packets.

tcpdump on the node's eth0 counts every frame it sends during one `pytest --profile lab-lan` run.
Measured 29 (19 DNS, 5 TCP, 2 NTP, 1 RS, 1 NS, 1 echo); the bounds below leave room for one retry
of every probe, never more (see benchmarks/README.md, "Bounded traffic").
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

LAN_MAC = "02:00:00:00:01:10"
#: kind -> most packets a run may send (the lab-lan profile: 1 resolver x 2 transports x 6 lookups
#: + 2 PTR + host resolvers, 2 NTP servers, 2 firewall targets, 1 RA listen, 1 neighbour, 1 echo).
#: dhcpv6: 3 Information-Requests (plain, EFI class, iPXE class), each retransmitted at most once;
#: the node answers each Reply with a port unreachable (no DHCPv6 client listens): icmp6 + 2 * 3.
BOUNDS = {
    "dns": 2 * 19,
    "ntp": 2 * 2,
    "tcp": 4 * 5,
    "rs": 1,
    "icmp6": 2 * 3 + 2 * 3,
    "dhcpv6": 2 * 3,
    "other": 4,
}
TOTAL = 72


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(f"b{os.getpid()}") as lab:
        lab.up()
        yield lab


def _kind(line: str) -> str:
    if "router solicitation" in line:
        return "rs"
    if "ICMP6" in line:
        return "icmp6"
    if "dhcp6" in line:
        return "dhcpv6"
    if ".53:" in line or ".53 " in line:
        return "dns"
    if ".123:" in line:
        return "ntp"
    if "Flags" in line:
        return "tcp"
    return "other"


def test_full_run_sends_a_bounded_number_of_packets(lab: Lab, tmp_path: Path) -> None:
    pcap = tmp_path / "lan.pcap"
    cap = subprocess.Popen(
        netns.exec_argv(
            lab.ns("lan"),
            [
                "tcpdump",
                "-U",
                "-Z",
                "root",
                "-i",
                "eth0",
                "-nn",
                "-w",
                str(pcap),
                f"ether src {LAN_MAC}",
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (pcap.exists() and pcap.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc = netns.run_pytest_in(
            lab.ns("lan"),
            ["--profile", "profiles/lab-lan.yaml", "--no-report", "-p", "no:cacheprovider"],
            REPO,
            timeout=120,
        )
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(5)
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = subprocess.run(
        ["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    counts = Counter(_kind(ln) for ln in lines)
    assert counts["dns"] > 0, lines  # the capture saw the run
    over = {k: (n, BOUNDS[k]) for k, n in counts.items() if n > BOUNDS[k]}
    assert not over, f"more packets than bounded: {over}\n" + "\n".join(lines)
    assert sum(counts.values()) <= TOTAL, counts
