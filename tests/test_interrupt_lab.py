"""Ctrl-C during the probe plan ends the run at once with exit status 2 and reports that say the
run was interrupted (issue 15).

The plan is held in its RA window on purpose: the profile lists a second router that never
answers, so the window stays open for its whole `ra_listen` (60 s); SIGINT arrives once the probe
threads run. Before the fix, pytest waited for the window to end before exiting. No timed
assertion: the harness timeout only keeps a hung run from hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"c{os.getpid()}"
SILENT_ROUTER = "fe80::5ee:dead"  # nobody on the lab's LAN has this address


def _profile(tmp_path: Path) -> Path:
    doc = yaml.safe_load((REPO / "profiles" / "lab-lan.yaml").read_text())
    doc["timeouts"] = {"probe": 1.5, "ra_listen": 60, "run": 90}
    doc["nd"]["interfaces"]["eth0"]["routers"].append({"address": SILENT_ROUTER})
    path = tmp_path / "held.yaml"  # outside the repository, as users keep their profiles
    path.write_text(yaml.safe_dump(doc))
    return path


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


def test_ctrl_c_during_the_ra_window_exits_2_with_an_interrupted_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    with Lab(INSTANCE) as lab:
        lab.up()
        argv = [sys.executable, "-m", "pytest", "--profile", str(_profile(tmp_path))]
        proc = subprocess.Popen(
            netns.exec_argv(lab.ns("lan"), [*argv, "--report-dir", str(reports)]),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        try:
            # `ip netns exec` execs the command: proc.pid is pytest's. Probe threads are the
            # first threads it starts; the RA window is then open for 60 s.
            deadline = time.monotonic() + 60
            while _threads(proc.pid) < 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 2, out
    assert "interrupted (Ctrl-C)" in out, out
    docs = list(reports.glob("lab-lan-*.json")) or list(reports.glob("held-*.json"))
    assert len(docs) == 1, sorted(p.name for p in reports.iterdir())
    doc = json.loads(docs[0].read_text())
    assert doc["exitstatus"] == 2
    assert doc["interrupted"] is True
    html = docs[0].with_suffix(".html").read_text()
    assert "interrupted (Ctrl-C)" in html
