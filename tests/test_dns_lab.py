"""The dns checks against the lab's real unbound: all pass on the healthy site from the LAN host,
and each DNS fault fails the expected checks with a message naming resolver, transport and cause.
Plus the open-resolver check against an unbound of our own in a throwaway namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, daemons, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"d{os.getpid()}"
CHECKS = ["checks/test_dns.py"]


def run_lan(lab: Lab, tmp_path: Path, checks: list[str] = CHECKS) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    """Run the lab LAN profile's checks (only `checks`) inside the lab's lan node."""
    out = tmp_path / "results.json"
    proc = netns.run_pytest_in(
        lab.ns("lan"),
        ["--profile", "profiles/lab-lan.yaml", "--no-report", "--json-file", str(out), *checks],
        REPO,
        timeout=120,
    )
    data = json.loads(out.read_text()) if out.exists() else {"checks": []}
    return proc.returncode, data, proc.stdout + proc.stderr


def outcomes(data: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}


def failed(data: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {
        c["id"].split("::", 1)[1]: c["message"] for c in data["checks"] if c["outcome"] == "failed"
    }


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        yield lab


def test_healthy_site_passes(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, data, out = run_lan(lab, tmp_path)
    assert rc == 0, out
    got = outcomes(data)
    assert set(got.values()) == {"passed"}, got
    for item in (
        "test_resolver_answers[2001:db8:53::53-udp]",
        "test_resolver_answers[2001:db8:53::53-tcp]",
        "test_lookup[2001:db8:53::53-udp-AAAA-www.example.net]",
        "test_lookup[2001:db8:53::53-udp-AAAA-v4only.example.net]",
        "test_reverse[2001:db8:53::53-udp-PTR-2001:db8:1:1:0:ff:fe00:110]",
        "test_host_resolvers[this-node]",
        "test_dns64[2001:db8:53::53]",
        "test_ddns_fresh[host.lan.example.net@eth0]",
    ):
        assert item in got
    ev = json.dumps(data)
    assert '"transport": "tcp"' in ev
    assert '"source": "2001:db8:1:1:0:ff:fe00:110"' in ev  # the LAN host's SLAAC address


@pytest.mark.parametrize(
    ("fault", "must_fail", "message"),
    [
        (
            "resolver-down",
            "test_resolver_answers[2001:db8:53::53-udp]",
            # ICMPv6 errors are rate limited: a query answered by none reads as a timeout
            "resolver 2001:db8:53::53 over UDP/IPv6 ",
        ),
        (
            "resolver-ipv4-only",
            "test_resolver_answers[2001:db8:53::53-tcp]",
            "resolver 2001:db8:53::53 over TCP/IPv6 refused the TCP connection to port 53",
        ),
        (
            "resolver-refuses-lan",
            "test_resolver_answers[2001:db8:53::53-udp]",
            "resolver 2001:db8:53::53 over UDP/IPv6 answered REFUSED for . SOA: it is reachable but "
            "refuses this node",
        ),
        (
            "name-missing-aaaa",
            "test_lookup[2001:db8:53::53-udp-AAAA-www.example.net]",
            "resolver 2001:db8:53::53 over UDP/IPv6 answered NOERROR but www.example.net has no "
            "AAAA (expected AAAA 2001:db8:80::80)",
        ),
    ],
)
def test_fault_fails_with_cause(
    lab: Lab, tmp_path: Path, fault: str, must_fail: str, message: str
) -> None:
    lab.up(faults=[fault])
    rc, data, out = run_lan(lab, tmp_path)
    assert rc == 1, out
    bad = failed(data)
    assert must_fail in bad, bad
    assert message in bad[must_fail]
    if fault == "resolver-down":
        assert bad[must_fail].split(";")[0].endswith(("(unreachable)", "(timeout)")), bad
    assert "Traceback" not in out
    if fault == "name-missing-aaaa":  # only the record and its PTR are gone: transport is fine
        assert set(bad) == {
            "test_lookup[2001:db8:53::53-udp-AAAA-www.example.net]",
            "test_reverse[2001:db8:53::53-udp-PTR-2001:db8:80::80]",
        }
    else:  # a resolver unreachable over IPv6 fails every query that needs it, and only those
        assert "test_host_resolvers[this-node]" not in bad
        assert all("2001:db8:53::53" in m for m in bad.values()), bad


# ------------------------------------------------------------------------------- open resolver

OUTSIDE = """\
description: outside vantage asking a site resolver
node: {role: outside}
timeouts: {probe: 1.5}
dns:
  open_resolver:
    - {resolver: "::1", name: example.com}
