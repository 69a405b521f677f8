"""The fault matrix: run the lab profiles against the healthy site and under every fault.

For each scenario (``healthy``, each fault, each variant) the site is built, every lab profile
that exists in ``profiles/`` is run inside its node with the sixcheck pytest plugin, and the JSON
results are compared with what the scenario declares:

- ``ok``: healthy or a variant, and every check that ran passed;
- ``detected``: a check of the fault's own area failed (when that area has checks), no check
  outside its ``breaks`` failed;
- ``missed``: checks of the ``breaks`` areas ran, and none failed;
- ``false-alarm``: a check outside ``breaks`` failed (for healthy/variants: any failure);
- ``pending``: no check of any ``breaks`` area ran yet (the areas are named), so the fault is
  listed as waiting for checks, never silently counted as detected;
- ``error``: a profile run did not produce results (pytest usage error, crash, timeout), or
  checked nothing (the plugin ends such a run with exit 4, naming why; the note carries it).

The matrix grows with the product: new checks in a profile turn ``pending`` rows into
``detected`` (or show ``missed``/``false-alarm`` rows that need work) without changing this file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sixcheck.lab import diagnosed, faults, netns
from sixcheck.lab import topology as t
from sixcheck.lab.site import Lab, LabError
from sixcheck.locate import profiles_dir

#: the folder holding profiles/ (and checks/): the checkout, or the installed package
REPO = profiles_dir().parent
RESULTS_SCHEMA = "sixcheck-results/1"
#: Failed ids shown per row in the table (a cascade can fail dozens; the JSON has them all).
TABLE_MAX_IDS = 8
BAD_VERDICTS = frozenset({"missed", "false-alarm", "error"})
#: pytest exit codes after which the checks ran and their JSON results are read: 0 all passed,
#: 1 some failed. Any other code is a harness error. A profile that checks nothing is one too:
#: the plugin ends such a run with exit 4 and one line naming why (`sixcheck.emptyrun`), because
#: a lab profile with no check left means a broken checkout or install, not "no checks yet";
#: pytest's own exit 5 ("no tests ran") no longer ends a run that has a profile.
RAN_CODES = (0, 1)
#: pytest's exit code for a usage error; its message is on stderr, after "ERROR: "
USAGE_ERROR = 4


@dataclass
class ProfileRun:
    """What one profile's pytest run inside one node produced."""

    profile: str
    node: str
    exit_code: int
    seconds: float
    checks: list[dict[str, Any]] = field(default_factory=list)
    harness_error: str | None = None
    doc: dict[str, Any] | None = None  # the whole JSON results (the site view reads them)

    def ids(self, *outcomes: str) -> list[str]:
        """Check ids whose outcome is one of ``outcomes``."""
        return [c["id"] for c in self.checks if c.get("outcome") in outcomes]

    def areas(self, *outcomes: str) -> set[str]:
        """Areas of the checks whose outcome is one of ``outcomes``."""
        return {str(c.get("area")) for c in self.checks if c.get("outcome") in outcomes}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "node": self.node,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 2),
            "passed": self.ids("passed"),
            "failed": self.ids("failed", "error"),
            "skipped": self.ids("skipped"),
        }
        if self.harness_error:
            data["harness_error"] = self.harness_error
        return data


