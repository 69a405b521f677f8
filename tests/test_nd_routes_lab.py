"""The nd and routes checks against the lab: every one passes on the healthy site (LAN host and
gateway), an unprivileged run skips only the active ones, and each fault fails the expected checks
with a message that names the cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import unprivileged

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"n{os.getpid()}"
CHECKS = ["checks/test_nd.py", "checks/test_routes.py"]
PROFILES = {"lan": "profiles/lab-lan.yaml", "gw": "profiles/lab-gw.yaml"}


def run(lab: Lab, node: str, tmp_path: Path, as_nobody: bool = False) -> tuple[int, Any, str]:
    """Run the node's lab profile (nd and routes checks only) inside the node."""
    if as_nobody:  # pytest's tmp_path lives under a root-only folder
        tmp_path = Path(tempfile.mkdtemp(prefix="sixcheck-nd-"))
        tmp_path.chmod(0o777)
    out = tmp_path / f"{node}.json"
    args = [
        "--profile",
        PROFILES[node],
        "--no-report",
        "--json-file",
        str(out),
        "-p",
        "no:cacheprovider",
        *CHECKS,
    ]
    try:
        if as_nobody:
            argv = netns.exec_argv(
                lab.ns(node), unprivileged.as_nobody([sys.executable, "-m", "pytest", *args])
            )
            proc = subprocess.run(
                argv,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
                check=False,
            )
        else:
            proc = netns.run_pytest_in(lab.ns(node), args, REPO, timeout=120)
        data = json.loads(out.read_text()) if out.exists() else {"checks": []}
    finally:
        if as_nobody:
            shutil.rmtree(tmp_path, ignore_errors=True)
    return proc.returncode, data, proc.stdout + proc.stderr


def outcomes(data: Any) -> dict[str, str]:
    return {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}


def messages(data: Any, outcome: str = "failed") -> dict[str, str]:
    return {
        c["id"].split("::", 1)[1]: c["message"] for c in data["checks"] if c["outcome"] == outcome
    }


class _Site:
    """One lab for the module, rebuilt only when the wanted fault changes."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.faults: tuple[str, ...] | None = None

    def up(self, *faults: str) -> Lab:
        if self.faults != faults:
            self.lab.up(faults=list(faults))
            self.faults = faults
        return self.lab


@pytest.fixture(scope="module")
def site() -> Iterator[_Site]:
    with Lab(INSTANCE) as lab:
        yield _Site(lab)


def test_healthy_lan_host_passes(site: _Site, tmp_path: Path) -> None:
    rc, data, out = run(site.up(), "lan", tmp_path)
    assert rc == 0, out
    got = outcomes(data)
    assert set(got.values()) == {"passed"}, got
    for item in (
        "test_ra_received[eth0]",
        "test_ra_prefixes[eth0]",
        "test_ra_dns[eth0]",
        "test_ra_mtu[eth0]",
        "test_ra_flags[eth0]",
        "test_no_rogue_router[eth0]",
        "test_router_neighbor[eth0]",
        "test_addresses[eth0]",
        "test_default_route[eth0]",
        "test_route_get[2001:db8:80::80]",
    ):
        assert item in got
    ev = json.dumps(data)
    assert '"router": "fe80::ff:fe00:101"' in ev  # the decoded RA is evidence
    assert "2001:db8:53::53" in ev
    assert "mngtmpaddr" in ev


def test_healthy_gateway_passes(site: _Site, tmp_path: Path) -> None:
    rc, data, out = run(site.up(), "gw", tmp_path)
    assert rc == 0, out
    got = outcomes(data)
    assert set(got.values()) == {"passed"}, got
    for item in (
        "test_ra_received[wan0]",
        "test_router_neighbor[wan0]",
        "test_default_route[wan0]",
        "test_policy_rule[2001:db8:0:7::/64-table-7]",
        "test_route_get[2001:db8:80::80-from-2001:db8:0:7::2]",
        "test_anyip_route[2001:db8:1:ff::/64]",
        "test_anyip_answers[2001:db8:1:ff::/64]",
    ):
        assert item in got


def test_unprivileged_run_skips_only_active_checks(site: _Site, tmp_path: Path) -> None:
    rc, data, out = run(site.up(), "lan", tmp_path, as_nobody=True)
    assert rc == 0, out
    got = outcomes(data)
    skipped = messages(data, "skipped")
    active = {k for k in got if k.startswith(("test_ra_", "test_no_rogue", "test_router_neighbor"))}
    assert active, got
    assert set(skipped) == active, got
    assert all("needs raw sockets" in m for m in skipped.values()), skipped
    assert {got[k] for k in got if k not in active} == {"passed"}
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("fault", "node", "check", "message"),
    [
        (
            "ra-stopped",
            "lan",
            "test_ra_received[eth0]",
            "no RA within 3.5 s on eth0 (sent 1 RS from fe80::ff:fe00:110): is radvd running?",
        ),
        (
            "rogue-router",
            "lan",
            "test_no_rogue_router[eth0]",
            "rogue router fe80::ff:fe00:166 (02:00:00:00:01:66) on eth0 advertises 2001:db8:bad::/64",
        ),
        (
            "rogue-router",
            "lan",
            "test_addresses[eth0]",
            "unexpected address 2001:db8:bad::ff:fe00:110/64",
        ),
        (
            "ra-no-rdnss",
            "lan",
            "test_ra_dns[eth0]",
            "no RDNSS in the RA from fe80::ff:fe00:101 (02:00:00:00:01:01) on eth0",
        ),
        (
            "wrong-prefix",
            "lan",
            "test_ra_prefixes[eth0]",
            "2001:db8:1:1::/64 is not advertised on eth0",
        ),
        (
            "lan-no-default-route",
            "lan",
            "test_default_route[eth0]",
            "accept_ra_defrtr=0 on eth0: RAs do not install a default route",
        ),
        (
            "accept-ra-ignored",
            "gw",
            "test_default_route[wan0]",
            "accept_ra=1 with forwarding=1 on wan0: upstream RAs are ignored; set accept_ra=2",
        ),
        (
            "icmpv6-dropped",
            "lan",
            "test_router_neighbor[eth0]",
            "no Neighbor Advertisement from fe80::ff:fe00:101 on eth0",
        ),
    ],
)
def test_fault_fails_with_cause(
    site: _Site, tmp_path: Path, fault: str, node: str, check: str, message: str
) -> None:
    rc, data, out = run(site.up(fault), node, tmp_path)
    assert rc == 1, out
    failed = messages(data)
    assert check in failed, outcomes(data)
    assert failed[check].startswith(message) or message in failed[check], failed[check]
    assert "Traceback" not in out
