"""The site view of a lab scenario: one site report over the lab profiles' runs, and its verdict.

The matrix and the demo run every lab profile in its node; this turns those runs into the site
report a person would make from the same files (`sixcheck site *.json`), and says whether the top
site cause sits in the fault's own area (part of the matrix's `diagnosed` verdict).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sixcheck.sitediag import SiteCause, Vantage, diagnose_site
from sixcheck.siteview import SiteReport, write_site_report

if TYPE_CHECKING:
    from sixcheck.lab.site import Lab


def vantage_of(json_file: Path, html: Path | None = None) -> Vantage:
    """A lab run as a site vantage (a run that left no readable results is one without)."""
    from sixcheck.siteview import SiteInputError, load_vantage

    try:
        v = load_vantage(json_file)
    except SiteInputError as exc:
        return Vantage(json_file.stem, error=str(exc), source=str(json_file))
    if html is not None and html.is_file():
        v.report = str(html.resolve())
    return v


def newest_html(folder: Path) -> Path | None:
    """The HTML report a run wrote into its report folder (the newest, if several)."""
    if not folder.is_dir():
        return None
    pages = [p for p in folder.glob("*.html") if p.name != "index.html"]  # index: the history
    return max(pages, key=lambda p: p.stat().st_mtime) if pages else None


def site_report(runs: Sequence[tuple[Path, Path | None]], out: Path) -> SiteReport:
    """Write the site report of (JSON results, its HTML report) pairs to ``out`` (a folder);
    links to the runs' reports are relative, so the folder can be moved as a whole."""
    vantages = [vantage_of(j, h) for j, h in runs]
    for v in vantages:
        if v.report:
            v.report = os.path.relpath(v.report, out.resolve())
    return write_site_report(vantages, out)


def demo_site(lab: Lab, gw_json: Path | None, report_dir: Path) -> SiteReport:
    """The demo's site report: the gateway's run (already made) and every other lab profile run
    in its node now, into ``REPORT_DIR/site-TIMESTAMP/``."""
    from sixcheck.lab import matrix

    out = report_dir / f"site-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[Path, Path | None]] = []
    if gw_json is not None:
        runs.append((gw_json, gw_json.with_suffix(".html")))
    others = {p: n for p, n in matrix.lab_profiles().items() if n != "gw"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = [pool.submit(matrix.run_profile, lab, p, n, out / "runs") for p, n in others.items()]
        for f in done:
            f.result()
    for p in others:
        stem = Path(p).stem
        runs.append((out / "runs" / f"{stem}.json", newest_html(out / "runs" / stem)))
    return site_report(runs, out)


def site_verdict(
    kind: str, area: str | None, docs: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, Any]:
    """``{top, diagnosed, note}``: the top site cause over the scenario's runs (``docs``:
    profile -> results, None when a run gave none) and whether it is in the fault's own area.
    ``diagnosed`` is None where it does not apply (healthy, variants: no cause is expected)."""
    vantages = [
        Vantage(str((d.get("profile") or {}).get("name") or p), d)
        if d is not None
        else Vantage(p, error="no results")
        for p, d in docs.items()
    ]
    causes, _ = diagnose_site(vantages)
    top: SiteCause | None = causes[0] if causes else None
    summary = None
    if top is not None:
        summary = {
            "vantage": top.vantage,
            "area": top.area,
            "title": top.title,
            "failures": len(top.failures),
            "vantages": top.vantages(),
        }
    if kind != "fault":
        note = "" if top is None else f"a cause on a site that should pass: {top.title}"
        return {"top": summary, "diagnosed": None, "note": note}
    if top is None:
        return {"top": None, "diagnosed": False, "note": "no site cause (nothing failed?)"}
    ok = top.area == area
    note = "" if ok else f"top site cause is {top.area} on {top.vantage}, not {area}: {top.title}"
    return {"top": summary, "diagnosed": ok, "note": note}
