"""Command line of the lab: up, down, status, faults, exec, demo, matrix.

Every command works on one instance (``--instance`` or ``SIXCHECK_LAB``, default ``sx``), so
several people (or a test run and a developer) can each have a lab on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sixcheck.lab import faults, netns
from sixcheck.lab import topology as t
from sixcheck.lab.site import Lab, LabError
from sixcheck.locate import checkout, profiles_dir

if TYPE_CHECKING:
    from sixcheck.siteview import SiteReport

#: the folder holding profiles/ (and checks/): the checkout, or the installed package
REPO = profiles_dir().parent


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Build a real IPv6 site in network namespaces, break it, and test sixcheck "
        "against it.",
    )
    p.add_argument(
        "--instance",
        default=None,
        help=f"instance name (default: ${t.INSTANCE_ENV} or {t.DEFAULT_INSTANCE!r})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the site (tears an existing instance down first)")
    up.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a fault (repeatable); see `faults`",
    )
    up.add_argument(
        "--sshd",
        action="store_true",
        help="also an sshd in gw, lan, out and vpn, reached from {inst}-ctl (see README)",
    )
    sub.add_parser("down", help="remove every namespace, process and file of the instance")
    sub.add_parser("status", help="what is up")
    sub.add_parser("faults", help="list the faults and variants")
    ex = sub.add_parser("exec", help="run a command inside a node: exec NODE -- CMD ...")
    ex.add_argument("node", choices=t.NODES)
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    demo = sub.add_parser("demo", help="up, run the gateway profile inside gw, report, down")
    demo.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="break the site first, to see a failing report (e.g. accept-ra-ignored)",
    )
    mx = sub.add_parser("matrix", help="run the lab profiles against healthy and every fault")
    mx.add_argument("--json", dest="json_file", default=None, metavar="FILE")
    mx.add_argument(
        "--jobs",
        type=int,
        default=matrix_jobs(),
        metavar="N",
        help="profiles run at once per scenario (default: $SIXCHECK_LAB_JOBS or 2)",
    )
    mx.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="SCENARIO",
        help="only these scenarios (healthy, fault or variant names)",
    )
    mx.add_argument(
        "--site-dir",
        default=None,
        metavar="DIR",
        help="also write each scenario's site report (all vantages, causes across them) here",
    )
    return p


def matrix_jobs() -> int:
    """Default parallelism of the matrix (profiles of one scenario run in different nodes)."""
    return int(os.environ.get("SIXCHECK_LAB_JOBS", "2"))


def _cmd_faults() -> int:
    width = max(len(n) for n in faults.FAULTS)
    for name, cls in faults.FAULTS.items():
        kind = "[variant]" if cls.variant else f"[{cls.area}]"
        print(f"{name:<{width}}  {kind:<10}  {cls.summary()}")
    return 0


def _cmd_status(lab: Lab) -> int:
    st = lab.status()
    if not st["namespaces"]:
        print(f"lab {lab.instance}: down")
        return 0
    print(f"lab {lab.instance}: up ({', '.join(st['namespaces'])})")
    print(f"  faults: {', '.join(st['faults']) or 'none (healthy)'}")
    if st["up_seconds"] is not None:
        print(f"  up took {st['up_seconds']:.1f}s; state in {st['state_dir']}")
    for p in st["processes"]:
        mark = "running" if p["alive"] else "GONE"
        print(f"  {p['node']:<5} {p['name']:<15} pid {p['pid']:<7} {mark}")
    return 0


def _cmd_demo(lab: Lab, fault_names: Sequence[str] = ()) -> int:
    """The first minute: build the site, run the gateway profile inside gw, say where the HTML
    report is, tear down. The report goes to the checkout's ``reports/`` (git-ignored), where
    a new user looks first; an installed sixcheck writes ``reports/`` in the current folder."""
    profile = REPO / "profiles" / "lab-gw.yaml"
    report_dir = (checkout() or Path.cwd()) / "reports"
    report_dir.mkdir(exist_ok=True)
    before = set(report_dir.glob("*.html"))
    print(f"building the lab site (instance {lab.instance}) ...", flush=True)
    with lab:
        secs = lab.up(faults=fault_names)
        print(
            f"lab up in {secs:.1f}s; running {profile.name} inside {lab.ns('gw')} ...", flush=True
        )
        args = [
            "-p",
            "no:cacheprovider",
            "--profile",
            str(profile),
            "--report-dir",
            str(report_dir),
        ]
        proc = netns.run_pytest_in(lab.ns("gw"), args, cwd=REPO)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        site = _demo_site(lab, proc.stdout, report_dir)
        print("tearing the lab down ...", flush=True)
    html = (
        _reported_html(proc.stdout)
        or sorted(set(report_dir.glob("*.html")) - before, key=lambda p: p.stat().st_mtime)[-1:]
    )
    if html:
        print(f"\nHTML report: {html[0]}")
    else:
        print(f"\nno HTML report was written in {report_dir}")
    if site is not None:
        print(f"site report (every lab vantage, causes across them): {site.html}")
    print(f"pytest exit code: {proc.returncode} (0: every check passed, 1: some failed)")
    return proc.returncode


def _demo_site(lab: Lab, gw_stdout: str, report_dir: Path) -> SiteReport | None:
    """Run the other lab profiles too and merge all into one site report (never fails the demo)."""
    from sixcheck.lab import sitelab

    print("running the other lab vantages for the site report ...", flush=True)
    gw_json = next(
        (Path(ln.split(" ", 3)[-1].strip()) for ln in gw_stdout.splitlines()
         if ln.startswith("sixcheck: JSON results ")),
        None,
    )  # fmt: skip
    try:
        return sitelab.demo_site(lab, gw_json, report_dir)
    except (OSError, LabError) as exc:
        print(f"no site report: {exc}", file=sys.stderr)
        return None


def _reported_html(stdout: str) -> list[Path]:
    """The report path the plugin prints (``sixcheck: HTML report PATH``), if it did."""
    for line in stdout.splitlines():
        if line.startswith("sixcheck: HTML report "):
            return [Path(line.removeprefix("sixcheck: HTML report ").strip())]
    return []


def main(argv: Sequence[str] | None = None, prog: str = "python -m sixcheck.lab") -> int:
    """Entry point; returns the process exit code. `prog`: how the user called it (usage lines)."""
    args = _parser(prog).parse_args(argv)
    if args.command == "faults":
        return _cmd_faults()
    if os.geteuid() != 0:
        print("the lab needs root (network namespaces, daemons)", file=sys.stderr)
        return 2
    lab = Lab(args.instance)
    try:
        if args.command == "up":
            secs = lab.up(faults=args.fault, sshd=args.sshd)
            extra = f" with {', '.join(args.fault)}" if args.fault else " (healthy)"
            print(f"lab {lab.instance} up{extra} in {secs:.1f}s")
            if lab.ssh is not None:
                print(
                    f"ssh: ip netns exec {lab.ssh.ctl_ns} ssh -F {lab.ssh.ssh_config} "
                    f"{'|'.join(lab.ssh.nodes)}"
                )
            return 0
        if args.command == "down":
            lab.down()
            print(f"lab {lab.instance} down")
            return 0
        if args.command == "status":
            return _cmd_status(lab)
        if args.command == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                print("exec: no command given (exec NODE -- CMD ...)", file=sys.stderr)
                return 2
            if not netns.exists(lab.ns(args.node)):
                print(f"exec: {lab.ns(args.node)} does not exist (is the lab up?)", file=sys.stderr)
                return 1
            return lab.exec(args.node, cmd, capture=False, timeout=None).returncode
        if args.command == "demo":
            return _cmd_demo(lab, args.fault)
        if args.command == "matrix":
            from sixcheck.lab import matrix

            site_dir = Path(args.site_dir) if args.site_dir else None
            result = matrix.run(
                lab, only=args.only, out=sys.stdout, jobs=args.jobs, site_dir=site_dir
            )
            if args.json_file:
                Path(args.json_file).write_text(json.dumps(result.to_json(), indent=2) + "\n")
            return result.exit_code()
    except (LabError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2
