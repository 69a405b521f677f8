#!/usr/bin/env python3
"""Benchmark: sixcheck's inbound-deny audit vs. `nmap -6 -sT -Pn` on the same 64 hosts x 3 ports.

Not a test (nothing here is asserted in CI): it prints a table to read. Needs root, builds three
namespaces of its own and always tears them down:

    scan (the auditor) --veth-- rtr (forwarding, ip6tables) --veth-- tgt (64 addresses on lo)

Targets are 2001:db8:b0::1 .. 2001:db8:b0::40 (documentation prefix, only inside the namespaces),
ports 22, 80, 443, nothing listening. Scenarios (the router's FORWARD policy towards the targets):
`drop` (DROP everything), `reject` (REJECT icmp6-adm-prohibited), `mixed` (a third each: DROP,
REJECT adm-prohibited, TCP reset), `closed` (no rule: every target's own kernel resets, as a
host with no firewall and nothing listening). The router's ICMPv6 error rate limit is switched off
(`net.ipv6.icmp.ratelimit=0`) so that `reject` is really seen as rejects; `--keep-icmp-ratelimit`
keeps Linux's default, under which most of 192 rejects sent within milliseconds arrive as silence
(for both tools: a real effect worth knowing when auditing a rejecting firewall quickly).

sixcheck is run through its probe API, the same `run_plan` the pytest plugin runs (TcpConnect
requests with the profile defaults: rate 1000/s in bursts of up to 250, 256 in flight, one retry
for silence, paced at 25 at once and 500/s while other targets answered; the first
attempt adapts to the round trips of the targets that answered, the retry waits the whole timeout),
inside the scan namespace with a 1 s probe timeout. nmap runs in the same namespace on the same targets, in
the same run, with its default timing (-T3) and with -T4. Each is run `--runs` times; the table
shows the median wall time, min-max and the ratio to sixcheck's median; sixcheck's result column
includes `rtr_limited`, the ICMP errors the router's global ICMP limit swallowed in its last run.

    sudo python benchmarks/audit_vs_nmap.py [--runs 3] [--scenarios drop reject mixed closed] [--no-t3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sixcheck.lab import netns  # noqa: E402

PORTS = (22, 80, 443)
HOSTS = [f"2001:db8:b0::{i:x}" for i in range(1, 65)]
TIMEOUT = 1.0

RUNNER = r"""
import json, sys, time
from sixcheck.probes.base import ProbeContext
from sixcheck.probes.plan import run_plan
from sixcheck.probes.tcp import TcpConnect
hosts, ports, timeout, rate = json.loads(sys.argv[1])
reqs = [TcpConnect(h, p, rate=rate) for h in hosts for p in ports]
ctx = ProbeContext(probe_timeout=timeout, ra_listen=1, run_timeout=60, has_raw=False)
t0 = time.monotonic()
res, _ = run_plan(reqs, ctx)
took = time.monotonic() - t0
states = {}
for o in res.values():
    states[o.state] = states.get(o.state, 0) + 1
rtts = sorted(o.rtt_ms for o in res.values() if o.rtt_ms is not None)
firsts = sorted(o.waited[0] for o in res.values() if o.state == "dropped" and o.waited)
if rtts:
    states["rtt_max_ms"] = round(rtts[-1])
if firsts:
    states["first_wait_ms"] = round(1000 * firsts[len(firsts) // 2])
print(json.dumps({"seconds": took, "states": states}))
"""


def sh(ns: str, cmd: str) -> None:
    netns.run(ns, cmd, check=True)


def build(prefix: str, keep_ratelimit: bool = False) -> dict[str, str]:
    """The three namespaces, links, addresses and routes (no firewall yet)."""
    ns = {n: f"{prefix}-{n}" for n in ("scan", "rtr", "tgt")}
    for name in ns.values():
        netns.create(name)
    ip = ["ip", "-n"]
    subprocess.run(
        [
            *ip,
            ns["scan"],
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "s0",
            "netns",
            ns["rtr"],
        ],
        check=True,
    )
    subprocess.run(
        [
            *ip,
            ns["tgt"],
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "t0",
            "netns",
            ns["rtr"],
        ],
        check=True,
    )
    for n in ns.values():
        netns.set_sysctl(n, "net.ipv6.conf.all.accept_dad", 0)
        netns.set_sysctl(n, "net.ipv6.conf.default.accept_dad", 0)
    netns.set_sysctl(ns["rtr"], "net.ipv6.conf.all.forwarding", 1)
    if not keep_ratelimit:
        # Linux rate-limits ICMPv6 errors per destination (a burst of 6, then a few per second):
        # with 192 rejects in a few ms most would arrive as silence, for both tools alike.
        netns.set_sysctl(ns["rtr"], "net.ipv6.icmp.ratelimit", 0)
    sh(
        ns["scan"],
        "ip -6 addr add 2001:db8:b1::2/64 dev eth0 nodad && ip link set eth0 up && "
        "ip -6 route add default via 2001:db8:b1::1",
    )
    sh(
        ns["rtr"],
        "ip -6 addr add 2001:db8:b1::1/64 dev s0 nodad && ip link set s0 up && "
        "ip -6 addr add 2001:db8:b2::1/64 dev t0 nodad && ip link set t0 up && "
        "ip -6 route add 2001:db8:b0::/64 via 2001:db8:b2::2",
    )
    adds = "".join(f"addr add {h}/128 dev lo\n" for h in HOSTS)
    subprocess.run(["ip", "-n", ns["tgt"], "-batch", "-"], input=adds, text=True, check=True)
    sh(
        ns["tgt"],
        "ip -6 addr add 2001:db8:b2::2/64 dev eth0 nodad && ip link set eth0 up && "
        "ip -6 route add default via 2001:db8:b2::1",
    )
    return ns


def firewall(rtr: str, scenario: str) -> None:
    """Load the router's FORWARD rules for a scenario (ICMPv6 itself always passes)."""
    rules = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "-A FORWARD -p ipv6-icmp -j ACCEPT",
    ]
    actions = {
        "drop": "DROP",
        "reject": "REJECT --reject-with icmp6-adm-prohibited",
        "reset": "REJECT --reject-with tcp-reset",
    }
    for i, h in enumerate(HOSTS):
        if scenario == "closed":
            break  # no rule: the targets' own kernels answer with a reset (nothing listens)
        kind = scenario if scenario != "mixed" else ("drop", "reject", "reset")[i % 3]
        rules.append(f"-A FORWARD -d {h}/128 -p tcp -j {actions[kind]}")
    rules.append("COMMIT")
    netns.run(rtr, ["ip6tables-restore", "-w"], input="\n".join(rules) + "\n", check=True)


def icmp_limited(rtr: str) -> int:
    """ICMP errors the router did not send for its global limit so far (absolute counter)."""
    proc = netns.run(rtr, ["nstat", "-asz", "IcmpOutRateLimitGlobal"], check=True)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "IcmpOutRateLimitGlobal":
            return int(parts[1])
    return 0


def run_sixcheck(scan: str, rate: int = 1000) -> tuple[float, dict[str, int]]:
    arg = json.dumps([HOSTS, list(PORTS), TIMEOUT, rate])
    proc = netns.run(scan, [sys.executable, "-c", RUNNER, arg], check=True, timeout=120)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), dict(data["states"])


