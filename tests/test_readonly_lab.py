"""Read-only: running every lab profile changes nothing on any node of the site.

Each node's links, addresses, routes, rules, neighbour entries, IPv6 sysctls (plus
net.ipv4.ip_forward) and nftables ruleset are snapshotted, and so are the DHCPv6 servers' lease
files (Kea's memfile: the dhcpv6 probes Solicit, which allocates nothing), every lab profile runs in its node (all
at once, as a busy site would see them), and the snapshots are compared. What the kernel changes on
its own is left out of the comparison: lifetimes counting down, rule counters, route expiry, PMTU
exceptions, and neighbour entries it learns or ages (REACHABLE -> STALE, new entries for hosts the
probes talked to); entries someone configured (PERMANENT, NOARP) and the link-layer address of
every entry present in both snapshots must stay.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"r{os.getpid()}"
NODES = ("inet", "gw", "sw", "lan", "out", "vpn")
PROFILES = {"gw": "lab-gw", "lan": "lab-lan", "out": "lab-out", "vpn": "lab-vpn"}
_COUNTER = re.compile(r"counter packets \d+ bytes \d+")
_SYSCTL_SKIP = ("net.ipv6.route.flush", "stable_secret")


def _json(ns: str, *args: str) -> Any:
    proc = netns.run(ns, ["ip", "-j", *args], check=True)
    return json.loads(proc.stdout or "[]")


def snapshot(ns: str) -> dict[str, Any]:
    """What an operator configured in `ns`, without what the kernel changes by itself."""
    snap: dict[str, Any] = {}
    snap["links"] = sorted(
        (ln["ifname"], ln.get("mtu"), ln.get("address"), tuple(sorted(ln.get("flags", []))))
        for ln in _json(ns, "link", "show")
    )
    snap["addresses"] = sorted(
        (
            i["ifname"],
            a["family"],
            a["local"],
            a["prefixlen"],
            a.get("scope"),
            a.get("noprefixroute", False),
        )
        for i in _json(ns, "addr", "show")
        for a in i.get("addr_info", [])
        if not a.get("tentative")
    )
    routes = []
    for fam in ("-4", "-6"):
        for r in _json(ns, fam, "route", "show", "table", "all"):
            kept = {k: v for k, v in r.items() if k not in ("expires", "cache")}
            routes.append(json.dumps(kept, sort_keys=True))
    snap["routes"] = sorted(routes)
    snap["rules"] = sorted(
        json.dumps(r, sort_keys=True)
        for fam in ("-4", "-6")
        for r in _json(ns, fam, "rule", "show")
    )
    neigh = _json(ns, "-6", "neigh", "show") + _json(ns, "-4", "neigh", "show")
    snap["neigh_configured"] = sorted(
        (n["dst"], n.get("dev"), n.get("lladdr"))
        for n in neigh
        if set(n.get("state", [])) & {"PERMANENT", "NOARP"}
    )
    snap["_neigh_lladdr"] = {
        (n["dst"], n.get("dev")): n["lladdr"] for n in neigh if n.get("lladdr")
    }
    out = netns.run(ns, ["sysctl", "-a"], check=False).stdout
    snap["sysctls"] = sorted(
        line
        for line in out.splitlines()
        if (line.startswith("net.ipv6.") or line.startswith("net.ipv4.ip_forward "))
        and not any(s in line for s in _SYSCTL_SKIP)
    )
    nft = netns.run(ns, ["nft", "list", "ruleset"], check=True).stdout
    snap["nft"] = _COUNTER.sub("counter", nft).splitlines()
    return snap


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Readable differences; neighbour entries compared by their link-layer address only."""
    out: list[str] = []
    for key, old in before.items():
        if key.startswith("_"):
            continue
        if old != after[key]:
            a = [str(x) for x in old]
            b = [str(x) for x in after[key]]
            out.append(f"{key}:\n" + "\n".join(difflib.unified_diff(a, b, lineterm="", n=0)))
    moved = {
        k: (v, after["_neigh_lladdr"][k])
        for k, v in before["_neigh_lladdr"].items()
        if k in after["_neigh_lladdr"] and after["_neigh_lladdr"][k] != v
    }
    if moved:
        out.append(f"neighbour link-layer addresses changed: {moved}")
    return out


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


