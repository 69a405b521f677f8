"""The node_exporter textfile parses with prometheus-client's own parser and says what it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_sixcheck
from sixcheck import prometheus

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client (dev extra)")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


DOC: dict[str, Any] = {
    "schema": "sixcheck-results/1",
    "profile": {"name": "lab-out"},
    "started": "2025-01-01T10:00:00+00:00",
    "finished": "2025-01-01T10:00:02+00:00",
    "duration": 2.5,
    "exitstatus": 1,
    "summary": {"passed": 1, "failed": 1, "skipped": 1, "error": 1},
    "checks": [
        {
            "id": "checks/test_fw.py::test_closed[2001:db8::1-tcp-22]",
            "area": "firewall",
            "outcome": "passed",
        },
        {"id": 'checks/test_dns.py::test_a[we"ird\\name\n]', "area": "dns", "outcome": "failed"},
        {"id": "checks/test_nd.py::test_ra[lan0]", "area": "nd", "outcome": "skipped"},
        {"id": "checks/test_nd.py::test_rdnss[lan0]", "area": None, "outcome": "error"},
    ],
    "baseline": {"counts": {"regression": 1, "fixed": 0}},
}


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def test_textfile_parses_and_carries_every_check() -> None:
    s = _samples(prometheus.render(DOC))
    p = {"profile": "lab-out"}
    assert (
        s[
            _key(
                "sixcheck_check_passed",
                **p,
                area="firewall",
                check="test_closed[2001:db8::1-tcp-22]",
            )
        ]
        == 1
    )
    # label values with quotes, backslashes and newlines survive escaping
    assert s[_key("sixcheck_check_passed", **p, area="dns", check='test_a[we"ird\\name\n]')] == 0
    assert s[_key("sixcheck_check_passed", **p, area="other", check="test_rdnss[lan0]")] == 0
    assert s[_key("sixcheck_check_skipped", **p, area="nd", check="test_ra[lan0]")] == 1
    assert _key("sixcheck_check_passed", **p, area="nd", check="test_ra[lan0]") not in s
    assert s[_key("sixcheck_checks", **p, outcome="failed")] == 1
    assert s[_key("sixcheck_run_duration_seconds", **p)] == 2.5
    assert s[_key("sixcheck_run_timestamp_seconds", **p)] == 1735725602
    assert s[_key("sixcheck_run_exitstatus", **p)] == 1
    assert s[_key("sixcheck_baseline_changes", **p, change="regression")] == 1


def test_written_atomically_by_a_run(tmp_path: Path) -> None:
    prof = tmp_path / "lo.yaml"
    prof.write_text(
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n"
        "  interfaces: {lo: {disable_ipv6: 0}}\n"
    )
    prom = tmp_path / "textfiles" / "sixcheck.prom"
    out = tmp_path / "r.json"
    proc = run_sixcheck(
        "--profile", str(prof), "--no-report", "--json-file", str(out), "--prometheus", str(prom)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in prom.parent.iterdir()] == ["sixcheck.prom"]  # no temporary left
    s = _samples(prom.read_text())
    key = _key(
        "sixcheck_check_passed",
        profile="lo",
        area="sysctl",
        check="test_sysctl[net.ipv6.conf.lo.disable_ipv6]",
    )
    assert s[key] == 1
    assert prom.read_text() == prometheus.render(json.loads(out.read_text()))
    # and from an existing JSON file, by hand
    again = tmp_path / "again.prom"
    from sixcheck.__main__ import main

    assert main(["prometheus", str(out), str(again)]) == 0
    assert again.read_text() == prom.read_text()
