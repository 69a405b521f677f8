"""The matrix's `diagnosed` verdict: does the top cause of one run name the fault's own area?

A fault is diagnosed when, on the vantage it hits first, the top-ranked cause lies in the fault's
own area: the operator reading that run starts where the fault is. The vantage it hits first is the
first lab profile, upstream first (gateway, LAN host, outside, VPN client), with a failure in an
area the fault breaks. A healthy run (or a variant) must have no cause at all, and a run whose only
failure is a single check must get that check back as its cause, not something else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sixcheck.diagnosis import Cause, diagnose


def _failed(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in doc.get("checks") or () if c.get("outcome") in ("failed", "error")]


def verdict(
    kind: str,
    area: str | None,
    breaks: Iterable[str],
    docs: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """``{vantage, top, diagnosed, note}`` for one scenario's runs (``docs``: profile -> its
    results, in site order; None when a run gave none). ``diagnosed`` is None where it does not
    apply (healthy and variants: the note names any cause found, which must not be)."""
    causes = {p: diagnose(d) for p, d in docs.items() if d is not None}
    for p, d in docs.items():
        failed = _failed(d) if d is not None else []
        lone = causes.get(p) or []
        if len(failed) == 1 and [c.shown_by for c in lone] != [(failed[0]["id"],)]:
            return {
                "vantage": p,
                "top": _summary(lone[0]) if lone else None,
                "diagnosed": False,
                "note": f"{p}: its one failure {failed[0]['id']} got another cause",
            }
    if kind != "fault":
        found = [(p, c[0]) for p, c in causes.items() if c]
        note = (
            f"{found[0][0]}: a cause on a site that should pass: {found[0][1].title}"
            if found
            else ""
        )
        return {"vantage": None, "top": None, "diagnosed": None, "note": note}
    wanted = set(breaks)
    hit = next(
        (
            p
            for p, d in docs.items()
            if d is not None and any(c.get("area") in wanted for c in _failed(d))
        ),
        None,
    )
    if hit is None or not causes.get(hit):
        return {
            "vantage": hit,
            "top": None,
            "diagnosed": False,
            "note": "no cause (nothing failed?)",
        }
    top = causes[hit][0]
    ok = top.area == area
    note = "" if ok else f"top cause on {hit} is {top.area}, not {area}: {top.title}"
    return {"vantage": hit, "top": _summary(top), "diagnosed": ok, "note": note}


def _summary(c: Cause) -> dict[str, Any]:
    return {
        "key": c.key,
        "area": c.area,
        "title": c.title,
        "shown_by": len(c.shown_by),
        "explains": len(c.explains),
    }
