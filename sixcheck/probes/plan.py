"""Run every probe a run needs, once, concurrently, under one deadline.

A dead target must cost one timeout for the whole run, not one per check: requests are gathered from
all selected items first, de-duplicated, grouped by kind and started together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from .base import Observation, ProbeContext, ProbeFailed, ProbeRequest, ProbeUnavailable

RAW_HINT = "needs raw sockets: run as root, or grant CAP_NET_RAW (setcap cap_net_raw+ep on python)"


async def _run_kind(
    kind: type[ProbeRequest[Any]], reqs: list[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    try:
        return await asyncio.wait_for(kind.run_batch(reqs, ctx), timeout=ctx.run_timeout)
    except TimeoutError:
        err = f"{kind.__name__} did not finish within the run deadline ({ctx.run_timeout:g} s)"
        return {r: ProbeFailed(error=err) for r in reqs}
    except Exception as exc:  # a broken probe is a finding about sixcheck, not a pass
        err = f"{kind.__name__} crashed: {type(exc).__name__}: {exc}"
        return {r: ProbeFailed(error=err) for r in reqs}


async def run_plan_async(
    requests: Iterable[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    by_kind: dict[type[ProbeRequest[Any]], list[ProbeRequest[Any]]] = {}
    for req in dict.fromkeys(requests):  # de-duplicate, keep order
        by_kind.setdefault(type(req), []).append(req)
    results: dict[ProbeRequest[Any], Observation] = {}
    runnable = []
    for kind, reqs in by_kind.items():
        if kind.needs_raw and not ctx.has_raw:
            results.update({r: ProbeUnavailable(error=f"{kind.__name__} {RAW_HINT}") for r in reqs})
        else:
            runnable.append(_run_kind(kind, reqs, ctx))
    for part in await asyncio.gather(*runnable):
        results.update(part)
    for reqs in by_kind.values():
        for r in reqs:
            results.setdefault(r, ProbeFailed(error=f"{type(r).__name__} returned no result"))
    return results


def run_plan(
    requests: Iterable[ProbeRequest[Any]], ctx: ProbeContext
) -> tuple[dict[ProbeRequest[Any], Observation], float]:
    """Run the plan; returns the observations and the wall time it took."""
    start = time.monotonic()
    results = asyncio.run(run_plan_async(requests, ctx))
    return results, time.monotonic() - start
