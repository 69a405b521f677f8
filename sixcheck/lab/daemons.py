"""Config writers and launchers for the lab's daemons (radvd, unbound, chrony, socat, wireguard-go).

Every daemon runs in the foreground inside its namespace, with its config, pid file and log in
the instance's state directory, so two lab instances never share a file or a socket. Launching
goes through ``sh -c 'CMD & echo $!'`` inside ``ip netns exec``: the shell exits at once, the
daemon is re-parented, and the lab records the daemon's own PID (no Popen object is left to
warn about a still-running child when the CLI process exits).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sixcheck.lab import netns


class DaemonError(RuntimeError):
    """A daemon did not start or did not become ready; the message names it and its log."""


@dataclass(frozen=True)
class Started:
    """A process the lab started: enough to find it again and to kill only it."""

    node: str
    name: str
    pid: int
    cmdline: str
    log: str
    program: str  # argv[0] of the running process (what `down` checks before killing)


def launch(
    ns: str,
    node: str,
    name: str,
    argv: Sequence[str],
    state: Path,
    *,
    program: str | None = None,
) -> Started:
    """Start ``argv`` detached inside ``ns``; stdout/stderr go to ``state/NAME.log``.

    ``setsid`` gives the daemon its own session so a Ctrl-C on the CLI that built the lab does
    not take the site down with it; ``down`` is the only way processes end. ``program`` is the
    name the process will finally run as, when ``argv[0]`` execs another program (unshare).
    """
    log = state / f"{name}.log"
    cmd = " ".join(shlex.quote(a) for a in argv)
    script = f"setsid {cmd} </dev/null >>{shlex.quote(str(log))} 2>&1 & echo $!"
    proc = netns.run(ns, script, check=True)
    pid = int(proc.stdout.strip().splitlines()[-1])
    return Started(
        node=node,
        name=name,
        pid=pid,
        cmdline=" ".join(argv),
        log=str(log),
        program=program or Path(argv[0]).name,
    )


def wait_until(
    what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.05
) -> None:
    """Poll ``predicate()`` until true or raise DaemonError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise DaemonError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def listening(ns: str, proto: str, addr: str, port: int) -> bool:
    """True if something in ``ns`` listens on ``addr``:``port`` (``proto`` is tcp or udp)."""
    flag = "-Hlnt" if proto == "tcp" else "-Hlnu"
    out = netns.run(ns, ["ss", flag]).stdout
    want = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    return any(want in line.split() for line in out.splitlines())


# ------------------------------------------------------------------------------- radvd


def radvd_conf(
    iface: str,
    prefix: str,
    *,
    rdnss: Sequence[str] = (),
    link_mtu: int | None = None,
    router_lifetime: int = 1800,
    autonomous: bool = True,
    preference: str = "medium",
    max_interval: int = 10,
    managed: bool = False,
    other: bool = False,
) -> str:
    """A radvd.conf for one interface and one prefix.

    ``AdvRASolicitedUnicast on`` makes radvd answer a Router Solicitation at once by unicast;
    without it solicited RAs are multicast and rate-limited (MinDelayBetweenRAs), and a probe
    that sends one RS misses about half the time (LAB-NOTES.md). The short MaxRtrAdvInterval
    keeps the periodic RAs frequent enough for a probe that only listens.
    """
    lines = [
        f"interface {iface} {{",
        "    AdvSendAdvert on;",
        "    AdvRASolicitedUnicast on;",
        f"    AdvManagedFlag {'on' if managed else 'off'};",
        f"    AdvOtherConfigFlag {'on' if other else 'off'};",
        f"    MinRtrAdvInterval {max(3, max_interval // 3)};",
        f"    MaxRtrAdvInterval {max_interval};",
        f"    AdvDefaultLifetime {router_lifetime};",
        f"    AdvDefaultPreference {preference};",
    ]
    if link_mtu is not None:
        lines.append(f"    AdvLinkMTU {link_mtu};")
    lines += [
        f"    prefix {prefix} {{",
        "        AdvOnLink on;",
        f"        AdvAutonomous {'on' if autonomous else 'off'};",
        "    };",
    ]
    if rdnss:
        # RFC 8106 asks for a lifetime of at least 3 x MaxRtrAdvInterval (radvd's default is 1x).
        lines += [
            f"    RDNSS {' '.join(rdnss)} {{",
            f"        AdvRDNSSLifetime {3 * max_interval};",
            "    };",
        ]
    lines.append("};")
    return "\n".join(lines) + "\n"


