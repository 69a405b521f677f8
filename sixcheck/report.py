"""Results of a run: the JSON file, the HTML report's header and evidence blocks.

The JSON results are the machine-readable record (baselines, the lab's matrix, monitoring); the HTML
is for a person. Both carry the same outcomes and the evidence of every check.
"""

from __future__ import annotations

import functools
import html
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .probes.base import fields_table, has_raw_sockets
from .schema import LoadedProfile
from .secrets import redact, redact_obj
from .vantage import Vantage, read_vantage

if TYPE_CHECKING:  # imported where used: a run reaches them after its probes (see `prefetch`)
    from . import baseline as bl
    from . import diagnosis

#: libyaml's emitter when PyYAML has it (the wheels do): the pure-Python one took a third of a
#: healthy run's time after the probes (two dumps per check)
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

SCHEMA = "sixcheck-results/1"
#: pytest's exit status for a run stopped by Ctrl-C (pytest.ExitCode.INTERRUPTED; no pytest import)
INTERRUPTED = 2
#: the Diagnosis section of a run in which nothing failed (the diagnosis module is not loaded then)
NO_FAILURES_HTML = (
    "<h2 id='sixcheck-diagnosis'>Diagnosis</h2>"
    "<p class='sx-diag-none'>No failures: nothing to diagnose.</p>"
)
INTERRUPTED_NOTE = (
    "interrupted (Ctrl-C): the run was stopped before every check ran; the checks missing here "
    "were not judged, neither passed nor failed"
)


@dataclass
class CheckResult:
    id: str
    area: str | None
    outcome: str = "passed"
    message: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0


def message_of(report: Any) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    # pytest appends the rewritten assert ("assert 1 == 2"); the check's own message comes first.
    for marker in ("\nassert ", "\n+  where ", "\n+  and "):
        text = text.split(marker)[0]
    for prefix in ("AssertionError: ", "Failed: "):
        text = text.removeprefix(prefix)
    return redact(text.strip())


