"""DHCPv6 in the lab: the ISP's Kea upstream of the gateway (address pool, prefix pool, a sticky
delegation for the gateway), the gateway's DHCPv6-PD client (dhclient -6 -P), the LAN's stateless
Kea on the gateway (DNS, NTP, iPXE boot URLs by client class) and, with a fault, a rogue Kea on the
LAN.

Everything is generated here as data (Kea's JSON, dhclient's hook script), so it ships with the
package and needs no file outside it. Every file a daemon writes lives in the instance's state
directory: Kea's lease file, lock and pid files (``KEA_LOCKFILE_DIR``/``KEA_PIDFILE_DIR``,
``data-directory``, a fixed ``server-id`` with ``persist: false``), dhclient's lease, pid and
DUID (``-lf``/``-pf``, DUID-LL from the MAC with ``-D LL``). dhclient's default script rewrites
/etc/resolv.conf, which every namespace shares: it always runs the lab's own hook (``-sf``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sixcheck.lab import daemons, netns
from sixcheck.lab import topology as t

if TYPE_CHECKING:
    from sixcheck.lab.site import Lab

#: Lifetimes long enough that no renewal happens during a lab run (a Renew would write a lease).
TIMERS = {
    "preferred-lifetime": 3000,
    "valid-lifetime": 4000,
    "renew-timer": 1000,
    "rebind-timer": 2000,
}
#: The neighbour CPE that holds the only prefix of the pool under pd-pool-exhausted.
NEIGHBOUR_DUID = "00:03:00:01:02:00:5e:00:53:99"


def _duid_ll_hex(duid: str) -> str:
    """`00:03:00:01:02:...` -> Kea's server-id identifier (the MAC part, no colons)."""
    return duid.replace(":", "")[8:]


def _kea(iface: str, duid: str, state: Path, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Dhcp6": {
            "interfaces-config": {"interfaces": [iface]},
            "server-id": {
                "type": "LL",
                "htype": 1,
                "identifier": _duid_ll_hex(duid),
                "persist": False,
            },
            "data-directory": str(state),
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(state / f"{name}-leases6.csv"),
                "lfc-interval": 0,
            },
            "loggers": [
                {
                    "name": "kea-dhcp6",
                    "output_options": [{"output": "stdout"}],
                    "severity": "INFO",
                }
            ],
            **TIMERS,
            **extra,
        }
    }


def upstream_conf(cfg: t.SiteConfig, state: Path) -> dict[str, Any]:
    """The ISP's server on inet's gw0: addresses from a pool on the WAN link, /48s (or the fault's
    length) from a pool for new customers, and the gateway's sticky delegation by its DUID."""
    pool_len = t.PD_POOL_LENGTH if cfg.pd_pool == "free" else cfg.pd_length
    prefix, _ = t.PD_POOL6.split("/")
    return _kea(
        t.INET_WAN_IF,
        t.INET_DUID,
        state,
        "kea-upstream",
        **{
            "option-data": [
                {"name": "dns-servers", "data": t.RESOLVER6},
                {"name": "domain-search", "data": t.ZONE},
                {"name": "sntp-servers", "data": t.NTP6},
                # preference 255: clients take the first Advertise at once (RFC 8415 18.2.1)
                {"name": "preference", "data": "255", "always-send": True},
            ],
            "subnet6": [
                {
                    "id": 1,
                    "subnet": t.WAN6_PREFIX,
                    "interface": t.INET_WAN_IF,
                    "pools": [{"pool": t.WAN_NA_POOL6}],
                    "pd-pools": [
                        {"prefix": prefix, "prefix-len": pool_len, "delegated-len": cfg.pd_length}
                    ],
                    "reservations": [
                        {
                            "duid": t.GW_CLIENT_DUID,
                            "prefixes": [f"{t.DELEGATED6.split('/')[0]}/{cfg.pd_length}"],
                        }
                    ],
                }
            ],
        },
    )


