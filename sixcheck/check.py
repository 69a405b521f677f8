"""What a check module needs from sixcheck: the `targets` decorator and the Target shape.

A check names the function that turns a profile into its targets; the plugin parametrises the check
with them (one test item per target, id from `Target.id`) and runs every target's probes up front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .probes.base import ProbeRequest
from .schema import Profile

F = TypeVar("F", bound=Callable[..., Any])

TARGETS_ATTR = "_sixcheck_targets"


class Target(Protocol):
    """One thing a check checks. `id` is what a person reads in the report: `wan0-accept_ra`."""

    @property
    def id(self) -> str: ...

    def probes(self) -> Iterable[ProbeRequest[Any]]: ...


@dataclass(frozen=True)
class Simple:
    """A ready Target for checks that need only an id, some expectation data and their probes."""

    id: str
    requests: tuple[ProbeRequest[Any], ...] = ()
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def probes(self) -> Iterable[ProbeRequest[Any]]:
        return self.requests


def targets(fn: Callable[[Profile], Iterable[Target]]) -> Callable[[F], F]:
    """Declare how a check's targets come from the profile."""

    def mark(test: F) -> F:
        setattr(test, TARGETS_ATTR, fn)
        return test

    return mark
