"""The report folder of scheduled audits: keep the last N reports per profile, and an index page.

A run writes `PROFILE-YYYYMMDDTHHMMSSZ[-n].{json,html}` into the report folder. After each run the
folder is pruned to the newest `keep` runs of each profile (only files sixcheck wrote: a stem with
a sixcheck JSON results file, or an HTML file of that name left by a run that died) and
`index.html` lists what remains with its outcome counts, and reads like a change log: each run
against the one before it with the same rules as `--baseline` (only what describes the network,
one line per meaningful change), and for what fails in the newest run, since which run. Two runs at once (a slow audit overlapping
the next cron slot) take turns under a lock file, so neither prunes the other's half-written pair
nor writes a half index.

What the index needs of each run (its counts, the check ids it failed, its change-log cell) is kept
in `.sixcheck-index.cache` beside the reports, keyed by each JSON file's size and mtime, so a run
reads and compares only itself against the run before: with `--keep 30` rebuilding the index
from every JSON (30 parses, 29 comparisons) was the slowest step after a healthy run's probes,
and with `--keep 0` it grew without bound. The cache is only ever a shortcut: a missing,
unreadable or stale one is rebuilt from the JSON files.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from . import baseline as bl
from .baseline import SCHEMA_PREFIX
from .report import write_atomic

INDEX = "index.html"
LOCK = ".sixcheck.lock"
CACHE = ".sixcheck-index.cache"  # JSON, but not named *.json: scripts glob reports/*.json
STEM = re.compile(r"^(?P<profile>.+)-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?$")
#: An HTML report without its JSON is a run in progress (pytest-html rewrites it after every
#: check), one that died, or one whose JSON went elsewhere (`--json-file`); it counts as a run,
#: but is removed only when older than this.
ORPHAN_AGE = 2 * 3600.0


class HistoryError(Exception):
    """The report folder cannot be managed (lock timeout, not a folder)."""


@dataclass(frozen=True)
class Entry:
    """One finished run in the folder."""

    stem: str
    profile: str
    started: str
    json_path: Path
    html_path: Path | None
    summary: dict[str, int]
    exitstatus: int | None
    regressions: int | None
    description: str

    def sort_key(self) -> tuple[str, int]:
        m = STEM.match(self.stem)
        return (m.group("ts"), int(m.group("n") or 1)) if m else (self.started, 0)


@contextlib.contextmanager
def locked(report_dir: Path, timeout: float = 60.0) -> Iterator[None]:
    """Hold the folder's lock file (flock; released if the process dies)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(report_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise HistoryError(
                        f"{report_dir}: another sixcheck run holds {LOCK} for more than "
                        f"{timeout:.0f}s"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith(SCHEMA_PREFIX):
        return None
    return data


Cache = dict[str, dict[str, Any]]  # stem -> what the index needs of that run (see the docstring)
#: documents already in memory, by stem: the run that just finished hands over its own results
#: instead of the index parsing the file it has just written
Fresh = dict[str, dict[str, Any]]


def _load(path: Path, fresh: Fresh | None) -> dict[str, Any] | None:
    doc = (fresh or {}).get(path.stem)
    return doc if doc is not None else _read(path)


def _file_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _facts(path: Path, profile: str, data: dict[str, Any]) -> dict[str, Any]:
    """The index's view of one results document (JSON-serialisable, for the cache)."""
    prof = data.get("profile") or {}
    baseline = data.get("baseline") or {}
    counts = baseline.get("counts") if isinstance(baseline, dict) else None
    return {
        "profile": str(prof.get("name") or profile),
        "started": str(data.get("started", "")),
        "summary": {k: int(v) for k, v in (data.get("summary") or {}).items()},
        "exitstatus": data.get("exitstatus"),
        "regressions": (
            int(counts.get("regression", 0)) + int(counts.get("new-failure", 0))
            if isinstance(counts, dict)
            else None
        ),
        "description": str(prof.get("description", "")),
        # failing checks in run order: id -> area (for "failing since")
        "failing": {
            str(c["id"]): str(c.get("area") or "")
            for c in data.get("checks") or []
            if isinstance(c, dict) and "id" in c and c.get("outcome") in ("failed", "error")
        },
    }