def exhausted_leases(cfg: t.SiteConfig) -> str:
    """Kea's memfile (schema of Kea 2.2) with the pool's only prefix leased to a neighbour."""
    header = (
        "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,"
        "fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source"
    )
    valid, pref = TIMERS["valid-lifetime"], TIMERS["preferred-lifetime"]
    expire = int(time.time()) + 100 * valid
    prefix = t.PD_POOL6.split("/")[0]
    lease = f"{prefix},{NEIGHBOUR_DUID},{valid},{expire},1,{pref},2,1,{cfg.pd_length},0,0,,,0,,,"
    return f"{header}\n{lease}\n"


def lan_conf(cfg: t.SiteConfig, state: Path) -> dict[str, Any]:
    """The LAN's stateless server on gw's lan0 (no address pool: the LAN does SLAAC): DNS, the
    domain list, NTP (option 56, which Kea 2.2 does not define: declared here), and iPXE's boot
    URLs by client architecture (option 61) and user class (option 15), as in seed 003."""
    efi: dict[str, Any] = {"name": "efi-x64", "test": f"option[61].hex == 0x{t.EFI_X64_ARCH:04x}"}
    if cfg.lan_boot_efi:
        efi["option-data"] = [{"name": "bootfile-url", "data": t.BOOT_URL_EFI}]
    ipxe = {
        "name": "ipxe",
        "test": f"substring(option[15].hex,2,{len(t.IPXE_USER_CLASS)}) == '{t.IPXE_USER_CLASS}'",
        "option-data": [{"name": "bootfile-url", "data": t.BOOT_URL_IPXE}],
    }
    return _kea(
        t.GW_LAN_IF,
        t.GW_LAN_DUID,
        state,
        "kea-lan",
        **{
            "option-def": [
                {"name": "ntp-server", "code": 56, "type": "empty", "encapsulate": "sixlab-ntp"},
                {"name": "ntp-addr", "code": 1, "space": "sixlab-ntp", "type": "ipv6-address"},
                {"name": "ntp-fqdn", "code": 3, "space": "sixlab-ntp", "type": "fqdn"},
            ],
            "option-data": [
                {"name": "dns-servers", "data": t.RESOLVER6},
                {"name": "domain-search", "data": ", ".join(t.LAN_DOMAINS)},
                {"name": "ntp-server", "data": ""},
                {"name": "ntp-addr", "space": "sixlab-ntp", "data": t.NTP6},
                {"name": "ntp-fqdn", "space": "sixlab-ntp", "data": "ntp.example.net"},
            ],
            "client-classes": [efi, ipxe],
            "subnet6": [{"id": 1, "subnet": t.LAN6_PREFIX, "interface": t.GW_LAN_IF}],
        },
    )


def rogue_conf(state: Path) -> dict[str, Any]:
    """A second server on the LAN (a forgotten test box, a NAS's DHCPv6): its own pool and DNS."""
    return _kea(
        t.ROGUE_IF,
        t.ROGUE_DUID,
        state,
        "kea-rogue",
        **{
            "option-data": [{"name": "dns-servers", "data": t.ROGUE_DNS6}],
            "subnet6": [
                {
                    "id": 1,
                    "subnet": t.ROGUE_PREFIX6,
                    "interface": t.ROGUE_IF,
                    "pools": [{"pool": t.ROGUE_NA_POOL6}],
                }
            ],
        },
    )


def kea_argv(conf: Path, state: Path) -> list[str]:
    """kea-dhcp6 in the foreground; its lock and pid files in the state directory."""
    return [
        "env",
        f"KEA_LOCKFILE_DIR={state}",
        f"KEA_PIDFILE_DIR={state}",
        "kea-dhcp6",
        "-c",
        str(conf),
    ]


HOOK = """#!/bin/sh
# dhclient's script for the lab (never Debian's, which rewrites /etc/resolv.conf): hold the
# delegated prefix as an unreachable route, as DHCPv6-PD clients do, and nothing else.
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$old_ip6_prefix" ] && [ "$old_ip6_prefix" != "$new_ip6_prefix" ]; then
      ip -6 route del unreachable "$old_ip6_prefix" proto dhcp 2>/dev/null
    fi
    [ -n "$new_ip6_prefix" ] && ip -6 route replace unreachable "$new_ip6_prefix" proto dhcp ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_prefix" ] && ip -6 route del unreachable "$old_ip6_prefix" proto dhcp ;;
esac
exit 0
"""


