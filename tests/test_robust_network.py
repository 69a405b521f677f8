"""Dead and hostile networks: every check fails with a clear message, the run ends within its
deadline, nothing crashes.

A throwaway namespace per case; small responders written here listen on loopback addresses inside
it: a DNS server answering garbage over UDP and accepting TCP without ever speaking, an NTP server
sending short packets. The other cases take the network away: interface missing or down, IPv6
disabled, no route. No timing beyond "finished within the run deadline + slack".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import netns

pytestmark = [needs_root, pytest.mark.lab]

RUN_DEADLINE = 8.0
SLACK = 20.0  # interpreter start-up and reports on a shared 2-core machine

PROFILE = f"""\
description: a host on a network that is dead or lies
node: {{role: host}}
interfaces:
  eth0: {{role: lan, upstream_ra: true}}
timeouts: {{probe: 1, ra_listen: 1.5, run: {RUN_DEADLINE}}}
sysctl:
  interfaces:
    eth0: {{disable_ipv6: 0, accept_ra: 1}}
dns:
  resolvers: ["2001:db8:53::53"]
  lookups:
    - {{name: www.example.net, type: AAAA, expect: any}}
ntp:
  servers: ["2001:db8:123::123"]
firewall:
  outbound_allow:
    - {{hosts: ["2001:db8:80::80"], tcp: [80]}}
"""

RESPONDERS = r"""
import socket, threading, time
def udp(addr, port, reply):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(reply(data), peer)
def tcp_silent(addr, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(16)
    held = []
    while True:
        c, _ = s.accept(); held.append(c)  # accept, never speak, never close
# DNS: the query id echoed, then noise (a header claiming 3 answers it does not carry)
threading.Thread(target=udp, args=("2001:db8:53::53", 53,
    lambda q: q[:2] + b"\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00" + b"\xff" * 7), daemon=True).start()
threading.Thread(target=tcp_silent, args=("2001:db8:53::53", 53), daemon=True).start()
# NTP: 7 bytes instead of 48
threading.Thread(target=udp, args=("2001:db8:123::123", 123, lambda q: b"\x24\x02\x00\x00\x00\x00\x00"), daemon=True).start()
# web: accepts, never speaks
threading.Thread(target=tcp_silent, args=("2001:db8:80::80", 80), daemon=True).start()
print("ready", flush=True)
while True: time.sleep(60)
"""


def _setup(ns: str, case: str) -> None:
    cmds = []
    if case != "interface-missing":
        cmds += [
            "ip link add eth0 type veth peer name void0",
            "sysctl -qw net.ipv6.conf.void0.disable_ipv6=1",
            "ip link set void0 up",
        ]
        if case != "interface-down":
            cmds += ["ip link set eth0 up", "ip -6 addr add 2001:db8:1:1::10/64 dev eth0 nodad"]
            if case != "no-route":
                cmds += ["ip -6 route add default via 2001:db8:1:1::1 dev eth0"]
    if case == "hostile":
        cmds += [
            f"ip -6 addr add {a}/128 dev lo"
            for a in ("2001:db8:53::53", "2001:db8:123::123", "2001:db8:80::80")
        ]
    if case == "ipv6-disabled":
        cmds += [
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
            "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1",
        ]
    for c in cmds:
        netns.run(ns, c, check=True)


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f = tmp_path_factory.mktemp("net") / "dead.yaml"
    f.write_text(PROFILE)
    return f


def _run(ns: str, profile: Path, out: Path) -> tuple[int, dict[str, Any], str, float]:
    t = time.monotonic()
    proc = netns.run_pytest_in(
        ns,
        [
            "--profile",
            str(profile),
            "--json-file",
            str(out),
            "--no-report",
            "-p",
            "no:cacheprovider",
        ],
        REPO,
        timeout=RUN_DEADLINE + SLACK + 30,
    )
    took = time.monotonic() - t
    data = json.loads(out.read_text()) if out.exists() else {"checks": []}
    return proc.returncode, data, proc.stdout + proc.stderr, took


@pytest.fixture
def responders() -> Iterator[Any]:
    """Start the hostile responders in a namespace; killed by PID afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(ns: str) -> None:
        p = subprocess.Popen(
            netns.exec_argv(ns, [sys.executable, "-c", RESPONDERS]),
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(p)
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"

    yield start
    for p in started:
        p.kill()
        p.wait(5)
        if p.stdout is not None:
            p.stdout.close()


@pytest.mark.parametrize(
    "case", ["hostile", "interface-missing", "interface-down", "ipv6-disabled", "no-route"]
)
def test_dead_or_hostile_network(
    case: str, profile_file: Path, tmp_path: Path, responders: Any
) -> None:
    with netns.temp_netns("sxdead") as ns:
        _setup(ns, case)
        if case == "hostile":
            responders(ns)
        rc, data, out, took = _run(ns, profile_file, tmp_path / "r.json")
    assert "Traceback" not in out, out[-3000:]
    assert "INTERNALERROR" not in out, out[-3000:]
    assert rc == 1, f"exit {rc}: failures expected, not a harness error\n{out[-3000:]}"
    assert took < RUN_DEADLINE + SLACK, f"run took {took:.1f} s"
    by = {c["id"].split("::", 1)[1]: c for c in data["checks"]}
    # every check that did not pass says why, and nothing about DNS or NTP passes
    for k, c in by.items():
        if c["outcome"] != "passed":
            assert len(c["message"]) > 20, (k, c["message"])
    for area in ("dns", "ntp"):
        got = {k: c["outcome"] for k, c in by.items() if c["area"] == area}
        assert got, by.keys()
        assert "passed" not in got.values(), got
    if case == "hostile":
        failed = [c for c in by.values() if c["outcome"] == "failed"]
        dns = [c["message"] for c in failed if c["area"] == "dns"]
        ntp = [c["message"] for c in failed if c["area"] == "ntp"]
        assert any("2001:db8:53::53" in m and "malformed" in m for m in dns), dns
        assert any("2001:db8:53::53" in m and "TCP" in m for m in dns), dns
        assert any("2001:db8:123::123" in m for m in ntp), ntp
    if case == "interface-missing":
        assert any("eth0" in c["message"] and "exist" in c["message"] for c in by.values()), by
