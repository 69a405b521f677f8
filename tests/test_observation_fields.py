"""Every kind of observation says which of its fields are facts about the network (compared
between runs) and which belong to one run; thresholds say when a number has really moved."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest

import sixcheck.probes
from sixcheck.probes.base import Observation, ProbeFailed, ProbeUnavailable, Threshold, fields_table

#: The product's kinds: the Observation classes each sixcheck.probes module defines. Read from the
#: modules, not from `observation_kinds()` (every subclass imported so far), which also counts the
#: classes of test modules pytest happened to collect first (test_plan_unit's `Seen`).
KINDS = {
    cls.__name__: cls
    for info in pkgutil.iter_modules(sixcheck.probes.__path__)
    for mod in [importlib.import_module(f"sixcheck.probes.{info.name}")]
    for cls in vars(mod).values()
    if isinstance(cls, type)
    and issubclass(cls, Observation)
    and cls.__module__ == mod.__name__
    and cls not in (Observation, ProbeFailed, ProbeUnavailable)
}


def test_every_probe_module_has_observations_declared() -> None:
    assert {"DnsAnswer", "RaObservation", "NtpAnswer", "PortResult", "SysctlValue"} <= set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_declares_its_own_fields(kind: str) -> None:
    cls = KINDS[kind]
    assert "compared" in cls.__dict__, f"{kind} declares no `compared = Fields(...)`"
    names = {f.name for f in dataclasses.fields(cls)}
    spec = cls.compared
    for path in (*spec.stable, *spec.volatile, *spec.thresholds):
        assert path.split(".")[0] in names, f"{kind}: {path} names no field"
    assert not set(spec.stable) & set(spec.volatile), kind
    assert set(spec.thresholds) <= set(spec.stable), kind
    assert "error" in spec.stable, f"{kind}: whether the probe could tell is a fact to compare"


@pytest.mark.parametrize(
    ("threshold", "before", "after", "changed"),
    [
        (Threshold(limits=(0,)), 1800, 1800, False),
        (Threshold(limits=(0,)), 1800, 1500, False),  # a lifetime ticking down
        (Threshold(limits=(0,)), 1800, 0, True),  # the router stops being a default router
        (Threshold(limits=(0.128,), magnitude=True), 0.001, -0.004, False),
        (Threshold(limits=(0.128,), magnitude=True), 0.001, -0.3, True),  # beyond NTP's step
        (Threshold(step=10), 100, 109, False),
        (Threshold(step=10), 100, 110, True),
        (Threshold(limits=(0,)), None, 5, True),  # answered vs not
        (Threshold(), "a", "a", False),
    ],
)
def test_threshold(threshold: Threshold, before: object, after: object, changed: bool) -> None:
    assert threshold.changed(before, after) is changed
    assert Threshold.from_json(threshold.as_json()) == threshold


def test_profile_limit_adds_a_limit() -> None:
    t = Threshold(limits=(0.128,), magnitude=True, profile_limit="max_offset_s")
    assert not t.changed(0.01, 0.05)
    assert t.changed(0.01, 0.05, extra_limits=(0.02,))


def test_table_is_json_and_names_only_known_kinds() -> None:
    table = fields_table(["DnsAnswer", "NoSuchKind"])
    assert list(table) == ["DnsAnswer"]
    assert "rcode" in table["DnsAnswer"]["stable"]
    assert "source_port" not in table["DnsAnswer"]["stable"]
