"""The tunnel checks against the lab gateway: all pass on the healthy site; the far end gone and
the MTU black hole each fail with a message naming the tunnel and the cause."""

from __future__ import annotations

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

INSTANCE = f"u{os.getpid() % 100000}"


def run_checks(lab: Lab, tmp: Path) -> tuple[int, dict[str, tuple[str, str]]]:
    out = tmp / "gw.json"
    proc = netns.run_pytest_in(
        lab.ns("gw"),
        [
            "--profile",
            str(REPO / "profiles" / "lab-gw.yaml"),
            "--no-report",
            "--json-file",
            str(out),
            "-p",
            "no:cacheprovider",
            "checks/test_tunnel.py",
        ],
        REPO,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout, proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    got = {
        c["id"].split("::", 1)[1]: (c["outcome"], c.get("message") or "") for c in data["checks"]
    }
    return proc.returncode, got


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        yield lab


def test_healthy_tunnel_passes(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, got = run_checks(lab, tmp_path)
    assert rc == 0, got
    assert set(got) == {
        f"test_tunnel_interface[{t.TUN_IF}]",
        f"test_tunnel_underlay[{t.INET_WAN4}]",
        f"test_tunnel_far_end[{t.TUN_FAR6}]",
        f"test_tunnel_default_route[{t.TUN_IF}]",
        f"test_tunnel_path_mtu[{t.FAR_TARGET6}]",
    }


def test_far_end_gone(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["tunnel-far-end-gone"])
    rc, got = run_checks(lab, tmp_path)
    assert rc == 1
    failed = {k: m for k, (o, m) in got.items() if o == "failed"}
    assert set(failed) == {
        f"test_tunnel_far_end[{t.TUN_FAR6}]",
        f"test_tunnel_path_mtu[{t.FAR_TARGET6}]",
    }, got
    msg = failed[f"test_tunnel_far_end[{t.TUN_FAR6}]"]
    assert f"the far end {t.TUN_FAR6} of tun6 does not answer ping6" in msg, msg
    assert f"underlay endpoint {t.INET_WAN4} does answer" in msg, msg
    assert "far end is gone" in msg, msg


def test_mtu_blackhole(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["tunnel-mtu-blackhole"])
    rc, got = run_checks(lab, tmp_path)
    assert rc == 1
    failed = {k: m for k, (o, m) in got.items() if o == "failed"}
    assert set(failed) == {
        f"test_tunnel_interface[{t.TUN_IF}]",
        f"test_tunnel_path_mtu[{t.FAR_TARGET6}]",
    }, got
    msg = failed[f"test_tunnel_path_mtu[{t.FAR_TARGET6}]"]
    assert f"1400-byte packets to {t.FAR_TARGET6} vanish without Packet Too Big" in msg, msg
    assert "PMTU black hole" in msg, msg
    assert "lower tun6's MTU to 1280" in msg, msg
    assert "tun6 has MTU 1400, expected 1280" in failed[f"test_tunnel_interface[{t.TUN_IF}]"]
