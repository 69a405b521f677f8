"""The sysctl checks in a namespace we shape: pass when it matches, fail naming key and fix when not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import netns

pytestmark = [needs_root, pytest.mark.lab]

PROFILE = """\
description: a router in a test namespace
node: {role: router}
interfaces:
  wan0: {role: wan, upstream_ra: true}
  lan0: {role: lan}
sysctl:
  all: {forwarding: 1}
  interfaces:
    wan0: {forwarding: 1, accept_ra: 2, disable_ipv6: 0}
    lan0: {forwarding: 1, autoconf: 0}
"""

HEALTHY = {
    "net.ipv6.conf.all.forwarding": 1,
    "net.ipv6.conf.wan0.forwarding": 1,
    "net.ipv6.conf.wan0.accept_ra": 2,
    "net.ipv6.conf.lan0.autoconf": 0,
}


@pytest.fixture
def router_ns() -> Iterator[str]:
    with netns.temp_netns("sxsys") as ns:
        netns.run(
            ns, ["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "lan0"], check=True
        )
        for key, value in HEALTHY.items():
            netns.set_sysctl(ns, key, value)
        yield ns


def _run(ns: str, tmp_path: Path) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    profile = tmp_path / "router.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "results.json"
    proc = netns.run_pytest_in(
        ns,
        ["--profile", str(profile), "--report-dir", str(tmp_path), "--json-file", str(out)],
        REPO,
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def _outcomes(data: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}


def test_healthy_router_passes(router_ns: str, tmp_path: Path) -> None:
    rc, data, out = _run(router_ns, tmp_path)
    assert rc == 0, out
    outcomes = _outcomes(data)
    assert set(outcomes.values()) == {"passed"}
    assert "test_sysctl[net.ipv6.conf.wan0.accept_ra]" in outcomes
    assert "test_upstream_ras_are_accepted[wan0]" in outcomes
    assert len(outcomes) == 7
    html = next(tmp_path.glob("router-*.html")).read_text()
    assert "test_sysctl[net.ipv6.conf.wan0.accept_ra]" in html
    assert "sixcheck: router" in html
    assert "SysctlRead" in html  # evidence: what was read
    assert data["profile"]["sha256"] in html


@pytest.mark.parametrize(
    ("key", "value", "failing", "message"),
    [
        (
            "net.ipv6.conf.lan0.autoconf",
            1,
            {"test_sysctl[net.ipv6.conf.lan0.autoconf]"},
            "net.ipv6.conf.lan0.autoconf is 1, expected 0: fix: sysctl -w "
            "net.ipv6.conf.lan0.autoconf=0",
        ),
        (
            "net.ipv6.conf.all.forwarding",
            0,
            # all.forwarding=0 propagates to every interface, as the kernel does
            {
                "test_sysctl[net.ipv6.conf.all.forwarding]",
                "test_sysctl[net.ipv6.conf.wan0.forwarding]",
                "test_sysctl[net.ipv6.conf.lan0.forwarding]",
            },
            "this node does not route IPv6 for its LAN",
        ),
        (
            "net.ipv6.conf.wan0.accept_ra",
            1,
            {"test_sysctl[net.ipv6.conf.wan0.accept_ra]", "test_upstream_ras_are_accepted[wan0]"},
            "accept_ra=1 with forwarding=1 on wan0: upstream RAs are ignored; set accept_ra=2",
        ),
    ],
)
def test_flipped_value_fails_with_cause(
    router_ns: str, tmp_path: Path, key: str, value: int, failing: set[str], message: str
) -> None:
    netns.set_sysctl(router_ns, key, value)
    rc, data, out = _run(router_ns, tmp_path)
    assert rc == 1, out
    outcomes = _outcomes(data)
    assert {k for k, v in outcomes.items() if v == "failed"} == failing
    messages = [c["message"] for c in data["checks"] if c["outcome"] == "failed"]
    assert any(message in m for m in messages), messages
    assert message in out  # the terminal says it too
    assert "Traceback" not in out


def test_missing_interface_is_a_failure_that_says_so(tmp_path: Path) -> None:
    with netns.temp_netns("sxsys") as ns:  # no wan0/lan0 at all
        rc, data, _ = _run(ns, tmp_path)
    assert rc == 1
    failed = [c["message"] for c in data["checks"] if c["outcome"] == "failed"]
    assert any("interface wan0 does not exist on this node" in m for m in failed), failed
