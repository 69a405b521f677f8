"""Results as a Prometheus node_exporter textfile, so scheduled audits can be alerted on.

Written from the JSON results document (not from pytest objects), atomically: node_exporter's
textfile collector reads only `*.prom` files, and the temporary file has another name until the
rename, so a scrape never sees half a file. Metrics (all gauges, labels `profile`, `area`, `check`):

- `sixcheck_check_passed` 1 when a check passed, 0 when it failed (or errored); a skipped check is
  not in this metric (it did not run, so it neither passed nor failed) but in
- `sixcheck_check_skipped` 1 for every skipped check;
- `sixcheck_checks{profile, outcome}` how many checks ended so;
- `sixcheck_run_duration_seconds`, `sixcheck_run_timestamp_seconds` (end of the run, Unix time),
  `sixcheck_run_exitstatus`, and with `--baseline` `sixcheck_baseline_changes{profile, change}`;
- `sixcheck_causes{profile}` how many probable causes the diagnosis found (0 on a healthy run).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from .baseline import short_id
from .report import write_atomic
from .secrets import redact


def _escape(value: str) -> str:
    """Label value escaping of the text exposition format."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(redact(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _end_time(results: dict[str, Any]) -> float | None:
    if results.get("finished"):
        return datetime.fromisoformat(results["finished"]).timestamp()
    if results.get("started"):
        return datetime.fromisoformat(results["started"]).timestamp() + float(
            results.get("duration") or 0
        )
    return None


def render(results: dict[str, Any]) -> str:
    """The textfile for one run's results document."""
    profile = str((results.get("profile") or {}).get("name", ""))
    metrics: dict[str, tuple[str, list[str]]] = {
        "sixcheck_check_passed": (
            "1 if the check passed, 0 if it failed; skipped checks absent",
            [],
        ),
        "sixcheck_check_skipped": ("1 for a check that was skipped (see the report for why)", []),
        "sixcheck_checks": ("number of checks by outcome in the last run", []),
        "sixcheck_run_duration_seconds": ("wall time of the last run", []),
        "sixcheck_run_timestamp_seconds": ("when the last run ended, Unix time", []),
        "sixcheck_run_exitstatus": ("exit status of the last run (0 ok, 1 failures)", []),
    }
    seen: set[tuple[str, str]] = set()
    for c in results.get("checks", []):
        check = short_id(str(c["id"]))
        area = str(c.get("area") or "other")
        if (area, check) in seen:  # two modules with the same test name: keep the ids distinct
            check = str(c["id"])
        seen.add((area, check))
        labels = _labels(profile=profile, area=area, check=check)
        outcome = c.get("outcome")
        if outcome == "skipped":
            metrics["sixcheck_check_skipped"][1].append(f"sixcheck_check_skipped{labels} 1")
        else:
            value = 1 if outcome == "passed" else 0
            metrics["sixcheck_check_passed"][1].append(f"sixcheck_check_passed{labels} {value}")
    for outcome, n in (results.get("summary") or {}).items():
        metrics["sixcheck_checks"][1].append(
            f"sixcheck_checks{_labels(profile=profile, outcome=str(outcome))} {int(n)}"
        )
    pl = _labels(profile=profile)
    metrics["sixcheck_run_duration_seconds"][1].append(
        f"sixcheck_run_duration_seconds{pl} {_number(float(results.get('duration') or 0))}"
    )
    end = _end_time(results)
    if end is not None:
        metrics["sixcheck_run_timestamp_seconds"][1].append(
            f"sixcheck_run_timestamp_seconds{pl} {_number(round(end, 3))}"
        )
    if results.get("exitstatus") is not None:
        metrics["sixcheck_run_exitstatus"][1].append(
            f"sixcheck_run_exitstatus{pl} {int(results['exitstatus'])}"
        )
    if isinstance(results.get("causes"), list):
        metrics["sixcheck_causes"] = (
            "probable causes of the last run's failures (see the report's Diagnosis)",
            [f"sixcheck_causes{pl} {len(results['causes'])}"],
        )
    baseline = results.get("baseline")
    if isinstance(baseline, dict) and isinstance(baseline.get("counts"), dict):
        metrics["sixcheck_baseline_changes"] = (
            "checks by change against the baseline (regression, fixed, ...)",
            [
                f"sixcheck_baseline_changes{_labels(profile=profile, change=str(k))} {int(v)}"
                for k, v in baseline["counts"].items()
            ],
        )
    out: list[str] = []
    for name, (help_text, samples) in metrics.items():
        if not samples:
            continue
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples]
    return "\n".join(out) + "\n"


def write(path: Path, results: dict[str, Any]) -> None:
    """Write the textfile atomically (temporary name in the same folder, then rename)."""
    write_atomic(path, render(results))