@dataclass
class Scenario:
    """One row of the matrix: healthy, a fault or a variant, and what its runs showed."""

    name: str
    kind: str  # healthy | fault | variant
    area: str | None
    breaks: frozenset[str]
    faults: tuple[str, ...]
    runs: dict[str, ProfileRun] = field(default_factory=dict)
    verdict: str = "pending"
    note: str = ""
    up_seconds: float = 0.0
    seconds: float = 0.0
    #: the site view over all runs: top site cause and whether it is in the fault's area
    site: dict[str, Any] = field(default_factory=dict)
    #: the top cause on the vantage the fault hits first, and whether it is in the fault's area
    diagnosis: dict[str, Any] = field(default_factory=dict)

    def judge(self) -> None:
        """Set ``verdict`` and ``note`` from the runs (see the module docstring)."""
        errors = [f"{r.profile}: {r.harness_error}" for r in self.runs.values() if r.harness_error]
        if errors:
            self.verdict, self.note = "error", "; ".join(errors)
            return
        failed = set().union(*(r.areas("failed", "error") for r in self.runs.values()))
        ran = set().union(*(r.areas("passed", "failed", "error") for r in self.runs.values()))
        if self.kind != "fault":
            if failed:
                self.verdict, self.note = (
                    "false-alarm",
                    f"failed areas: {', '.join(sorted(failed))}",
                )
            elif not ran:
                self.verdict, self.note = "pending", "no checks ran (no lab profiles yet?)"
            else:
                self.verdict, self.note = "ok", ""
            return
        outside = failed - self.breaks
        if outside:
            self.verdict = "false-alarm"
            self.note = f"unexpected failures in: {', '.join(sorted(outside))}"
        elif self.area in ran and self.area not in failed:
            # a cascade alone (no RA, so no DNS) is not detection: the cause's own area must
            # name it, or the operator is sent to the wrong layer
            self.verdict = "missed"
            self.note = f"no {self.area} check failed (only knock-on areas: " + (
                f"{', '.join(sorted(failed & self.breaks)) or 'none'})"
            )
        elif failed & self.breaks:
            self.verdict, self.note = "detected", ""
        elif ran & self.breaks:
            self.verdict = "missed"
            self.note = f"checks of {', '.join(sorted(ran & self.breaks))} ran and all passed"
        else:
            self.verdict = "pending"
            self.note = f"no checks yet for: {', '.join(sorted(self.breaks))}"

    def failed_ids(self) -> list[str]:
        """``profile: check`` for every failed check, shortened for the table."""
        failed = [
            (c.get("area") != self.area, r.node, str(c["id"]))
            for r in self.runs.values()
            for c in r.checks
            if c.get("outcome") in ("failed", "error")
        ]
        # the fault's own area first: that is where the cause is named, the rest is cascade
        return [f"{node}:{shorten(cid)}" for _, node, cid in sorted(failed, key=lambda f: f[0])]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "area": self.area,
            "breaks": sorted(self.breaks),
            "faults": list(self.faults),
            "profiles": {name: run.to_json() for name, run in self.runs.items()},
            "verdict": self.verdict,
            "note": self.note,
            "up_seconds": round(self.up_seconds, 2),
            "seconds": round(self.seconds, 2),
            "site": self.site,
            "diagnosis": self.diagnosis,
        }


@dataclass
class MatrixResult:
    """All rows; renders the table and the JSON and decides the exit code."""

    scenarios: list[Scenario]
    profiles: list[str]
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """``{scenario: {area, breaks, profiles: {profile: {passed, failed, skipped}}, verdict}}``"""
        return {s.name: s.to_json() for s in self.scenarios}

    def problems(self) -> list[str]:
        """One line per row with a verdict that must fail the matrix."""
        return [
            f"{s.name}: {s.verdict} ({s.note})" for s in self.scenarios if s.verdict in BAD_VERDICTS
        ]

    def exit_code(self) -> int:
        return 1 if self.problems() else 0

    def table(self) -> str:
        """The matrix as text: scenario, primary area, verdict, seconds, failed checks."""
        rows = [("scenario", "area", "verdict", "diagnosed", "secs", "failed checks / note")]
        for s in self.scenarios:
            area = s.area if s.kind == "fault" else s.kind
            ids = s.failed_ids()
            detail = ", ".join(ids[:TABLE_MAX_IDS]) or s.note or "-"
            if len(ids) > TABLE_MAX_IDS:
                detail += f" (+{len(ids) - TABLE_MAX_IDS} more)"
            if ids and s.note:
                detail += f"  ({s.note})"
            diag = {True: "yes", False: "no", None: "-"}[s.diagnosis.get("diagnosed")]
            if s.diagnosis.get("note"):
                detail += f"  [diagnosis: {s.diagnosis['note']}]"
            rows.append((s.name, area or "-", s.verdict, diag, f"{s.seconds:.1f}", detail))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]
        lines.insert(1, "-" * min(120, len(lines[0])))
        counts: dict[str, int] = {}
        for s in self.scenarios:
            counts[s.verdict] = counts.get(s.verdict, 0) + 1
        summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        faults_run = [s for s in self.scenarios if s.kind == "fault"]
        summary += (
            f"; diagnosed {sum(1 for s in faults_run if s.diagnosis.get('diagnosed'))}"
            f"/{len(faults_run)} faults"
        )
        lines.append(
            f"profiles: {', '.join(self.profiles) or 'none'}; {summary}; {self.seconds:.0f}s in all"
        )
        return "\n".join(lines)