def load_cache(report_dir: Path) -> Cache:
    """The folder's index cache; empty when missing, unreadable or written by another version."""
    try:
        data = json.loads((report_dir / CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("sixcheck") != __version__:
        return {}
    runs = data.get("runs")
    return runs if isinstance(runs, dict) else {}


def save_cache(report_dir: Path, cache: Cache, entries: list[Entry]) -> None:
    """Keep what the current runs need; a folder we cannot write only loses the shortcut."""
    stems = {e.stem for e in entries}
    doc = {"sixcheck": __version__, "runs": {k: v for k, v in cache.items() if k in stems}}
    with contextlib.suppress(OSError):
        write_atomic(report_dir / CACHE, json.dumps(doc, separators=(",", ":")) + "\n")


def scan(report_dir: Path, cache: Cache | None = None, fresh: Fresh | None = None) -> list[Entry]:
    """Every finished run in the folder, oldest first. With `cache`, a JSON file unchanged
    since it was cached is not read again, and what is read is added to the cache."""
    cache = {} if cache is None else cache
    entries = []
    for path in report_dir.glob("*.json"):
        m = STEM.match(path.stem)
        if not m:
            continue
        key = _file_key(path)
        hit = cache.get(path.stem)
        if key is None or not hit or hit.get("key") != key:
            data = _load(path, fresh)
            if data is None:
                cache.pop(path.stem, None)
                continue
            hit = cache[path.stem] = {"key": key, **_facts(path, m.group("profile"), data)}
        html_path = path.with_suffix(".html")
        entries.append(
            Entry(
                stem=path.stem,
                profile=hit["profile"],
                started=hit["started"],
                json_path=path,
                html_path=html_path if html_path.exists() else None,
                summary=hit["summary"],
                exitstatus=hit["exitstatus"],
                regressions=hit["regressions"],
                description=hit["description"],
            )
        )
    entries.sort(key=Entry.sort_key)
    return entries


def _stem_key(stem: str) -> tuple[str, str, int]:
    m = STEM.match(stem)
    assert m is not None
    return (m.group("profile"), m.group("ts"), int(m.group("n") or 1))


def prune(
    report_dir: Path,
    keep: int,
    now: float | None = None,
    cache: Cache | None = None,
    fresh: Fresh | None = None,
) -> list[Path]:
    """Delete all but the newest `keep` runs of each profile (keep=0: delete nothing).

    A run is a stem with its JSON results and/or its HTML report (`--json-file` elsewhere leaves
    only the HTML here: those count too, or they would pile up). Only sixcheck's own files are
    touched: names of the stem pattern, JSON only when it is sixcheck results. An HTML report
    without JSON younger than ORPHAN_AGE may be a run in progress and is never deleted.
    """
    if keep <= 0:
        return []
    now = time.time() if now is None else now
    runs: dict[str, dict[str, Path]] = {}
    for e in scan(report_dir, cache, fresh):
        files = runs.setdefault(e.stem, {"json": e.json_path})
        if e.html_path is not None:
            files["html"] = e.html_path
    for path in report_dir.glob("*.html"):
        if path.name != INDEX and STEM.match(path.stem) and path.stem not in runs:
            runs[path.stem] = {"html": path}
    by_profile: dict[str, list[str]] = {}
    for stem in runs:
        by_profile.setdefault(_stem_key(stem)[0], []).append(stem)
    removed: list[Path] = []
    for stems in by_profile.values():
        stems.sort(key=_stem_key)
        for stem in stems[: max(0, len(stems) - keep)]:
            files = runs[stem]
            if "json" not in files:
                try:
                    if now - files["html"].stat().st_mtime <= ORPHAN_AGE:
                        continue  # perhaps still running
                except FileNotFoundError:
                    continue
            for kind in ("html", "json"):  # JSON last: it marks the run as finished
                if kind in files:
                    files[kind].unlink(missing_ok=True)
                    removed.append(files[kind])
    return removed


def _fmt_started(text: str) -> str:
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return text


def _changes_cell(cmp: bl.Comparison | None) -> str:
    """What changed since the run before, as the comparison section says it, folded."""
    e = html.escape
    if cmp is None:
        return "<td>(first run)</td>"
    c = cmp.counts()
    moved = [
        bl.count_words(c[k], k)
        for k in bl.ORDER
        if c[k] and k not in (bl.STILL_PASSING, bl.STILL_FAILING)
    ]
    listed = [ch for ch in cmp.changes if ch.category not in (bl.STILL_PASSING, bl.STILL_FAILING)]
    listed += [
        ch
        for ch in cmp.changes
        if ch.category in (bl.STILL_PASSING, bl.STILL_FAILING) and ch.evidence
    ]
    if not listed:
        return "<td>no meaningful change</td>"
    lines = []
    for ch in listed:
        body = "".join(
            f"<div class='req'>{e(request)}</div>"
            + "".join(f"<div class='line'>{e(line)}</div>" for f in fields for line in f.lines())
            for request, fields in ch.by_request().items()
        )
        lines.append(
            f"<li><b>{e(ch.category)}</b> {e(ch.short_id)}: {e(str(ch.before))} → "
            f"{e(str(ch.after))}{body}</li>"
        )
    summary = ", ".join(moved) or f"{sum(len(ch.evidence) for ch in listed)} changed lines"
    return f"<td><details><summary>{e(summary)}</summary><ul>{''.join(lines)}</ul></details></td>"


def _since(runs: list[Entry], failing: dict[str, dict[str, str]]) -> list[tuple[str, str, Entry]]:
    """For each check failing in the newest run (runs oldest first): (check, area, the first run of
    the unbroken streak of runs in which it failed). `failing`: per run, its failing checks."""
    out: list[tuple[str, str, Entry]] = []
    if not runs:
        return out
    for cid, area in failing.get(runs[-1].stem, {}).items():
        since = runs[-1]
        for r in reversed(runs[:-1]):
            if cid not in failing.get(r.stem, {}):
                break
            since = r
        out.append((cid, area, since))
    return out


def _change_cells(runs: list[Entry], cache: Cache, fresh: Fresh | None = None) -> dict[str, str]:
    """Each run's "changed since the run before" cell (runs oldest first). A cell is reused while
    neither run's JSON changed; otherwise both documents are read and compared."""
    docs: dict[str, dict[str, Any] | None] = {}

    def doc(r: Entry) -> dict[str, Any] | None:
        if r.stem not in docs:
            docs[r.stem] = _load(r.json_path, fresh)
        return docs[r.stem]

    cells: dict[str, str] = {}
    for prev, r in zip([None, *runs[:-1]], runs, strict=True):
        facts = cache.setdefault(r.stem, {})
        want = [prev.stem, cache.get(prev.stem, {}).get("key")] if prev else None
        cached = facts.get("cell")
        if isinstance(cached, dict) and cached.get("prev") == want and "html" in cached:
            cells[r.stem] = str(cached["html"])
            continue
        before, after = (doc(prev) if prev else None), doc(r)
        cmp = bl.compare(before, after, prev.stem) if prev and before and after else None
        cells[r.stem] = _changes_cell(cmp)
        facts["cell"] = {"prev": want, "html": cells[r.stem]}
    return cells


def render_index(
    report_dir: Path,
    entries: list[Entry],
    keep: int | None = None,
    cache: Cache | None = None,
    fresh: Fresh | None = None,
) -> str:
    """The index page: per profile what fails now and since when, then the runs newest first with
    outcome counts, what changed since the run before, and links to both files. `cache` is the
    one `scan` filled (a fresh one is built when None)."""
    e = html.escape
    if cache is None:
        cache = {}
        scan(report_dir, cache)
    by_profile: dict[str, list[Entry]] = {}
    for entry in entries:
        by_profile.setdefault(entry.profile, []).append(entry)
    sections = []
    for profile in sorted(by_profile):
        oldest_first = by_profile[profile]
        cells = _change_cells(oldest_first, cache, fresh)
        runs = list(reversed(oldest_first))
        rows = []
        for r in runs:
            s = r.summary
            failed = s.get("failed", 0) + s.get("error", 0)
            status = "FAILED" if failed else "ok"
            link = f"<a href='{e(r.html_path.name)}'>report</a>" if r.html_path else "(no HTML)"
            reg = "" if r.regressions is None else str(r.regressions)
            rows.append(
                f"<tr class='{'bad' if failed else 'good'}'><td>{e(_fmt_started(r.started))}</td>"
                f"<td>{status}</td><td>{s.get('passed', 0)}</td><td>{failed}</td>"
                f"<td>{s.get('skipped', 0)}</td><td>{reg}</td><td>{e(str(r.exitstatus))}</td>"
                f"{cells[r.stem]}"
                f"<td>{link} · <a href='{e(r.json_path.name)}'>JSON</a></td></tr>"
            )
        desc = runs[0].description.strip().splitlines()[0] if runs[0].description.strip() else ""
        failing = _since(
            oldest_first, {r.stem: cache.get(r.stem, {}).get("failing", {}) for r in oldest_first}
        )
        now = ""
        if failing:
            items = "".join(
                f"<li>{e(bl.short_id(cid))} <small>({e(area)})</small> failing since "
                f"{e(_fmt_started(since.started))}"
                f"{' (the oldest run kept)' if since is oldest_first[0] and len(oldest_first) > 1 else ''}"
                "</li>"
                for cid, area, since in failing
            )
            now = f"<p>Failing in the newest run:</p><ul class='since'>{items}</ul>"
        sections.append(
            f"<h2>{e(profile)}</h2><p>{e(desc)}</p>{now}"
            "<table><tr><th>started</th><th>result</th><th>passed</th><th>failed</th>"
            "<th>skipped</th><th>regressions</th><th>exit</th>"
            "<th>changed since the run before</th><th>files</th></tr>" + "".join(rows) + "</table>"
        )
    kept = f" The newest {keep} runs of each profile are kept." if keep else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "".join(sections) or "<p>No reports yet.</p>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>sixcheck reports: {e(report_dir.name)}</title><style>"
        "body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}"
        "tr.bad td{background:#fdd}tr.good td{background:#efe}"
        ".req{font-family:monospace}.line{padding-left:1.2em}</style></head><body>"
        f"<h1>sixcheck reports</h1><p id='sixcheck-index'>{len(entries)} runs, newest first."
        f"{kept} Updated {generated}.</p>{body}</body></html>\n"
    )


def write_index(
    report_dir: Path,
    keep: int | None = None,
    cache: Cache | None = None,
    fresh: Fresh | None = None,
) -> Path:
    path = report_dir / INDEX
    cache = load_cache(report_dir) if cache is None else cache
    entries = scan(report_dir, cache, fresh)
    write_atomic(path, render_index(report_dir, entries, keep, cache, fresh))
    save_cache(report_dir, cache, entries)
    return path


def rotate(report_dir: Path, keep: int, fresh: Fresh | None = None) -> tuple[list[Path], Path]:
    """Prune and rewrite the index, under the folder's lock. `fresh`: see `Fresh`."""
    if not report_dir.is_dir():
        raise HistoryError(f"{report_dir}: not a folder")
    with locked(report_dir):
        cache = load_cache(report_dir)
        removed = prune(report_dir, keep, cache=cache, fresh=fresh)
        return removed, write_index(report_dir, keep, cache, fresh)


def latest(report_dir: Path, profile: str, exclude: tuple[Path, ...] = ()) -> Path | None:
    """The newest finished run's JSON of `profile` in the folder (the default baseline of a
    scheduled audit), or None."""
    if not report_dir.is_dir():
        return None
    entries = scan(report_dir, load_cache(report_dir))
    runs = [e for e in entries if e.profile == profile and e.json_path not in exclude]
    return runs[-1].json_path if runs else None
