"""`sixcheck site run` over real SSH to the lab's vantages (sshd in each node, the client in the
lab's management namespace): all pass on the healthy site; under a fault the site report names
it; a vantage whose sshd is stopped is an unreachable finding while the others still report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sixcheck import locate
from sixcheck.lab import Lab, sshd

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root"),
]

#: The sixcheck the nodes run: the nodes share this machine's file system, so this venv's
#: console script is "installed" on every one of them.
SIXCHECK = Path(sys.executable).parent / "sixcheck"


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab(f"s{os.getpid()}") as lab:
        lab.up(sshd=True)
        yield lab


def site_file(lab: Lab, folder: Path, extra: str = "") -> Path:
    assert lab.ssh is not None
    lines = [
        f"site: {lab.instance}",
        "defaults:",
        f"  ssh_config: {lab.ssh.ssh_config}",
        f"  sixcheck: {SIXCHECK}",
        "  deadline: 300",
        "vantages:",
    ]
    # profiles by name (resolved on the node), gw's as a file here (copied over for the run)
    profile = {n: f"lab-{n}" for n in sshd.NODES} | {"gw": f"{locate.profiles_dir()}/lab-gw.yaml"}
    lines += [f"  {n}: {{profile: {profile[n]}, ssh: {n}}}" for n in sshd.NODES]
    path = folder / "site.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def site_run(lab: Lab, site: Path, reports: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run `sixcheck site run` as an operator would, from the lab's management namespace."""
    assert lab.ssh is not None
    argv = [sys.executable, "-m", "sixcheck", "site", "run", str(site)]
    proc = subprocess.run(
        # Two at a time, as the matrix does: CI has two cores, and four runs at once on them
        # would test the machine's load rather than the site.
        ["ip", "netns", "exec", lab.ssh.ctl_ns, *argv, "--report-dir", str(reports), "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    found = list(reports.glob("*/site.json"))
    doc = json.loads(found[0].read_text()) if len(found) == 1 else None
    return proc, doc


def test_site_run_over_ssh_healthy_site_passes(healthy: Lab, tmp_path: Path) -> None:
    # and one vantage that is a namespace of this machine, with a profile given as a path
    profile = Path(locate.profiles_dir(), "lab-out.yaml")
    extra = f"  out-ns: {{profile: {profile}, netns: {healthy.ns('out')}}}\n"
    proc, doc = site_run(healthy, site_file(healthy, tmp_path, extra), tmp_path / "reports")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    (line,) = [x for x in lines if x.startswith("out-ns ")]
    assert " passed " in line, line
    assert " 0 failed" in line, line
    assert f"(netns {healthy.ns('out')}," in line, line
    for node in sshd.NODES:
        (line,) = [x for x in lines if x.startswith(f"{node} ")]
        assert " passed " in line, line
        assert " 0 failed" in line, line
        assert f"(ssh {node}," in line, line
    assert doc is not None, proc.stdout
    folder = next((tmp_path / "reports").glob("*/"))
    for node in sshd.NODES:  # each vantage's own report came back beside the site report
        results = json.loads((folder / node / "results.json").read_text())
        assert results["exitstatus"] == 0
        assert results["profile"]["name"] == f"lab-{node}"
        assert list((folder / node).glob(f"lab-{node}-*.html"))


def test_site_run_under_a_fault_with_one_vantage_unreachable(tmp_path: Path) -> None:
    with Lab(f"f{os.getpid()}") as lab:
        lab.up(["forwarding-off"], sshd=True)
        lab.stop_sshd("vpn")
        proc, doc = site_run(lab, site_file(lab, tmp_path), tmp_path / "reports")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "could not reach vpn over SSH (vpn):" in lines["vpn"], proc.stdout
    assert "Connection refused" in lines["vpn"], proc.stdout
    assert " FAILED " in lines["gw"], proc.stdout
    for node in ("lan", "out"):  # the others still ran and reported
        assert "NOT RUN" not in lines[node], proc.stdout
    assert doc is not None
    top = doc["causes"][0]  # the fault, named first in the site report, explaining the LAN's
    assert (top["vantage"], top["area"]) == ("gw", "sysctl"), top
    assert "net.ipv6.conf.all.forwarding" in top["title"], top
    assert "lan" in top["vantages"], top
    (vpn,) = [v for v in doc["vantages"] if v["name"] == "vpn"]
    assert vpn["error"].startswith("could not reach vpn over SSH (vpn): "), vpn
    assert any(c["vantage"] == "vpn" for c in doc["causes"]), doc["causes"]
