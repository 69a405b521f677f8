"""Privileges: every lab profile run as nobody, without capabilities, in its node.

Checks whose probes need raw sockets (or any privilege) are skipped with a reason that says what to
do; the rest run and pass; nothing crashes; the exit code is 0 because nothing is really wrong with
the healthy site. A check is a raw one when its probe needs raw sockets (`needs_raw`) or when it
is one of the packet-level checks the lab profiles are known to have: those must skip, never pass
or fail. nobody runs the same interpreter as root, in a view that shows it (`unprivileged`): the
interpreter usually lives below a folder nobody may not enter (a pyenv under /root).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from unprivileged import NOBODY, as_nobody

import sixcheck.probes
from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns
from sixcheck.probes.base import ProbeRequest

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"p{os.getpid()}"
PROFILES = {"gw": "lab-gw", "lan": "lab-lan", "out": "lab-out", "vpn": "lab-vpn"}
#: Words a skip reason must contain: the way out (root, a capability or a sysctl).
WHAT_TO_DO = ("run as root", "CAP_NET_RAW", "setcap", "ping_group_range")
#: Checks known to fail instead of skip when unprivileged (reported to the area's owner); each may
#: only fail saying it could not tell and what to do. Remove an entry when its probe is fixed.
KNOWN_GAPS: dict[str, set[str]] = {}
#: Packet-level checks of the lab profiles, named here too so that a probe that lost its
#: `needs_raw` still counts as raw.
RAW_CHECKS = ("test_ra_", "test_no_rogue")
#: ICMP probes: the kernel's ping socket when the group is inside net.ipv4.ping_group_range, else
#: a raw socket. A namespace's default range ("1 0") leaves nobody out: then they are raw ones.
ICMP_PROBES = {"Echo", "PathMtu"}


def _raw_probes() -> set[str]:
    """Names of the probe kinds that need raw sockets (every probe module imported)."""
    for mod in pkgutil.iter_modules(sixcheck.probes.__path__, "sixcheck.probes."):
        importlib.import_module(mod.name)
    found: set[str] = set()
    todo: list[type[ProbeRequest[Any]]] = [ProbeRequest]
    while todo:
        kind = todo.pop()
        todo += kind.__subclasses__()
        if kind.needs_raw:
            found.add(kind.__name__)
    return found


def _nobody_may_ping(lab: Lab, node: str) -> bool:
    got = netns.run(lab.ns(node), ["cat", "/proc/sys/net/ipv4/ping_group_range"], check=True)
    low, high = got.stdout.split()
    return int(low) <= NOBODY <= int(high)


def raw_checks(by: dict[str, dict[str, Any]], may_ping: bool) -> set[str]:
    """The checks whose evidence asks a raw-socket probe, or that are named as packet-level."""
    kinds = _raw_probes() | (set() if may_ping else ICMP_PROBES)
    return {
        k
        for k, c in by.items()
        if k.startswith(RAW_CHECKS)
        or any(e.get("request", {}).get("probe") in kinds for e in c.get("evidence", []))
    }


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


@pytest.fixture(scope="module")
def may_ping(lab: Lab) -> dict[str, bool]:
    """Whether nobody may open a ping socket in each node (else ICMP checks must skip)."""
    return {node: _nobody_may_ping(lab, node) for node in PROFILES}


@pytest.fixture(scope="module")
def runs(lab: Lab) -> Iterator[dict[str, tuple[int, Any, str]]]:
    out = Path(tempfile.mkdtemp(prefix="sixcheck-nobody-"))
    out.chmod(0o777)  # nobody writes its reports here; pytest's tmp_path is root-only

    def one(node: str) -> tuple[str, tuple[int, Any, str]]:
        argv = netns.exec_argv(
            lab.ns(node),
            as_nobody(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "--profile",
                    f"profiles/{PROFILES[node]}.yaml",
                    "--report-dir",
                    str(out / node),
                    "--json-file",
                    str(out / f"{node}.json"),
                    "-p",
                    "no:cacheprovider",
                ]
            ),
        )
        # PYTHONFAULTHANDLER: a run that hangs is sent SIGABRT and prints every thread's stack
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONFAULTHANDLER="1", HOME=str(out))
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        try:
            output, _ = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # the exec chain ends in python: this is its PID
            try:
                output, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                output, _ = proc.communicate()
            output = f"HUNG: still running after 180 s; its threads:\n{output}"
        f = out / f"{node}.json"
        data = json.loads(f.read_text()) if f.exists() else {"checks": []}
        return node, (proc.returncode, data, output)

    try:
        results = {}
        for node in PROFILES:  # one after the other: each is small, and 2 cores are shared
            name, res = one(node)
            results[name] = res
        yield results
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.mark.parametrize("node", sorted(PROFILES))
def test_unprivileged_run(
    runs: dict[str, tuple[int, Any, str]], may_ping: dict[str, bool], node: str
) -> None:
    rc, data, out = runs[node]
    assert not out.startswith("HUNG"), out
    assert "Traceback" not in out, out
    assert "INTERNALERROR" not in out, out
    assert data["checks"], f"no JSON results written by nobody:\n{out}"
    assert data["raw_sockets"] is False
    by = {c["id"].split("::", 1)[1]: c for c in data["checks"]}
    gaps = KNOWN_GAPS.get(node, set())
    skipped = {k: c["message"] for k, c in by.items() if c["outcome"] == "skipped"}
    for check, why in skipped.items():
        assert any(w in why for w in WHAT_TO_DO), f"{check}: skip reason says not what to do: {why}"
    not_skipped = {
        k: (by[k]["outcome"], by[k]["message"])
        for k in raw_checks(by, may_ping[node]) - skipped.keys()
    }
    assert not not_skipped, f"{node}: raw checks must skip unprivileged: {not_skipped}"
    passed = {k for k, c in by.items() if c["outcome"] == "passed"}
    assert passed, f"{node}: nothing ran unprivileged"
    bad = {
        k: c["message"]
        for k, c in by.items()
        if c["outcome"] not in ("passed", "skipped") and k not in gaps
    }
    assert not bad, f"{node}: failed unprivileged on a healthy site: {bad}"
    for k in gaps & by.keys():
        if by[k]["outcome"] == "failed":
            msg = by[k]["message"]
            assert "could not tell" in msg, msg
            assert any(w in msg for w in WHAT_TO_DO), msg
    real_failures = any(c["outcome"] in ("failed", "error") for c in by.values())
    assert rc == (1 if real_failures else 0), f"exit {rc}\n{out[-2000:]}"


def test_raw_checks_are_skipped_not_passed(
    runs: dict[str, tuple[int, Any, str]], may_ping: dict[str, bool]
) -> None:
    """The packet-level checks of the LAN host (RA, rogue routers) skip as nobody, never pass;
    every node's profile has some (so the per-node assertion above cannot hold vacuously)."""
    _, data, _ = runs["lan"]
    by = {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}
    ra = {k: v for k, v in by.items() if k.startswith(RAW_CHECKS)}
    assert ra, by
    assert set(ra.values()) == {"skipped"}, ra
    for node, (_, d, _) in runs.items():
        assert raw_checks({c["id"].split("::", 1)[1]: c for c in d["checks"]}, may_ping[node]), node
