"""Diagnosis over recorded results: causes, consequences, and failures that stay apart."""

from __future__ import annotations

from typing import Any

from sixcheck.diagnosis import LAYERS, Cause, diagnose


def _doc(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "sixcheck-results/1", "profile": {"name": "p"}, "checks": list(checks)}


def test_healthy_run_has_no_cause() -> None:
    doc = _doc({"id": "a", "area": "dns", "outcome": "passed", "message": "", "evidence": []})
    assert diagnose(doc) == []


def test_cause_round_trips_through_json() -> None:
    c = Cause("k", "nd", "link", "t", ("a",), ("b",), ("why",), "lan")
    assert Cause.from_json(c.to_json()) == c
    assert c.layer in LAYERS


def test_lone_failure_is_its_own_cause() -> None:
    doc = _doc(
        {"id": "x", "area": "ntp", "outcome": "failed", "message": "NTP down\nmore", "evidence": []}
    )
    [c] = diagnose(doc)
    assert c.shown_by == ("x",)
    assert c.explains == ()
    assert c.title == "NTP down"
    assert c.vantage == "p"