def shorten(check_id: str) -> str:
    """``checks/test_dns.py::test_x[2001:db8::53-udp]`` -> ``test_x[2001:db8::53-udp]``: the
    table stays legible and the function name still says what was checked. Only the part
    before the parameters is split on ``::`` (IPv6 addresses in parameters contain it too)."""
    head, bracket, params = check_id.partition("[")
    return head.rsplit("::", 1)[-1] + bracket + params


def all_scenarios() -> list[Scenario]:
    """healthy, then every fault, then every variant, in catalogue order."""
    rows = [Scenario("healthy", "healthy", None, frozenset(), ())]
    for name, cls in faults.FAULTS.items():
        kind = "variant" if cls.variant else "fault"
        rows.append(Scenario(name, kind, cls.area, frozenset(cls.breaks), (name,)))
    rows.sort(key=lambda s: {"healthy": 0, "fault": 1, "variant": 2}[s.kind])
    return rows


def lab_profiles(repo: Path = REPO) -> dict[str, str]:
    """The lab profiles that exist, mapped to the node each runs in."""
    return {p: node for p, node in t.PROFILE_NODES.items() if (repo / "profiles" / p).is_file()}


def run_profile(
    lab: Lab, profile: str, node: str, workdir: Path, repo: Path = REPO, timeout: float = 300.0
) -> ProfileRun:
    """Run one lab profile inside its node and read its JSON results."""
    json_file = workdir / f"{Path(profile).stem}.json"
    report_dir = workdir / Path(profile).stem
    report_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "-p", "no:cacheprovider",
        "--profile", str(repo / "profiles" / profile),
        "--report-dir", str(report_dir),
        "--json-file", str(json_file),
    ]  # fmt: skip
    t0 = time.monotonic()
    try:
        proc = netns.run_pytest_in(lab.ns(node), args, cwd=repo, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProfileRun(
            profile,
            node,
            -1,
            time.monotonic() - t0,
            harness_error=f"pytest timed out after {timeout:.0f}s",
        )
    return read_run(profile, node, proc, json_file, time.monotonic() - t0)


def read_run(
    profile: str,
    node: str,
    proc: subprocess.CompletedProcess[str],
    json_file: Path,
    seconds: float,
) -> ProfileRun:
    """What a finished profile run produced: its checks from the JSON results, or why not."""
    run = ProfileRun(profile, node, proc.returncode, seconds)
    if proc.returncode not in RAN_CODES:
        run.harness_error = f"pytest exit {proc.returncode}: {why_not_run(proc)}"
        return run
    try:
        data = json.loads(json_file.read_text())
    except (OSError, ValueError) as exc:
        run.harness_error = f"no readable JSON results ({exc})"
        return run
    if data.get("schema") != RESULTS_SCHEMA:
        run.harness_error = f"unexpected results schema {data.get('schema')!r}"
        return run
    run.checks = list(data.get("checks", []))
    run.doc = data
    return run


def why_not_run(proc: subprocess.CompletedProcess[str]) -> str:
    """The reason a pytest run gave no results, for the matrix's note.

    A usage error (a bad profile, or one that checks nothing) is said on stderr after
    ``ERROR: ``, in full: the output's tail would cut the reason behind pytest's summary lines.
    Anything else shows the last three lines of its output, shortened.
    """
    if proc.returncode == USAGE_ERROR:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        starts = [i for i, line in enumerate(lines) if line.startswith("ERROR: ")]
        if starts:
            return " ".join(lines[starts[-1] :]).removeprefix("ERROR: ")
    tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return tail[:300]


def run(
    lab: Lab,
    only: Iterable[str] | None = None,
    out: TextIO | None = sys.stdout,
    repo: Path = REPO,
    jobs: int = 2,
    site_dir: Path | None = None,
) -> MatrixResult:
    """Run the matrix on ``lab``'s instance; prints progress and the table to ``out``.

    Profiles of one scenario run ``jobs`` at a time (each in its own node); the site is torn
    down after the last scenario, also on errors.
    """
    t_start = time.monotonic()
    scenarios = all_scenarios()
    if only:
        wanted = list(only)
        known = {s.name for s in scenarios}
        if unknown := [w for w in wanted if w not in known]:
            raise KeyError(
                f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        scenarios = [s for s in scenarios if s.name in wanted]
    profiles = lab_profiles(repo)
    workroot = Path(tempfile.mkdtemp(prefix=f"sixcheck-matrix-{lab.instance}-"))

    def say(text: str) -> None:
        if out is not None:
            print(text, file=out, flush=True)

    say(f"matrix: {len(scenarios)} scenarios x profiles {', '.join(profiles) or '(none yet)'}")
    try:
        for s in scenarios:
            t0 = time.monotonic()
            try:
                s.up_seconds = lab.up(faults=s.faults)
            except LabError as exc:
                s.verdict, s.note = "error", f"lab up failed: {exc}"
                s.seconds = time.monotonic() - t0
                say(f"  {s.name:<22} error  ({s.note})")
                continue
            workdir = workroot / s.name
            workdir.mkdir()
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {
                    p: pool.submit(run_profile, lab, p, node, workdir, repo)
                    for p, node in profiles.items()
                }
                s.runs = {p: f.result() for p, f in futures.items()}
            s.judge()
            s.diagnosis = diagnosed.verdict(
                s.kind, s.area, s.breaks, {p: r.doc for p, r in s.runs.items()}
            )
            judge_site(s, workdir, site_dir)
            s.seconds = time.monotonic() - t0
            say(f"  {s.name:<22} {s.verdict:<12} {s.seconds:5.1f}s (up {s.up_seconds:.1f}s)")
    finally:
        lab.down()
        shutil.rmtree(workroot, ignore_errors=True)
    result = MatrixResult(scenarios, list(profiles), time.monotonic() - t_start)
    say("")
    say(result.table())
    return result


def judge_site(s: Scenario, workdir: Path, site_dir: Path | None) -> None:
    """The site view of the scenario (``s.site``); with ``site_dir``, its site report there
    (``SITE_DIR/SCENARIO/index.html``, the runs copied beside it so its links keep working)."""
    from sixcheck.lab import sitelab

    s.site = sitelab.site_verdict(s.kind, s.area, {p: r.doc for p, r in s.runs.items()})
    # diagnosed needs the site view too: the top cause across all vantages is the fault's area
    if s.site.get("diagnosed") is False and s.diagnosis.get("diagnosed"):
        s.diagnosis = {**s.diagnosis, "diagnosed": False, "note": f"site: {s.site['note']}"}
    if s.kind != "fault" and s.site.get("note") and not s.diagnosis.get("note"):
        s.diagnosis = {**s.diagnosis, "note": f"site: {s.site['note']}"}
    if site_dir is None:
        return
    runs_dir = site_dir / s.name / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    shutil.copytree(workdir, runs_dir)
    pairs = [
        (runs_dir / f"{Path(p).stem}.json", sitelab.newest_html(runs_dir / Path(p).stem))
        for p in s.runs
    ]
    s.site["report"] = str(sitelab.site_report(pairs, site_dir / s.name).html)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sixcheck.lab.matrix`` is the same as ``python -m sixcheck.lab matrix``."""
    from sixcheck.lab.cli import main as cli_main

    return cli_main(["matrix", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
