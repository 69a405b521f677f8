"""Baselines: every check's change between two runs, the evidence that changed, and the exit status
under `--fail-on regressions`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_sixcheck
from sixcheck import baseline as bl


def _check(cid: str, outcome: str, value: str = "1", rtt: float = 0.1) -> dict[str, Any]:
    return {
        "id": f"checks/test_x.py::{cid}",
        "area": "x",
        "outcome": outcome,
        "message": f"{cid} {outcome}",
        "evidence": [
            {"notes": {"expected": "1"}},
            {
                "request": {"probe": "P", "key": cid},
                "observation": {"kind": "O", "value": value, "rtt": rtt, "offset": rtt},
            },
        ],
    }


def _doc(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "sixcheck-results/1", "profile": {"name": "p"}, "checks": list(checks)}


def test_categories_and_order() -> None:
    old = _doc(
        _check("a", "passed"),
        _check("b", "failed"),
        _check("c", "failed"),
        _check("d", "passed"),
        _check("e", "passed"),
        _check("f", "passed"),
        _check("g", "skipped"),
    )
    new = _doc(
        _check("g", "failed"),  # was skipped: a regression too
        _check("a", "failed"),
        _check("b", "failed"),
        _check("c", "passed"),
        _check("d", "passed"),
        _check("f", "skipped"),
        _check("n", "failed"),
        _check("m", "passed"),
    )
    cmp = bl.compare(old, new, "old.json")
    got = {c.short_id: c.category for c in cmp.changes}
    assert got == {
        "a": "regression",
        "g": "regression",
        "b": "still-failing",
        "c": "fixed",
        "d": "still-passing",
        "e": "gone",
        "f": "now-skipped",
        "n": "new-failure",
        "m": "new",
    }
    order = [c.category for c in cmp.changes]
    assert order == sorted(order, key=bl.ORDER.index)
    assert order[:2] == ["regression", "regression"]
    assert {c.short_id for c in cmp.unknown_failures()} == {"a", "g", "n"}
    assert cmp.counts()["regression"] == 2


def test_changed_evidence_is_listed_without_timings() -> None:
    old = _doc(_check("a", "passed", value="2001:db8:1:1::/64", rtt=0.1))
    new = _doc(_check("a", "failed", value="2001:db8:bad::/64", rtt=0.9))
    (change,) = bl.compare(old, new, "old.json").changes
    paths = {f.path: (f.before, f.after) for f in change.evidence}
    # an unknown kind (no table says what is stable) falls back to name patterns
    assert paths["P a > value"] == ("2001:db8:1:1::/64", "2001:db8:bad::/64")
    assert not any(p.endswith("rtt") for p in paths)  # timing noise never shown
    assert "P a > offset" in paths  # a clock offset is shown when the outcome changed


def test_unchanged_outcome_hides_noisy_measurements() -> None:
    old = _doc(_check("a", "passed", rtt=0.1))
    new = _doc(_check("a", "passed", rtt=0.5))
    (change,) = bl.compare(old, new, "old.json").changes
    assert change.category == "still-passing"
    assert change.evidence == []


def test_terminal_and_html_lead_with_regressions() -> None:
    old = _doc(_check("a", "passed"), _check("b", "failed"))
    new = _doc(_check("a", "failed", value="0"), _check("b", "failed"))
    cmp = bl.compare(old, new, "old.json")
    lines = bl.terminal_lines(cmp, "regressions")
    assert lines[0].startswith("sixcheck baseline: against old.json")
    assert "1 regression" in lines[0]
    assert lines[1].split() == ["x", "1", "passed,", "1", "failed", "→", "2", "failed"]
    assert lines[2].strip().startswith("REGRESSION")
    assert lines[3:5] == ["      P a", "        value 1 → 0"]  # the message is pytest's
    assert any("tolerated" in line for line in lines)
    page = bl.html_section(cmp, "regressions")
    assert page.index("regression") < page.index("still failing")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"schema": "other/1", "checks": []}', "not sixcheck JSON results"),
        ('{"schema": "sixcheck-results/9", "checks": []}', "not readable by this sixcheck"),
        ('{"schema": "sixcheck-results/1", "checks": [1]}', "'checks' is not a list"),
    ],
)
def test_bad_baseline_files(tmp_path: Path, content: str | None, expected: str) -> None:
    f = tmp_path / "b.json"
    if content is not None:
        f.write_text(content)
    with pytest.raises(bl.BaselineError, match=expected):
        bl.load(f)


# ---------------------------------------------------------------------------------------------
# through pytest: the loopback's sysctls are readable anywhere and never change, so the profile
# alone decides what passes: a known failure (lo forwards? no) and, later, a new one.

KNOWN_FAILURE = (
    "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n"
    "  interfaces: {lo: {disable_ipv6: 0, forwarding: 1}}\n"
)
NEW_FAILURE = KNOWN_FAILURE.replace("disable_ipv6: 0", "disable_ipv6: 1")


def _run(tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, Any], str]:
    prof = tmp_path / "site.yaml"
    prof.write_text(text)
    out = tmp_path / f"run{len(list(tmp_path.glob('run*.json')))}.json"
    proc = run_sixcheck(
        "--profile", str(prof), "--report-dir", str(tmp_path / "r"), "--json-file", str(out), *args
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def test_fail_on_regressions_tolerates_known_failures_only(tmp_path: Path) -> None:
    rc, _, out = _run(tmp_path, KNOWN_FAILURE)
    assert rc == 1, out
    base = tmp_path / "run0.json"
    rc, data, out = _run(
        tmp_path, KNOWN_FAILURE, "--baseline", str(base), "--fail-on", "regressions"
    )
    assert rc == 0, out  # the failure is in the baseline: reported, tolerated
    assert data["exitstatus"] == 0
    assert data["baseline"]["counts"]["still-failing"] == 1
    assert "still failing, as in the baseline (tolerated" in out
    assert "lo.forwarding is 0, expected 1" in out  # still reported
    rc, data, out = _run(tmp_path, NEW_FAILURE, "--baseline", str(base), "--fail-on", "regressions")
    assert rc == 1, out
    assert data["baseline"]["counts"]["regression"] == 1
    first = data["baseline"]["changes"][0]
    assert first["category"] == "regression"
    assert first["id"].endswith("test_sysctl[net.ipv6.conf.lo.disable_ipv6]")
    assert {
        "request": "the profile",
        "field": "expected",
        "path": "the profile > expected",
        "before": 0,
        "after": 1,
        "text": "expected 0 → 1",
    } in first["evidence"]
    # without the option every failure counts
    rc, _, out = _run(tmp_path, KNOWN_FAILURE, "--baseline", str(base))
    assert rc == 1, out


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    for arg, expected in ((str(bad), "not sixcheck JSON results"), ("/nope.json", "no such file")):
        rc, _, out = _run(tmp_path, KNOWN_FAILURE, "--baseline", arg)
        assert rc == 4, out
        assert expected in out
        assert "Traceback" not in out
    rc, _, out = _run(tmp_path, KNOWN_FAILURE, "--fail-on", "regressions")
    assert rc == 4
    assert "--fail-on regressions needs --baseline" in out


def test_baseline_latest(tmp_path: Path) -> None:
    _, _, out = _run(tmp_path, KNOWN_FAILURE, "--baseline", "latest", "--no-report")
    assert "nothing to compare with" in out
    prof = tmp_path / "site.yaml"
    run_sixcheck("--profile", str(prof), "--report-dir", str(tmp_path / "r"))
    rc, data, out = _run(
        tmp_path, KNOWN_FAILURE, "--baseline", "latest", "--fail-on", "regressions"
    )
    assert rc == 0, out
    assert data["baseline"]["path"].startswith(str(tmp_path / "r"))


def test_regressions_grouped_under_their_cause() -> None:
    old = _doc(_check("a", "passed"), _check("b", "passed"), _check("c", "passed"))
    new = _doc(_check("a", "failed", "0"), _check("b", "failed", "0"), _check("c", "failed", "0"))
    new["causes"] = [
        {
            "key": "resolver:2001:db8::53",
            "area": "dns",
            "layer": "service",
            "title": "resolver 2001:db8::53 refuses this node",
            "shown_by": ["checks/test_x.py::a"],
            "explains": ["checks/test_x.py::b"],
            "ties": ["the same REFUSED from 2001:db8::53"],
        }
    ]
    cmp = bl.compare(old, new, "old.json")
    (group,) = cmp.causes  # c: no cause in the results, listed on its own
    assert group.regressions == ["checks/test_x.py::a", "checks/test_x.py::b"]
    assert not group.known
    lines = bl.terminal_lines(cmp, "failures")
    head = next(i for i, line in enumerate(lines) if "cause" in line)
    assert lines[head] == "  cause (dns, service): resolver 2001:db8::53 refuses this node"
    assert lines[head + 1].strip().startswith("REGRESSION    a:")
    assert "cause: <b>resolver 2001:db8::53 refuses this node</b>" in bl.html_section(
        cmp, "failures"
    )
    assert cmp.as_json()["causes"][0]["regressions"] == group.regressions


# ---- results an older sixcheck wrote

LEGACY = Path(__file__).parent / "fixtures" / "legacy" / "vpn-leak-lab-vpn.json"
SAME_RUN = Path(__file__).parent / "fixtures" / "diagnosis" / "vpn-leak" / "lab-vpn.json"


def _lines(cmp: bl.Comparison) -> list[str]:
    return [f"{c.short_id}: {f.field}: {f.text()}" for c in cmp.changes for f in c.evidence]


def test_a_baseline_from_before_route_type_compares_as_the_same_run() -> None:
    """The vpn lab run under vpn-leak as sixcheck recorded it before RouteDecision's route type
    was `route_type` (it overwrote `kind`: `"kind": "unicast"`), compared with the same run as
    recorded now: nothing changed in the network, so no line may say so."""
    legacy = json.loads(LEGACY.read_text())
    assert '"kind": "unicast"' in json.dumps(legacy)  # the fixture is the old shape
    now = json.loads(SAME_RUN.read_text())
    assert _lines(bl.compare(bl.load(LEGACY), now, str(LEGACY))) == []
    # read as it is, every route decision and every nested decision would read as a change
    raw = _lines(bl.compare(legacy, now, str(LEGACY)))
    assert any("result unicast → RouteDecision" in line for line in raw), raw
    assert any("route-type unicast" in line for line in raw), raw  # NameRoutes' decisions


def test_a_legacy_route_decision_still_shows_a_real_change(tmp_path: Path) -> None:
    def check(obs: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "checks/test_vpn.py::test_protected_destination_stays_in_vpn[IPv6-x]",
            "area": "vpn",
            "outcome": "passed",
            "evidence": [
                {"request": {"probe": "RouteGet", "dst": "2001:db8:10::10"}, "observation": obs}
            ],
        }

    common = {
        "error": None,
        "dst": "2001:db8:10::10",
        "family": 6,
        "rules_consulted": [],
        "kernel": "",
    }
    old = _doc(check({"kind": "unicast", **common, "interface": "wg0"}))
    (tmp_path / "old.json").write_text(json.dumps(old))
    new = _doc(
        check({"kind": "RouteDecision", **common, "route_type": "blackhole", "interface": None})
    )
    cmp = bl.compare(bl.load(tmp_path / "old.json"), new, "old.json")
    assert _lines(cmp) == [
        "test_protected_destination_stays_in_vpn[IPv6-x]: route_type: route_type unicast → blackhole",
        "test_protected_destination_stays_in_vpn[IPv6-x]: interface: interface wg0 → none",
    ]
