"""An OpenSSH server in each lab node, reached from a management namespace, for site runs.

`sixcheck site run` and the Ansible playbook are tested against a real sshd over real SSH. The
operator's machine is a namespace of its own (``{instance}-ctl``) with one point-to-point link to
each node (``mgmt0``, a /64 of 2001:db8:ff::/48 each): an out-of-band management network, so a
fault that breaks the site's own paths (forwarding off, a firewall dropping ICMPv6) never cuts
the operator off from a vantage, and the ctl namespace routes nothing between the nodes.

Every file lives in the instance's state folder (``ssh/``): a host key per node, each node's
sshd_config, the client key, ``authorized_keys``, ``known_hosts`` and the client's ``ssh_config``
(used with ``ssh -F``). The machine's /etc/ssh and ~/.ssh are never read or written. sshd listens
only on the node's management address; it is optional (``Lab.up(..., sshd=True)`` or
``Lab.start_sshd()``) so tests that do not need it do not pay for it.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sixcheck.lab import daemons, netns

if TYPE_CHECKING:
    from sixcheck.lab.site import Lab

#: The nodes with a profile (the site's vantages) get an sshd.
NODES: tuple[str, ...] = ("gw", "lan", "out", "vpn")
#: Not 22: the LAN host already answers on 22 with a fake banner (a service its checks probe).
PORT = 2222
MGMT_IF = "mgmt0"
CTL = "ctl"
SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and insists on an absolute path
_NET = {"gw": 1, "lan": 2, "out": 3, "vpn": 4}


def ctl_ns(instance: str) -> str:
    """The operator's namespace: ssh and ansible run here."""
    return f"{instance}-{CTL}"


def node_addr(node: str) -> str:
    """The node's management address (the only one its sshd listens on)."""
    return f"2001:db8:ff:{_NET[node]}::2"


def ctl_addr(node: str) -> str:
    return f"2001:db8:ff:{_NET[node]}::1"


@dataclass(frozen=True)
class SshAccess:
    """How to reach the lab's sshds: run the client in ``ctl_ns`` with ``-F ssh_config``."""

    ctl_ns: str
    folder: Path
    nodes: tuple[str, ...]

    @property
    def ssh_config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def addr(self, node: str) -> str:
        return node_addr(node)

    def ssh_argv(self, node: str, command: str) -> list[str]:
        """Run ``command`` on ``node`` over SSH, from the ctl namespace."""
        return netns.exec_argv(
            self.ctl_ns, ["ssh", "-F", str(self.ssh_config), "-T", node, command]
        )


def _keygen(path: Path, comment: str) -> str:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


def sshd_config(node: str, folder: Path) -> str:
    """A node's sshd_config: key logins for root only, on the management address only."""
    return "\n".join(
        [
            f"ListenAddress [{node_addr(node)}]:{PORT}",
            f"HostKey {folder / f'host-{node}'}",
            f"PidFile {folder / f'sshd-{node}.pid'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # The state folder lives under /run with the lab's own permissions.
            "StrictModes no",
            "AllowUsers root",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]
    )


def client_config(access: SshAccess) -> str:
    """``ssh -F`` config: the lab key and known_hosts only, no agent, no prompts; each node by
    name (``ssh gw``) or by its address."""
    lines = [
        "Host *",
        "    User root",
        f"    Port {PORT}",
        f"    IdentityFile {access.key}",
        "    IdentitiesOnly yes",
        "    IdentityAgent none",
        f"    UserKnownHostsFile {access.known_hosts}",
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    CheckHostIP no",
        "    BatchMode yes",
        "    ConnectTimeout 5",
        "    ControlMaster no",
    ]
    for node in access.nodes:
        lines = [f"Host {node}", f"    HostName {node_addr(node)}", *lines]
    return "\n".join(lines) + "\n"


def start(lab: Lab, nodes: Sequence[str] = NODES) -> SshAccess:
    """Management links, keys, configs and one sshd per node; returns how to reach them.

    Called after the site (and its faults) are built: the gateway's firewall rejects NEW input
    not from its LAN, so an accept for ``mgmt0`` goes first in its INPUT chain.
    """
    folder = lab.state_dir / "ssh"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    ctl = ctl_ns(lab.instance)
    if not netns.exists(ctl):
        netns.create(ctl)
    access = SshAccess(ctl, folder, tuple(nodes))
    client_pub = _keygen(access.key, f"sixcheck-lab-{lab.instance}")
    (folder / "authorized_keys").write_text(client_pub + "\n")
    known = []
    for node in nodes:
        peer = f"m-{node}"
        netns.run(ctl, ["ip", "link", "del", peer])  # a leftover from an earlier start
        links = [
            f"link add {peer} type veth peer name {MGMT_IF} netns {lab.ns(node)}",
            f"addr add {ctl_addr(node)}/64 dev {peer} nodad",
            f"link set {peer} up",
        ]
        for line in links:
            netns.run(ctl, ["ip", *line.split()], check=True)
        lab.exec(node, ["ip", "addr", "add", f"{node_addr(node)}/64", "dev", MGMT_IF, "nodad"])
        lab.exec(node, ["ip", "link", "set", MGMT_IF, "up"], check=True)
        if node == "gw":
            lab.exec(node, ["ip6tables", "-w", "-I", "INPUT", "1", "-i", MGMT_IF, "-j", "ACCEPT"])
        host_pub = _keygen(folder / f"host-{node}", f"sixcheck-lab-{node}")
        known.append(f"[{node_addr(node)}]:{PORT} {' '.join(host_pub.split()[:2])}")
        conf = folder / f"sshd-{node}.conf"
        conf.write_text(sshd_config(node, folder))
        lab._start(node, f"sshd-{node}", [SSHD, "-D", "-e", "-f", str(conf)])
    access.known_hosts.write_text("\n".join(known) + "\n")
    access.ssh_config.write_text(client_config(access))
    for node in nodes:
        listening = functools.partial(daemons.listening, lab.ns(node), "tcp", node_addr(node), PORT)
        daemons.wait_until(f"sshd on {node} to listen", listening, 10.0)
    return access


def stop(lab: Lab, node: str) -> None:
    """Stop ``node``'s sshd (sessions already open live on), as a vantage gone dark would."""
    pidfile = lab.state_dir / "ssh" / f"sshd-{node}.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if Path(f"/proc/{pid}").exists() else b""
    if f"sshd-{node}.conf".encode() in cmdline:  # still our sshd, not a reused PID
        netns.kill_pids([pid], grace=2.0)