def radvd_argv(conf: Path, state: Path, name: str) -> list[str]:
    """radvd in the foreground, logging to stderr, with an instance-private pid file."""
    return ["radvd", "-n", "-m", "stderr", "-C", str(conf), "-p", str(state / f"{name}.pid")]


# ------------------------------------------------------------------------------- unbound


def unbound_conf(
    interfaces: Iterable[str],
    records: Mapping[str, Mapping[str, str]],
    state: Path,
    name: str,
    refuse: Iterable[str] = (),
) -> str:
    """An unbound.conf that answers only from ``local-data`` (no upstream, never recurses).

    Clients in a ``refuse`` prefix get REFUSED (unbound's most specific access-control wins).

    ``local-zone: "." static`` makes every name the lab does not define NXDOMAIN instead of a
    recursion towards the real root servers: the lab must never send traffic off the machine.
    PTRs are generated for every address record, so reverse lookups match forward ones.
    """
    lines = [
        "server:",
        "    verbosity: 1",
        "    num-threads: 1",
        "    do-daemonize: no",
        "    use-syslog: no",
        '    logfile: ""',
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{state}"',
        f'    pidfile: "{state / (name + ".pid")}"',
        "    do-ip4: yes",
        "    do-ip6: yes",
        "    do-udp: yes",
        "    do-tcp: yes",
        "    so-reuseport: no",
        "    outgoing-range: 16",
        "    access-control: 0.0.0.0/0 allow",
        "    access-control: ::/0 allow",
        *(f"    access-control: {prefix} refuse" for prefix in refuse),
        "    module-config: iterator",
        "    hide-identity: yes",
        "    hide-version: yes",
        '    local-zone: "." static',
        # ipv4only.arpa exists for every resolver (RFC 8880 7.2: answered locally, A 192.0.0.170
        # and .171, no AAAA): the static root must not make it NXDOMAIN, or no DNS64 verdict
        # (required or forbidden) can be read from the lab's resolvers
        '    local-data: "ipv4only.arpa. 300 IN A 192.0.0.170"',
        '    local-data: "ipv4only.arpa. 300 IN A 192.0.0.171"',
    ]
    lines += [f"    interface: {addr}" for addr in interfaces]
    for fqdn, rrs in records.items():
        for rtype, value in rrs.items():
            lines.append(f'    local-data: "{fqdn}. 300 IN {rtype} {value}"')
            lines.append(f'    local-data-ptr: "{value} 300 {fqdn}."')
    lines += ["remote-control:", "    control-enable: no"]
    return "\n".join(lines) + "\n"


def unbound_argv(conf: Path) -> list[str]:
    """unbound in the foreground with the lab's config (never Debian's /etc/unbound)."""
    return ["unbound", "-d", "-c", str(conf)]


# ------------------------------------------------------------------------------- chrony


def chrony_conf(
    bind: str, state: Path, name: str, stratum: int = 3, serve_local: bool = True
) -> str:
    """A chrony.conf for an NTP server that serves its local clock and never steers it.

    ``local stratum`` makes chronyd serve time with no upstream; ``cmdport 0`` and
    ``bindcmdaddress /`` remove the UDP and Unix command sockets, which are not per-namespace
    and would collide between instances (and with a developer's own chronyd).
    ``serve_local=False`` drops the ``local`` line: a server with no time source at all, which
    still answers, unsynchronised (leap 3, stratum 0, no kiss code).
    """
    return "\n".join(
        [
            f"bindaddress {bind}",
            "port 123",
            *([f"local stratum {stratum}"] if serve_local else []),
            "allow all",
            "cmdport 0",
            "bindcmdaddress /",
            f"pidfile {state / (name + '.pid')}",
            f"driftfile {state / (name + '.drift')}",
            "",
        ]
    )


def chrony_argv(conf: Path) -> list[str]:
    """chronyd in the foreground; ``-x`` so it never touches the machine's clock (shared by all
    namespaces), ``-U``/``-u root`` so it needs no _chrony-owned directories."""
    return ["chronyd", "-d", "-x", "-U", "-u", "root", "-f", str(conf)]


