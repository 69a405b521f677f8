"""Post-change validation: compare this run with an earlier run's JSON results.

"Did I break anything?" is answered per check: a regression (failing now, not before), fixed,
still failing, still passing, new, gone, or now skipped. For each check the observation fields that
changed between the runs are listed (the advertised prefix, a resolver's answer, a port's deny
style), so a regression arrives with the difference that explains it.

Knows nothing of pytest: it reads two `sixcheck-results/1` documents (the baseline from a file, the
current run as `Results.as_json()` data) and the plugin decides what to do with the comparison.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_PREFIX = "sixcheck-results/"
#: Schema versions this module can read as a baseline.
READABLE_VERSIONS = (1,)

# Categories, in the order a person wants to read them: what broke first.
REGRESSION = "regression"
NEW_FAILURE = "new-failure"
FIXED = "fixed"
GONE = "gone"
NOW_SKIPPED = "now-skipped"
STILL_FAILING = "still-failing"
NEW = "new"
STILL_PASSING = "still-passing"
ORDER = (REGRESSION, NEW_FAILURE, FIXED, GONE, NOW_SKIPPED, STILL_FAILING, NEW, STILL_PASSING)
#: Categories that make a run fail under `--fail-on regressions`: failures the baseline did not have.
UNKNOWN_FAILURES = (REGRESSION, NEW_FAILURE)

#: Observation fields that differ on every run and say nothing about the site (timings, clocks).
VOLATILE = re.compile(
    r"(^|[._])(elapsed|rtt|rtt_ms|duration|took|latency|timestamp|time|at|sent_at|"
    r"received_at|started|finished|when)$"
)
#: Measurements that wobble from run to run but can be the very cause of a failure (a clock
#: offset, a lifetime counting down): shown only for checks whose outcome changed.
NOISY = re.compile(r"(^|[._])(seconds|age|delay|offset|jitter|remaining|ttl|lifetime_left)$")
#: At most this many changed fields are shown per check (the rest are counted).
MAX_FIELDS = 12


class BaselineError(Exception):
    """The baseline file cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class FieldChange:
    """One observation field that differs: `path` is `REQUEST > key.sub[0]`."""

    path: str
    before: Any
    after: Any


@dataclass
class Change:
    """One check's fate between the two runs."""

    id: str
    area: str | None
    category: str
    before: str | None  # outcome in the baseline, None when the check is new
    after: str | None  # outcome now, None when it is gone
    message: str = ""  # the current message (or the baseline's, when gone)
    before_message: str = ""
    evidence: list[FieldChange] = field(default_factory=list)
    evidence_more: int = 0  # changed fields not listed

    @property
    def short_id(self) -> str:
        return short_id(self.id)


@dataclass
class Comparison:
    """Every check's change, sorted with regressions first."""

    baseline_path: str
    baseline_started: str | None
    baseline_profile: str | None
    profile: str | None
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(ORDER, 0)
        for c in self.changes:
            out[c.category] += 1
        return out

    def of(self, *categories: str) -> list[Change]:
        return [c for c in self.changes if c.category in categories]

    def unknown_failures(self) -> list[Change]:
        """Failures the baseline did not have: regressions and failing new checks."""
        return self.of(*UNKNOWN_FAILURES)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.baseline_path,
            "started": self.baseline_started,
            "profile": self.baseline_profile,
            "counts": self.counts(),
            "changes": [
                {
                    **{k: v for k, v in asdict(c).items() if k != "evidence"},
                    "evidence": [asdict(f) for f in c.evidence],
                }
                for c in self.changes
                if c.category != STILL_PASSING or c.evidence
            ],
        }


def short_id(check_id: str) -> str:
    """`checks/test_sysctl.py::test_sysctl[x]` -> `test_sysctl[x]`: what a person reads."""
    return check_id.split("::", 1)[-1]


# ---------------------------------------------------------------------------------------------
# loading