def _run_profile(lab: Lab, node: str, out: Path) -> tuple[str, int, str]:
    proc = netns.run_pytest_in(
        lab.ns(node),
        [
            "--profile",
            f"profiles/{PROFILES[node]}.yaml",
            "--report-dir",
            str(out / node),
            "-p",
            "no:cacheprovider",
        ],
        REPO,
        timeout=180,
    )
    return node, proc.returncode, proc.stdout + proc.stderr


def test_snapshot_is_stable_without_runs(lab: Lab) -> None:
    """The comparison means something: a quiet site compares equal to itself."""
    before = {n: snapshot(lab.ns(n)) for n in NODES}
    after = {n: snapshot(lab.ns(n)) for n in NODES}
    assert {n: differences(before[n], after[n]) for n in NODES} == {n: [] for n in NODES}
    assert before["gw"]["nft"], "the gateway has a ruleset: the snapshot must see it"
    assert any("forwarding = 1" in s for s in before["gw"]["sysctls"])


def test_snapshot_sees_a_change(lab: Lab) -> None:
    """...and a change made behind its back is seen, with what changed."""
    ns = lab.ns("lan")
    before = snapshot(ns)
    netns.set_sysctl(ns, "net.ipv6.conf.eth0.accept_ra_pinfo", 0)
    netns.run(ns, ["ip", "-6", "route", "add", "2001:db8:99::/64", "dev", "eth0"], check=True)
    try:
        diff = "\n".join(differences(before, snapshot(ns)))
    finally:
        netns.set_sysctl(ns, "net.ipv6.conf.eth0.accept_ra_pinfo", 1)
        netns.run(ns, ["ip", "-6", "route", "del", "2001:db8:99::/64", "dev", "eth0"], check=True)
    assert "net.ipv6.conf.eth0.accept_ra_pinfo = 0" in diff
    assert "2001:db8:99::/64" in diff
    assert differences(before, snapshot(ns)) == []


def dhcp_leases(lab: Lab) -> dict[str, str]:
    """The DHCPv6 servers' lease state: Kea's memfile CSVs (a Request would add or rewrite a
    line; the probes' Solicits must not)."""
    return {p.name: p.read_text() for p in sorted(lab.state_dir.glob("kea-*-leases6.csv"))}


def test_lease_snapshot_sees_the_gateways_lease(lab: Lab) -> None:
    """The lease comparison means something: the gateway's own delegation is in it."""
    leases = dhcp_leases(lab)
    assert "kea-upstream-leases6.csv" in leases
    assert "00:03:00:01:02:00:00:00:00:02" in leases["kea-upstream-leases6.csv"]


def test_every_lab_profile_changes_nothing(lab: Lab) -> None:
    out = Path(tempfile.mkdtemp(prefix="sixcheck-ro-"))
    try:
        leases_before = dhcp_leases(lab)
        before = {n: snapshot(lab.ns(n)) for n in NODES}
        with ThreadPoolExecutor(max_workers=len(PROFILES)) as pool:
            runs = list(pool.map(lambda n: _run_profile(lab, n, out), PROFILES))
        after = {n: snapshot(lab.ns(n)) for n in NODES}
        leases_after = dhcp_leases(lab)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert leases_after == leases_before, "a DHCPv6 server's leases changed during the run"
    for node, rc, text in runs:
        assert rc == 0, f"{node}: exit {rc}\n{text[-3000:]}"
    changed = {n: d for n in NODES if (d := differences(before[n], after[n]))}
    assert not changed, "\n".join(f"[{n}] " + "\n".join(d) for n, d in changed.items())