def run_nmap(scan: str, timing: str, hostfile: Path) -> tuple[float, str]:
    cmd = [
        "nmap",
        "-6",
        "-sT",
        "-Pn",
        "-n",
        timing,
        "-p",
        ",".join(map(str, PORTS)),
        "-iL",
        str(hostfile),
        "-oG",
        "-",
    ]
    t0 = time.monotonic()
    proc = netns.run(scan, cmd, check=True, timeout=900)
    took = time.monotonic() - t0
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if "Ports:" in line:
            for entry in line.split("Ports:", 1)[1].split(","):
                parts = entry.strip().split("/")
                if len(parts) > 1:
                    counts[parts[1]] = counts.get(parts[1], 0) + 1
    return took, " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def fmt(xs: list[float]) -> str:
    d = 3 if max(xs) < 1 else 2  # milliseconds count where both tools finish within a second
    return f"{statistics.median(xs):7.{d}f} s  ({min(xs):.{d}f}-{max(xs):.{d}f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=["drop", "reject", "mixed", "closed"],
        choices=["drop", "reject", "mixed", "closed"],
    )
    ap.add_argument("--no-t3", action="store_true", help="skip nmap's default timing (slow)")
    ap.add_argument(
        "--rate",
        type=int,
        default=1000,
        help="sixcheck's packets per second (the profile's firewall.rate; default 1000)",
    )
    ap.add_argument(
        "--keep-icmp-ratelimit",
        action="store_true",
        help="keep the router's ICMPv6 error rate limit (most rejects then look like drops)",
    )
    ap.add_argument("--prefix", default=f"bn{os.getpid() % 100000}")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (builds network namespaces)", file=sys.stderr)
        return 2
    ns: dict[str, str] = {}
    hostfile = Path(f"/tmp/{args.prefix}-hosts.txt")
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        ns = build(args.prefix, args.keep_icmp_ratelimit)
        hostfile.write_text("\n".join(HOSTS) + "\n")
        for scenario in args.scenarios:
            firewall(ns["rtr"], scenario)
            tools: dict[str, list[float]] = {"sixcheck": []}
            notes: dict[str, str] = {}
            timings = ["-T4"] if args.no_t3 else ["-T3", "-T4"]
            for t in timings:
                tools[f"nmap {t}"] = []
            # untimed warm-up: the first wave after loading the rules loses first SYNs in this
            # lab (cold neighbour and conntrack state; the kernel resends them after its 1 s
            # SYN timeout), which would penalise whichever tool happened to go first
            run_sixcheck(ns["scan"], args.rate)
            for _ in range(args.runs):
                before = icmp_limited(ns["rtr"])
                secs, states = run_sixcheck(ns["scan"], args.rate)
                tools["sixcheck"].append(secs)
                # ICMP errors the router's global limit swallowed during this run
                states["rtr_limited"] = icmp_limited(ns["rtr"]) - before
                notes["sixcheck"] = " ".join(f"{k}={v}" for k, v in sorted(states.items()))
                for t in timings:
                    secs, summary = run_nmap(ns["scan"], t, hostfile)
                    tools[f"nmap {t}"].append(secs)
                    notes[f"nmap {t}"] = summary
            base = statistics.median(tools["sixcheck"])
            for tool, xs in tools.items():
                ratio = statistics.median(xs) / base if base else float("nan")
                rows.append((scenario, tool, fmt(xs), f"{ratio:5.1f}x", notes[tool]))
            print(f"done: {scenario}", file=sys.stderr)
    finally:
        for name in ns.values():
            netns.delete(name)
        hostfile.unlink(missing_ok=True)
    print(
        f"\n{len(HOSTS)} hosts x {len(PORTS)} ports = {len(HOSTS) * len(PORTS)} targets, "
        f"sixcheck probe timeout {TIMEOUT:g} s (+1 retry), rate {args.rate}/s, {args.runs} runs "
        "each; "
        "wall time median (min-max), ratio to sixcheck\n"
    )
    head = ("scenario", "tool", "wall time", "ratio", "result")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
