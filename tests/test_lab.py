"""The lab site itself: it builds, it is what the README says, and it leaves nothing behind.

These tests need root (namespaces, daemons). Each run uses its own instance name (``t{pid}``),
so a developer's lab (``sx``) and a concurrent test run never collide.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sixcheck.lab import Lab, netns
from sixcheck.lab import topology as t
from sixcheck.lab.faults import FAULTS

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root"),
]

INSTANCE = f"t{os.getpid()}"


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    """One healthy site shared by the read-only tests of this module."""
    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


def test_up_is_fast(healthy: Lab) -> None:
    assert healthy.up_seconds is not None
    assert healthy.up_seconds < 20, f"up took {healthy.up_seconds:.1f}s (budget 20s)"


def test_lan_host_has_slaac_address_in_advertised_prefix(healthy: Lab) -> None:
    out = healthy.exec(
        "lan", ["ip", "-6", "-o", "addr", "show", "dev", t.LAN_IF, "scope", "global"], check=True
    ).stdout
    addrs = [ipaddress.IPv6Interface(line.split()[3]).ip for line in out.splitlines()]
    prefix = ipaddress.IPv6Network(t.LAN6_PREFIX)
    assert ipaddress.IPv6Address(t.LAN_HOST6) in addrs, out
    assert all(a in prefix for a in addrs), out


def test_lan_default_route_via_gateway_link_local(healthy: Lab) -> None:
    out = healthy.exec("lan", ["ip", "-6", "route", "show", "default"], check=True).stdout
    assert f"default via {t.GW_LAN_LL} dev {t.LAN_IF} proto ra" in out, out


def test_out_reaches_web_service_over_tcp(healthy: Lab) -> None:
    proc = healthy.exec(
        "out", ["socat", "-T2", "-", f"TCP6:[{t.WEB6}]:80,connect-timeout=2"], timeout=10
    )
    assert proc.stdout.startswith("HTTP/1.0 200 OK"), proc.stderr


def test_out_is_rejected_by_gateway_firewall(healthy: Lab) -> None:
    proc = healthy.exec(
        "out", ["socat", "-T2", "-", f"TCP6:[{t.LAN_HOST6}]:22,connect-timeout=2"], timeout=10
    )
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr, proc.stderr  # icmp6-adm-prohibited


def test_dig_from_lan_over_ipv6(healthy: Lab) -> None:
    proc = healthy.exec(
        "lan",
        ["dig", "+short", "+time=2", "+tries=1", f"@{t.RESOLVER6}", "www.example.net", "AAAA"],
        check=True,
    )
    assert proc.stdout.split() == [t.WEB6]


def test_lan_resolv_conf_points_at_public_resolver(healthy: Lab) -> None:
    proc = healthy.exec("lan", ["cat", "/etc/resolv.conf"], check=True)
    assert proc.stdout.split() == ["nameserver", t.RESOLVER6]


def test_tunnel_far_end_answers(healthy: Lab) -> None:
    proc = healthy.exec("gw", ["ping", "-c1", "-W2", t.FAR_TARGET6])
    assert proc.returncode == 0, proc.stdout


def test_vpn_carries_protected_ipv6(healthy: Lab) -> None:
    route = healthy.exec("vpn", ["ip", "-6", "route", "get", t.INTRANET6], check=True).stdout
    assert f"dev {t.WG_IF}" in route, route
    assert healthy.exec("vpn", ["ping", "-c1", "-W2", t.INTRANET6]).returncode == 0


def test_wireguard_sockets_stay_private(healthy: Lab) -> None:
    """wireguard-go's UAPI sockets must not appear in the machine's /run/wireguard."""
    run_wg = Path("/run/wireguard")
    if run_wg.exists():
        assert not list(run_wg.glob("wg0.sock")), "a lab wg0.sock leaked into /run/wireguard"


def test_status_lists_running_processes(healthy: Lab) -> None:
    st = healthy.status()
    assert set(st["namespaces"]) >= {healthy.ns(n) for n in ("inet", "gw", "lan", "out", "vpn")}
    assert st["processes"]
    assert all(p["alive"] for p in st["processes"]), st["processes"]


def test_status_sees_the_sshds_alive_and_a_stopped_one_gone() -> None:
    """sshd rewrites its argv into a process title ("sshd: /usr/sbin/sshd -D ... [listener]"), so
    status() read every running lab sshd as gone (and down() skipped their PIDs); the
    executable still names the program."""
    with Lab(f"{INSTANCE}s") as lab:
        lab.up(sshd=True)
        procs = lab.status()["processes"]
        sshds = {p["name"] for p in procs if p["program"] == "sshd"}
        assert sshds == {f"sshd-{n}" for n in ("gw", "lan", "out", "vpn")}, procs
        assert [p["name"] for p in procs if not p["alive"]] == [], procs
        lab.stop_sshd("vpn")
        procs = lab.status()["processes"]
        assert [p["name"] for p in procs if not p["alive"]] == ["sshd-vpn"], procs
        recorded = [p["pid"] for p in procs]
    alive = [p for p in recorded if Path(f"/proc/{p}").exists() and not _zombie(p)]
    assert not alive, f"processes left after down: {alive}"


def test_down_leaves_nothing_behind() -> None:
    instance = f"{INSTANCE}d"
    lab = Lab(instance)
    lab.up()
    pids = [pid for node in t.NODES for pid in netns.pids(lab.ns(node))]
    assert pids
    lab.down()
    lab.down()  # idempotent
    assert not [n for n in netns.list_netns() if n.startswith(f"{instance}-")]
    assert not list(netns.ETC_NETNS.glob(f"{instance}-*"))
    assert not lab.state_dir.exists()
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
    assert not alive, f"processes left: {alive}"


def test_cli_exec_passes_exit_code_through(healthy: Lab) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sixcheck.lab",
            "--instance",
            healthy.instance,
            "exec",
            "lan",
            "--",
            "sh",
            "-c",
            "ip -6 route show default; exit 7",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 7, proc.stderr
    assert t.GW_LAN_LL in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_is_injectable(fault: str) -> None:
    with Lab(f"{INSTANCE}f") as lab:
        secs = lab.up(faults=[fault])
        assert secs < 20
        assert lab.status()["faults"] == [fault]


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
