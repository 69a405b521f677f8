"""`sixcheck site run SITE.yaml`: run every vantage's profile where it lives and gather the results.

sixcheck rides on what operators already use to reach machines instead of an agent of its own:
a vantage is this machine, a network namespace on it, or a node reached with the system's OpenSSH
client (so ssh config, keys, agent, jump hosts and known_hosts apply). Each vantage runs the
sixcheck installed there, concurrently with the others and under its own deadline; its report
comes back over the same connection (a tar stream on stdout, nothing left behind on the node).

A vantage that cannot be reached, has no sixcheck, has another version or misses its deadline is
a finding of its own, never a pass; the other vantages still run and are reported.
"""

from __future__ import annotations

import argparse
import io
import shlex
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from . import baseline as bl
from .schema import ProfileError
from .schema import site as sf

if TYPE_CHECKING:
    from .siteview import SiteReport

#: ssh's own exit status when it could not connect or authenticate (the remote command's
#: status is passed through otherwise).
SSH_FAILED = 255
#: Applied unless the site file sets them: a vantage must never wait at a password prompt
#: (several run at once, without a terminal), and a dead host should not cost the whole deadline.
SSH_DEFAULTS = {"BatchMode": "yes", "ConnectTimeout": "15"}
#: How long the version check may take of a vantage's deadline.
VERSION_SECONDS = 30.0

# The remote side, run by `sh` whatever the login shell is: a private temporary folder, the run
# with its report and JSON written there, the folder sent back as a tar stream on stdout, then
# removed. The run's exit status travels inside the stream, so ssh's own 255 stays unambiguous.
_REMOTE = """\
d=$(mktemp -d "${{TMPDIR:-/tmp}}/sixcheck-site.XXXXXX") || exit 70
trap 'rm -rf "$d"' EXIT
trap 'exit 2' HUP INT TERM
mkdir "$d/out" "$d/profile" || exit 70
{profile}
{command} run "$profile" --report-dir "$d/out" --json-file "$d/out/results.json" \
    >"$d/out/run.log" 2>&1
echo $? >"$d/out/exitstatus"
rm -f "$d/out/.sixcheck.lock"
tar -C "$d/out" -cf - .
"""


@dataclass
class VantageRun:
    """What became of one vantage: its results, or why there are none."""

    name: str
    via: str  # "ssh root@gw", "netns x-gw", "local": how it was reached, for people
    profile: str
    folder: Path  # this vantage's files in the site report folder
    exitstatus: int | None = None
    doc: dict[str, Any] | None = None
    error: str | None = None
    refused: bool = False
    seconds: float = 0.0

    @property
    def results(self) -> Path | None:
        path = self.folder / "results.json"
        return path if self.doc is not None and path.is_file() else None

    @property
    def report(self) -> Path | None:
        found = sorted(p for p in self.folder.glob("*.html") if p.name != "index.html")
        return found[-1] if found else None


