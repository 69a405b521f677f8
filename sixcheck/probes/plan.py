"""Run every probe a run needs, once, concurrently, under one deadline.

A dead target must cost one timeout for the whole run, not one per check: requests are gathered from
all selected items first, de-duplicated, grouped by kind and started together.

Blocking probes (the RA window, NS/NA, netlink, getaddrinfo) run in threads. Those threads are
daemon threads of their own executor, not asyncio's default pool: the default pool caps at
cpu + 4 workers (6 here, so a seventh blocking probe would wait behind the RA window) and is
joined when the loop closes and again at interpreter exit, so Ctrl-C during the RA window waited
for the window. With daemon threads an interrupted plan returns at once; a thread still inside
its deadline dies with the process (it only listens, and its sockets close with it).

The plan runs on a thread of its own (`start_plan`), so the caller can do work that would
otherwise follow it (reading the vantage, importing what the reports need) while the probes wait
for answers: on a healthy site most of a run's plan is the RA window's idle half second. Each
kind loads its heavy imports (`ProbeRequest.imports`) on a worker thread before its own deadline
starts, so the Router Solicitation goes out at once instead of after every kind's imports.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import importlib
import os
import queue
import resource
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .base import Observation, ProbeContext, ProbeFailed, ProbeRequest, ProbeUnavailable

RAW_HINT = "needs raw sockets: run as root, or grant CAP_NET_RAW (setcap cap_net_raw+ep on python)"


def _preload(modules: tuple[str, ...]) -> None:
    for module in modules:  # a failed import is the probe's own error, later
        with contextlib.suppress(Exception):
            importlib.import_module(module)


async def _run_kind(
    kind: type[ProbeRequest[Any]],
    reqs: list[ProbeRequest[Any]],
    ctx: ProbeContext,
    timings: dict[str, float] | None = None,
) -> dict[ProbeRequest[Any], Observation]:
    start = time.monotonic()
    try:
        return await _run_kind_timed(kind, reqs, ctx)
    finally:
        if timings is not None:
            timings[kind.__name__] = round(time.monotonic() - start, 3)


async def _run_kind_timed(
    kind: type[ProbeRequest[Any]], reqs: list[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    import asyncio

    try:
        # imports before the probe's own deadline, off the event loop: see the module docstring
        if kind.imports:
            loading = asyncio.get_running_loop().run_in_executor(None, _preload, kind.imports)
            await asyncio.wait_for(loading, timeout=ctx.run_timeout)
        return await asyncio.wait_for(kind.run_batch(reqs, ctx), timeout=ctx.run_timeout)
    except TimeoutError:
        err = f"{kind.__name__} did not finish within the run deadline ({ctx.run_timeout:g} s)"
        return {r: ProbeFailed(error=err) for r in reqs}
    except Exception as exc:  # a broken probe is a finding about sixcheck, not a pass
        err = f"{kind.__name__} crashed: {type(exc).__name__}: {exc}"
        return {r: ProbeFailed(error=err) for r in reqs}


async def run_plan_async(
    requests: Iterable[ProbeRequest[Any]],
    ctx: ProbeContext,
    started: threading.Event | None = None,
    timings: dict[str, float] | None = None,
) -> dict[ProbeRequest[Any], Observation]:
    """`timings` receives each kind's wall time (imports included): which kind the plan waited for."""
    import asyncio

    by_kind: dict[type[ProbeRequest[Any]], list[ProbeRequest[Any]]] = {}
    for req in dict.fromkeys(requests):  # de-duplicate, keep order
        by_kind.setdefault(type(req), []).append(req)
    results: dict[ProbeRequest[Any], Observation] = {}
    runnable = []
    # windows first: their threads start before the others', so their first packet goes out first
    for kind, reqs in sorted(by_kind.items(), key=lambda kr: not kr[0].opens_window):
        if kind.needs_raw and not ctx.has_raw:
            results.update({r: ProbeUnavailable(error=f"{kind.__name__} {RAW_HINT}") for r in reqs})
        else:
            runnable.append(_run_kind(kind, reqs, ctx, timings))
    gathered = asyncio.gather(*runnable)
    if started is not None:
        await asyncio.sleep(0)  # every kind has run to its first wait: its first packets are out
        started.set()
    for part in await gathered:
        results.update(part)
    for reqs in by_kind.values():
        for r in reqs:
            results.setdefault(r, ProbeFailed(error=f"{type(r).__name__} returned no result"))
    return results


