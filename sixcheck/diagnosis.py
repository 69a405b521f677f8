"""Diagnosis: which failures of a run are causes and which are their consequences.

A person reading 20 failures wants to know the one thing to fix first. This module works on the JSON
results (schema sixcheck-results/1), not on pytest, so the same code serves a run as it finishes, a
saved run and a whole site's vantages. A failure is tied to another only by evidence a person could
check in the results (the same router's error, a missing route and a local "no route"); a failure
nothing explains is its own cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: layers of one vantage, lowest first: a lower layer's fault explains a higher layer's failures
LAYERS: tuple[str, ...] = ("node", "link", "address", "route", "path", "service")

#: where an area's checks sit when the evidence says nothing finer
AREA_LAYER: dict[str, str] = {
    "sysctl": "node",
    "nd": "link",
    "routes": "route",
    "tunnel": "path",
    "vpn": "path",
    "dns": "service",
    "ntp": "service",
    "firewall": "service",
}

FAILED = ("failed", "error")


@dataclass(frozen=True)
class Cause:
    """One probable cause: the check(s) that show it and the failures it explains."""

    key: str
    area: str
    layer: str
    title: str
    shown_by: tuple[str, ...]
    explains: tuple[str, ...]
    ties: tuple[str, ...]
    vantage: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "area": self.area,
            "layer": self.layer,
            "title": self.title,
            "shown_by": list(self.shown_by),
            "explains": list(self.explains),
            "ties": list(self.ties),
            "vantage": self.vantage,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Cause:
        return cls(
            key=str(d["key"]),
            area=str(d.get("area") or ""),
            layer=str(d.get("layer") or "service"),
            title=str(d.get("title") or ""),
            shown_by=tuple(str(x) for x in d.get("shown_by") or ()),
            explains=tuple(str(x) for x in d.get("explains") or ()),
            ties=tuple(str(x) for x in d.get("ties") or ()),
            vantage=str(d.get("vantage") or ""),
        )

    @property
    def failures(self) -> tuple[str, ...]:
        """Every failed check this cause accounts for: those that show it, then its consequences."""
        return self.shown_by + self.explains


def _rank(c: Cause) -> tuple[int, int, str]:
    # most failures explained first; on a tie the lower layer (it is nearer the root)
    return (-len(c.failures), LAYERS.index(c.layer) if c.layer in LAYERS else len(LAYERS), c.key)


def diagnose(doc: Mapping[str, Any]) -> list[Cause]:
    """The causes of a run's failures, ranked: the one that explains most (lowest layer on a tie)
    first. A healthy run has none."""
    vantage = str((doc.get("profile") or {}).get("name") or "")
    causes: list[Cause] = []
    for check in doc.get("checks") or ():
        if check.get("outcome") not in FAILED:
            continue
        area = str(check.get("area") or "other")
        msg = str(check.get("message") or "").strip().splitlines()
        causes.append(
            Cause(
                key=f"check:{check['id']}",
                area=area,
                layer=AREA_LAYER.get(area, "service"),
                title=msg[0] if msg else f"{check['id']} failed",
                shown_by=(str(check["id"]),),
                explains=(),
                ties=(),
                vantage=vantage,
            )
        )
    return sorted(causes, key=_rank)