def dhclient_argv(state: Path) -> list[str]:
    """dhclient asking for a prefix only (-P), in the foreground, every file in the state dir."""
    hook = state / "dhclient-hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    conf = state / "dhclient.conf"
    conf.write_text("# the lab's dhclient: defaults only\n")
    return [
        "dhclient",
        "-6",
        "-P",
        "-D",
        "LL",
        "-d",
        "-cf",
        str(conf),
        "-sf",
        str(hook),
        "-lf",
        str(state / "dhclient6.leases"),
        "-pf",
        str(state / "dhclient6.pid"),
        t.GW_WAN_IF,
    ]


def serving(ns: str, iface: str) -> bool:
    """True once a DHCPv6 server in `ns` listens on ff02::1:2 port 547 on `iface`."""
    out = netns.run(ns, ["ss", "-Hlnu"]).stdout
    return any(f"[{t.ALL_DHCP_AGENTS}]%{iface}:547" in line.split() for line in out.splitlines())


def _start_kea(lab: Lab, node: str, name: str, conf: dict[str, Any]) -> None:
    path = lab.state_dir / f"{name}.json"
    path.write_text(json.dumps(conf, indent=1))
    lab._start(node, name, kea_argv(path, lab.state_dir), program="kea-dhcp6")


def start(lab: Lab, nodes: Sequence[str]) -> None:
    """Start the servers, wait until they listen, then the gateway's PD client (a Solicit sent
    before the server listens is lost and the client backs off for seconds: LAB-NOTES.md)."""
    cfg, sd = lab.config, lab.state_dir
    waits: list[tuple[str, str, str]] = []
    if cfg.dhcpv6_upstream == "kea":
        if cfg.pd_pool == "exhausted":
            (sd / "kea-upstream-leases6.csv").write_text(exhausted_leases(cfg))
        _start_kea(lab, "inet", "kea-upstream", upstream_conf(cfg, sd))
        waits.append(("the ISP's DHCPv6 server (Kea on inet)", "inet", t.INET_WAN_IF))
    if cfg.lan_dhcpv6:
        _start_kea(lab, "gw", "kea-lan", lan_conf(cfg, sd))
        waits.append(("the LAN's DHCPv6 server (Kea on gw)", "gw", t.GW_LAN_IF))
    if "rogue" in nodes and cfg.rogue_dhcpv6:
        if not cfg.rogue_router:  # a NAS, not a router: its NAs must not carry the router flag
            netns.run(
                lab.ns("rogue"), "echo 0 > /proc/sys/net/ipv6/conf/all/forwarding", check=True
            )
        _start_kea(lab, "rogue", "kea-rogue", rogue_conf(sd))
        waits.append(("the rogue DHCPv6 server (Kea on rogue)", "rogue", t.ROGUE_IF))
    for what, node, iface in waits:
        ns = lab.ns(node)
        daemons.wait_until(what, functools.partial(serving, ns, iface), 12.0)
    lab._start("gw", "dhclient6", dhclient_argv(sd))


def pd_expected(cfg: t.SiteConfig) -> bool:
    """Whether the gateway's PD client should end up holding a prefix in this scenario."""
    return cfg.dhcpv6_upstream == "kea" and cfg.gw_fw_dhcpv6_client


def holds_prefix(lab: Lab, prefix: str) -> bool:
    out = lab.exec("gw", ["ip", "-6", "route", "show", "proto", "dhcp"]).stdout
    return any(line.split()[:2] == ["unreachable", prefix] for line in out.splitlines())


def wait(lab: Lab) -> None:
    """Wait for the delegation the scenario promises (the upstream's Reply installed by the hook)."""
    cfg = lab.config
    if pd_expected(cfg):
        prefix = f"{t.DELEGATED6.split('/')[0]}/{cfg.pd_length}"
        daemons.wait_until(
            f"the gateway's delegated prefix {prefix} (dhclient -6 -P on {t.GW_WAN_IF})",
            lambda: holds_prefix(lab, prefix),
            15.0,
        )
