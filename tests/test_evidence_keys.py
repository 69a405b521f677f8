"""Every observation's evidence says which class it is: `kind` is the plugin's key, never a field's.

RouteDecision once had a field `kind` (its route type) that overwrote the class name in the
evidence (`"kind": "unicast"`): the results table had no RouteDecision entry, `--baseline` could
not find its stable fields and diagnosis read it by the wrong value. These tests keep any
observation from shadowing what the plugin adds, and show a real decision recorded as itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import pkgutil
from typing import Any

from sixcheck import baseline as bl
from sixcheck import probes
from sixcheck.plugin import ADDED_KEYS, observation_record
from sixcheck.probes.base import Observation, fields_table, observation_kinds
from sixcheck.probes.egress import NameRoutes, Route, RouteGet, Rule, decide


def _every_kind() -> dict[str, type[Observation]]:
    """Every observation class sixcheck ships (the probe modules load lazily)."""
    for mod in pkgutil.iter_modules(probes.__path__):
        importlib.import_module(f"{probes.__name__}.{mod.name}")
    return observation_kinds()


def test_no_observation_field_shadows_a_key_the_plugin_adds() -> None:
    kinds = _every_kind()
    assert "RouteDecision" in kinds
    clashes = sorted(
        f"{name}.{f.name}"
        for name, cls in kinds.items()
        for f in dataclasses.fields(cls)
        if f.name in ADDED_KEYS
    )
    assert clashes == [], f"rename these fields, the plugin's {ADDED_KEYS} would be lost: {clashes}"


RULES = [Rule(priority=0, table=255), Rule(priority=32766, table=254)]
ROUTES = [Route(table=254, dst="::/0", interface="eth0", gateway="fe80::1", metric=1024)]
KERNEL = {
    "kind": "unicast",
    "table": 254,
    "interface": "eth0",
    "gateway": "fe80::1",
    "source": "2001:db8:1:1::20",
    "text": "2001:db8:10::10 via fe80::1 dev eth0 table main",
}


def test_a_route_decision_is_recorded_as_one() -> None:
    """The kernel's answer through the probe's own decision code, recorded as `observe` does."""
    d = decide(ipaddress.ip_address("2001:db8:10::10"), KERNEL, RULES, ROUTES)
    record = observation_record(d)
    assert record["kind"] == "RouteDecision"
    assert record["route_type"] == "unicast"
    assert record["interface"] == "eth0"
    nested = observation_record(
        NameRoutes(name="n.example.net", family=6, addresses=(d.dst,), decisions=(d,))
    )
    assert nested["kind"] == "NameRoutes"
    assert nested["decisions"][0]["route_type"] == "unicast"
    # the results JSON declares how to compare it, and a change of route type is one line
    table = fields_table([record["kind"]])
    assert "route_type" in table["RouteDecision"]["stable"]
    hole = observation_record(
        decide(
            ipaddress.ip_address("2001:db8:10::10"),
            {**KERNEL, "kind": "blackhole", "interface": None, "gateway": None},
            RULES,
            [Route(table=254, dst="2001:db8:10::/64", kind="blackhole")],
        )
    )
    before = _doc(RouteGet("2001:db8:10::10"), record, table)
    after = _doc(RouteGet("2001:db8:10::10"), hole, table)
    (change,) = bl.compare(before, after, "b.json").changes
    lines = [f.text() for f in change.evidence]
    assert "route_type unicast → blackhole" in lines, lines
    assert not any(line.startswith("result ") for line in lines), lines


def _doc(req: RouteGet, obs: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    entry = {"request": req.describe(), "observation": obs}
    check = {"id": "checks/test_vpn.py::t", "area": "vpn", "outcome": "passed", "evidence": [entry]}
    return {"schema": "sixcheck-results/1", "checks": [check], "observation_fields": table}
