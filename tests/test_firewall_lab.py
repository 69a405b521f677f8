"""The firewall checks against the lab: the outside audit and the LAN host's outbound claims pass
on the healthy site, and each firewall fault fails the right checks with a message naming the
host/port and the cause. One healthy lab per module; a fault only where a test needs it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns
from sixcheck.lab import topology as t

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"f{os.getpid() % 100000}"
LAN_HOST = "2001:db8:1:1:0:ff:fe00:110"  # how pytest ids print the LAN host's address


def run_checks(lab: Lab, node: str, profile: str, tmp: Path) -> tuple[int, dict[str, Any]]:
    out = tmp / f"{node}.json"
    proc = netns.run_pytest_in(
        lab.ns(node),
        [
            "--profile",
            str(REPO / "profiles" / profile),
            "--no-report",
            "--json-file",
            str(out),
            "-p",
            "no:cacheprovider",
            "checks/test_firewall.py",
        ],
        REPO,
        timeout=120,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    assert "Traceback" not in proc.stdout, proc.stdout
    return proc.returncode, data


def outcomes(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        c["id"].split("::", 1)[1]: (c["outcome"], c.get("message") or "") for c in data["checks"]
    }


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


@contextlib.contextmanager
def fault(lab: Lab, name: str) -> Iterator[Lab]:
    """The site rebuilt with one fault, healthy again afterwards (for the following tests)."""
    lab.up(faults=[name])
    try:
        yield lab
    finally:
        lab.up()


def test_outside_audit_passes_on_the_healthy_site(healthy: Lab, tmp_path: Path) -> None:
    rc, data = run_checks(healthy, "out", "lab-out.yaml", tmp_path)
    got = outcomes(data)
    assert rc == 0, got
    assert got[f"test_inbound_denied[{LAN_HOST}-tcp-22]"][0] == "passed"
    assert got[f"test_inbound_allowed[{t.GW_LAN6}-tcp-{t.GW_WEB_PORT}]"][0] == "passed"
    assert got[f"test_echo_policy[{LAN_HOST}]"][0] == "passed"
    ev = json.dumps(data)
    assert "admin-prohibited" in ev  # the evidence says how it was denied, and by whom
    assert t.GW_WAN6 in ev


def test_lan_outbound_passes_on_the_healthy_site(healthy: Lab, tmp_path: Path) -> None:
    rc, data = run_checks(healthy, "lan", "lab-lan.yaml", tmp_path)
    got = outcomes(data)
    assert rc == 0, got
    assert set(got) == {
        f"test_outbound_allowed[{t.WEB6}-tcp-80]",
        f"test_outbound_allowed[{t.WEB6}-udp-{t.UDP_ECHO_PORT}]",
    }


def test_inbound_new_accepted_names_host_port_and_the_worst_finding(
    healthy: Lab, tmp_path: Path
) -> None:
    with fault(healthy, "inbound-new-accepted") as lab:
        rc, data = run_checks(lab, "out", "lab-out.yaml", tmp_path)
    got = outcomes(data)
    assert rc == 1
    failed = {k for k, (o, _) in got.items() if o == "failed"}
    assert failed == {
        f"test_inbound_denied[{LAN_HOST}-tcp-22]",
        f"test_inbound_denied[{LAN_HOST}-tcp-80]",
    }, got
    msg = got[f"test_inbound_denied[{LAN_HOST}-tcp-22]"][1]
    assert f"[{LAN_HOST}]:22/tcp accepts connections from outside" in msg, msg
    assert "Worst finding" in msg, msg
    assert "answers everything probed from outside" in msg, msg


def test_style_mismatch_is_named(healthy: Lab, tmp_path: Path) -> None:
    profile = tmp_path / "drop.yaml"
    profile.write_text(
        "node: {role: outside}\ninterfaces: {eth0: {role: wan}}\ntimeouts: {probe: 0.5}\n"
        f"firewall:\n  inbound_deny:\n    - {{hosts: ['{t.LAN_HOST6}'], tcp: [22], deny: drop}}\n"
    )
    out = tmp_path / "r.json"
    netns.run_pytest_in(
        healthy.ns("out"),
        ["--profile", str(profile), "--no-report", "--json-file", str(out)],
        REPO,
        timeout=60,
    )
    (check,) = json.loads(out.read_text())["checks"]
    assert check["outcome"] == "failed"
    assert "expected it dropped silently (deny: drop)" in check["message"]
    assert "ICMPv6 admin-prohibited (type 1 code 1) from 2001:db8:0:1::2" in check["message"]


def test_outbound_new_dropped_fails_outbound_claims(healthy: Lab, tmp_path: Path) -> None:
    with fault(healthy, "outbound-new-dropped") as lab:
        rc, data = run_checks(lab, "lan", "lab-lan.yaml", tmp_path)
    got = outcomes(data)
    assert rc == 1
    outcome, msg = got[f"test_outbound_allowed[{t.WEB6}-tcp-80]"]
    assert outcome == "failed"
    assert f"outbound TCP connection from here to [{t.WEB6}]:80/tcp failed: dropped" in msg, msg
    assert "--ctstate NEW -j ACCEPT" in msg
    assert got[f"test_outbound_allowed[{t.WEB6}-udp-{t.UDP_ECHO_PORT}]"][0] == "failed"


PROBE_FROM_HERE = """
import asyncio, json, sys
from sixcheck.probes import tcp
if len(sys.argv) > 2:  # the first SYN "never left" (a cold neighbour queue), the retry did
    said = []
    tcp.refused_locally = lambda sock: not said and not said.append(1)
