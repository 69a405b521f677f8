"""The `sixcheck` command (and `python -m sixcheck`, the same thing).

For people who do not think in pytest: `sixcheck run PROFILE` is exactly `pytest --profile PROFILE`
with the installed checks, same options and exit codes; the other commands are the helpers around
a run. Commands that belong to other modules (`run`, `lab`, `site`, `audit`) get their arguments
untouched, so their own help and options are the only ones.

sixcheck run PROFILE [pytest options...]
sixcheck profiles
sixcheck discover [--vantage router|host|outside] [-o FILE] [--ra-listen SECONDS]
sixcheck lab up|down|status|faults|exec|demo|matrix ...
sixcheck site ...
sixcheck index REPORT_DIR [--keep N]
sixcheck prometheus RESULTS.json OUT.prom
sixcheck audit [CONFIG]        (the scheduled audit of contrib/; see docs/scheduled-audits.md)
sixcheck contrib               (where the systemd unit, cron line and audit config are)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

#: exit status of a usage error: pytest's, so scripts see one code for "you asked wrongly"
USAGE = 4

FORWARDED = {
    "run": "run the checks of a profile: exactly `pytest --profile PROFILE [pytest options]`",
    "lab": "the namespace lab: up, down, status, faults, exec, demo, matrix (needs root)",
    "site": "one view of a site from the results of several vantages",
    "audit": "one scheduled audit, configured by a file (contrib/sixcheck-audit)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sixcheck",
        description="IPv6 site checks driven by a profile. `sixcheck run NAME` runs a profile "
        "(the same as `pytest --profile NAME`); the other commands help around a run.",
    )
    from . import __version__

    # `sixcheck site run` asks a node for this before running there (another version's results
    # do not compare)
    p.add_argument("--version", action="version", version=f"sixcheck {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in FORWARDED.items():
        sub.add_parser(name, help=text, add_help=False)
    sub.add_parser("profiles", help="list the profiles found by name (the shipped ones too)")
    sub.add_parser("contrib", help="print the folder of the scheduled-audit files to install")
    d = sub.add_parser(
        "discover", help="print a starter profile from what this node sees now (read-only)"
    )
    d.add_argument(
        "--vantage",
        choices=("router", "host", "outside"),
        default=None,
        help="what this node is (default: router if it forwards IPv6, else host)",
    )
    d.add_argument("-o", "--output", metavar="FILE", help="write the profile here, not stdout")
    d.add_argument(
        "--ra-listen",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also listen this long for Router Advertisements on LAN/upstream interfaces "
        "(needs CAP_NET_RAW; default 0: off)",
    )
    i = sub.add_parser("index", help="prune a report folder and rewrite its index.html")
    i.add_argument("report_dir", metavar="REPORT_DIR")
    i.add_argument(
        "--keep", type=int, default=30, metavar="N", help="runs kept per profile (0: all)"
    )
    m = sub.add_parser("prometheus", help="turn a JSON results file into a node_exporter textfile")
    m.add_argument("results", metavar="RESULTS.json")
    m.add_argument("output", metavar="OUT.prom")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `sixcheck` and `python -m sixcheck`; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in FORWARDED:
        return _FORWARD[args[0]](args[1:])
    ns = _parser().parse_args(args)
    command: Callable[[argparse.Namespace], int] = _COMMANDS[ns.command]
    return command(ns)


# ---------------------------------------------------------------------------------------------
# forwarded commands


def _run(args: list[str]) -> int:
    if not args or args[0].startswith("-"):
        if args[:1] in (["-h"], ["--help"]):
            print(
                "usage: sixcheck run PROFILE [pytest options...]\n\n"
                "Runs the checks of PROFILE (a name from `sixcheck profiles`, or a path): exactly\n"
                "`pytest --profile PROFILE [options]`, with the same options and exit codes.\n"
                "`sixcheck run PROFILE --help` lists every option (sixcheck's are under\n"
                "'sixcheck: IPv6 site checks')."
            )
            return 0
        print(
            "sixcheck run: name a profile first: sixcheck run NAME|PATH [pytest options...] "
            "(`sixcheck profiles` lists the names)",
            file=sys.stderr,
        )
        return USAGE
    # A fresh interpreter, not pytest.main() here: pytest rewrites the asserts of the installed
    # plugin's package, which this process has already imported (a warning on every run), and
    # exec keeps the exit status and signals pytest's own. -P: the current folder is not put on
    # sys.path, just as with the `pytest` script. `--profile=X`: never mistaken for a test path.
    argv = [sys.executable, "-P", "-m", "pytest", f"--profile={args[0]}", *args[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _lab(args: list[str]) -> int:
    from .lab.cli import main as lab_main

    return lab_main(args, prog="sixcheck lab")


def _site(args: list[str]) -> int:
    """`sixcheck site ...`: all arguments go to `sixcheck.siteview.main`, when this build has it."""
    try:
        siteview = importlib.import_module("sixcheck.siteview")
    except ModuleNotFoundError as exc:
        if exc.name != "sixcheck.siteview":
            raise
        print("sixcheck site: not available in this build (no sixcheck.siteview)", file=sys.stderr)
        return USAGE
    return int(siteview.main(args))


def _audit(args: list[str]) -> int:
    """Run the shipped scheduled-audit wrapper with this interpreter's sixcheck."""
    script = _contrib() / "sixcheck-audit"
    if not script.is_file():
        print(f"sixcheck audit: {script} is missing (an incomplete install?)", file=sys.stderr)
        return USAGE
    env = dict(os.environ)
    env.setdefault("SIXCHECK_PYTHON", sys.executable)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve("/bin/bash", ["bash", str(script), *args], env)