class Unreachable(Exception):
    """The vantage gave no results; the message says why, in words for the site report.

    ``refused`` marks a vantage whose sixcheck refused the profile or an option (exit 4): the
    site's configuration is wrong, so the site run exits 4 as a single run would.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


# ------------------------------------------------------------------------------- running


def _words(value: str | None) -> list[str] | None:
    return shlex.split(value) if value else None


def _ssh_argv(loaded: sf.LoadedSite, v: sf.Vantage) -> list[str]:
    d = loaded.site.defaults
    argv = ["ssh"]
    config = v.ssh_config or d.ssh_config
    if config:
        argv += ["-F", str(loaded.local_path(config))]
    identity = v.identity_file or d.identity_file
    if identity:
        argv += ["-i", str(loaded.local_path(identity))]
    port = v.port or d.port
    if port:
        argv += ["-p", str(port)]
    options = {**d.ssh_options, **(v.ssh_options or {})}
    for key, value in options.items():
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        argv += ["-o", f"{key}={text}"]
    given = {k.lower() for k in options}
    for key, text in SSH_DEFAULTS.items():
        if key.lower() not in given:
            argv += ["-o", f"{key}={text}"]
    assert v.ssh is not None
    return [*argv, "-T", "--", v.ssh]


def _tail(text: str | bytes, lines: int = 3) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(no message)"


class _Runner:
    """Runs one vantage; every way it can go wrong ends as Unreachable with a clear message."""

    def __init__(self, loaded: sf.LoadedSite, name: str, folder: Path) -> None:
        self.loaded = loaded
        self.name = name
        self.v = loaded.site.vantages[name]
        self.folder = folder
        defaults = loaded.site.defaults
        self.deadline = self.v.deadline or defaults.deadline
        self.command = _words(self.v.sixcheck or defaults.sixcheck)
        self.t0 = time.monotonic()

    @property
    def via(self) -> str:
        if self.v.ssh:
            return f"ssh {self.v.ssh}"
        return f"netns {self.v.netns}" if self.v.netns else "local"

    def left(self) -> float:
        return self.deadline - (time.monotonic() - self.t0)

    def run(self) -> VantageRun:
        result = VantageRun(self.name, self.via, self.v.profile, self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            if self.v.ssh:
                self._check_version(self._ssh_prefix())
                self._run_ssh()
            else:
                self._run_here()
            result.exitstatus, result.doc = self._collect()
        except Unreachable as exc:
            result.error, result.refused = str(exc), exc.refused
        result.seconds = time.monotonic() - self.t0
        return result

    # -- where it runs

    def _ssh_prefix(self) -> list[str]:
        return _ssh_argv(self.loaded, self.v)

    def _here_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.v.netns] if self.v.netns else []

    def _exec(
        self, argv: list[str], timeout: float, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        if timeout <= 0:
            raise Unreachable(self._late())
        try:
            return subprocess.run(
                argv,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Unreachable(self._late()) from None
        except FileNotFoundError as exc:  # as a shell says it: the version check names it
            return subprocess.CompletedProcess(argv, 127, b"", f"{exc.strerror}".encode())
        except OSError as exc:
            raise Unreachable(f"could not start {argv[0]}: {exc.strerror}") from None

    def _late(self) -> str:
        return (
            f"{self.name} did not finish within its deadline of {self.deadline:g}s "
            f"({self.via}); raise `deadline:` in the site file or look at the node"
        )

    def _check_version(self, prefix: list[str]) -> None:
        """The node's sixcheck must exist and be this version: results of another version have
        other checks and evidence, and a site view that mixes them misleads."""
        command = self.command or ["sixcheck"]
        remote = [shlex.join([*command, "--version"])] if self.v.ssh else [*command, "--version"]
        proc = self._exec([*prefix, *remote], min(VERSION_SECONDS, self.left()))
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        if self.v.ssh and proc.returncode == SSH_FAILED:
            raise Unreachable(f"could not reach {self.name} over SSH ({self.v.ssh}): {_tail(out)}")
        missing = ("not found", "no such file")
        if proc.returncode == 127 or (
            proc.returncode != 0 and any(m in out.lower() for m in missing)
        ):
            raise Unreachable(
                f"sixcheck is not installed on {self.name} ({shlex.join(command)}: command not "
                "found); install the same wheel there (see contrib/ansible) or set `sixcheck:` "
                "to its path in the site file"
            )
        words = out.split()
        if proc.returncode != 0 or len(words) < 2 or words[0] != "sixcheck":
            raise Unreachable(
                f"{shlex.join(command)} --version on {self.name} did not answer like sixcheck "
                f"(exit {proc.returncode}): {_tail(out)}"
            )
        if words[1] != __version__:
            raise Unreachable(
                f"{self.name} has sixcheck {words[1]}, this is {__version__}: install the same "
                "version on every vantage (results of different versions do not compare)"
            )

    def _run_here(self) -> None:
        command = self.command
        if command is not None:
            self._check_version(self._here_prefix())
        else:
            command = [sys.executable, "-m", "sixcheck"]
        profile = self.v.profile
        if sf.looks_like_path(profile):
            profile = str(self.loaded.local_path(profile).resolve())
        argv = [
            *self._here_prefix(),
            *command,
            "run",
            profile,
            "--report-dir",
            str(self.folder),
            "--json-file",
            str(self.folder / "results.json"),
        ]
        proc = self._exec(argv, self.left())
        (self.folder / "run.log").write_bytes(proc.stdout + proc.stderr)
        (self.folder / "exitstatus").write_text(f"{proc.returncode}\n")
        (self.folder / ".sixcheck.lock").unlink(missing_ok=True)

    def _run_ssh(self) -> None:
        command = self.command or ["sixcheck"]
        profile = self.v.profile
        stdin = b""
        if sf.looks_like_path(profile):
            path = self.loaded.local_path(profile)
            stdin = path.read_bytes()  # validated when the site file was loaded
            name = shlex.quote(f"{path.stem}.yaml")
            setup = f'profile="$d/profile/"{name}\ncat >"$profile" || exit 70'
        else:
            setup = f"profile={shlex.quote(profile)}"
        script = _REMOTE.format(profile=setup, command=shlex.join(command))
        proc = self._exec(
            [*self._ssh_prefix(), shlex.join(["sh", "-c", script])], self.left(), stdin
        )
        if proc.returncode == SSH_FAILED:
            raise Unreachable(
                f"could not reach {self.name} over SSH ({self.v.ssh}): {_tail(proc.stderr)}"
            )
        if proc.returncode != 0:
            raise Unreachable(
                f"the run on {self.name} broke off (exit {proc.returncode}): {_tail(proc.stderr)}"
            )
        try:
            with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
                tar.extractall(self.folder, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise Unreachable(f"the report from {self.name} came back damaged: {exc}") from None

    def _collect(self) -> tuple[int, dict[str, Any]]:
        try:
            status = int((self.folder / "exitstatus").read_text().strip())
        except (OSError, ValueError):
            raise Unreachable(f"the run on {self.name} left no exit status") from None
        log = (self.folder / "run.log").read_text(errors="replace")
        if status == 4:
            raise Unreachable(
                f"sixcheck on {self.name} refused the run (exit 4, a bad profile or option): "
                f"{_tail(log)}",
                refused=True,
            )
        try:
            doc = bl.load(self.folder / "results.json")
        except bl.BaselineError as exc:
            raise Unreachable(
                f"the run on {self.name} wrote no usable results (exit {status}): {exc}; "
                f"its output ends: {_tail(log)}"
            ) from None
        return status, doc


def run_site(loaded: sf.LoadedSite, folder: Path, jobs: int | None = None) -> list[VantageRun]:
    """Run every vantage at once (or `jobs` at a time); results in the site file's order."""
    names = list(loaded.site.vantages)
    with ThreadPoolExecutor(max_workers=jobs or len(names)) as pool:
        futures = [pool.submit(_Runner(loaded, n, folder / n).run) for n in names]
        return [f.result() for f in futures]


