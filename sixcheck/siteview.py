"""`sixcheck site REPORT.json ...`: one report for a site's vantages, with causes across them.

A fault on the gateway shows up as failures on the LAN and from outside too; looked at one run at a
time, each run blames itself. Merged, the gateway's cause is named once, with the failures it
explains on every vantage. A vantage without results is a finding, never a pass.

    sixcheck site gw.json lan.json out.json [-o DIR|FILE.html]
    sixcheck site run ...        (collect the results over SSH first: sixcheck.siterun)
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import sitesvg
from .baseline import BaselineError, load
from .report import write_atomic
from .sitediag import Relation, SiteCause, Vantage, diagnose_site

SITE_SCHEMA = "sixcheck-site/1"
#: the type `sixcheck site run` hands to write_site_report: results, or the error instead
VantageResult = Vantage
DEFAULT_OUTPUT = Path("site-report")
#: failed checks listed under a cause before the rest fold away
SHOWN_FAILURES = 4


class SiteInputError(Exception):
    """A results file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class SiteReport:
    """What write_site_report wrote, and the exit status the site's state calls for."""

    html: Path
    json: Path
    causes: list[SiteCause]
    exitstatus: int


def load_vantage(path: Path, name: str | None = None) -> VantageResult:
    """A vantage from a run's JSON results; SiteInputError (one line) when it is not one."""
    try:
        doc = load(path)
    except BaselineError as exc:
        raise SiteInputError(str(exc)) from None
    checks = doc.get("checks")
    if not isinstance(checks, list) or not all(
        isinstance(c, Mapping) and isinstance(c.get("id"), str) for c in checks
    ):
        raise SiteInputError(f"{path}: not sixcheck JSON results (no list of checks with ids)")
    for key in ("profile", "vantage", "summary"):
        if not isinstance(doc.get(key) or {}, Mapping):
            raise SiteInputError(f"{path}: not sixcheck JSON results ({key!r} is not an object)")
    prof = doc.get("profile")
    vname = name or str((prof.get("name") if isinstance(prof, Mapping) else None) or path.stem)
    return VantageResult(vname, doc, source=str(path))


def _report_link(v: Vantage, out_dir: Path) -> str | None:
    """The vantage's own HTML report (written next to its JSON), relative to the site report."""
    if v.report:
        return v.report
    if not v.source:
        return None
    src = Path(v.source)
    page = src.with_suffix(".html")
    target = page if page.is_file() else src if src.is_file() else None
    if target is None:
        return None
    return os.path.relpath(target.resolve(), out_dir.resolve())


def _unique_names(vantages: Sequence[Vantage]) -> None:
    seen: dict[str, int] = {}
    for v in vantages:
        n = seen.get(v.name, 0)
        seen[v.name] = n + 1
        if n:
            v.name = f"{v.name}#{n + 1}"


def _paths(out: Path) -> tuple[Path, Path]:
    if out.suffix.lower() in (".html", ".htm"):
        return out, out.with_suffix(".json")
    return out / "index.html", out / "site.json"


def site_json(
    vantages: Sequence[Vantage],
    causes: Sequence[SiteCause],
    rels: Sequence[Relation],
    out_dir: Path,
    exitstatus: int,
) -> dict[str, Any]:
    rows = []
    for v in vantages:
        doc = v.doc or {}
        row: dict[str, Any] = {
            "name": v.name,
            "role": v.role or None,
            "source": v.source or None,
            "report": _report_link(v, out_dir),
            "error": v.error if v.doc is None else None,
        }
        if v.doc is not None:
            row |= {
                "profile": (doc.get("profile") or {}).get("name"),
                "hostname": (doc.get("vantage") or {}).get("hostname"),
                "interfaces": (doc.get("vantage") or {}).get("interfaces") or {},
                "started": doc.get("started"),
                "exitstatus": doc.get("exitstatus"),
                "summary": doc.get("summary") or {},
            }
        rows.append(row)
    failed = sum(len(v.failed()) for v in vantages)
    return {
        "schema": SITE_SCHEMA,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "exitstatus": exitstatus,
        "summary": {
            "vantages": len(vantages),
            "without_results": sum(v.doc is None for v in vantages),
            "failed": failed,
            "causes": len(causes),
        },
        "vantages": rows,
        "relations": [r.to_json() for r in rels],
        "causes": [c.to_json() for c in causes],
    }