_FORWARD: dict[str, Callable[[list[str]], int]] = {
    "run": _run,
    "lab": _lab,
    "site": _site,
    "audit": _audit,
}


# ---------------------------------------------------------------------------------------------
# the helpers


def _contrib() -> Path:
    from .locate import contrib_dir

    return contrib_dir()


def _profiles(ns: argparse.Namespace) -> int:
    from .schema import list_profiles

    # the folders `pytest --list-profiles` searches from here when no ini file names others
    for name, path, desc in list_profiles([Path.cwd() / "profiles"]):
        print(f"{name:<16} {desc}  ({path})")
    return 0


def _contrib_cmd(ns: argparse.Namespace) -> int:
    print(_contrib())
    return 0


def _discover(ns: argparse.Namespace) -> int:
    from . import discover

    text = discover.discover(vantage=ns.vantage, ra_listen=ns.ra_listen)
    if ns.output:
        from .report import write_atomic

        write_atomic(Path(ns.output), text)
    else:
        sys.stdout.write(text)
    return 0


def _index(ns: argparse.Namespace) -> int:
    from . import history

    if ns.keep < 0:
        print("sixcheck: --keep must be 0 or more", file=sys.stderr)
        return USAGE
    try:
        removed, index = history.rotate(Path(ns.report_dir), ns.keep)
    except history.HistoryError as exc:
        print(f"sixcheck: {exc}", file=sys.stderr)
        return 1
    print(f"{index} ({len(removed)} old files removed)")
    return 0


def _prometheus(ns: argparse.Namespace) -> int:
    from . import baseline, prometheus

    try:
        doc = baseline.load(Path(ns.results))
    except baseline.BaselineError as exc:
        print(f"sixcheck: {exc}", file=sys.stderr)
        return USAGE
    prometheus.write(Path(ns.output), doc)
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "profiles": _profiles,
    "contrib": _contrib_cmd,
    "discover": _discover,
    "index": _index,
    "prometheus": _prometheus,
}


def entry() -> None:
    """The console script: exit with main's status; a closed pipe (`| head`) is not an error."""
    try:
        code = main()
    except BrokenPipeError:
        # stdout's reader is gone: silence the interpreter's own flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