o = asyncio.run(tcp.tcp_connect(sys.argv[1], 22, 1.5))
print(json.dumps({"state": o.state, "error": o.error, "attempts": o.attempts}))
"""


def test_own_output_drop_is_not_read_as_denied(tmp_path: Path) -> None:
    """A SYN this node's own OUTPUT rules drop never leaves, and TCP says nothing about it: the
    probe must report that it could not send, not "dropped" (which passes inbound_deny), while a
    SYN dropped by the other side still reads as dropped. Two namespaces of this test only."""
    import subprocess
    import sys

    with netns.temp_netns("sxfwa") as a, netns.temp_netns("sxfwb") as b:
        va, vb = f"qa{os.getpid() % 100000}", f"qb{os.getpid() % 100000}"
        subprocess.run(
            ["ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b],
            check=True,
        )
        for ns, dev, addr in ((a, va, "2001:db8:a::1/64"), (b, vb, "2001:db8:a::2/64")):
            netns.run(ns, ["ip", "addr", "add", addr, "dev", dev, "nodad"], check=True)
            netns.run(ns, ["ip", "link", "set", dev, "up"], check=True)

        def probe(*first_never_left: str) -> dict[str, Any]:
            argv = [sys.executable, "-c", PROBE_FROM_HERE, "2001:db8:a::2", *first_never_left]
            return dict(json.loads(netns.run(a, argv, check=True).stdout))

        # the neighbour resolved first: a SYN waiting for it has not left this node either.
        # -w: keep asking until one answer or 5 s (the veth's carrier may come up a moment after
        # `link set up`, and a single echo then went unanswered: a CI flake)
        netns.run(a, ["ping", "-6", "-c", "1", "-i", "0.2", "-w", "5", "2001:db8:a::2"], check=True)
        netns.run(b, ["ip6tables", "-A", "INPUT", "-p", "tcp", "-j", "DROP"], check=True)
        assert probe()["state"] == "dropped"
        # a first SYN that never left is asked again, not reported: the retry decides
        retried = probe("first-never-left")
        assert (retried["state"], retried["attempts"]) == ("dropped", 2), retried
        netns.run(b, ["ip6tables", "-F", "INPUT"], check=True)
        netns.run(a, ["ip6tables", "-A", "OUTPUT", "-p", "tcp", "-j", "DROP"], check=True)
        local = probe()
        assert local["state"] == "local-error", local
        assert "the SYN never left this node" in local["error"], local