"""


@pytest.mark.parametrize(("acl", "ok"), [("refuse", True), ("allow", False)])
def test_open_resolver_check(tmp_path: Path, acl: str, ok: bool) -> None:
    """unbound refusing outsiders passes; one that answers them fails naming the open resolver."""
    conf = daemons.unbound_conf(["::1"], {}, tmp_path, "unbound-open").replace(
        "access-control: ::/0 allow",
        f"access-control: ::/0 {acl}\n    access-control: ::1 {acl}",  # ::1 is allowed by default
    )
    (tmp_path / "unbound.conf").write_text(conf)
    (tmp_path / "p.yaml").write_text(OUTSIDE)
    with netns.temp_netns("sxdns") as ns:
        proc = subprocess.Popen(
            netns.exec_argv(ns, daemons.unbound_argv(tmp_path / "unbound.conf")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(50):  # until it listens
                probe = netns.run(ns, ["ss", "-Hlun", "sport = :53"])
                if "::1" in probe.stdout:
                    break
                time.sleep(0.1)
            out = tmp_path / "r.json"
            res = netns.run_pytest_in(
                ns,
                [
                    "--profile",
                    str(tmp_path / "p.yaml"),
                    "--no-report",
                    "--json-file",
                    str(out),
                    "checks/test_dns.py",
                ],
                REPO,
                timeout=120,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    data = json.loads(out.read_text())
    got = outcomes(data)
    assert got == {"test_not_open_resolver[::1-udp-example.com]": "passed" if ok else "failed"}, (
        res.stdout
    )
    if not ok:
        msg = failed(data)["test_not_open_resolver[::1-udp-example.com]"]
        assert "resolver ::1 over UDP/IPv6 answered NXDOMAIN to a recursive query" in msg
        assert "open resolver" in msg


# ------------------------------------------------------------------------------- one timeout

DEAD = """\
description: a dead resolver asked twenty names
node: {role: host}
timeouts: {probe: 1.0, run: 30}
dns:
  resolvers: ["::1"]
  lookups:
""" + "".join(f"    - {{name: name{i}.example.net, expect: any}}\n" for i in range(20))


def test_dead_resolver_with_twenty_names_costs_one_timeout(tmp_path: Path) -> None:
    """Acceptance, end to end through the plugin: 2 transport checks + 20 lookups against a
    resolver whose packets are silently dropped finish in about one probe timeout."""
    (tmp_path / "p.yaml").write_text(DEAD)
    out = tmp_path / "r.json"
    with netns.temp_netns("sxdns") as ns:
        for proto in ("udp", "tcp"):
            netns.run(
                ns,
                [
                    "ip6tables",
                    "-w",
                    "-A",
                    "INPUT",
                    "-d",
                    "::1",
                    "-p",
                    proto,
                    "--dport",
                    "53",
                    "-j",
                    "DROP",
                ],
                check=True,
            )
        proc = netns.run_pytest_in(
            ns,
            [
                "--profile",
                str(tmp_path / "p.yaml"),
                "--no-report",
                "--json-file",
                str(out),
                "checks/test_dns.py",
            ],
            REPO,
            timeout=120,
        )
    data = json.loads(out.read_text())
    bad = failed(data)
    assert len(bad) == 22, proc.stdout
    assert all("within 1 s (timeout)" in m for m in bad.values()), bad
    plan = data["probe_plan"]
    assert plan["requests"] == 22
    # one timeout is 1 s; twenty-two in a row would be 22 s. Generous bound for a busy machine.
    assert plan["seconds"] < 4.0, plan
