"""What every probe is: a hashable request, run in batches, answering with plain observations.

Requests are values so that the plan can de-duplicate them across checks (one RS per interface, one
query per resolver x name x transport). Observations are data, errors included: a probe never
asserts and never raises into a check.

Probe modules are imported while pytest collects (the checks build their requests from the
profile), long before anything runs, and start-up is budgeted (issue 15). So what only running a
probe needs, asyncio above all (~12 ms with the ssl it pulls in), is imported inside the functions
that run probes, not at module level; tests/test_collect_imports.py keeps it that way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

O = TypeVar("O", bound="Observation")  # noqa: E741 - conventional name for the observation type

#: Default packets per second of a run (all probe kinds together) and sockets in flight: the
#: defaults of the echo, TCP and UDP requests, here so that building one loads no socket code.
DEFAULT_RATE = 1000
DEFAULT_CONCURRENCY = 256


@dataclass(frozen=True)
class Threshold:
    """When a number about the network has changed in a way that means something.

    Two values differ when they lie on different sides of one of `limits` (a lifetime reaching
    0, an offset beyond NTP's 128 ms step), or when they are `step` or more apart. `magnitude`
    compares absolute values (an offset of -2 s is as far off as +2 s). `profile_limit` names the
    note a check records the profile's own bound under (`max_offset_s`): where the check's
    evidence has it, it is one more limit. Every other wobble is this run's, not the network's.
    """

    limits: tuple[float, ...] = ()
    step: float | None = None
    magnitude: bool = False
    profile_limit: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "limits": list(self.limits),
            "step": self.step,
            "magnitude": self.magnitude,
            "profile_limit": self.profile_limit,
        }

    @classmethod
    def from_json(cls, data: Any) -> Threshold:
        """Read what `as_json` wrote; anything unreadable compares by equality (no limits)."""
        if not isinstance(data, dict):
            return cls()
        limits = tuple(float(x) for x in data.get("limits") or () if _is_number(x))
        step: Any = data.get("step")
        note = data.get("profile_limit")
        return cls(
            limits=limits,
            step=float(step) if _is_number(step) else None,
            magnitude=bool(data.get("magnitude")),
            profile_limit=note if isinstance(note, str) else None,
        )

    def changed(self, before: Any, after: Any, extra_limits: Sequence[float] = ()) -> bool:
        """True when the move from `before` to `after` means something (see the class doc)."""
        if not (_is_number(before) and _is_number(after)):
            return bool(before != after)
        b, a = (abs(before), abs(after)) if self.magnitude else (before, after)
        if any((b > lim) != (a > lim) for lim in (*self.limits, *extra_limits)):
            return True
        return self.step is not None and abs(after - before) >= self.step


@dataclass(frozen=True)
class Fields:
    """Which fields of an observation describe the network and which only this run.

    Only `stable` paths are compared between runs (a baseline, scheduled audits); `volatile` names
    what is deliberately left out (source ports, timestamps, round trips, counters, lifetimes that
    tick down, transaction ids), and any field named in neither is left out too, so a field added
    later never turns into noise. A path is dotted (`icmp.offender`); through a list it gathers
    every element's value (`answers.value`: the answer set). A path in `thresholds` is compared
    with its Threshold instead of by equality.
    """

    stable: tuple[str, ...] = ()
    volatile: tuple[str, ...] = ()
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """What a saved run carries so that a later comparison reads it without this code."""
        return {
            "stable": list(self.stable),
            "thresholds": {k: t.as_json() for k, t in self.thresholds.items()},
        }


@dataclass(frozen=True, kw_only=True)
class Observation:
    """Base of every probe's result. `error` set means the probe could not tell.

    Each kind declares `compared` (see Fields): what a comparison between runs may look at.
    """

    error: str | None = None

    compared: ClassVar[Fields] = Fields(stable=("error",))

    def evidence(self) -> dict[str, Any]:
        """A JSON-ready view for reports; addresses and enums become strings."""
        return _jsonable_dict(dataclasses.asdict(self))


def observation_kinds() -> dict[str, type[Observation]]:
    """Every observation class imported so far, by the `kind` name the evidence carries."""
    out: dict[str, type[Observation]] = {}
    todo: list[type[Observation]] = [Observation]
    while todo:
        cls = todo.pop()
        out.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return out


def fields_table(kinds: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """{kind: Fields.as_json()} for the results JSON, so a saved run says how to compare it."""
    known = observation_kinds()
    names = sorted(known) if kinds is None else [k for k in kinds if k in known]
    return {k: known[k].compared.as_json() for k in names}


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
    the checks that need them skip while the rest of the run goes on. `imports` are modules the
    kind loads lazily (scapy: a second or more with a cold cache); the plan imports them before
    any probe starts, so an import never blocks the event loop while other probes' deadlines run.
    """

    needs_raw: ClassVar[bool] = False
    imports: ClassVar[tuple[str, ...]] = ()
    #: the kind's time is mostly a listening window (RA, DHCPv6): it starts first, and may start
    #: while pytest is still collecting (`plan.StagedPlan`), so other work overlaps the wait
    opens_window: ClassVar[bool] = False

    @classmethod
    async def run_batch(
        cls, requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
    ) -> dict[ProbeRequest[Any], Observation]:
        """Default: run each request's `run_one` concurrently."""
        import asyncio  # only a run needs it: collection builds requests, never runs them

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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
