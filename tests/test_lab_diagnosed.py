"""The matrix's `diagnosed` verdict over recorded runs (no lab needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sixcheck.lab import diagnosed, faults, matrix

FIXTURES = Path(__file__).parent / "fixtures" / "diagnosis"
SITE_ORDER = ("lab-gw", "lab-lan", "lab-out", "lab-vpn")


def _runs(scenario: str) -> dict[str, dict[str, Any] | None]:
    """Every lab profile's results of a scenario, upstream first; a profile not recorded (it
    passed) stands in as a run without failures."""
    out: dict[str, dict[str, Any] | None] = {}
    for p in SITE_ORDER:
        f = FIXTURES / scenario / f"{p}.json"
        out[p] = json.loads(f.read_text()) if f.exists() else {"checks": []}
    return out


CASCADES = [
    "ra-stopped",
    "forwarding-off",
    "accept-ra-ignored",
    "wrong-prefix",
    "rogue-router",
    "lan-no-default-route",
    "icmpv6-dropped",
    "outbound-new-dropped",
    "resolver-down",
    "vpn-leak",
    "tunnel-mtu-blackhole",
    "tunnel-far-end-gone",
    "inbound-new-accepted",
    "vpn-dns-public",
    "ntp-down",
    "ntp-unsynchronised",
    "ntp-kiss-rate",
    "name-missing-aaaa",
    "ra-no-rdnss",
    "resolver-refuses-lan",
    "lan-dhcpv6-down",
    "dhcpv6-server-down",
]


@pytest.mark.parametrize("name", CASCADES)
def test_fault_is_diagnosed_on_the_vantage_it_hits_first(name: str) -> None:
    f = faults.get(name)
    v = diagnosed.verdict("fault", f.area, f.breaks, _runs(name))
    assert v["diagnosed"] is True, v
    assert v["top"]["area"] == f.area


def test_first_vantage_is_upstream_first() -> None:
    f = faults.get("forwarding-off")
    assert (
        diagnosed.verdict("fault", f.area, f.breaks, _runs("forwarding-off"))["vantage"] == "lab-gw"
    )
    f = faults.get("ra-stopped")  # the gateway passes: the LAN host is hit first
    assert diagnosed.verdict("fault", f.area, f.breaks, _runs("ra-stopped"))["vantage"] == "lab-lan"


def test_healthy_has_no_cause_and_a_cause_there_is_named() -> None:
    v = diagnosed.verdict("healthy", None, (), _runs("healthy"))
    assert v == {"vantage": None, "top": None, "diagnosed": None, "note": ""}
    v = diagnosed.verdict("healthy", None, (), _runs("rogue-router"))
    assert "a cause on a site that should pass" in v["note"]


def test_wrong_area_is_not_diagnosed() -> None:
    v = diagnosed.verdict("fault", "dns", {"nd", "routes"}, _runs("rogue-router"))
    assert v["diagnosed"] is False
    assert "top cause on lab-lan is nd, not dns" in v["note"]


def test_matrix_row_carries_the_verdict() -> None:
    s = matrix.Scenario("x", "fault", "nd", frozenset({"nd", "routes"}), ("rogue-router",))
    s.diagnosis = diagnosed.verdict(s.kind, s.area, s.breaks, _runs("rogue-router"))
    result = matrix.MatrixResult([s], ["lab-lan.yaml"])
    assert result.to_json()["x"]["diagnosis"]["top"]["key"] == "nd.rogue@eth0"
    table = result.table()
    assert "diagnosed" in table.splitlines()[0]
    assert "diagnosed 1/1 faults" in table