def ntp_liar_argv(
    python: str, bind: str, skew: float, *, ref_age: float | None = None, kiss: str | None = None
) -> list[str]:
    """The lying NTP server: a tiny responder that adds ``skew`` seconds to every timestamp
    (or reports a reference time ``ref_age`` seconds old, or sends only ``kiss`` codes).

    chronyd cannot be told to serve a clock other than the system's (and with ``-x`` it must not
    move the system clock, which every namespace shares), so a skewed server is a small script;
    nor can it be made to kiss every request or to claim an old reference time on cue.
    """
    script = Path(__file__).with_name("ntpliar.py")
    argv = [python, str(script), "--bind", bind, "--skew", str(skew)]
    if ref_age is not None:
        argv += ["--ref-age", str(ref_age)]
    if kiss is not None:
        argv += ["--kiss", kiss]
    return argv


# ------------------------------------------------------------------------------- socat


def http_responder(state: Path) -> Path:
    """A one-shot HTTP/1.0 responder script for socat's SYSTEM address."""
    path = state / "http.sh"
    body = "sixcheck-lab\\n"
    path.write_text(
        "#!/bin/sh\n"
        f"printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n"
        f"Content-Length: 13\\r\\nConnection: close\\r\\n\\r\\n{body}'\n"
    )
    path.chmod(0o755)
    return path


def udp_echo_argv(addr: str, port: int) -> list[str]:
    """socat echoing every UDP datagram to [addr]:port back to its sender: an outside UDP
    service of its own, so a firewall's outbound-UDP check does not lean on the resolver."""
    return ["socat", "-T", "2", f"UDP6-RECVFROM:{port},bind=[{addr}],fork", "PIPE"]


def tcp_service_argv(family: int, addr: str | None, port: int, responder: str) -> list[str]:
    """socat listening on TCP ``addr``:``port`` (all addresses if None), running ``responder``
    (a shell command) per connection. ``-T 5`` ends idle connections so none outlive a test."""
    proto = "TCP6-LISTEN" if family == 6 else "TCP4-LISTEN"
    opts = [f"{proto}:{port}", "reuseaddr", "fork"]
    if addr:
        opts.append(f"bind=[{addr}]" if family == 6 else f"bind={addr}")
    return ["socat", "-T", "5", ",".join(opts), f"SYSTEM:{responder}"]


def tunnel_argv(local4: str, remote4: str, port: int, ifname: str) -> list[str]:
    """socat joining a TUN device to an *unconnected* UDP4 socket: IPv6 in UDP over IPv4.

    Unconnected (UDP4-DATAGRAM, not UDP4) so that ICMP port-unreachable from a dead far end
    does not make socat exit: the near end stays up with no far end, exactly like a broker
    tunnel whose server is gone. ``iff-no-pi``: raw IPv6 packets, no 4-byte packet-info header.
    """
    return [
        "socat",
        f"TUN,tun-name={ifname},tun-type=tun,iff-no-pi,iff-up",
        f"UDP4-DATAGRAM:{remote4}:{port},bind={local4}:{port},range={remote4}/32",
    ]


# ------------------------------------------------------------------------------- wireguard


def wireguard_script(ifname: str, wg_set_args: Sequence[str]) -> list[str]:
    """argv that runs wireguard-go in a private mount namespace and configures it there.

    wireguard-go keeps its UAPI socket in /var/run/wireguard/, which is shared by every network
    namespace: two instances (or a developer's own wg0) would collide. ``unshare -m`` plus a
    tmpfs on /run/wireguard gives this wireguard-go a private socket directory; ``wg set`` must
    run in the same mount namespace to find the socket, hence one shell for both. The shell
    stays as the parent of wireguard-go (``wait``) and dies with it.
    """
    wg_set = " ".join(shlex.quote(a) for a in wg_set_args)
    body = (
        "set -e; mkdir -p /run/wireguard; mount -t tmpfs -o size=1m,mode=0700 none /run/wireguard; "
        f"wireguard-go -f {ifname} & WG=$!; "
        f"i=0; while [ ! -S /run/wireguard/{ifname}.sock ] && [ $i -lt 200 ]; do "
        "sleep 0.02; i=$((i+1)); done; "
        f"wg set {ifname} {wg_set} || {{ kill $WG; exit 1; }}; "
        "echo configured; wait $WG"
    )
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", body]
