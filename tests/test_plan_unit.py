"""The probe plan's stages: windows started during collection run once, and the rest joins them.

Fake probe kinds (no network): each records how often it ran, so a request started early and asked
for again by the plan shows up twice if the stages do not share it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from conftest import needs_root
from sixcheck.lab import netns
from sixcheck.probes.base import Observation, ProbeContext, ProbeRequest
from sixcheck.probes.plan import StagedPlan, start_plan

CTX = ProbeContext(probe_timeout=1.0, ra_listen=1.0, run_timeout=5.0, has_raw=True)
RAN: list[str] = []
LOCK = threading.Lock()


@dataclass(frozen=True)
class Seen(Observation):
    name: str = ""


@dataclass(frozen=True)
class Quick(ProbeRequest[Seen]):
    """A fake kind that records each request it ran as `LABEL:name`."""

    name: str
    label: ClassVar[str] = "quick"

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        with LOCK:
            RAN.extend(f"{cls.label}:{getattr(r, 'name', '')}" for r in requests)
        return {r: Seen(name=getattr(r, "name", "")) for r in requests}


@dataclass(frozen=True)
class Window(Quick):
    label: ClassVar[str] = "window"
    opens_window: ClassVar[bool] = True


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


def test_a_window_started_early_runs_once_and_the_rest_joins_it() -> None:
    staged = StagedPlan(CTX)
    staged.start_early([Window("eth0"), Quick("dns")])  # only the window starts now
    staged.start_early([Window("eth0")])  # a second check asking the same: not again
    running = staged.start([Window("eth0"), Quick("dns"), Window("eth1")])
    running.started.wait(5)
    results, took = running.wait()
    assert sorted(RAN) == ["quick:dns", "window:eth0", "window:eth1"]
    assert {getattr(o, "name", None) for o in results.values()} == {"eth0", "eth1", "dns"}
    assert took >= 0
    assert set(running.timings) == {"Window", "Quick"}


def test_an_early_window_whose_check_was_dropped_is_not_in_the_results() -> None:
    staged = StagedPlan(CTX)
    staged.start_early([Window("eth0")])
    results, _ = staged.start([Quick("dns")]).wait()
    assert list(results) == [Quick("dns")]


def test_a_plan_on_its_own_thread_reports_when_its_kinds_have_started() -> None:
    running = start_plan([Quick("a"), Window("b")], CTX)
    assert running.started.wait(5)
    results, _ = running.wait()
    assert len(results) == 2
    assert sorted(RAN) == ["quick:a", "window:b"]


def test_ip_route_leaves_the_rest_of_pyroute2_unloaded_until_asked() -> None:
    """IPRoute without the package __init__ (which loads all of pyroute2); the first use of a
    top-level name elsewhere in the process still gets the whole package."""
    code = (
        "import sys\n"
        "from sixcheck.probes.netlink import _ip_route_class\n"
        "cls = _ip_route_class()\n"
        "print(cls.__name__, 'pyroute2.ndb.main' in sys.modules)\n"
        "import pyroute2\n"
        "from pyroute2 import NDB\n"
        "print(bool(pyroute2.__version__), NDB.__name__, 'pyroute2.ndb.main' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["IPRoute", "False", "True", "NDB", "True"]


@needs_root
def test_sending_link_reads_what_netlink_reads() -> None:
    """The RS and the DHCPv6 Solicit read their interface by ioctl and /proc (no pyroute2 before
    the first packet): the same MAC, up flag and usable link-local as netlink gives."""
    with netns.temp_netns("sxsl") as ns:
        subprocess.run(
            [
                "ip",
                "-n",
                ns,
                "link",
                "add",
                "v0",
                "address",
                "02:00:00:00:5e:01",
                "type",
                "veth",
                "peer",
                "name",
                "v1",
            ],
            check=True,
        )
        subprocess.run(["ip", "-n", ns, "link", "set", "v1", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "v0", "up"], check=True)
        code = (
            "from sixcheck.probes import ndwire\n"
            "from sixcheck.probes.netlink import Netlink\n"
            "import time\n"
            "for _ in range(50):\n"
            "    s = ndwire.sending_link('v0')\n"
            "    if s and s.link_local: break\n"
            "    time.sleep(0.1)\n"
            "with Netlink() as nl:\n"
            "    link = nl.link('v0')\n"
            "    print(s.mac == link.mac, s.up == link.up, s.link_local == nl.link_local('v0'))\n"
            "    print(s.link_local, ndwire.sending_link('nope'), ndwire.sending_link('lo').mac)\n"
        )
        out = netns.run(ns, [sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first.split() == ["True", "True", "True"]
    assert second.startswith("fe80::")
    assert second.endswith("None None")


@dataclass(frozen=True)
class Busy(ProbeRequest[Seen]):
    """A window kind that keeps `n` probe threads busy for a moment."""

    name: str
    n: int = 8
    opens_window: ClassVar[bool] = True

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        loop = asyncio.get_running_loop()
        n = max(getattr(r, "n", 1) for r in requests)
        await asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0.1) for _ in range(n)))
        return {r: Seen(name=getattr(r, "name", "")) for r in requests}


def test_the_stages_share_one_pool_of_probe_threads() -> None:
    """Three stages at once never run more probe threads than one plan may (more threads running
    Python starve the event loops of the GIL), and the pool's workers end with the run."""
    before = {t.ident for t in threading.enumerate()}
    staged = StagedPlan(CTX)
    staged.start_early([Busy("a")])
    staged.start_early([Busy("b")])
    running = staged.start([Busy("a"), Busy("b"), Busy("c")])
    time.sleep(0.05)
    probe_threads = [
        t for t in threading.enumerate() if t.name == "sixcheck-probe" and t.ident not in before
    ]
    results, _ = running.wait()
    assert len(results) == 3
    assert 0 < len(probe_threads) <= min(32, (os.cpu_count() or 1) + 4)
    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in probe_threads) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.is_alive() for t in probe_threads)


