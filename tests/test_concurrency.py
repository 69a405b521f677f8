"""Concurrency: runs that overlap (cron firing while the last run is still probing) keep their
reports and their results apart.

Without the lab: four runs of two profiles start together into one report folder; each writes its
own JSON and HTML, every JSON is valid and describes its own run, no temporary file is left. In the
lab: two runs of the LAN host's full profile at once in the same node (two RS listeners, two
resolver and NTP clients, two firewall audits side by side) both pass, as a single run does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_root, run_sixcheck
from sixcheck import history
from sixcheck.lab import Lab, netns

LO = "node: {{role: host}}\ndescription: {desc}\ninterfaces: {{lo: {{role: other}}}}\nsysctl:\n  interfaces: {{lo: {{disable_ipv6: 0}}}}\n"


def test_overlapping_runs_keep_their_reports_apart(tmp_path: Path) -> None:
    profiles = []
    for name in ("alpha", "beta"):
        f = tmp_path / f"{name}.yaml"
        f.write_text(LO.format(desc=name))
        profiles.append(f)
    reports = tmp_path / "reports"

    def go(i: int) -> Any:
        return run_sixcheck("--profile", str(profiles[i % 2]), "--report-dir", str(reports))

    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(go, range(4)))
    assert [p.returncode for p in procs] == [0] * 4, [p.stdout + p.stderr for p in procs]
    jsons = sorted(reports.glob("*.json"))
    assert len(jsons) == 4, sorted(p.name for p in reports.iterdir())
    names = []
    for j in jsons:
        data = json.loads(j.read_text())  # valid JSON, whole
        assert data["schema"] == "sixcheck-results/1"
        assert j.name.startswith(data["profile"]["name"] + "-")  # its own run's results
        assert data["summary"]["passed"] == 1
        assert data["exitstatus"] == 0
        html = j.with_suffix(".html")
        assert html.stat().st_size > 1000, f"{html.name} is empty or half-written"
        assert f"sixcheck: {data['profile']['name']}" in html.read_text()
        names.append(data["profile"]["name"])
    assert sorted(names) == ["alpha", "alpha", "beta", "beta"]
    # every run said which files it wrote, and no two runs said the same
    said = [line for p in procs for line in p.stdout.splitlines() if "JSON results" in line]
    assert len(set(said)) == 4, said
    ours = {history.LOCK, history.CACHE}  # the folder's lock and index cache are meant to stay
    leftovers = [p.name for p in reports.iterdir() if p.name.startswith(".") and p.name not in ours]
    assert not leftovers, f"temporary files left behind: {leftovers}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(f"c{os.getpid()}") as lab:
        lab.up()
        yield lab


@needs_root
@pytest.mark.lab
def test_two_full_runs_at_once_in_the_lab(lab: Lab, tmp_path: Path) -> None:
    def go(i: int) -> tuple[int, str, Any]:
        out = tmp_path / f"run{i}.json"
        proc = netns.run_pytest_in(
            lab.ns("lan"),
            [
                "--profile",
                "profiles/lab-lan.yaml",
                "--report-dir",
                str(tmp_path / "reports"),
                "--json-file",
                str(out),
                "-p",
                "no:cacheprovider",
            ],
            REPO,
            timeout=180,
        )
        data = json.loads(out.read_text()) if out.exists() else {}
        return proc.returncode, proc.stdout + proc.stderr, data

    with ThreadPoolExecutor(max_workers=2) as pool:
        (rc1, out1, d1), (rc2, out2, d2) = pool.map(go, range(2))
    assert rc1 == 0, out1[-3000:]
    assert rc2 == 0, out2[-3000:]
    ids1 = {c["id"]: c["outcome"] for c in d1["checks"]}
    ids2 = {c["id"]: c["outcome"] for c in d2["checks"]}
    assert ids1 == ids2
    assert set(ids1.values()) == {"passed"}
    assert len(list((tmp_path / "reports").glob("lab-lan-*.html"))) == 2