#: descriptors a run's plan makes room for before its threads start: the in-flight bound of one
#: audit kind (TCP or UDP), more than any LAN profile opens at once
PLAN_DESCRIPTORS = 256


def reserve_descriptors(count: int) -> None:
    """Make room in this process's descriptor table for `count` more sockets, now.

    Linux grows the table by doubling when a new descriptor does not fit, and in a process with
    more than one thread each growth waits for an RCU grace period (fs/file.c, expand_fdtable).
    Grown while the plan's sockets open, that wait lands on the probes: a 192-target audit whose
    parent had closed the descriptors it inherited (so its table started at 64) grew it three
    times and took 45 ms instead of 17 ms. Asking once for a descriptor at the needed height
    grows the table in one step, and without any wait while the process has a single thread.
    F_DUPFD takes the lowest free descriptor at or above that height: nothing open is touched.
    """
    try:
        src = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return  # out of descriptors already: the probes will say so themselves
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = src + count if soft == resource.RLIM_INFINITY else min(src + count, soft - 1)
        if top > src:
            os.close(fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, top))
    except OSError:
        pass  # the limit is lower than the run could use: not this function's to report
    finally:
        os.close(src)


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """A pool of daemon threads that is never joined: see the module docstring.

    As many workers as asyncio's default pool (cpu + 4, at most 32): more threads running
    Python at once (pyroute2, dnspython imports) starve the event loop of the GIL, and the
    loop's own deadlines (a DNS query's 1.5 s) then expire while it waits. (A ThreadPoolExecutor
    subclass only because asyncio accepts nothing else as its default executor.)

    One pool may serve several event loops (a staged plan's stages). A loop's end does not end
    the pool: asyncio shuts a loop's default executor down when the loop closes (twice in
    Python 3.11, `shutdown_default_executor` and then `close`), which must not take the workers
    a later stage still needs. The pool's owner ends it with `release` once every stage is done.
    """

    def __init__(self) -> None:
        super().__init__()
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for work that no submit has counted on yet
        self._count = 0
        self._limit = min(32, (os.cpu_count() or 1) + 4)
        self._released = False

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def work() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)

        with self._lock:
            if self._released:  # work nobody would ever take: say so instead of waiting forever
                raise RuntimeError("the probe pool was released: its run has ended")
            self._work.put(work)
            if self._idle:
                self._idle -= 1
            elif self._count < self._limit:
                self._count += 1
                threading.Thread(target=self._worker, name="sixcheck-probe", daemon=True).start()
        return fut

    def _worker(self) -> None:
        while (item := self._work.get()) is not None:
            item()
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing: a loop that borrowed the pool has closed, others may still need it. A
        probe thread ends at its own deadline or with the process; `release` ends idle ones."""

    def release(self) -> None:
        """End the workers once they are idle; the pool takes no more work. Called by its owner
        when the run (every stage of it) is over."""
        with self._lock:
            if self._released:
                return
            self._released = True
            count = self._count
        for _ in range(count):
            self._work.put(None)


async def _with_daemon_threads(
    requests: Iterable[ProbeRequest[Any]],
    ctx: ProbeContext,
    started: threading.Event | None,
    timings: dict[str, float],
    pool: DaemonExecutor,
) -> dict[ProbeRequest[Any], Observation]:
    import asyncio

    asyncio.get_running_loop().set_default_executor(pool)
    return await run_plan_async(requests, ctx, started, timings)


class PlanRun:
    """A plan running on its own daemon thread; `wait()` gives what `run_plan` returns.

    `started` is set once every kind has sent its first packets (or is loading its imports), the
    moment from which other work in the process no longer delays a probe's first packet.
    `timings` holds each finished kind's wall time, for the results' `probe_plan`.
    """

    def __init__(
        self,
        requests: Iterable[ProbeRequest[Any]],
        ctx: ProbeContext,
        pool: DaemonExecutor | None = None,
    ) -> None:
        self._own_pool = pool is None  # else the pool's owner releases it (a staged plan)
        self._pool = pool or DaemonExecutor()
        self.started = threading.Event()
        self.timings: dict[str, float] = {}
        self._requests = list(requests)
        self._ctx = ctx
        self._done = threading.Event()
        self._results: dict[ProbeRequest[Any], Observation] = {}
        self._error: BaseException | None = None
        self._start = time.monotonic()
        self.ended = 0.0  # time.monotonic() when the plan ended
        reserve_descriptors(len(self._requests))
        self._thread = threading.Thread(target=self._run, name="sixcheck-plan", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import asyncio

        try:
            self._results = asyncio.run(
                _with_daemon_threads(
                    self._requests, self._ctx, self.started, self.timings, self._pool
                )
            )
        except BaseException as exc:  # handed to the waiting thread, raised there
            self._error = exc
        finally:
            if self._own_pool:
                self._pool.release()
            self.ended = time.monotonic()
            self.started.set()
            self._done.set()

    def wait(self) -> tuple[dict[ProbeRequest[Any], Observation], float]:
        """Block until the plan ends. Ctrl-C raises KeyboardInterrupt here at once: the plan's
        threads are daemons, nothing joins them."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._results, self.ended - self._start


