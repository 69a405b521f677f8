"""Low-level network-namespace helpers: create, delete, run inside, sysctls, processes.

Everything here shells out to ``ip`` (iproute2) rather than calling setns() in-process: a
Python process that switches namespace keeps stale state in libraries such as scapy (see
LAB-NOTES.md), and a child started by ``ip netns exec`` also gets the namespace's
``/etc/netns/NAME/`` files bind-mounted over ``/etc`` (resolv.conf), which the lab's nodes use.

These helpers only ever touch namespaces whose names the caller passes; nothing here reads or
changes the root namespace's links, addresses, routes or sysctls.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "NetnsError",
    "check_name",
    "create",
    "delete",
    "exec_argv",
    "exists",
    "kill_pids",
    "list_netns",
    "pids",
    "run",
    "run_pytest_in",
    "set_sysctl",
    "sysctl",
    "temp_netns",
]

#: Where ``ip netns exec`` finds per-namespace overrides of files in /etc (resolv.conf, hosts).
ETC_NETNS = Path("/etc/netns")

# Namespace names become file names under /run/netns and /etc/netns: refuse anything that could
# escape those directories or confuse a shell reading our logs.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class NetnsError(RuntimeError):
    """A namespace operation failed; the message carries the command and its stderr."""


def check_name(name: str) -> str:
    """``name`` if it is usable as a namespace name, else NetnsError."""
    if not _NAME_RE.match(name) or name in {".", ".."}:
        raise NetnsError(f"invalid network namespace name {name!r} (letters, digits, _ . - only)")
    return name


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def list_netns() -> list[str]:
    """Names of all named network namespaces (``ip netns list``), without their ids."""
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def exists(name: str) -> bool:
    """True if the named namespace exists (its bind mount is present under /run/netns)."""
    return Path("/run/netns", check_name(name)).exists()


def create(name: str, *, loopback: bool = True) -> str:
    """Create namespace ``name`` and bring its loopback up; returns the name.

    Loopback is brought up by default because a namespace's ``lo`` starts down, and services bound
    to addresses on ``lo`` (the lab's resolver, NTP, web) are unreachable until it is up.
    """
    check_name(name)
    _ip("netns", "add", name)
    if loopback:
        _ip("-n", name, "link", "set", "lo", "up")
    return name


def exec_argv(ns: str, cmd: Sequence[str]) -> list[str]:
    """The argv that runs ``cmd`` inside ``ns`` (for callers that need Popen themselves)."""
    return ["ip", "netns", "exec", check_name(ns), *cmd]


def run(
    ns: str,
    cmd: Sequence[str] | str,
    *,
    check: bool = False,
    timeout: float | None = 60.0,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside namespace ``ns`` and return the CompletedProcess (text mode).

    A string is run with ``sh -c`` (handy for pipelines); a sequence is run as is. ``check=True``
    raises NetnsError with stderr, so setup failures name the command that failed.
    """
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    proc = subprocess.run(
        exec_argv(ns, argv),
        capture_output=capture,
        text=True,
        check=False,
        timeout=timeout,
        input=input,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip()
        raise NetnsError(f"[{ns}] {' '.join(argv)}: exit {proc.returncode}: {err}")
    return proc


def set_sysctl(ns: str, key: str, value: str | int) -> None:
    """Set sysctl ``key`` (dotted, e.g. ``net.ipv6.conf.wan0.accept_ra``) inside ``ns``.

    Written through /proc/sys from a process inside the namespace, because net.* sysctls are
    per-namespace and only visible from within. Keys are dotted; interface names containing dots
    must be passed as a slash path (``net/ipv6/conf/eth0.10/forwarding``).
    """
    path = "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))
    run(ns, ["tee", path], input=f"{value}\n", check=True)


def sysctl(ns: str, key: str) -> str:
    """Read sysctl ``key`` inside ``ns`` (same key rules as set_sysctl)."""
    path = "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))
    return run(ns, ["cat", path], check=True).stdout.strip()


def pids(ns: str) -> list[int]:
    """PIDs of every process whose network namespace is ``ns`` (``ip netns pids``)."""
    if not exists(ns):
        return []
    proc = _ip("netns", "pids", ns, check=False)
    return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone (its parent will reap it).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_pids(pid_list: Sequence[int], *, grace: float = 2.0) -> None:
    """SIGTERM each PID, wait up to ``grace`` seconds, then SIGKILL the survivors.

    Only PIDs the caller names are signalled (never by process name), so a developer's own daemons
    of the same name are never touched.
    """
    live = [p for p in pid_list if p > 1 and p != os.getpid()]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [p for p in live if _alive(p)]
        if live:
            time.sleep(0.05)
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def delete(name: str, *, grace: float = 2.0) -> None:
    """Kill every process in ``name``, delete the namespace and its /etc/netns directory.

    Idempotent: a missing namespace is not an error, so teardown after a crash can call this for
    every name the instance might have created. Deleting the namespace also deletes the veths and
    bridges inside it (the peer end of a veth goes with it).
    """
    check_name(name)
    if exists(name):
        # Processes may fork while we kill (a daemon's child): loop a few times.
        for _ in range(3):
            found = pids(name)
            if not found:
                break
            kill_pids(found, grace=grace)
        _ip("netns", "del", name, check=False)
    etc = ETC_NETNS / name
    if etc.exists():
        shutil.rmtree(etc, ignore_errors=True)


_temp_counter = itertools.count(1)


@contextlib.contextmanager
def temp_netns(prefix: str = "sxtmp", *, loopback: bool = True) -> Iterator[str]:
    """A fresh namespace named ``{prefix}-{pid}-{n}`` that is always deleted on exit.

    For tests that need an isolated network stack (plugin tests running probes against a namespace
    they shape themselves).
    """
    name = f"{prefix}-{os.getpid()}-{next(_temp_counter)}"
    delete(name)
    create(name, loopback=loopback)
    try:
        yield name
    finally:
        delete(name)


def run_pytest_in(
    ns: str,
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    timeout: float | None = 600.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``sys.executable -m pytest ARGS`` inside ``ns`` from ``cwd``; output is captured.

    The same interpreter is used so the namespace run sees the same installed packages (the
    venv) as the caller. The caller reads ``returncode`` (0 all passed, 1 failures, anything
    else: harness error).
    """
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return subprocess.run(
        exec_argv(ns, [sys.executable, "-m", "pytest", *args]),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env=run_env,
    )