class Results:
    """Collects outcomes while pytest runs and writes them when it finishes."""

    def __init__(
        self,
        loaded: LoadedProfile,
        started: datetime,
        json_path: Path | None,
        html_path: Path | None,
    ) -> None:
        self.loaded = loaded
        self.started = started
        self.json_path = json_path
        self.html_path = html_path
        self.has_raw = has_raw_sockets()
        self.checks: dict[str, CheckResult] = {}
        self.t0 = time.monotonic()
        self.duration = 0.0
        self.plan_seconds: float | None = None
        self.plan_size = 0
        self.plan_kinds: dict[str, float] = {}  # each probe kind's wall time in the plan
        self.exitstatus: int | None = None
        #: the earlier run's results (`--baseline`) and how failures decide the exit status
        self.baseline: dict[str, Any] | None = None
        self.baseline_path: str | None = None
        self.baseline_note: str | None = None  # why there is no comparison (e.g. first run)
        self.fail_on = "failures"
        #: the run's probable causes, ranked (set when the run finishes; None before)
        self.causes: list[diagnosis.Cause] | None = None

    @functools.cached_property
    def vantage(self) -> Vantage:
        """Read once, when a report first needs it (never for --collect-only)."""
        return read_vantage()

    def prefetch(self) -> None:
        """Do now what writing the results will need, while the probes wait for their answers:
        read the vantage (a netlink round, and pyroute2's import). (Not the diagnosis: a healthy
        run never needs it, see `finish`; the baseline code loaded with `--baseline` itself.)"""
        _ = self.vantage

    def skip_vantage(self, why: str) -> None:
        """Record the vantage unread, unless it was read already (Ctrl-C: exit at once)."""
        if "vantage" not in self.__dict__:
            self.__dict__["vantage"] = Vantage(socket.gethostname(), os.uname().release, {}, why)

    # ---- collecting
    def add(self, report: Any) -> None:
        cid = getattr(report, "sixcheck_id", report.nodeid)  # the same in every layout and folder
        res = self.checks.setdefault(cid, CheckResult(cid, getattr(report, "sixcheck_area", None)))
        res.area = res.area or getattr(report, "sixcheck_area", None)
        ev = getattr(report, "sixcheck_evidence", None)
        if ev:
            res.evidence = ev
        res.duration += report.duration
        if report.skipped:
            res.outcome, res.message = "skipped", message_of(report)
        elif report.failed:
            res.outcome = "failed" if report.when == "call" else "error"
            res.message = message_of(report)
        elif report.when == "call" and res.outcome not in ("failed", "error"):
            res.outcome = "passed"

    def summary(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
        for c in self.checks.values():
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        return counts

    def by_area(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for c in self.checks.values():
            row = table.setdefault(
                c.area or "other", {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
            )
            row[c.outcome] += 1
        return table

    # ---- writing
    def header(self) -> dict[str, Any]:
        v = self.vantage
        addrs = {k: ", ".join(a) for k, a in v.interfaces.items() if a}
        return {
            "Profile": f"{self.loaded.name} ({self.loaded.path})",
            "Profile sha256": self.loaded.sha256,
            "Areas": ", ".join(self.loaded.profile.areas()),
            "Vantage": f"{v.hostname} ({self.loaded.profile.node.role}), kernel {v.kernel}",
            "IPv6 addresses": addrs or (v.error or "none"),
            "Raw sockets": "yes" if self.has_raw else "no (packet-level checks are skipped)",
            "Started": self.started.isoformat(timespec="seconds"),
        }

    def comparison(self) -> bl.Comparison | None:
        """This run against the baseline; recomputed on each call (pytest-html asks mid-run)."""
        if self.baseline is None:
            return None
        from . import baseline as bl

        current = {
            "profile": {"name": self.loaded.name},
            "checks": [redact_obj(asdict(c)) for c in self.checks.values()],
            "observation_fields": fields_table(self._kinds()),
        }
        if self.causes is not None:  # diagnosed already: the comparison groups regressions by them
            current["causes"] = [c.to_json() for c in self.causes]
        return bl.compare(self.baseline, current, self.baseline_path or "")

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "profile": {
                "name": self.loaded.name,
                "path": str(self.loaded.path),
                "sha256": self.loaded.sha256,
                "areas": self.loaded.profile.areas(),
                "role": self.loaded.profile.node.role,
            },
            "vantage": asdict(self.vantage),
            "raw_sockets": self.has_raw,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": (self.started + timedelta(seconds=self.duration)).isoformat(
                timespec="seconds"
            ),
            "duration": round(self.duration, 3),
            "probe_plan": {
                "requests": self.plan_size,
                "seconds": self.plan_seconds,
                "kinds": self.plan_kinds,
            },
            "exitstatus": self.exitstatus,
            "interrupted": self.interrupted,
            "summary": self.summary(),
            "areas": self.by_area(),
            "checks": [asdict(c) for c in self.checks.values()],
            "fail_on": self.fail_on,
            # which observation fields are facts about the network: how to compare this run later
            "observation_fields": fields_table(self._kinds()),
        }
        if self.loaded.profile.description:
            doc["profile"]["description"] = self.loaded.profile.description
        if self.causes is not None:
            doc["causes"] = [c.to_json() for c in self.causes]
        cmp = self.comparison()
        if cmp is not None:
            doc["baseline"] = cmp.as_json()
        elif self.baseline_note:
            doc["baseline"] = {"path": None, "note": self.baseline_note}
        out: dict[str, Any] = redact_obj(json.loads(json.dumps(doc, default=str)))  # still a dict
        return out

    def _kinds(self) -> list[str]:
        return sorted(
            {
                str(e["observation"].get("kind"))
                for c in self.checks.values()
                for e in c.evidence
                if isinstance(e, dict) and isinstance(e.get("observation"), dict)
            }
        )

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C (pytest's exit status 2): checks that did not run are missing."""
        return self.exitstatus == INTERRUPTED

    def finish(
        self,
        exitstatus: int,
        diagnose: Callable[[dict[str, Any]], list[diagnosis.Cause]] | None = None,
    ) -> dict[str, Any]:
        """Record the end of the run and write the JSON; returns the document written.

        `diagnose` turns the document into its causes, which the JSON and both summaries carry."""
        self.duration = time.monotonic() - self.t0
        self.exitstatus = exitstatus
        doc = self.as_json()
        if diagnose is not None and not any(
            c.outcome in ("failed", "error") for c in self.checks.values()
        ):
            self.causes = []  # nothing failed, nothing to explain: the rules need not even load
            doc["causes"] = []
        elif diagnose is not None:
            try:
                self.causes = diagnose(doc)
            except Exception as exc:  # a bug in the diagnosis must not cost the run its results
                doc["diagnosis_error"] = redact(f"{type(exc).__name__}: {exc}")
            else:
                doc["causes"] = redact_obj([c.to_json() for c in self.causes])
        if self.json_path is not None:
            write_atomic(self.json_path, json.dumps(doc, indent=2, default=str) + "\n")
        return doc

    def html_summary(self) -> list[str]:
        """The top of the HTML report: the baseline comparison (regressions first) when there is
        one, then the outcome per area (where the run stood is in pytest-html's Environment table)."""
        by_area = self.by_area()
        total = self.summary()
        rows = "".join(
            f"<tr class='{'sx-bad' if c['failed'] + c['error'] else 'sx-good'}'>"
            f"<td>{html.escape(area)}</td><td>{c['passed']}</td>"
            f"<td>{c['failed'] + c['error']}</td><td>{c['skipped']}</td></tr>"
            for area, c in by_area.items()
        )
        rows += (
            f"<tr><th style='text-align:left'>all</th><th>{total['passed']}</th>"
            f"<th>{total['failed'] + total['error']}</th><th>{total['skipped']}</th></tr>"
        )
        out = []
        if self.interrupted:
            out.append(f"<p class='sx-interrupted'><b>{html.escape(INTERRUPTED_NOTE)}</b></p>")
        if self.causes == []:
            out.append(NO_FAILURES_HTML)
        elif self.causes is not None:
            from . import diagnosis

            out.append(diagnosis.html_section(self.causes))
        cmp = self.comparison()
        if cmp is not None:
            from . import baseline as bl

            out.append(bl.html_section(cmp, self.fail_on))
        elif self.baseline_note:
            out.append(f"<p>Baseline: {html.escape(self.baseline_note)}</p>")
        out += [
            "<style>.sx-bad td{background:#fdd}</style>"
            "<h2 id='sixcheck-areas'>Per area</h2><table class='sixcheck-areas'><tr><th>area</th>"
            f"<th>passed</th><th>failed</th><th>skipped</th></tr>{rows}</table>",
        ]
        return [redact(x) for x in out]

    def cause_section(self) -> tuple[str, list[str]] | None:
        """The terminal's section of causes (see diagnosis.terminal_section); None if none."""
        if not self.causes:
            return None
        from . import diagnosis

        failed = {
            c.id: (c.area, c.message)
            for c in self.checks.values()
            if c.outcome in ("failed", "error")
        }
        title, lines = diagnosis.terminal_section(self.causes, failed)
        return redact(title), [redact(x) for x in lines]  # as every line a run prints

    def terminal_lines(self) -> list[str]:
        out = [f"sixcheck: {INTERRUPTED_NOTE}"] if self.interrupted else []
        if self.causes:
            from . import diagnosis

            out += diagnosis.terminal_lines(self.causes)
        cmp = self.comparison()
        if cmp is not None:
            from . import baseline as bl

            out += bl.terminal_lines(cmp, self.fail_on)
        elif self.baseline_note:
            out.append(f"sixcheck baseline: {self.baseline_note}")
        if self.html_path is not None:
            out.append(f"sixcheck: HTML report {self.html_path}")
        if self.json_path is not None:
            out.append(f"sixcheck: JSON results {self.json_path}")
        return out


def render_evidence(evidence: list[dict[str, Any]], as_text: bool = False) -> str:
    """Evidence as readable YAML: what was asked, what came back, what was expected."""
    text = yaml.dump(
        json.loads(json.dumps(evidence, default=str)),
        Dumper=_DUMPER,
        sort_keys=False,
        width=100,
        allow_unicode=True,
    )
    text = redact(text)
    return text if as_text else evidence_html(text)


def evidence_html(text: str) -> str:
    """The HTML block of evidence already rendered as text (render once, show twice)."""
    return f"<div class='sixcheck-evidence'><b>Evidence</b><pre>{html.escape(text)}</pre></div>"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader (or a second run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".{socket.gethostname()}"
    )
    try:
        # mkstemp creates 0600; a report is read by a web server or node_exporter: honour umask
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