class StagedPlan:
    """A run's plan started in two stages: listening windows while pytest collects, the rest when
    the first check needs it.

    On a healthy site a run's plan is mostly the RA and DHCPv6 windows (half a second each after
    the first packet, RFC 4861's MAX_RA_DELAY_TIME, RFC 8415's answer delay). Started from the
    collection of the check that asks for them, the windows overlap the rest of the collection.
    Each request still runs once: `start` leaves out what `start_early` started.
    """

    def __init__(self, ctx: ProbeContext) -> None:
        self.ctx = ctx
        self._early: list[PlanRun] = []
        self._started: set[ProbeRequest[Any]] = set()
        self._t0: float | None = None
        self._pool = DaemonExecutor()  # one pool for both stages; released by the run
        # made at configure time, before any thread of the run: the table grows without a wait
        reserve_descriptors(PLAN_DESCRIPTORS)

    def start_early(self, requests: Iterable[ProbeRequest[Any]]) -> None:
        """Start the window kinds among `requests` that are not running yet."""
        new = [r for r in dict.fromkeys(requests) if r.opens_window and r not in self._started]
        if not new:
            return
        if self._t0 is None:
            self._t0 = time.monotonic()
        self._started.update(new)
        self._early.append(PlanRun(new, self.ctx, self._pool))

    def start(self, requests: Iterable[ProbeRequest[Any]]) -> _StagedRun:
        """Start everything else; the handle waits for both stages."""
        wanted = list(dict.fromkeys(requests))
        t0 = self._t0 if self._t0 is not None else time.monotonic()
        rest = PlanRun([r for r in wanted if r not in self._started], self.ctx, self._pool)
        return _StagedRun(rest, self._early, wanted, t0, self._pool)


class _StagedRun:
    """The handle `StagedPlan.start` returns: `started`, `timings` and `wait()` as a PlanRun's."""

    def __init__(
        self,
        rest: PlanRun,
        early: list[PlanRun],
        wanted: list[ProbeRequest[Any]],
        t0: float,
        pool: DaemonExecutor,
    ) -> None:
        self._pool = pool
        self.started = rest.started
        self.timings: dict[str, float] = {}
        self._runs = [*early, rest]
        self._wanted = wanted
        self._t0 = t0

    def wait(self) -> tuple[dict[ProbeRequest[Any], Observation], float]:
        merged: dict[ProbeRequest[Any], Observation] = {}
        ended = self._t0
        for run in self._runs:
            results, _ = run.wait()  # (Ctrl-C here: the pool's threads are daemons)
            ended = max(ended, run.ended)
            merged.update(results)
            for kind, took in run.timings.items():
                self.timings[kind] = max(took, self.timings.get(kind, 0.0))
        self._pool.release()  # every stage is over: its idle workers end
        # an early window whose check was deselected afterwards is not part of this run's results
        return {r: merged[r] for r in self._wanted if r in merged}, ended - self._t0


def start_plan(requests: Iterable[ProbeRequest[Any]], ctx: ProbeContext) -> PlanRun:
    """Start the plan in the background; see `PlanRun`."""
    return PlanRun(requests, ctx)


def run_plan(
    requests: Iterable[ProbeRequest[Any]], ctx: ProbeContext
) -> tuple[dict[ProbeRequest[Any], Observation], float]:
    """Run the plan; returns the observations and the wall time it took.

    Ctrl-C raises KeyboardInterrupt here at once, without waiting for probe threads."""
    return start_plan(requests, ctx).wait()
