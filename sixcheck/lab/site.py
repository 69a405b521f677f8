"""Build and tear down the lab site: namespaces, links, addresses, daemons, firewall, faults.

``Lab(instance)`` is the Python API the CLI, the matrix and the tests share. The build is one
straight sequence (see ``Lab.up``) driven by a ``SiteConfig``; a fault differs from healthy only
by the knobs it turns and the commands it runs afterwards, so each fault is built by the same
code path as the healthy site.

Teardown never depends on the build having finished: ``down`` kills the processes recorded in
the state file (after checking each is still the program that was started), then every process
in every namespace the instance can have, then deletes the namespaces, their /etc/netns
directories and the state directory. Deleting a namespace removes its veths and bridge.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from sixcheck.lab import daemons, dhcp, netns
from sixcheck.lab import faults as catalogue
from sixcheck.lab import sshd as lab_sshd
from sixcheck.lab import topology as t
from sixcheck.lab.daemons import Started


class LabError(RuntimeError):
    """The site could not be built; the message names the step (and the lab is torn down)."""


class Lab:
    """One instance of the site. Use as a context manager to guarantee teardown.

    >>> with Lab("demo") as lab:            # doctest: +SKIP
    ...     lab.up(faults=["ra-stopped"])
    ...     lab.exec("lan", ["ip", "-6", "addr"]).stdout
    """

    def __init__(self, instance: str | None = None) -> None:
        self.instance = instance or t.instance_from_env()
        netns.check_name(f"{self.instance}-rogue")  # fail early on unusable instance names
        self.state_dir = Path(t.STATE_ROOT) / self.instance
        self.started: list[Started] = []
        self.faults: tuple[str, ...] = ()
        self.config = t.SiteConfig()
        self.up_seconds: float | None = None
        self.ssh: lab_sshd.SshAccess | None = None

    # ----------------------------------------------------------------------------- public API

    def ns(self, node: str) -> str:
        """The namespace name of ``node`` in this instance (``{instance}-{node}``)."""
        if node not in t.NODES:
            raise KeyError(f"unknown node {node!r}; nodes: {', '.join(t.NODES)}")
        return f"{self.instance}-{node}"

    def exec(
        self,
        node: str,
        cmd: Sequence[str] | str,
        *,
        check: bool = False,
        timeout: float | None = 60.0,
        capture: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside ``node`` (a string goes through ``sh -c``)."""
        return netns.run(self.ns(node), cmd, check=check, timeout=timeout, capture=capture)

    def up(self, faults: Sequence[str] = (), *, sshd: bool = False) -> float:
        """Build the site with ``faults`` injected; returns the seconds it took.

        ``sshd`` also starts an OpenSSH server in each vantage node (see ``start_sshd``).

        Idempotent: an existing instance is torn down first. On any failure the half-built
        site is torn down and LabError raised, so a failed ``up`` leaves nothing behind.
        """
        for name in faults:
            catalogue.get(name)  # unknown names fail before anything is torn down
        t0 = time.monotonic()
        with self._lock():
            self._down_locked()
            self.faults = tuple(faults)
            self.config = catalogue.apply_all(self.faults)
            self.started = []
            try:
                self._build()
                if sshd:
                    self.ssh = lab_sshd.start(self)
            except BaseException as exc:
                died = self._dead_logs()
                self._down_locked()
                if isinstance(exc, (LabError, netns.NetnsError, daemons.DaemonError)):
                    raise LabError(f"lab {self.instance}: up failed: {exc}{died}") from exc
                raise
            self.up_seconds = time.monotonic() - t0
            self._save_state()
        return self.up_seconds

    def start_sshd(self, nodes: Sequence[str] = lab_sshd.NODES) -> lab_sshd.SshAccess:
        """An sshd in each of ``nodes``, reached from the ``{instance}-ctl`` namespace over a
        management link; returns the client's key, known_hosts and ssh_config (sshd.py)."""
        with self._lock():
            self.ssh = lab_sshd.start(self, nodes)
            self._save_state()
        return self.ssh

    def stop_sshd(self, node: str) -> None:
        """Stop ``node``'s sshd, as a vantage that went dark."""
        lab_sshd.stop(self, node)

    def down(self) -> None:
        """Remove every namespace, process, /etc/netns entry and state file of this instance."""
        with self._lock(remove=True):
            self._down_locked()

    def status(self) -> dict[str, Any]:
        """What is up: namespaces present, recorded processes alive, faults, up time."""
        state = self._load_state()
        procs = []
        for p in state.get("processes", []):
            procs.append({**p, "alive": _same_process(p["pid"], p["program"])})
        return {
            "instance": self.instance,
            "namespaces": [n for n in netns.list_netns() if n in self._all_ns()],
            "faults": state.get("faults", []),
            "up_seconds": state.get("up_seconds"),
            "processes": procs,
            "state_dir": str(self.state_dir),
        }

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # ----------------------------------------------------------------------------- state

    def _all_ns(self) -> list[str]:
        return [self.ns(n) for n in t.NODES] + [lab_sshd.ctl_ns(self.instance)]

    @contextlib.contextmanager
    def _lock(self, *, remove: bool = False) -> Iterator[None]:
        """Serialise up/down of one instance (two terminals, or a test and a developer).

        ``remove`` unlinks the lock file before releasing it (``down`` leaves no file behind);
        a waiter that then wins the lock on the unlinked file notices (the path no longer names
        its inode) and retries on a fresh file.
        """
        root = Path(t.STATE_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{self.instance}.lock"
        while True:
            fh = open(path, "a")  # noqa: SIM115 - closed below, after the lock is released
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        try:
            yield
        finally:
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def _save_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "instance": self.instance,
            "faults": list(self.faults),
            "config": asdict(self.config),
            "up_seconds": self.up_seconds,
            "processes": [asdict(s) for s in self.started],
        }
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_dir / "state.json")

    def _load_state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _dead_logs(self) -> str:
        """The log tails of started processes that have died: the usual cause of a failed up."""
        parts = []
        for s in self.started:
            if not _same_process(s.pid, s.program):
                with contextlib.suppress(OSError):
                    tail = Path(s.log).read_text(errors="replace").strip().splitlines()[-5:]
                    parts.append(f"\n  {s.node}/{s.name} exited; log: " + " | ".join(tail))
        return "".join(parts)

    def _down_locked(self) -> None:
        recorded = self._load_state().get("processes", [])
        mine = [p["pid"] for p in recorded if _same_process(p["pid"], p.get("program", ""))]
        mine += [s.pid for s in self.started if _same_process(s.pid, s.program)]
        netns.kill_pids(sorted(set(mine)), grace=1.0)
        for name in self._all_ns():
            netns.delete(name, grace=1.0)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.started = []

    # ----------------------------------------------------------------------------- build

    def _start(
        self, node: str, name: str, argv: Sequence[str], program: str | None = None
    ) -> Started:
        started = daemons.launch(self.ns(node), node, name, argv, self.state_dir, program=program)
        self.started.append(started)
        self._save_state()  # so `down` after a crash mid-build still finds it
        return started

    def _ip(self, node: str, lines: Sequence[str]) -> None:
        """Run iproute2 commands in ``node``, in order, batched with ``ip -batch`` (fast; it
        stops at the first failing line and names it). Batch lines cannot carry ``-4``/``-6``,
        so a line starting with one runs as its own command."""
        batch: list[str] = []
        for line in [*lines, ""]:
            if line and not line.startswith(("-4 ", "-6 ")):
                batch.append(line)
                continue
            if batch:
                self._ip_run(node, ["-batch", "-"], "\n".join(batch) + "\n")
                batch = []
            if line:
                self._ip_run(node, line.split(), None)

    def _ip_run(self, node: str, args: list[str], stdin: str | None) -> None:
        proc = subprocess.run(
            ["ip", "-n", self.ns(node), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            what = stdin.strip() if stdin and len(stdin) < 400 else " ".join(args)
            raise LabError(f"[{node}] ip {what}: {proc.stderr.strip()}")

    def _sysctl(self, node: str, values: dict[str, str | int]) -> None:
        """Set sysctls in one process inside ``node`` (order kept: ``all`` before per-link)."""
        script = "; ".join(
            f"echo {v} > /proc/sys/{k.replace('.', '/')} || exit 1" for k, v in values.items()
        )
        netns.run(self.ns(node), script, check=True)

    def _resolv(self, node: str, servers: Sequence[str]) -> None:
        """Give ``node`` its own resolv.conf, so nothing in the lab ever asks the machine's
        real resolver (``ip netns exec`` bind-mounts /etc/netns/NS/resolv.conf)."""
        d = netns.ETC_NETNS / self.ns(node)
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text("".join(f"nameserver {s}\n" for s in servers))

    def _build(self) -> None:
        cfg = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        nodes = [n for n in t.NODES if n != "rogue" or cfg.rogue_router or cfg.rogue_dhcpv6]
        for node in nodes:
            netns.create(self.ns(node))
            self._resolv(node, [t.RESOLVER6])
        self._links(nodes)
        self._sysctls(nodes)
        self._inet()
        self._switch(nodes)
        self._gateway()
        self._hosts(nodes)
        self._vpn()
        dhcp.start(self, nodes)
        self._wait()
        dhcp.wait(self)
        for node, cmd in self._fault_after():
            netns.run(self.ns(node), cmd, check=True)

    def _fault_after(self) -> list[tuple[str, str]]:
        return [step for name in self.faults for step in catalogue.get(name).after]

    def _links(self, nodes: Sequence[str]) -> None:
        """veth pairs created directly inside the namespaces: nothing is ever created in (or
        moved through) the root namespace, so its links are never touched."""
        mac = t.MACS
        self._ip(
            "gw",
            [
                f"link add {t.GW_WAN_IF} address {mac['gw', t.GW_WAN_IF]} type veth peer name "
                f"{t.INET_WAN_IF} address {mac['inet', t.INET_WAN_IF]} netns {self.ns('inet')}",
                f"link add {t.GW_LAN_IF} address {mac['gw', t.GW_LAN_IF]} type veth peer name "
                f"p-gw netns {self.ns('sw')}",
            ],
        )
        self._ip(
            "out",
            [
                f"link add {t.OUT_IF} address {mac['out', t.OUT_IF]} type veth peer name "
                f"{t.INET_OUT_IF} address {mac['inet', t.INET_OUT_IF]} netns {self.ns('inet')}"
            ],
        )
        for node, ifname in (("lan", t.LAN_IF), ("vpn", t.VPN_IF), ("rogue", t.ROGUE_IF)):
            if node in nodes:
                self._ip(
                    node,
                    [
                        f"link add {ifname} address {mac[node, ifname]} type veth peer name "
                        f"p-{node} netns {self.ns('sw')}"
                    ],
                )

    def _sysctls(self, nodes: Sequence[str]) -> None:
        """Per-node sysctls, set while every link is still down.

        accept_dad=0 and router_solicitation_delay=0 only shorten the wait for SLAAC (no fault
        here is about duplicate addresses); use_tempaddr=0 keeps addresses EUI-64 and
        predictable for the profiles.
        """
        quick = {"accept_dad": 0, "router_solicitation_delay": 0, "use_tempaddr": 0}
        for node in nodes:
            values: dict[str, str | int] = {}
            for scope in ("all", "default"):
                for k, v in quick.items():
                    values[f"net.ipv6.conf.{scope}.{k}"] = v
            values["net.ipv6.conf.all.router_solicitation_interval"] = 1
            if node == "sw":
                values["net.ipv6.conf.all.disable_ipv6"] = 1
                values["net.ipv6.conf.default.disable_ipv6"] = 1
            links = {
                "inet": [t.INET_WAN_IF, t.INET_OUT_IF],
                "gw": [t.GW_WAN_IF, t.GW_LAN_IF],
                "lan": [t.LAN_IF],
                "vpn": [t.VPN_IF],
                "out": [t.OUT_IF],
                "rogue": [t.ROGUE_IF],
                "sw": [],
            }[node]
            for link in links:
                for k, v in quick.items():
                    values[f"net.ipv6.conf.{link}.{k}"] = v
                values[f"net.ipv6.conf.{link}.router_solicitation_delay"] = 0
            if node == "inet":
                values["net.ipv6.conf.all.forwarding"] = 1
                values["net.ipv4.ip_forward"] = 1
            elif node == "gw":
                values["net.ipv6.conf.all.forwarding"] = self.config.gw_forwarding
                values["net.ipv4.ip_forward"] = 1
                values[f"net.ipv6.conf.{t.GW_WAN_IF}.accept_ra"] = self.config.gw_wan_accept_ra
                values[f"net.ipv6.conf.{t.GW_WAN_IF}.autoconf"] = 0
                values[f"net.ipv6.conf.{t.GW_LAN_IF}.accept_ra"] = 0
            elif node in ("lan", "vpn"):
                ifname = t.LAN_IF
                values["net.ipv6.conf.all.forwarding"] = 0
                values[f"net.ipv6.conf.{ifname}.accept_ra"] = 1
                values[f"net.ipv6.conf.{ifname}.autoconf"] = 1
                defrtr = self.config.lan_accept_ra_defrtr if node == "lan" else 1
                values[f"net.ipv6.conf.{ifname}.accept_ra_defrtr"] = defrtr
            elif node == "out":
                values[f"net.ipv6.conf.{t.OUT_IF}.accept_ra"] = 0
            elif node == "rogue":
                values["net.ipv6.conf.all.forwarding"] = 1
            self._sysctl(node, values)

    def _inet(self) -> None:
        """The internet: uplinks, the service addresses on lo, radvd towards the gateway,
        resolvers, NTP, web, the tunnel broker's end, the VPN server."""
        cfg, sd = self.config, self.state_dir
        lo6 = [
            t.RESOLVER6,
            t.NTP6,
            t.WEB6,
            t.INTRANET6,
            t.INTRANET_DB6,
            t.FAR_TARGET6,
            t.VPN_RESOLVER6,
        ]
        lo4 = [t.RESOLVER4, t.WEB4, t.V4ONLY4, t.INTRANET4, t.INTRANET_DB4, t.VPN_RESOLVER4]
        self._ip(
            "inet",
            [f"addr add {a}/128 dev lo" for a in lo6]
            + [f"addr add {a}/32 dev lo" for a in lo4]
            + [
                f"addr add {t.INET_WAN6}/64 dev {t.INET_WAN_IF} nodad",
                f"addr add {t.INET_WAN4}/{t.WAN4_PLEN} dev {t.INET_WAN_IF}",
                f"addr add {t.INET_OUT6}/64 dev {t.INET_OUT_IF} nodad",
                f"addr add {t.INET_OUT4}/24 dev {t.INET_OUT_IF}",
                f"link set {t.INET_WAN_IF} up",
                f"link set {t.INET_OUT_IF} up",
                f"route add {t.DELEGATED6} via {t.GW_WAN6} dev {t.INET_WAN_IF}",
                f"route add {t.LAN4_PREFIX} via {t.GW_WAN4} dev {t.INET_WAN_IF}",
            ],
        )
        self._inet_filter()
        conf = sd / "radvd-inet.conf"
        conf.write_text(daemons.radvd_conf(t.INET_WAN_IF, t.WAN6_PREFIX, autonomous=False))
        self._start("inet", "radvd-inet", daemons.radvd_argv(conf, sd, "radvd-inet"))

        public = _records(cfg, internal=False)
        if cfg.resolver != "down":
            ifaces = [t.RESOLVER4] if cfg.resolver == "ipv4-only" else [t.RESOLVER6, t.RESOLVER4]
            conf = sd / "unbound-public.conf"
            refuse = [t.LAN6_PREFIX] if cfg.resolver == "refuses-lan" else []
            conf.write_text(daemons.unbound_conf(ifaces, public, sd, "unbound-public", refuse))
            self._start("inet", "unbound-public", daemons.unbound_argv(conf))
        conf = sd / "unbound-vpn.conf"
        conf.write_text(
            daemons.unbound_conf(
                [t.VPN_RESOLVER6, t.VPN_RESOLVER4], _records(cfg, internal=True), sd, "unbound-vpn"
            )
        )
        self._start("inet", "unbound-vpn", daemons.unbound_argv(conf))

        if cfg.ntp == "chrony":
            conf = sd / "chrony.conf"
            conf.write_text(daemons.chrony_conf(t.NTP6, sd, "chrony"))
            self._start("inet", "chronyd", daemons.chrony_argv(conf))
        elif cfg.ntp == "skewed":
            self._start(
                "inet",
                "ntpliar",
                daemons.ntp_liar_argv(sys.executable, t.NTP6, cfg.ntp_skew_seconds),
            )
        elif cfg.ntp == "unsynchronised":
            conf = sd / "chrony.conf"
            conf.write_text(daemons.chrony_conf(t.NTP6, sd, "chrony", serve_local=False))
            self._start("inet", "chronyd", daemons.chrony_argv(conf))
        elif cfg.ntp in ("kiss", "stale"):
            kiss = cfg.ntp_kiss_code if cfg.ntp == "kiss" else None
            ref_age = cfg.ntp_reference_age if cfg.ntp == "stale" else None
            argv = daemons.ntp_liar_argv(sys.executable, t.NTP6, 0.0, ref_age=ref_age, kiss=kiss)
            self._start("inet", "ntpliar", argv)

        http = f"sh {daemons.http_responder(sd)}"
        self._start("inet", "web6", daemons.tcp_service_argv(6, t.WEB6, 80, http))
        self._start("inet", "web4", daemons.tcp_service_argv(4, t.WEB4, 80, http))
        self._start("inet", "udp-echo6", daemons.udp_echo_argv(t.WEB6, t.UDP_ECHO_PORT))

        if cfg.tunnel_far_end:
            self._start(
                "inet",
                "tunnel-inet",
                daemons.tunnel_argv(t.INET_WAN4, t.GW_WAN4, t.TUN_UDP_PORT, t.TUN_IF),
            )
            self._wait_link("inet", t.TUN_IF)
            self._ip(
                "inet",
                [
                    f"addr add {t.TUN_FAR6}/64 dev {t.TUN_IF} nodad",
                    f"link set {t.TUN_IF} mtu {t.TUN_MTU} up",
                    # Replies from the far target go back through the tunnel, as a broker's
                    # would (without this they would return natively: an asymmetric path).
                    f"route add {t.DELEGATED6} via {t.TUN_NEAR6} dev {t.TUN_IF} table 77",
                    f"-6 rule add from {t.FAR_PREFIX6} lookup 77 priority 1000",
                ],
            )
        self._wg_server()

    def _inet_filter(self) -> None:
        """What the internet side enforces: the far target answers only via the tunnel, the
        intranet's IPv4 side only via the VPN, and the tunnel's underlay carries at most
        TUN_PATH_MAX_INNER bytes of inner packet (bigger ones vanish, like on a real path whose
        MTU the tunnel endpoint does not know)."""
        max_ip4 = t.TUN_PATH_MAX_INNER + 28  # IPv4 + UDP headers around the inner packet
        nft = f"""
table inet sixlab {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname != {{ "lo", "{t.TUN_IF}" }} ip6 daddr {t.FAR_PREFIX6} reject with icmpv6 admin-prohibited
        iifname != {{ "lo", "{t.WG_IF}" }} ip daddr {t.PROTECTED4} reject with icmp admin-prohibited
    }}
    chain path {{
        type filter hook prerouting priority -300; policy accept;
        meta nfproto ipv4 udp dport {t.TUN_UDP_PORT} ip length > {max_ip4} drop
    }}
}}
"""
        netns.run(self.ns("inet"), ["nft", "-f", "-"], input=nft, check=True)

    def _wg_keys(self, who: str) -> tuple[Path, str]:
        key = self.state_dir / f"wg-{who}.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(
                subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
            )
        pub = subprocess.run(
            ["wg", "pubkey"], input=key.read_text(), capture_output=True, text=True, check=True
        ).stdout.strip()
        return key, pub

    def _wg_server(self) -> None:
        self._wg_server_key, server_pub = self._wg_keys("server")
        self._wg_client_key, client_pub = self._wg_keys("client")
        self._wg_server_pub = server_pub
        args = [
            "listen-port",
            str(t.WG_PORT),
            "private-key",
            str(self._wg_server_key),
            "peer",
            client_pub,
            "allowed-ips",
            f"{t.WG_CLIENT4}/32,{t.WG_CLIENT6}/128",
        ]
        started = self._start("inet", "wg-server", daemons.wireguard_script(t.WG_IF, args), "sh")
        daemons.wait_until(
            "the VPN server (wireguard-go on inet) to be configured",
            lambda: "configured" in Path(started.log).read_text(),
            5.0,
        )
        self._ip(
            "inet",
            [
                f"addr add {t.WG_SERVER4}/26 dev {t.WG_IF}",
                f"addr add {t.WG_SERVER6}/64 dev {t.WG_IF} nodad",
                f"link set {t.WG_IF} up",
            ],
        )

    def _switch(self, nodes: Sequence[str]) -> None:
        """The LAN's Ethernet: a bridge with STP and multicast snooping off, so ports forward
        at once and ND multicast is never filtered."""
        ports = ["p-gw"] + [f"p-{n}" for n in ("lan", "vpn", "rogue") if n in nodes]
        self._ip(
            "sw",
            [
                f"link add {t.BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                f"link set {t.BRIDGE} up",
            ]
            + [f"link set {p} master {t.BRIDGE} up" for p in ports],
        )

    def _gateway(self) -> None:
        """The home gateway: addresses, firewall, radvd, its public service, the tunnel."""
        cfg, sd = self.config, self.state_dir
        self._ip(
            "gw",
            [
                f"addr add {t.GW_WAN6}/64 dev {t.GW_WAN_IF} nodad",
                f"addr add {t.GW_WAN4}/{t.WAN4_PLEN} dev {t.GW_WAN_IF}",
                f"addr add {t.GW_LAN6}/64 dev {t.GW_LAN_IF} nodad",
                f"addr add {t.GW_LAN4}/26 dev {t.GW_LAN_IF}",
                f"link set {t.GW_LAN_IF} up",
                f"link set {t.GW_WAN_IF} up",
                f"route add default via {t.INET_WAN4}",
                # The delegated /48 is held by the PD client (dhclient's hook installs
                # `unreachable PREFIX proto dhcp`, see dhcp.py): not configured here.
            ],
        )
        netns.run(self.ns("gw"), ["ip6tables-restore", "-w"], input=_gw_rules(cfg), check=True)
        if cfg.lan_radvd:
            conf = sd / "radvd-gw.conf"
            conf.write_text(
                daemons.radvd_conf(
                    t.GW_LAN_IF,
                    cfg.lan_prefix,
                    rdnss=[t.RESOLVER6] if cfg.lan_rdnss else [],
                    link_mtu=1500,
                    managed=cfg.lan_ra_managed,
                    other=cfg.lan_ra_other,
                )
            )
            self._start("gw", "radvd-gw", daemons.radvd_argv(conf, sd, "radvd-gw"))
        http = f"sh {daemons.http_responder(sd)}"
        self._start("gw", "web-gw", daemons.tcp_service_argv(6, t.GW_LAN6, t.GW_WEB_PORT, http))
        self._start(
            "gw", "tunnel-gw", daemons.tunnel_argv(t.GW_WAN4, t.INET_WAN4, t.TUN_UDP_PORT, t.TUN_IF)
        )
        self._wait_link("gw", t.TUN_IF)
        self._ip(
            "gw",
            [
                f"addr add {t.TUN_NEAR6}/64 dev {t.TUN_IF} nodad",
                f"link set {t.TUN_IF} mtu {cfg.gw_tunnel_mtu} up",
                f"route add {t.FAR_PREFIX6} via {t.TUN_FAR6} dev {t.TUN_IF}",
                f"route add ::/0 dev {t.TUN_IF} table {t.TUN_TABLE}",
                f"-6 rule add from {t.TUN_PREFIX6} lookup {t.TUN_TABLE} "
                f"priority {t.TUN_RULE_PRIORITY}",
                f"route add local {t.ANYIP6_PREFIX} dev lo",
            ],
        )

    def _hosts(self, nodes: Sequence[str]) -> None:
        """LAN host, VPN client's LAN side, the outside vantage point and the rogue router."""
        sd = self.state_dir
        self._ip(
            "lan",
            [
                f"addr add {t.LAN_HOST4}/26 dev {t.LAN_IF}",
                f"link set {t.LAN_IF} up",
                f"route add default via {t.GW_LAN4}",
            ],
        )
        http = f"sh {daemons.http_responder(sd)}"
        banner = "echo SSH-2.0-sixcheck-lab"
        self._start("lan", "ssh-lan", daemons.tcp_service_argv(6, None, 22, banner))
        self._start("lan", "web-lan", daemons.tcp_service_argv(6, None, 80, http))
        self._ip(
            "vpn",
            [
                f"addr add {t.VPN_HOST4}/26 dev {t.VPN_IF}",
                f"link set {t.VPN_IF} up",
                f"route add default via {t.GW_LAN4}",
            ],
        )
        self._ip(
            "out",
            [
                f"addr add {t.OUT6}/64 dev {t.OUT_IF} nodad",
                f"addr add {t.OUT4}/24 dev {t.OUT_IF}",
                f"link set {t.OUT_IF} up",
                f"route add default via {t.INET_OUT6} dev {t.OUT_IF}",
                f"route add default via {t.INET_OUT4}",
            ],
        )
        if "rogue" in nodes:
            self._ip("rogue", [f"link set {t.ROGUE_IF} up"])
        if "rogue" in nodes and self.config.rogue_router:
            conf = sd / "radvd-rogue.conf"
            conf.write_text(daemons.radvd_conf(t.ROGUE_IF, t.ROGUE_PREFIX6, preference="low"))
            self._start("rogue", "radvd-rogue", daemons.radvd_argv(conf, sd, "radvd-rogue"))

    def _vpn(self) -> None:
        """The VPN client: wireguard-go to inet's server, routes for what the VPN protects."""
        cfg = self.config
        allowed = [t.WG_INNER4_PREFIX, t.PROTECTED4]
        if cfg.vpn_ipv6 != "none":
            allowed.append(t.WG_INNER6_PREFIX)
        if cfg.vpn_ipv6 == "tunnel":
            allowed.append(t.PROTECTED6)
        args = [
            "private-key",
            str(self._wg_client_key),
            "peer",
            self._wg_server_pub,
            "endpoint",
            f"{t.INET_WAN4}:{t.WG_PORT}",
            "allowed-ips",
            ",".join(allowed),
            "persistent-keepalive",
            "25",
        ]
        started = self._start("vpn", "wg-client", daemons.wireguard_script(t.WG_IF, args), "sh")
        daemons.wait_until(
            "the VPN client (wireguard-go on vpn) to be configured",
            lambda: "configured" in Path(started.log).read_text(),
            5.0,
        )
        lines = [
            f"addr add {t.WG_CLIENT4}/26 dev {t.WG_IF}",
            f"link set {t.WG_IF} up",
            f"route add {t.PROTECTED4} dev {t.WG_IF}",
        ]
        if cfg.vpn_ipv6 != "none":
            lines.append(f"addr add {t.WG_CLIENT6}/64 dev {t.WG_IF} nodad")
        if cfg.vpn_ipv6 == "tunnel":
            lines.append(f"route add {t.PROTECTED6} dev {t.WG_IF}")
        elif cfg.vpn_ipv6 == "blackhole":
            lines.append(f"route add blackhole {t.PROTECTED6}")
        self._ip("vpn", lines)
        resolvers = {
            "vpn": [t.VPN_RESOLVER6, t.VPN_RESOLVER4],
            "vpn-ipv4": [t.VPN_RESOLVER4],
            "public": [t.RESOLVER6],
        }[cfg.vpn_resolv]
        self._resolv("vpn", resolvers)

    # ----------------------------------------------------------------------------- waits

    def _wait_link(self, node: str, ifname: str, timeout: float = 5.0) -> None:
        daemons.wait_until(
            f"{ifname} to appear in {node}",
            lambda: netns.run(self.ns(node), ["ip", "link", "show", ifname]).returncode == 0,
            timeout,
        )

    def _has_default6(self, node: str, via: str) -> bool:
        out = self.exec(node, ["ip", "-6", "route", "show", "default"]).stdout
        return f"via {via} " in out

    def _has_addr_in(self, node: str, ifname: str, prefix: str) -> bool:
        out = self.exec(
            node, ["ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "global"]
        ).stdout
        net = ipaddress.IPv6Network(prefix)
        for line in out.splitlines():
            words = line.split()
            if "tentative" in words or "inet6" not in words:
                continue
            addr = words[words.index("inet6") + 1].split("/")[0]
            if ipaddress.IPv6Address(addr) in net:
                return True
        return False

    def _wait(self) -> None:
        """Wait until the site is what the config says it should be (not merely started):
        services listening, RAs processed, the VPN passing traffic."""
        cfg, timeout = self.config, 12.0
        w = daemons.wait_until
        listening = daemons.listening
        inet = self.ns("inet")
        w("the VPN resolver", lambda: listening(inet, "udp", t.VPN_RESOLVER6, 53), timeout)
        if cfg.resolver != "down":
            w("the public resolver", lambda: listening(inet, "udp", t.RESOLVER4, 53), timeout)
        if cfg.ntp != "down":
            w("the NTP server", lambda: listening(inet, "udp", t.NTP6, 123), timeout)
        w("the web service", lambda: listening(inet, "tcp", t.WEB6, 80), timeout)
        w("the gateway's service", lambda: listening(self.ns("gw"), "tcp", t.GW_LAN6, 443), timeout)
        if cfg.gw_wan_accept_ra == 2:
            w(
                "gw's default route from the upstream RA",
                lambda: self._has_default6("gw", t.INET_WAN_LL),
                timeout,
            )
        if cfg.lan_radvd:
            for node in ("lan", "vpn"):
                w(
                    f"{node}'s SLAAC address in {cfg.lan_prefix}",
                    functools.partial(self._has_addr_in, node, t.LAN_IF, cfg.lan_prefix),
                    timeout,
                )
                if node == "vpn" or cfg.lan_accept_ra_defrtr:
                    w(
                        f"{node}'s default route via the gateway",
                        functools.partial(self._has_default6, node, t.GW_LAN_LL),
                        timeout,
                    )
        if cfg.rogue_router:
            w(
                "the rogue prefix on lan",
                lambda: self._has_addr_in("lan", t.LAN_IF, t.ROGUE_PREFIX6),
                timeout,
            )
        w(
            "the VPN tunnel to pass traffic",
            lambda: self.exec("vpn", ["ping", "-c1", "-W1", t.WG_SERVER4]).returncode == 0,
            timeout,
        )


# ------------------------------------------------------------------------------- helpers


def _records(cfg: t.SiteConfig, *, internal: bool) -> dict[str, dict[str, str]]:
    """DNS data for a resolver: the public names (minus what a fault removed), the LAN host's
    SLAAC address (deterministic thanks to its pinned MAC) and, for the VPN's resolver, the
    internal-only names."""
    records = {name: dict(rrs) for name, rrs in t.PUBLIC_NAMES.items()}
    if not cfg.www_aaaa:
        records["www.example.net"].pop("AAAA")
    records[t.LAN_HOST_NAME] = {"AAAA": t.LAN_HOST6}
    if internal:
        records.update({name: dict(rrs) for name, rrs in t.INTERNAL_NAMES.items()})
    return records


def _gw_rules(cfg: t.SiteConfig) -> str:
    """The gateway's ip6tables ruleset, in the classic home style of seed 001.

    ICMPv6 is accepted before the conntrack rules because ND is untracked (LAB-NOTES.md);
    RELATED,ESTABLISHED next; NEW from the LAN accepted; everything else from outside rejected
    with adm-prohibited, except the gateway's own public service on [GW_LAN6]:443.
    """
    ptb = (
        [
            "-A INPUT -p ipv6-icmp --icmpv6-type packet-too-big -j DROP",
            "-A FORWARD -p ipv6-icmp --icmpv6-type packet-too-big -j DROP",
        ]
        if cfg.fw_drop_ptb
        else []
    )
    outbound = "ACCEPT" if cfg.fw_outbound_new == "accept" else "DROP"
    inbound = (
        "REJECT --reject-with icmp6-adm-prohibited" if cfg.fw_inbound_new == "reject" else "ACCEPT"
    )
    # The upstream server answers the PD client's multicast Solicit from its link-local address:
    # conntrack sees that as NEW, so it needs its own rule (seed 002: `--dport 546 -j ACCEPT`).
    dhcpv6_client = (
        [f"-A INPUT -i {t.GW_WAN_IF} -s fe80::/10 -p udp --sport 547 --dport 546 -j ACCEPT"]
        if cfg.gw_fw_dhcpv6_client
        else []
    )
    lines = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        *ptb,
        "-A INPUT -p ipv6-icmp -j ACCEPT",
        *dhcpv6_client,
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A INPUT -i {t.GW_LAN_IF} -m conntrack --ctstate NEW -j ACCEPT",
        f"-A INPUT -d {t.GW_LAN6}/128 -p tcp --dport {t.GW_WEB_PORT} "
        "-m conntrack --ctstate NEW -j ACCEPT",
        "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited",
        "-A FORWARD -p ipv6-icmp -j ACCEPT",
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -i {t.GW_LAN_IF} -m conntrack --ctstate NEW -j {outbound}",
        f"-A FORWARD -j {inbound}",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def _same_process(pid: int, program: str) -> bool:
    """True if ``pid`` is alive and still runs ``program`` (guards against killing an
    unrelated process that reused the PID after a crash or reboot).

    ``program`` is the process's argv[0] or, failing that, its executable's name: a daemon that
    sets its process title rewrites argv (sshd's reads ``sshd: /usr/sbin/sshd -D -e -f
    .../sshd-gw.conf [listener] 0 of 10-100 startups``, whose basename is no program at all), while
    /proc/PID/exe still names the file it runs.
    """
    if not program:
        return False
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    argv0 = raw.split(b"\0")[0].decode(errors="replace")
    if os.path.basename(argv0) == program:
        return True
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:  # gone meanwhile, a zombie, or a kernel thread
        return False
    return os.path.basename(exe.removesuffix(" (deleted)")) == program
