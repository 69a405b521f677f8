"""Post-change validation against the lab gateway: a healthy snapshot, a fault, the regression
listed first with its changed evidence; `--fail-on regressions` tolerates a failure the baseline
already had and fails on a new one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"b{os.getpid() % 100000}"
PROFILE = str(REPO / "profiles" / "lab-gw.yaml")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        yield lab


def _run(lab: Lab, tmp: Path, name: str, *args: str) -> tuple[int, dict[str, Any], str]:
    out = tmp / f"{name}.json"
    proc = netns.run_pytest_in(
        lab.ns("gw"),
        [
            "--profile",
            PROFILE,
            "--report-dir",
            str(tmp / "reports"),
            "--json-file",
            str(out),
            "--html",
            str(tmp / f"{name}.html"),
            "-p",
            "no:cacheprovider",
            *args,
        ],
        REPO,
        timeout=180,
    )
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    return proc.returncode, json.loads(out.read_text()), text


def test_snapshot_change_validate(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, _, out = _run(lab, tmp_path, "before")
    assert rc == 0, out

    # the change: IPv6 forwarding off on the gateway
    lab.up(faults=["forwarding-off"])
    rc, after, out = _run(lab, tmp_path, "after", "--baseline", str(tmp_path / "before.json"))
    assert rc == 1, out
    changes = after["baseline"]["changes"]
    assert changes[0]["category"] == "regression"
    first = changes[0]
    assert first["id"].endswith("test_sysctl[net.ipv6.conf.all.forwarding]"), changes[:3]
    assert {
        "path": "SysctlRead(key=net.ipv6.conf.all.forwarding) > value",
        "before": "1",
        "after": "0",
    } in first["evidence"]
    # the terminal leads with the regressions, each with what changed
    summary = out[out.index("sixcheck baseline:") :].splitlines()
    assert "REGRESSION" in summary[1], summary[:3]
    assert any(
        "changed SysctlRead(key=net.ipv6.conf.all.forwarding) > value: 1 -> 0" in s for s in summary
    )
    page = (tmp_path / "after.html").read_text()
    assert page.index("Compared with the baseline") < page.index("Per area")

    # with the fault as the known state, the same failures are tolerated ...
    rc, again, out = _run(
        lab,
        tmp_path,
        "again",
        "--baseline",
        str(tmp_path / "after.json"),
        "--fail-on",
        "regressions",
    )
    assert rc == 0, out
    assert again["summary"]["failed"] == after["summary"]["failed"] > 0
    assert again["baseline"]["counts"]["regression"] == 0
    assert again["exitstatus"] == 0

    # ... and a new failure is not
    lab.up(faults=["forwarding-off", "tunnel-far-end-gone"])
    rc, worse, out = _run(
        lab,
        tmp_path,
        "worse",
        "--baseline",
        str(tmp_path / "after.json"),
        "--fail-on",
        "regressions",
    )
    assert rc == 1, out
    regressions = [c for c in worse["baseline"]["changes"] if c["category"] == "regression"]
    assert regressions
    assert all(c["area"] == "tunnel" for c in regressions), regressions
    assert worse["baseline"]["changes"][0]["category"] == "regression"