def load(path: Path) -> dict[str, Any]:
    """Read and sanity-check a results file; every problem is one BaselineError line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BaselineError(f"{path}: is a directory, not a JSON results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise BaselineError(
            f"{path}: not sixcheck JSON results (no 'schema: {SCHEMA_PREFIX}N'); "
            "use the .json file a run wrote"
        )
    version = schema.removeprefix(SCHEMA_PREFIX)
    if not version.isdigit() or int(version) not in READABLE_VERSIONS:
        raise BaselineError(
            f"{path}: results schema {schema} is not readable by this sixcheck "
            f"(reads {', '.join(SCHEMA_PREFIX + str(v) for v in READABLE_VERSIONS)})"
        )
    checks = data.get("checks")
    if not isinstance(checks, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("outcome"), str)
        for c in checks
    ):
        raise BaselineError(f"{path}: 'checks' is not a list of {{id, outcome, ...}} entries")
    doc: dict[str, Any] = data
    return doc


# ---------------------------------------------------------------------------------------------
# comparing


def _state(outcome: str | None) -> str | None:
    if outcome is None:
        return None
    if outcome in ("failed", "error"):
        return "fail"
    return "skip" if outcome == "skipped" else "pass"


def _category(before: str | None, after: str | None) -> str:
    b, a = _state(before), _state(after)
    if a is None:
        return GONE
    if b is None:
        return NEW_FAILURE if a == "fail" else NEW
    if a == "fail":
        return STILL_FAILING if b == "fail" else REGRESSION
    if a == "skip":
        return NOW_SKIPPED if b != "skip" else STILL_PASSING
    return FIXED if b == "fail" else STILL_PASSING


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value  # scalars and lists of scalars compare as a whole


def _request_label(req: Any) -> str:
    if isinstance(req, dict):
        kind = req.get("probe", "")
        rest = ", ".join(f"{k}={v}" for k, v in req.items() if k != "probe")
        return f"{kind}({rest})" if kind else rest
    return str(req)


def evidence_fields(evidence: list[dict[str, Any]], noisy: bool = False) -> dict[str, Any]:
    """Flatten a check's evidence to {`REQUEST > field.path`: value}, timings left out (and the
    noisy measurements too unless `noisy`)."""
    out: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for entry in evidence or []:
        if not isinstance(entry, dict):
            continue
        if "request" in entry:
            label = _request_label(entry["request"])
            body = entry.get("observation", {})
        else:
            label = "notes"
            body = entry.get("notes", entry)
        n = seen.get(label, 0)
        seen[label] = n + 1
        if n:
            label = f"{label}#{n + 1}"
        flat: dict[str, Any] = {}
        _flatten(body, "", flat)
        for key, value in flat.items():
            if VOLATILE.search(key) or (not noisy and NOISY.search(key)):
                continue
            out[f"{label} > {key}" if key else label] = value
    return out


_MISSING = "(absent)"


def diff_evidence(
    before: list[dict[str, Any]], after: list[dict[str, Any]], noisy: bool = False
) -> tuple[list[FieldChange], int]:
    """The observation fields that differ, at most MAX_FIELDS of them, and how many more."""
    b, a = evidence_fields(before, noisy), evidence_fields(after, noisy)
    changes = [
        FieldChange(k, b.get(k, _MISSING), a.get(k, _MISSING))
        for k in [*b, *[k for k in a if k not in b]]
        if b.get(k, _MISSING) != a.get(k, _MISSING)
    ]
    return changes[:MAX_FIELDS], max(0, len(changes) - MAX_FIELDS)


def compare(baseline: dict[str, Any], current: dict[str, Any], baseline_path: str) -> Comparison:
    """Compare two results documents check by check (matched by check id)."""
    old = {c["id"]: c for c in baseline.get("checks", [])}
    new = {c["id"]: c for c in current.get("checks", [])}
    changes: list[Change] = []
    for cid in [*new, *[i for i in old if i not in new]]:
        o, n = old.get(cid), new.get(cid)
        cat = _category(o and o.get("outcome"), n and n.get("outcome"))
        fields: list[FieldChange] = []
        more = 0
        if o and n:
            fields, more = diff_evidence(
                o.get("evidence", []),
                n.get("evidence", []),
                noisy=cat not in (STILL_PASSING, STILL_FAILING),
            )
        changes.append(
            Change(
                id=cid,
                area=(n or o or {}).get("area"),
                category=cat,
                before=o.get("outcome") if o else None,
                after=n.get("outcome") if n else None,
                message=str((n or o or {}).get("message", "")),
                before_message=str(o.get("message", "")) if o else "",
                evidence=fields,
                evidence_more=more,
            )
        )
    changes.sort(key=lambda c: ORDER.index(c.category))
    return Comparison(
        baseline_path=baseline_path,
        baseline_started=baseline.get("started"),
        baseline_profile=(baseline.get("profile") or {}).get("name"),
        profile=(current.get("profile") or {}).get("name"),
        changes=changes,
    )


# ---------------------------------------------------------------------------------------------
# showing


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def headline(cmp: Comparison) -> str:
    c = cmp.counts()
    parts = [f"{c[k]} {k}" for k in ORDER if c[k]]
    return f"against {cmp.baseline_path} ({cmp.baseline_started or 'unknown time'}): " + (
        ", ".join(parts) or "no checks"
    )


def terminal_lines(cmp: Comparison, fail_on: str) -> list[str]:
    """The comparison for the terminal: regressions first, each with what changed."""
    out = [f"sixcheck baseline: {headline(cmp)}"]
    if cmp.baseline_profile and cmp.profile and cmp.baseline_profile != cmp.profile:
        out.append(
            f"  note: the baseline is of profile {cmp.baseline_profile!r}, this run is "
            f"{cmp.profile!r}"
        )
    for cat in (REGRESSION, NEW_FAILURE, FIXED, GONE, NOW_SKIPPED):
        for ch in cmp.of(cat):
            out.append(f"  {cat.upper():<13} {ch.short_id}: {ch.before} -> {ch.after}")
            if ch.message and cat in (REGRESSION, NEW_FAILURE, NOW_SKIPPED):
                out.append(f"      {ch.message.splitlines()[0]}")
            for f in ch.evidence:
                out.append(f"      changed {f.path}: {_short(f.before)} -> {_short(f.after)}")
            if ch.evidence_more:
                out.append(f"      ... and {ch.evidence_more} more changed fields")
    known = cmp.of(STILL_FAILING)
    if known:
        tolerated = " (tolerated: --fail-on regressions)" if fail_on == "regressions" else ""
        out.append(f"  still failing, as in the baseline{tolerated}:")
        out.extend(f"      {ch.short_id}" for ch in known)
    return out


def html_section(cmp: Comparison, fail_on: str) -> str:
    """The comparison as an HTML block for the report's summary: regressions lead."""
    e = html.escape
    c = cmp.counts()
    badges = " ".join(f"<span class='sx-cat sx-{k}'>{c[k]} {e(k)}</span>" for k in ORDER if c[k])
    rows = []
    for ch in cmp.changes:
        if ch.category == STILL_PASSING and not ch.evidence:
            continue
        diff = "".join(
            f"<li><code>{e(f.path)}</code>: <del>{e(_short(f.before, 200))}</del> → "
            f"<ins>{e(_short(f.after, 200))}</ins></li>"
            for f in ch.evidence
        )
        if ch.evidence_more:
            diff += f"<li>… and {ch.evidence_more} more</li>"
        rows.append(
            f"<tr class='sx-{ch.category}'><td>{e(ch.category)}</td><td>{e(ch.area or '')}</td>"
            f"<td>{e(ch.short_id)}</td><td>{e(str(ch.before))} → {e(str(ch.after))}</td>"
            f"<td>{e(ch.message)}{f'<ul>{diff}</ul>' if diff else ''}</td></tr>"
        )
    note = ""
    if fail_on == "regressions":
        note = (
            "<p>Only regressions and failing new checks fail this run (--fail-on regressions); "
            "checks failing in the baseline too are reported and tolerated.</p>"
        )
    table = (
        "<table class='sx-baseline'><tr><th>change</th><th>area</th><th>check</th>"
        f"<th>outcome</th><th>message and changed evidence</th></tr>{''.join(rows)}</table>"
        if rows
        else "<p>No check changed.</p>"
    )
    return (
        "<style>.sx-regression td,.sx-new-failure td{background:#fdd}.sx-fixed td{background:#dfd}"
        ".sx-cat{padding:0 .4em;margin-right:.3em;border:1px solid #999;border-radius:3px}"
        ".sx-baseline del{color:#a00}.sx-baseline ins{color:#070;text-decoration:none}</style>"
        f"<h2 id='sixcheck-baseline'>Compared with the baseline</h2><p>{e(headline(cmp))}</p>"
        f"<p>{badges}</p>{note}{table}"
    )
