"""sixcheck against the standard tools, in the lab, every figure beside its anchor in one run.

    sudo .venv/bin/python benchmarks/run.py [--runs 5] [--no-audit] [--python VENV/bin/python]
        [--only startup probes profiles dead interrupt dhcpv6] [--out /tmp/r.md]

Builds its own lab instance (`SIXCHECK_LAB`, default `bench`), measures, tears it down, and writes a
Markdown table: median of RUNS, min-max, ratio to the anchor, the goal of each row. Not a test:
nothing is asserted; the table is for reading (and for RESULTS.md).

sixcheck runs with `--python` (default: this interpreter): measure the venv users get, made by
`bash scripts/bootstrap --venv DIR` (no dev tools, so no hypothesis plugin). Every profile is copied
to a folder outside the repository first, as users keep theirs.

Rows:
- start-up: `pytest --profile X --collect-only` (wall, peak RSS) for a sysctl-only profile and for
  lab-lan (packet-level checks); anchor: `python -c "import pytest"`, the floor of any pytest run.
- probes: one sixcheck request through `run_plan` in an already started process ("warm": what a run
  pays per probe) and in a fresh one ("cold": imports included), against the standard tool spawned
  on the same target from the same node: RS->RA (rdisc6), DNS AAAA over UDP/IPv6 (dig), SNTP (sntp),
  ICMPv6 echo (ping -6), TCP connect (nc/bash: an open port).
- whole profiles on the healthy lab (wall, peak RSS), each beside its anchor: the same probes by
  standard tools one after the other (`benchmarks/anchors/lab-NODE.sh`), measured in the same run;
  and lab-lan with every target dead (a namespace whose eth0 leads nowhere: every packet vanishes).
- Ctrl-C: SIGINT to a lab-lan run held in its RA window (a listed router that never answers), time
  until the process has exited, its exit status and whether its report says "interrupted".
- the outside audit (64 hosts x 3 ports vs nmap), by calling benchmarks/audit_vs_nmap.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable  # sixcheck's interpreter; --python changes it
SYSCTL_ONLY = (
    "description: sysctl only\nnode: {role: host}\ninterfaces: {eth0: {role: lan}}\n"
    "sysctl:\n  interfaces: {eth0: {disable_ipv6: 0, forwarding: 0}}\n"
)


# ---------------------------------------------------------------------------------------------
# the worker: run inside a namespace, times one probe kind in this process


def worker(kind: str, n: int) -> None:
    """Print JSON {cold, warm: [...], error}: cold includes importing the probe module."""
    import ipaddress

    t0 = time.perf_counter()
    from sixcheck.probes.base import ProbeContext
    from sixcheck.probes.plan import run_plan

    if kind == "ra":
        from sixcheck.probes.nd import RouterAdverts

        # as the nd checks ask: the profile's router, so the window closes once it answered
        req: Any = RouterAdverts("eth0", (("fe80::ff:fe00:101", "02:00:00:00:01:01"),))
    elif kind == "dns":
        from sixcheck.probes.dns import DnsQuery

        req = DnsQuery(server=ipaddress.IPv6Address("2001:db8:53::53"), name="www.example.net")
    elif kind == "ntp":
        from sixcheck.probes.ntp import NtpQuery

        req = NtpQuery(server="2001:db8:123::123")
    elif kind == "ping":
        from sixcheck.probes.icmp import Echo

        req = Echo(dst="2001:db8:80::80")
    elif kind == "tcp":
        from sixcheck.probes.tcp import TcpConnect

        req = TcpConnect(dst="2001:db8:80::80", port=80)
    elif kind == "dhcpv6":
        from sixcheck.probes.dhcpv6 import Dhcpv6Exchange

        req = Dhcpv6Exchange("eth0", ia_na=True)  # as perfdhcp -6 -i asks: IA_NA
    else:
        raise SystemExit(f"unknown probe kind {kind}")
    ctx = ProbeContext(probe_timeout=1.5, ra_listen=3.5, run_timeout=30, has_raw=os.geteuid() == 0)
    obs, _ = run_plan([req], ctx)
    cold = time.perf_counter() - t0
    warm = []
    firsts = []  # answer-carrying probes (DHCPv6): the time to the first answer of each run
    for _ in range(n):
        t = time.perf_counter()
        obs, _ = run_plan([req], ctx)
        warm.append(time.perf_counter() - t)
        firsts += [r.at for r in getattr(obs[req], "replies", ())][:1]
    o = obs[req]
    out = {"cold": cold, "warm": warm, "error": o.error, "kind": type(o).__name__}
    print(json.dumps({**out, "firsts": firsts}))


# ---------------------------------------------------------------------------------------------
# measuring


#: where the measured commands run: a folder outside the repository, as users run sixcheck. From
#: the checkout, `python -m pytest` would import the checkout's sixcheck (the current folder comes
#: first on sys.path) and read the project's own pytest settings and conftest.py: not what users get.
RUN_DIR = Path(tempfile.gettempdir())


def timed(
    argv: Sequence[str], ns: str | None = None, cwd: Path | None = None
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of one command (inside `ns` if given), run in
    `cwd` (default RUN_DIR)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        full = ["/usr/bin/time", "-o", rss.name, "-f", "%M", *argv]
        if ns:
            full = ["ip", "netns", "exec", ns, *full]
        t = time.perf_counter()
        proc = subprocess.run(full, cwd=cwd or RUN_DIR, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        text = rss.read().strip().splitlines()
    kib = int(text[-1]) if text and text[-1].isdigit() else 0
    return wall, kib, proc.stdout


def stats(xs: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def fmt_s(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(
        self,
        row: str,
        what: str,
        xs: Sequence[float],
        anchor: float | None,
        goal: str,
        extra: str = "",
    ) -> None:
        med, lo, hi = stats(xs)
        ratio = f"{med / anchor:.2f}x" if anchor else "-"
        self.rows.append((row, what, fmt_s(med), f"{fmt_s(lo)}-{fmt_s(hi)}", ratio, goal, extra))
        print(
            f"{row:28} {what:34} {fmt_s(med):>10} ({fmt_s(lo)}-{fmt_s(hi)}) {ratio:>7}  {extra}",
            flush=True,
        )

    def markdown(self) -> str:
        head = "| row | measured | median | min-max | ratio to anchor | goal | notes |\n|---|---|---|---|---|---|---|\n"
        return head + "".join("| " + " | ".join(r) + " |\n" for r in self.rows)


def bench_startup(t: Table, lab: Any, runs: int, tmp: Path) -> None:
    """The anchor and the profiles take turns, run by run: the machine's speed drifts by 2x here
    within minutes, and a ratio between blocks measured minutes apart measured the drift."""
    prof = tmp / "sysctl-only.yaml"
    prof.write_text(SYSCTL_ONLY)
    ns = lab.ns("lan")
    hyp = subprocess.run([PY, "-c", "import hypothesis"], capture_output=True, check=False)
    venv = "hypothesis installed (a dev venv)" if hyp.returncode == 0 else "no dev tools"
    rows = (
        ("sysctl-only profile", str(prof), "<= 0.4 s"),
        ("lab-lan (packet-level)", str(tmp / "lab-lan.yaml"), "<= 0.4 s"),
    )
    collect = ["--collect-only", "-q", "-p", "no:cacheprovider"]
    anchor: list[float] = []
    res: dict[str, list[tuple[float, int, str]]] = {label: [] for label, _, _ in rows}
    for _ in range(runs):
        anchor.append(timed([PY, "-c", "import pytest"], ns)[0])
        for label, path, _ in rows:
            res[label].append(timed([PY, "-m", "pytest", "--profile", path, *collect], ns))
    t.add("start-up", "anchor: python -c 'import pytest'", anchor, None, "-")
    a = stats(anchor)[0]
    for label, _, goal in rows:
        rss = statistics.median(r[1] for r in res[label]) / 1024
        t.add(
            "start-up --collect-only",
            label,
            [r[0] for r in res[label]],
            a,
            goal,
            f"peak RSS {rss:.1f} MiB; {venv}; profile outside the repository",
        )


def bench_probes(t: Table, lab: Any, runs: int) -> None:
    ns = lab.ns("lan")
    tools: dict[str, tuple[str, list[str]]] = {
        "ra": ("rdisc6 -1 eth0", ["rdisc6", "-1", "eth0"]),
        "dns": (
            "dig AAAA @2001:db8:53::53",
            ["dig", "+tries=1", "+time=2", "@2001:db8:53::53", "www.example.net", "AAAA"],
        ),
        "ntp": ("sntp 2001:db8:123::123", ["sntp", "-t", "2", "2001:db8:123::123"]),
        "ping": (
            "ping -6 -c1 2001:db8:80::80",
            ["ping", "-6", "-c", "1", "-W", "2", "2001:db8:80::80"],
        ),
        "tcp": ("bash /dev/tcp connect", ["bash", "-c", "exec 3<>/dev/tcp/2001:db8:80::80/80"]),
    }
    names = {
        "ra": "RS->RA",
        "dns": "DNS AAAA/UDP",
        "ntp": "SNTP",
        "ping": "ICMPv6 echo",
        "tcp": "TCP connect",
    }
    for kind, (label, argv) in tools.items():
        tool = [timed(argv, ns)[0] for _ in range(runs)]
        anchor = stats(tool)[0]
        t.add(names[kind], f"anchor: {label}", tool, None, "-")
        cold: list[float] = []
        warm: list[float] = []
        err = None
        for _ in range(max(1, runs // 2)):
            _, _, out = timed(
                [PY, str(Path(__file__).resolve()), "--worker", kind, "--n", str(runs)], ns
            )
            try:
                data = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                err = f"worker failed: {out[-200:]}"
                continue
            cold.append(data["cold"])
            warm.extend(data["warm"])
            err = data["error"] or err
        if not warm:
            print(f"{kind}: {err}")
            continue
        note = f"probe error: {err}" if err else ""
        goal = "<= anchor"
        if kind == "ra":
            goal = "MAX_RA_DELAY_TIME (0.5 s): RFC 4861's wait for every router's answer"
        t.add(names[kind], "sixcheck run_plan, warm process", warm, anchor, goal, note)
        t.add(names[kind], "sixcheck, fresh process (imports)", cold, anchor, "-", note)


def bench_dhcpv6(t: Table, lab: Any, runs: int) -> None:
    """Solicit -> Advertise on the LAN (the gateway's Kea), against Kea's own perfdhcp doing only
    the initial exchange (-i: Solicit/Advertise, nothing allocated). sixcheck collects every
    answer for its whole window (rogue servers), so its wall time is the window by design; the
    time to the first Advertise is compared with perfdhcp's own measured delay."""
    ns = lab.ns("lan")
    row = "DHCPv6 Solicit->Advertise"
    argv = ["perfdhcp", "-6", "-l", "eth0", "-i", "-n", "1", "-r", "1", "-R", "1"]
    tool: list[float] = []
    wire: list[float] = []  # perfdhcp's own Solicit->Advertise delay (its "avg delay")
    for _ in range(runs):
        secs, _, out = timed(argv, ns)
        tool.append(secs)
        m = re.search(r"^avg delay: ([0-9.]+) ms", out, re.MULTILINE)
        if m:
            wire.append(float(m.group(1)) / 1000)
    anchor = stats(tool)[0]
    t.add(row, "anchor: perfdhcp -6 -i -n 1 (process)", tool, None, "-")
    if wire:
        t.add(row, "anchor: perfdhcp's own delay", wire, None, "-")
    warm: list[float] = []
    first: list[float] = []
    err = None
    for _ in range(max(1, runs // 2)):
        _, _, out = timed(
            [PY, str(Path(__file__).resolve()), "--worker", "dhcpv6", "--n", str(runs)], ns
        )
        try:
            data = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            err = f"worker failed: {out[-200:]}"
            continue
        warm.extend(data["warm"])
        first.extend(data["firsts"])
        err = data["error"] or err
    note = f"probe error: {err}" if err else ""
    if first:
        wire_anchor = stats(wire)[0] if wire else None
        t.add(row, "sixcheck, first Advertise", first, wire_anchor, "<= perfdhcp's delay", note)
    if warm:
        goal = "the window (2 s) by design: sees every server"
        t.add(row, "sixcheck run_plan, whole window", warm, anchor, goal, note)


GOALS = {"lan": "<= 1.2 s, <= 60 MiB, <= 5x anchor"}


def bench_profiles(t: Table, lab: Any, runs: int, tmp: Path) -> None:
    for node in ("gw", "lan", "out", "vpn"):
        script = REPO / "benchmarks" / "anchors" / f"lab-{node}.sh"
        tool = [timed(["bash", str(script)], lab.ns(node)) for _ in range(runs)]
        anchor = stats([r[0] for r in tool])[0]
        t.add(
            "whole profile, healthy lab",
            f"anchor: benchmarks/anchors/lab-{node}.sh",
            [r[0] for r in tool],
            None,
            "-",
            f"peak RSS {statistics.median(r[1] for r in tool) / 1024:.0f} MiB; standard tools, "
            "one after the other",
        )
        res = []
        for i in range(runs):
            res.append(
                timed(
                    [
                        PY,
                        "-m",
                        "pytest",
                        "--profile",
                        str(tmp / f"lab-{node}.yaml"),
                        "--json-file",
                        str(tmp / f"{node}{i}.json"),
                        "--no-report",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                    ],
                    lab.ns(node),
                )
            )
        data = json.loads((tmp / f"{node}0.json").read_text())
        plan = data["probe_plan"]
        rss = statistics.median(r[1] for r in res) / 1024
        s = data["summary"]
        t.add(
            "whole profile, healthy lab",
            f"sixcheck lab-{node} in {node}",
            [r[0] for r in res],
            anchor,
            GOALS.get(node, "probe plan ~ its slowest probe"),
            f"peak RSS {rss:.1f} MiB; {plan['requests']} requests, plan {plan['seconds']:.2f} s; "
            f"{s['passed']} passed {s['failed']} failed {s['skipped']} skipped",
        )


def bench_dead(t: Table, runs: int, tmp: Path) -> None:
    from sixcheck.lab import netns

    with netns.temp_netns("sxbdead") as ns:
        for cmd in (  # eth0's peer swallows everything: IPv6 off there, no addresses
            "ip link add eth0 type veth peer name void0",
            "sysctl -qw net.ipv6.conf.void0.disable_ipv6=1",
            "ip link set void0 up",
            "ip link set eth0 address 02:00:00:00:01:10",
            "ip link set eth0 up",
            "ip -6 addr add 2001:db8:1:1::ff:fe00:110/64 dev eth0 nodad",
            "ip -6 route add default via fe80::ff:fe00:101 dev eth0",
            "ip -6 neigh replace fe80::ff:fe00:101 lladdr 02:00:00:00:01:01 dev eth0 nud permanent",
        ):
            netns.run(ns, cmd, check=True)
        res = []
        for i in range(runs):
            out = tmp / f"dead{i}.json"
            w, kib, _ = timed(
                [
                    PY,
                    "-m",
                    "pytest",
                    "--profile",
                    str(tmp / "lab-lan.yaml"),
                    "--json-file",
                    str(out),
                    "--no-report",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                ],
                ns,
            )
            res.append((w, kib))
        data = json.loads((tmp / "dead0.json").read_text())
        s = data["summary"]
        t.add(
            "every target dead",
            "lab-lan, eth0 leads nowhere (all packets vanish)",
            [r[0] for r in res],
            None,
            "~ one timeout (the RA window stays open its whole ra_listen 3.5 s while the "
            "listed router is missing), not one per check; run deadline 30 s",
            f"plan {data['probe_plan']['seconds']:.2f} s for {data['probe_plan']['requests']} requests; "
            f"{s['failed']} failed {s['passed']} passed {s['skipped']} skipped",
        )


def bench_interrupt(t: Table, lab: Any, runs: int, tmp: Path) -> None:
    """SIGINT during the RA window: seconds until the run has exited (exit 2, report says so)."""
    import signal

    import yaml

    doc = yaml.safe_load((tmp / "lab-lan.yaml").read_text())
    doc["timeouts"] = {"probe": 1.5, "ra_listen": 60, "run": 90}
    doc["nd"]["interfaces"]["eth0"]["routers"].append({"address": "fe80::5ee:dead"})
    held = tmp / "held.yaml"
    held.write_text(yaml.safe_dump(doc))
    took: list[float] = []
    notes = set()
    for i in range(runs):
        out = tmp / f"held{i}.json"
        argv = [PY, "-m", "pytest", "--profile", str(held), "--no-report", "--json-file", str(out)]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns("lan"), *argv],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:  # the probe threads are the first threads pytest starts
                if len(os.listdir(f"/proc/{proc.pid}/task")) > 1:
                    break
            except FileNotFoundError:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=120)
        took.append(time.perf_counter() - t0)
        doc = json.loads(out.read_text()) if out.exists() else {}
        notes.add(f"exit {rc}, interrupted={doc.get('interrupted')}")
    t.add(
        "Ctrl-C in the RA window",
        "SIGINT -> process exited (lab-lan, window held open)",
        took,
        None,
        "<= 0.5 s, exit 2, report says interrupted",
        "; ".join(sorted(notes)),
    )


def machine() -> str:
    import dns.version
    import pyroute2
    import pytest
    import scapy

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    tools = []
    where = subprocess.run(
        [PY, "-c", "import sixcheck, sys; print(sixcheck.__file__, sys.prefix)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=RUN_DIR,
    ).stdout.split()
    for argv in (["nmap", "--version"], ["dig", "-v"], ["rdisc6", "-V"], ["ping", "-V"]):
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
        tools.append(((p.stdout or p.stderr).strip().splitlines() or ["?"])[0])
    return (
        f"- machine: {platform.node()}, {os.cpu_count()} cores ({cpu}), kernel {platform.release()}, "
        f"load average at start {os.getloadavg()[0]:.2f} (shared build machine)\n"
        f"- Python {platform.python_version()}, pytest {pytest.__version__}, scapy {scapy.VERSION}, "
        f"dnspython {dns.version.version}, pyroute2 {pyroute2.__version__}\n"
        f"- tools: {'; '.join(tools)}\n"
        f"- sixcheck measured: {' in venv '.join(where) or '?'} (run from {RUN_DIR})\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--python", help="the interpreter (venv) sixcheck runs with")
    ap.add_argument(
        "--only",
        nargs="+",
        choices=["startup", "probes", "profiles", "dead", "interrupt", "dhcpv6"],
        default=["startup", "probes", "profiles", "dead", "interrupt", "dhcpv6"],
    )
    ap.add_argument("--audit-runs", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.n)
        return
    global PY, RUN_DIR
    PY = args.python or PY
    sys.path.insert(0, str(REPO))
    from sixcheck.lab import Lab

    t = Table()
    audit = ""
    with tempfile.TemporaryDirectory() as d, Lab(os.environ.get("SIXCHECK_LAB", "bench")) as lab:
        tmp = Path(d)
        os.chmod(tmp, 0o755)
        RUN_DIR = tmp
        env_machine = machine()
        for node in ("gw", "lan", "out", "vpn"):  # outside the repository, as users keep them
            (tmp / f"lab-{node}.yaml").write_text((REPO / f"profiles/lab-{node}.yaml").read_text())
        lab.up()
        if "startup" in args.only:
            bench_startup(t, lab, args.runs, tmp)
        if "probes" in args.only:
            bench_probes(t, lab, args.runs)
        if "dhcpv6" in args.only:
            bench_dhcpv6(t, lab, args.runs)
        if "profiles" in args.only:
            bench_profiles(t, lab, max(3, args.runs // 2), tmp)
        if "dead" in args.only:
            bench_dead(t, max(3, args.runs // 2), tmp)
        if "interrupt" in args.only:
            bench_interrupt(t, lab, 3, tmp)
    if not args.no_audit:
        proc = subprocess.run(
            [PY, str(REPO / "benchmarks" / "audit_vs_nmap.py"), "--runs", str(args.audit_runs)],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        audit = proc.stdout.strip() or proc.stderr.strip()[-2000:]
        print(audit)
    if args.out:
        args.out.write_text(
            f"## Measured {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n{env_machine}\n{t.markdown()}\n"
            + (
                f"### Outside audit: 64 hosts x 3 ports (benchmarks/audit_vs_nmap.py)\n\n```\n{audit}\n```\n"
                if audit
                else ""
            )
        )


if __name__ == "__main__":
    main()
