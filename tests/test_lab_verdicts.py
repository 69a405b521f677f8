"""The matrix's judgement and the fault catalogue, without building anything (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_sixcheck
from sixcheck.lab import faults, matrix
from sixcheck.lab.topology import SiteConfig


def _scenario(kind: str, breaks: set[str], checks: list[tuple[str, str]]) -> matrix.Scenario:
    s = matrix.Scenario("x", kind, "dns" if kind == "fault" else None, frozenset(breaks), ())
    run = matrix.ProfileRun("lab-lan.yaml", "lan", 0, 1.0)
    run.checks = [
        {"id": f"checks/t.py::c{i}", "area": a, "outcome": o} for i, (a, o) in enumerate(checks)
    ]
    s.runs = {"lab-lan.yaml": run}
    s.judge()
    return s


@pytest.mark.parametrize(
    ("kind", "breaks", "checks", "verdict"),
    [
        ("healthy", set(), [("dns", "passed")], "ok"),
        ("healthy", set(), [("dns", "failed")], "false-alarm"),
        ("healthy", set(), [], "pending"),
        ("variant", set(), [("vpn", "passed"), ("dns", "skipped")], "ok"),
        ("fault", {"dns"}, [("dns", "failed"), ("ntp", "passed")], "detected"),
        ("fault", {"dns"}, [("dns", "error")], "detected"),
        ("fault", {"dns"}, [("dns", "failed"), ("ntp", "failed")], "false-alarm"),
        ("fault", {"dns"}, [("dns", "passed")], "missed"),
        ("fault", {"dns"}, [("dns", "skipped"), ("ntp", "passed")], "pending"),
        # only the cascade failed while the fault's own area passed: the cause went unnamed
        ("fault", {"dns", "ntp"}, [("ntp", "failed"), ("dns", "passed")], "missed"),
        ("fault", {"dns", "ntp"}, [("ntp", "failed"), ("dns", "failed")], "detected"),
        # the own area has no checks in these profiles: a declared cascade still detects
        ("fault", {"dns", "ntp"}, [("ntp", "failed")], "detected"),
    ],
)
def test_verdicts(kind: str, breaks: set[str], checks: list[tuple[str, str]], verdict: str) -> None:
    assert _scenario(kind, breaks, checks).verdict == verdict


def test_pending_names_the_areas() -> None:
    s = _scenario("fault", {"tunnel"}, [("sysctl", "passed")])
    assert s.verdict == "pending"
    assert "tunnel" in s.note


def test_harness_error_is_an_error() -> None:
    s = _scenario("fault", {"dns"}, [("dns", "failed")])
    s.runs["lab-lan.yaml"].harness_error = "pytest exit 4: usage"
    s.judge()
    assert s.verdict == "error"
    result = matrix.MatrixResult([s], ["lab-lan.yaml"])
    assert result.exit_code() == 1
    assert "lab-lan.yaml: pytest exit 4" in result.problems()[0]


def test_a_profile_that_checks_nothing_is_an_error_naming_why(tmp_path: Path) -> None:
    """The matrix once took pytest's exit 5 for "no checks yet" and kept such rows pending; the
    plugin now ends a run whose profile checks nothing with exit 4 and one line naming why
    (sixcheck.emptyrun), and that line, whole, is the row's note. A real pytest run, with the
    matrix's own options: collection ends it before any probe, so it is safe outside a
    namespace."""
    profile = tmp_path / "none.yaml"
    profile.write_text(
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n  interfaces: {lo: {}}\n"
    )
    json_file = tmp_path / "none.json"
    proc = run_sixcheck(
        "-p", "no:cacheprovider",
        "--profile", str(profile),
        "--report-dir", str(tmp_path / "r"),
        "--json-file", str(json_file),
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    run = matrix.read_run("none.yaml", "lan", proc, json_file, 0.1)
    assert run.checks == []
    assert run.harness_error == (
        "pytest exit 4: sixcheck: nothing checked for profile none: its areas (sysctl) give no "
        "check a target (name the interfaces, resolvers, servers or ports to check; see "
        "profiles/README.md)"
    )
    s = matrix.Scenario("x", "fault", "sysctl", frozenset({"sysctl"}), ())
    s.runs = {"none.yaml": run}
    s.judge()
    assert s.verdict == "error"
    assert s.note == f"none.yaml: {run.harness_error}"


def test_a_bad_profile_says_why_in_full(tmp_path: Path) -> None:
    """A usage error's message spans lines on stderr ("ERROR: bad profile:" then where)."""
    profile = tmp_path / "bad.yaml"
    profile.write_text("node: {role: host}\n")
    proc = run_sixcheck("--profile", str(profile), "--no-report")
    run = matrix.read_run("bad.yaml", "lan", proc, tmp_path / "bad.json", 0.1)
    assert run.harness_error is not None
    assert run.harness_error.startswith(f"pytest exit 4: bad profile: {profile}:1: "), run
    assert "the profile selects no area" in run.harness_error


def test_json_shape() -> None:
    s = _scenario("fault", {"dns"}, [("dns", "failed"), ("ntp", "passed"), ("nd", "skipped")])
    data = matrix.MatrixResult([s], ["lab-lan.yaml"]).to_json()["x"]
    assert data["verdict"] == "detected"
    assert data["breaks"] == ["dns"]
    assert data["profiles"]["lab-lan.yaml"]["failed"] == ["checks/t.py::c0"]
    assert data["profiles"]["lab-lan.yaml"]["passed"] == ["checks/t.py::c1"]
    assert data["profiles"]["lab-lan.yaml"]["skipped"] == ["checks/t.py::c2"]


def test_shorten_keeps_ipv6_parameters() -> None:
    cid = "checks/test_dns.py::test_lookup[2001:db8:53::53-udp-AAAA-www.example.net]"
    assert matrix.shorten(cid) == "test_lookup[2001:db8:53::53-udp-AAAA-www.example.net]"


@pytest.mark.parametrize("name", sorted(faults.FAULTS))
def test_fault_is_well_formed(name: str) -> None:
    cls = faults.get(name)
    assert cls.summary()
    assert cls.breaks <= faults.AREAS
    if cls.variant:
        assert not cls.breaks
    else:
        assert cls.area in cls.breaks
        assert cls.apply(SiteConfig()) != SiteConfig() or cls.after, "a fault must change something"


def test_issue_fault_list_is_covered() -> None:
    wanted = {
        "forwarding-off", "ra-stopped", "ra-no-rdnss", "wrong-prefix", "lan-no-default-route",
        "inbound-new-accepted", "outbound-new-dropped", "icmpv6-dropped", "resolver-down",
        "resolver-ipv4-only", "name-missing-aaaa", "ntp-down", "ntp-skewed",
        "tunnel-far-end-gone", "tunnel-mtu-blackhole", "vpn-leak", "vpn-dns-public",
        "accept-ra-ignored", "rogue-router", "vpn-blackhole",
    }  # fmt: skip
    assert wanted <= set(faults.FAULTS)
    assert faults.get("vpn-blackhole").variant


def test_unknown_fault_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="ra-stopped"):
        faults.get("no-such-fault")
