"""What every probe is: a hashable request, run in batches, answering with plain observations.

Requests are values so that the plan can de-duplicate them across checks (one RS per interface, one
query per resolver x name x transport). Observations are data, errors included: a probe never
asserts and never raises into a check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

O = TypeVar("O", bound="Observation")  # noqa: E741 - conventional name for the observation type


@dataclass(frozen=True, kw_only=True)
class Observation:
    """Base of every probe's result. `error` set means the probe could not tell."""

    error: str | None = None

    def evidence(self) -> dict[str, Any]:
        """A JSON-ready view for reports; addresses and enums become strings."""
        return _jsonable_dict(dataclasses.asdict(self))


@dataclass(frozen=True, kw_only=True)
class ProbeFailed(Observation):
    """The probe itself broke or ran out of time; the check must say it could not tell."""


@dataclass(frozen=True, kw_only=True)
class ProbeUnavailable(Observation):
    """The probe cannot run here (no privilege, missing tool); the check is skipped with `error`."""


@dataclass(frozen=True)
class ProbeContext:
    """What probes may rely on: deadlines from the profile and what this process is allowed to do."""

    probe_timeout: float
    ra_listen: float
    run_timeout: float
    has_raw: bool


@dataclass(frozen=True)
class ProbeRequest(Generic[O]):
    """A hashable description of one measurement; subclasses implement `run_batch`.

    `needs_raw` requests are answered with ProbeUnavailable when the process lacks CAP_NET_RAW, so
    the checks that need them skip while the rest of the run goes on.
    """

    needs_raw: ClassVar[bool] = False

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        """Default: run each request's `run_one` concurrently."""
        results = await asyncio.gather(*(r.run_one(ctx) for r in requests), return_exceptions=True)
        out: dict[ProbeRequest[Any], Observation] = {}
        for req, res in zip(requests, results, strict=True):
            if isinstance(res, BaseException):
                out[req] = ProbeFailed(error=f"probe crashed: {type(res).__name__}: {res}")
            else:
                out[req] = res
        return out

    async def run_one(self, ctx: ProbeContext) -> O | ProbeUnavailable:
        raise NotImplementedError(f"{type(self).__name__} implements neither run_batch nor run_one")

    def describe(self) -> dict[str, Any]:
        """The request as evidence: kind plus its fields."""
        return {"probe": type(self).__name__, **_jsonable_dict(dataclasses.asdict(self))}


def has_raw_sockets() -> bool:
    """True when this process may open raw sockets (root or CAP_NET_RAW in the effective set)."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 13))  # CAP_NET_RAW = 13
    except OSError:
        pass
    return False


def _jsonable_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _jsonable(v) for k, v in value.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return _jsonable_dict(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
