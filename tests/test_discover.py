"""`python -m sixcheck discover`: on each lab node its profile validates and passes on the healthy
site, and fails under the faults of the areas it captured."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck import discover
from sixcheck.schema import parse

INSTANCE = f"d{os.getpid() % 100000}"


def test_ntp_servers_from_local_configuration(tmp_path: Path) -> None:
    chrony = tmp_path / "chrony.conf"
    chrony.write_text(
        "# comment\npool 2.debian.pool.ntp.org iburst\nserver 2001:db8:123::123 iburst\n"
        "server 192.0.2.123\nmakestep 1 3\n"
    )
    timesyncd = tmp_path / "timesyncd.conf"
    timesyncd.write_text("[Time]\nNTP=ntp.example.net 2001:db8:123::123\n#NTP=commented\n")
    got = discover._ntp_servers((str(chrony), str(timesyncd), str(tmp_path / "absent")))
    assert got == [
        ("2.debian.pool.ntp.org", str(chrony)),
        ("2001:db8:123::123", str(chrony)),
        ("192.0.2.123", str(chrony)),
        ("ntp.example.net", str(timesyncd)),
    ]


def test_upstream_ra_rule_mirrors_the_kernel() -> None:
    ok = discover._Discovery._ra_rule_ok
    assert ok({"forwarding": 1, "accept_ra": 2, "disable_ipv6": 0})
    assert not ok({"forwarding": 1, "accept_ra": 1})
    assert ok({"forwarding": 0, "accept_ra": 1})
    assert not ok({"forwarding": 0, "accept_ra": 1, "disable_ipv6": 1})


# ---------------------------------------------------------------------------------------------
# the lab

NODES = {  # node: (discover's --vantage, areas the healthy node must yield)
    "gw": (None, {"sysctl", "nd", "routes", "dns", "tunnel", "dhcpv6"}),
    "lan": (None, {"sysctl", "nd", "routes", "dns"}),
    "out": ("outside", {"sysctl", "routes", "dns"}),
    "vpn": (None, {"sysctl", "nd", "routes", "dns"}),
}


@pytest.fixture(scope="module")
def lab() -> Iterator[object]:
    from sixcheck.lab import Lab

    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


@pytest.fixture(scope="module")
def discovered(lab: object, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each node's discovered profile, taken on the healthy site."""
    from sixcheck.lab import netns

    d = tmp_path_factory.mktemp("discovered")
    out = {}
    for node, (vantage, _) in NODES.items():
        path = d / f"{node}.yaml"
        argv = [sys.executable, "-m", "sixcheck", "discover", "--ra-listen", "4", "-o", str(path)]
        if vantage:
            argv += ["--vantage", vantage]
        proc = netns.run(lab.ns(node), argv, cwd=REPO, timeout=120)  # type: ignore[attr-defined]
        assert proc.returncode == 0, proc.stderr
        out[node] = path
    return out


def _check(lab: object, node: str, profile: Path, tmp: Path) -> tuple[int, dict[str, str], str]:
    from sixcheck.lab import netns

    res = tmp / f"{node}.json"
    proc = netns.run_pytest_in(
        lab.ns(node),  # type: ignore[attr-defined]
        [
            "--profile",
            str(profile),
            "--no-report",
            "--json-file",
            str(res),
            "-p",
            "no:cacheprovider",
        ],
        REPO,
        timeout=180,
    )
    data = json.loads(res.read_text())
    failing = {c["id"]: c["area"] for c in data["checks"] if c["outcome"] != "passed"}
    return proc.returncode, failing, proc.stdout + proc.stderr


@needs_root
@pytest.mark.lab
def test_discovered_profiles_validate_and_pass(
    lab: object, discovered: dict[str, Path], tmp_path: Path
) -> None:
    for node, (_, areas) in NODES.items():
        text = discovered[node].read_text()
        profile = parse(text, str(discovered[node]))
        assert areas <= set(profile.areas()), (node, profile.areas())
        assert "# firewall:" in text  # what a person must decide is left as a template
        rc, failing, out = _check(lab, node, discovered[node], tmp_path)
        assert rc == 0, f"{node}: {failing}\n{out[-3000:]}"
    gw = parse(discovered["gw"].read_text(), "gw")
    assert gw.interfaces["wan0"].role == "wan"
    assert gw.interfaces["wan0"].upstream_ra
    assert gw.interfaces["lan0"].role == "lan"
    assert gw.interfaces["tun6"].role == "tunnel"
    vpn = parse(discovered["vpn"].read_text(), "vpn")
    assert vpn.interfaces["wg0"].role == "vpn"
    assert "# vpn:" in discovered["vpn"].read_text()


@needs_root
@pytest.mark.lab
@pytest.mark.parametrize(
    ("faults", "node", "areas"),
    [
        (["forwarding-off"], "gw", {"sysctl"}),
        (["ra-no-rdnss", "resolver-down"], "lan", {"nd", "dns"}),
        (["dhcpv6-server-down"], "gw", {"dhcpv6"}),
    ],
)
def test_discovered_profiles_fail_under_faults(
    lab: object,
    discovered: dict[str, Path],
    tmp_path: Path,
    faults: list[str],
    node: str,
    areas: set[str],
) -> None:
    lab.up(faults=faults)  # type: ignore[attr-defined]
    rc, failing, out = _check(lab, node, discovered[node], tmp_path)
    assert rc == 1, out[-3000:]
    assert areas <= set(failing.values()), failing