@dataclass(frozen=True)
class Blocking(Quick):
    """A kind that answers from a probe thread (as netlink and getaddrinfo do)."""

    label: ClassVar[str] = "blocking"

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.01)
        return await super().run_batch(requests, ctx)


def test_a_stage_started_after_the_early_one_ended_still_gets_probe_threads() -> None:
    """An early window over before the rest starts (a slow collection) left the pool without
    workers: asyncio shuts a loop's default executor down twice (`shutdown_default_executor`,
    then `close`), which ended the shared pool's workers while the run still needed them, and
    the rest's first blocking probe waited forever. Seen as a hung unprivileged lab-lan run."""
    before = {t.ident for t in threading.enumerate()}
    staged = StagedPlan(CTX)
    staged.start_early([Busy("a", n=2)])
    early = [
        t for t in threading.enumerate() if t.name == "sixcheck-plan" and t.ident not in before
    ]
    for t in early:
        t.join(5)  # the early stage's loop has closed
    done = threading.Event()
    got: list[Any] = []

    def rest() -> None:
        got.append(staged.start([Busy("a", n=2), Blocking("x"), Blocking("y")]).wait())
        done.set()

    threading.Thread(target=rest, daemon=True).start()
    assert done.wait(10), "the rest of the plan never ended"
    results, _ = got[0]
    assert {r: type(o).__name__ for r, o in results.items()} == {
        Busy("a", n=2): "Seen",
        Blocking("x"): "Seen",
        Blocking("y"): "Seen",
    }


def test_pyroute2_asked_by_many_threads_at_once_is_whole_for_each() -> None:
    """Probe threads use `ip_route()` while another kind (egress) or a user's code takes names
    from the package itself: the package __init__ runs once, the others wait for it (the first
    version raced: KeyError '__getattr__', "cannot import name 'IPRoute'")."""
    code = (
        "import sys, threading\n"
        "from sixcheck.probes.netlink import _ip_route_class\n"
        "errors, got = [], []\n"
        "def by_class():\n"
        "    try: got.append(_ip_route_class().__name__)\n"
        "    except Exception as e: errors.append(repr(e))\n"
        "def by_name():\n"
        "    try:\n"
        "        from pyroute2 import IPRoute, NDB\n"
        "        got.append(IPRoute.__name__ + NDB.__name__)\n"
        "    except Exception as e: errors.append(repr(e))\n"
        "ts = [threading.Thread(target=(by_class, by_name)[i % 2]) for i in range(12)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(errors or sorted(set(got)))\n"
    )
    for _ in range(3):  # a race shows in some runs only
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "['IPRoute', 'IPRouteNDB']", out.stdout + out.stderr


# The descriptor table: measured in a fresh interpreter whose table is the kernel's default (64
# slots; pytest's own process has grown its table long before a test runs). /proc's FDSize is
# the table's size.
FD_PROBE = r"""
import json, os, resource, sys
from sixcheck.probes import plan

def fdsize():
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("FDSize:"))

def opened():
    return {int(fd): os.fstat(int(fd)).st_ino for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}

mode, count = sys.argv[1], int(sys.argv[2])
if mode == "limit":
    resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
if mode == "occupied":  # descriptors open right where the reservation asks for one
    low = os.open(os.devnull, os.O_RDONLY); os.close(low)
    r, w = os.pipe()
    for fd in range(low + count - 2, low + count + 3):
        os.dup2(r, fd)
before, size0 = opened(), fdsize()
if mode == "plan":
    from sixcheck.probes.base import ProbeContext
    from sixcheck.probes.sysctl import SysctlRead
    ctx = ProbeContext(probe_timeout=1.0, ra_listen=1.0, run_timeout=5.0, has_raw=False)
    plan.PlanRun([SysctlRead(f"net/ipv6/conf/lo/x{i}") for i in range(count)], ctx)
else:
    plan.reserve_descriptors(count)
after = opened() if mode != "plan" else before
print(json.dumps({"before": size0, "after": fdsize(), "same": before == after}))
"""


def _fd_probe(mode: str, count: int) -> dict[str, Any]:
    import json

    # A child's table starts as large as its parent's highest open descriptor needs, and this
    # pytest process has high ones: a shell that closed them (close_fds) forks the interpreter.
    proc = subprocess.run(
        ["/bin/sh", "-c", '"$0" -c "$1" "$2" "$3"; exit $?', sys.executable, FD_PROBE, mode,
         str(count)],
        capture_output=True, text=True, timeout=60, check=False, close_fds=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_reserving_descriptors_grows_the_table_in_one_step_and_opens_nothing() -> None:
    got = _fd_probe("reserve", 300)
    assert got["before"] == 64, got  # the kernel's default: otherwise this test shows nothing
    assert got["after"] >= 300, got
    assert got["same"], got  # no descriptor left open, none closed


def test_reserving_descriptors_never_touches_one_already_open() -> None:
    got = _fd_probe("occupied", 150)
    assert got["after"] >= 150, got
    assert got["same"], got  # the pipe's copies around the height are all still open


def test_reserving_descriptors_stays_under_the_limit() -> None:
    got = _fd_probe("limit", 1000)
    assert got["after"] <= 128, got  # RLIMIT_NOFILE 100: no error, no growth past it


def test_a_plan_makes_room_for_its_requests_before_its_threads_start() -> None:
    got = _fd_probe("plan", 300)
    assert got["before"] == 64, got
    assert got["after"] >= 300, got