def write_site_report(vantages: list[VantageResult], out: Path) -> SiteReport:
    """Diagnose the site and write its HTML and JSON report (``out``: a folder, or FILE.html).

    Exit status as for a run: 0 when every vantage has results and all its checks passed, else 1.
    """
    _unique_names(vantages)
    causes, rels = diagnose_site(vantages)
    html_path, json_path = _paths(out)
    bad = any(v.doc is None or v.failed() for v in vantages)
    exitstatus = 1 if bad or not vantages else 0
    doc = site_json(vantages, causes, rels, html_path.parent, exitstatus)
    write_atomic(json_path, json.dumps(doc, indent=2, default=str) + "\n")
    page = render_html(vantages, causes, rels, doc, html_path.parent, json_path.name)
    write_atomic(html_path, page)
    return SiteReport(html_path, json_path, list(causes), exitstatus)


# ---- HTML

_CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.4em;border-bottom:1px solid #ccc}
.sx-sub{color:#555} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top;font-size:.92em} .sx-bad{background:#fdecea} .sx-good{background:#f1f8e9}
ol.sx-causes>li{margin-bottom:.9em} .sx-title{font-weight:bold} .sx-where{color:#555;font-size:.92em}
.sx-ties{margin:.2em 0 .2em 1em;font-size:.9em;color:#333} .sx-fail{font-size:.88em}
code{font-size:.92em} details summary{cursor:pointer;color:#1a4f8b}
ul.sx-fails{margin:.2em 0} @media print{a{color:#000}}
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _messages(vantages: Sequence[Vantage]) -> dict[tuple[str, str], str]:
    return {
        (v.name, str(c["id"])): str(c.get("message") or "").splitlines()[0]
        if c.get("message")
        else ""
        for v in vantages
        for c in v.failed()
    }


def _link(v: Mapping[str, Any], text: str) -> str:
    return f"<a href='{_e(v['report'])}'>{_e(text)}</a>" if v.get("report") else _e(text)


def render_html(
    vantages: Sequence[Vantage],
    causes: Sequence[SiteCause],
    rels: Sequence[Relation],
    doc: Mapping[str, Any],
    out_dir: Path,
    json_name: str,
) -> str:
    rows = {r["name"]: r for r in doc["vantages"]}
    msgs = _messages(vantages)
    s = doc["summary"]
    with_failures = sum(1 for v in vantages if v.doc is None or v.failed())
    head = (
        f"{s['vantages']} vantages, {with_failures} with failures or without results; "
        f"{s['failed']} failed checks, {s['causes']} probable cause"
        f"{'' if s['causes'] == 1 else 's'}"
    )
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>sixcheck site report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>sixcheck site report</h1>",
        f"<p class='sx-sub'>{_e(head)}. Generated {_e(doc['generated'])}; "
        f"machine-readable: <a href='{_e(json_name)}'>{_e(json_name)}</a>.</p>",
        "<h2 id='sixcheck-site-diagnosis'>Diagnosis</h2>",
    ]
    if not causes:
        out.append("<p class='sx-good'>No failures on any vantage: nothing to diagnose.</p>")
    else:
        out.append("<ol class='sx-causes'>")
        for c in causes:
            out.append(_cause_html(c, rows, msgs))
        out.append("</ol>")
    out.append("<h2 id='sixcheck-site-picture'>Picture</h2>")
    out.append(sitesvg.render(vantages, causes, rels))
    out.append("<h2 id='sixcheck-site-vantages'>Vantages</h2>")
    out.append(_vantage_table(doc["vantages"]))
    if rels:
        out.append("<h2 id='sixcheck-site-relations'>How the vantages are tied</h2><ul>")
        for r in rels:
            how = "is on a link of" if r.kind == "lan" else "probes addresses behind"
            out.append(
                f"<li><b>{_e(r.vantage)}</b> {how} <b>{_e(r.gateway)}</b>: "
                + "; ".join(_e(t) for t in r.ties)
                + "</li>"
            )
        out.append("</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def accounts_for(c: SiteCause) -> str:
    """'15 failed checks on lab-lan, lab-gw: 12 show it, 3 follow from it'."""
    total, shown, follow = len(c.failures), len(c.shown_by), len(c.explains)
    if not total:
        return "no check could run there"
    text = f"{total} failed check{'' if total == 1 else 's'} on {', '.join(c.vantages())}"
    if follow:
        text += f": {shown} show{'s' if shown == 1 else ''} it, {follow} follow from it"
    return text


def _cause_html(
    c: SiteCause, rows: Mapping[str, Mapping[str, Any]], msgs: Mapping[tuple[str, str], str]
) -> str:
    where = f"at {c.vantage}" + (f" ({c.area}, {c.layer} layer)" if c.area else "")
    reach = accounts_for(c)
    parts = [
        f"<li id='{_e('cause-' + c.key)}'><span class='sx-title'>{_e(c.title)}</span>",
        f"<div class='sx-where'>{_e(where)}; {_e(reach)}</div>",
    ]
    if c.ties:
        parts.append(
            "<div class='sx-ties'>tied by: "
            + "<br>".join(_e(t) for t in c.ties[:8])
            + (f"<br>… {len(c.ties) - 8} more" if len(c.ties) > 8 else "")
            + "</div>"
        )
    items = []
    for label, refs in (("shown by", c.shown_by), ("explains", c.explains)):
        for r in refs:
            row = rows.get(r.vantage, {})
            msg = msgs.get((r.vantage, r.check), "")
            items.append(
                f"<li class='sx-fail'>{label}: {_link(row, r.vantage)} "
                f"<code>{_e(r.check)}</code>{' — ' + _e(msg) if msg else ''}</li>"
            )
    # the first few stay visible (a printout shows them); the rest fold away
    parts.append(f"<ul class='sx-fails'>{''.join(items[:SHOWN_FAILURES])}</ul>")
    if len(items) > SHOWN_FAILURES:
        rest = len(items) - SHOWN_FAILURES
        parts.append(
            f"<details><summary>{rest} more failed check{'' if rest == 1 else 's'}</summary>"
            f"<ul class='sx-fails'>{''.join(items[SHOWN_FAILURES:])}</ul></details>"
        )
    parts.append("</li>")
    return "".join(parts)


def _vantage_table(rows: Sequence[Mapping[str, Any]]) -> str:
    out = [
        "<table class='sixcheck-site-vantages'><tr><th>vantage</th><th>role</th><th>host</th>"
        "<th>started</th><th>passed</th><th>failed</th><th>skipped</th><th>report</th></tr>"
    ]
    for r in rows:
        if r.get("error") is not None or "summary" not in r:
            out.append(
                f"<tr class='sx-bad'><td>{_e(r['name'])}</td><td colspan='7'><b>no results</b>: "
                f"{_e(r.get('error') or 'unknown')}</td></tr>"
            )
            continue
        s = r["summary"]
        failed = int(s.get("failed", 0)) + int(s.get("error", 0))
        cls = "sx-bad" if failed else "sx-good"
        report = _link(r, "report") if r.get("report") else "-"
        out.append(
            f"<tr class='{cls}'><td>{_e(r['name'])}</td><td>{_e(r.get('role'))}</td>"
            f"<td>{_e(r.get('hostname'))}</td><td>{_e(r.get('started'))}</td>"
            f"<td>{s.get('passed', 0)}</td><td>{failed}</td><td>{s.get('skipped', 0)}</td>"
            f"<td>{report}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


# ---- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sixcheck site",
        description="Merge the JSON results of one site's vantages (gateway, LAN host, outside, "
        "VPN client) into one report with causes across them. `sixcheck site run ...` collects "
        "them over SSH first.",
    )
    p.add_argument("results", nargs="+", metavar="REPORT.json", help="a run's JSON results")
    p.add_argument(
        "-o",
        "--output",
        default=str(DEFAULT_OUTPUT),
        metavar="DIR|FILE.html",
        help=f"a folder (index.html + site.json) or an .html file (default: {DEFAULT_OUTPUT}/)",
    )
    return p


def _run_site_run(argv: Sequence[str]) -> int:
    try:
        siterun = importlib.import_module("sixcheck.siterun")
    except ModuleNotFoundError:
        print("sixcheck site run: not available in this version (no sixcheck.siterun)",
              file=sys.stderr)  # fmt: skip
        return 4
    rc = siterun.main(list(argv))
    return int(rc) if rc is not None else 0


def main(argv: Sequence[str]) -> int:
    """Exit status: 0 every vantage passed, 1 failures or a vantage without results, 4 bad input."""
    argv = list(argv)
    if argv[:1] == ["run"]:
        return _run_site_run(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its one line already
        return 0 if exc.code == 0 else 4
    vantages: list[VantageResult] = []
    problems: list[str] = []
    for name in args.results:
        try:
            vantages.append(load_vantage(Path(name)))
        except SiteInputError as exc:
            problems.append(str(exc))
    if problems:
        for line in problems:
            print(f"sixcheck site: {line}", file=sys.stderr)
        return 4
    try:
        rep = write_site_report(vantages, Path(args.output))
    except OSError as exc:
        print(f"sixcheck site: cannot write {args.output}: {exc}", file=sys.stderr)
        return 4
    for c in rep.causes[:3]:
        print(f"probable cause ({c.vantage}): {c.title} ({accounts_for(c)})")
    print(f"sixcheck site: HTML report {rep.html}")
    print(f"sixcheck site: JSON {rep.json}")
    return rep.exitstatus


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