# ------------------------------------------------------------------------------- reporting


def exit_status(runs: Sequence[VantageRun]) -> int:
    """As for one run: 0 when every vantage ran and passed, 1 when anything failed or could not
    be run, 4 when a vantage refused its profile (the site's configuration is wrong)."""
    if any(r.refused for r in runs):
        return 4
    if any(r.error or r.exitstatus != 0 for r in runs):
        return 1
    return 0


def summary_line(run: VantageRun) -> str:
    if run.error:
        return f"{run.name:<10} NOT RUN   {run.error}"
    assert run.doc is not None
    counts = run.doc.get("summary", {})
    parts = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "skipped", "error"))
    verdict = "passed" if run.exitstatus == 0 else "FAILED"
    return f"{run.name:<10} {verdict:<9} {parts} ({run.via}, {run.seconds:.1f}s)"


def write_report(folder: Path, runs: Sequence[VantageRun]) -> SiteReport:
    """The site report over every vantage, reached or not (siteview: causes across vantages,
    each vantage's own report linked)."""
    from . import siteview

    vantages = [
        siteview.VantageResult(
            r.name,
            r.doc,
            error=r.error,
            source=r.via,
            report=str(r.report.relative_to(folder)) if r.report else None,
        )
        for r in runs
    ]
    return siteview.write_site_report(vantages, folder)


# ------------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sixcheck site run",
        description="run every vantage of a site file where it lives and write the site report",
    )
    p.add_argument("site_file", metavar="SITE.yaml")
    p.add_argument(
        "--report-dir",
        default="reports",
        metavar="DIR",
        help="the site report goes to DIR/SITE-TIME/ (default: reports/)",
    )
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="vantages at a time")
    return p


def _folder(report_dir: Path, site: str) -> Path:
    """A new folder for this run's site report (two runs in one second get two folders)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 100):
        folder = report_dir / (f"{site}-{stamp}" if n == 1 else f"{site}-{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{report_dir}/{site}-{stamp}-*")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status as for one run (see exit_status); 4 for a bad site file or option."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its line; usage errors are 4 here
        return 0 if exc.code == 0 else 4
    try:
        loaded = sf.load(Path(args.site_file))
    except ProfileError as exc:
        print(f"ERROR: bad site file:\n{exc}", file=sys.stderr)
        return 4
    if args.jobs is not None and args.jobs < 1:
        print("ERROR: --jobs must be 1 or more", file=sys.stderr)
        return 4
    try:
        folder = _folder(Path(args.report_dir), loaded.site.site)
    except OSError as exc:
        print(f"ERROR: --report-dir {args.report_dir}: {exc}", file=sys.stderr)
        return 4
    try:
        runs = run_site(loaded, folder, args.jobs)
    except KeyboardInterrupt:
        return 2
    for run in runs:
        print(summary_line(run))
    report = write_report(folder, runs)
    for cause in report.causes[:3]:
        print(f"probable cause ({cause.vantage}): {cause.title}")
    print(f"site report: {report.html}")
    return max(exit_status(runs), report.exitstatus)


if __name__ == "__main__":
    sys.exit(main())
