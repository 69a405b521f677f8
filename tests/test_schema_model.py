"""The record base every profile section is built on (`sixcheck.schema.model`).

The profile tests show the wording users see; these pin the rules underneath: nothing coerced,
every problem collected, rules across fields only once the fields are valid, records that cannot
change, and annotations read only when a class first validates data.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Annotated, Literal

import pytest

from sixcheck.schema.base import IPv6Addr, Seconds
from sixcheck.schema.model import After, Before, Field, Strict, ValidationError, invariant


class Inner(Strict):
    port: Annotated[int, Field(ge=1, le=65535)]
    proto: Literal["udp", "tcp"] = "udp"


class Outer(Strict):
    name: str
    weight: float = 1.0
    enabled: bool = False
    via: Literal["link-local", "none"] | IPv6Addr = "link-local"
    inner: Inner | None = None
    inners: list[Inner] = Field(default_factory=list)
    hosts: dict[str, IPv6Addr] = {}
    window: Annotated[Seconds, Field(le=30)] = 2.0
    from_: str | None = Field(default=None, alias="from")
    tag: Annotated[
        str, Before(lambda v: v.strip() if isinstance(v, str) else v), After(str.upper)
    ] = ""

    @invariant
    def _weight_needs_enabled(self) -> None:
        if self.weight != 1.0 and not self.enabled:
            raise ValueError("weight is only used with enabled: true")


def _issues(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate(data)
    return [(".".join(map(str, i.loc)), i.message) for i in exc.value.issues]


def test_valid_data_becomes_typed_values() -> None:
    o = Outer.model_validate(
        {
            "name": "x",
            "via": "2001:db8::1",
            "inners": [{"port": 53, "proto": "tcp"}],
            "hosts": {"a": "2001:db8::2"},
            "from": "there",
            "tag": "  lan ",
            "weight": 2,
            "enabled": True,
        }
    )
    assert o.via == ipaddress.IPv6Address("2001:db8::1")
    assert o.inners == [Inner(port=53, proto="tcp")]
    assert o.hosts == {"a": ipaddress.IPv6Address("2001:db8::2")}
    assert o.from_ == "there"
    assert o.tag == "LAN"  # Before strips the raw value, After sees the checked str
    assert o.weight == 2.0
    assert type(o.weight) is float
    assert o.model_dump(mode="json", by_alias=True)["from"] == "there"
    assert o.model_dump(mode="json")["via"] == "2001:db8::1"
    assert o.model_dump()["via"] == ipaddress.IPv6Address("2001:db8::1")


def test_nothing_is_coerced() -> None:
    assert _issues({"name": 5, "enabled": 1, "weight": True, "inners": [{"port": "53"}]}) == [
        ("name", "Input should be a valid string, got int 5"),
        ("weight", "Input should be a valid number, got bool True"),
        ("enabled", "Input should be a valid boolean, got int 1"),
        ("inners.0.port", "Input should be a valid integer, got str '53'"),
    ]


def test_every_problem_is_reported_with_its_key_path() -> None:
    found = _issues({"inner": {"port": 0, "proto": "sctp", "extra": 1}, "hosts": {"a": "x"}})
    assert found == [
        ("name", "required key is missing"),
        ("inner.port", "Input should be greater than or equal to 1"),
        ("inner.proto", "Input should be 'udp' or 'tcp', got 'sctp'"),
        (
            "inner.extra",
            "unknown key (a typo? see profiles/README.md for the keys of each section)",
        ),
        ("hosts.a", "'x' is not an IPv6 address"),
    ]
    assert _issues({"name": "x", "hosts": {"a": None}}) == [
        ("hosts.a", "expected an IPv6 address as a string, got nothing (the key has no value)")
    ]


def test_a_union_says_what_each_alternative_needed() -> None:
    assert _issues({"name": "x", "via": "gateway"}) == [
        ("via", "Input should be 'link-local' or 'none', got 'gateway'"),
        ("via", "'gateway' is not an IPv6 address"),
    ]


def test_an_outer_bound_narrows_an_inner_one() -> None:
    # Seconds allows up to 3600; this field up to 30, and the message names the tighter bound
    assert _issues({"name": "x", "window": 100}) == [
        ("window", "Input should be less than or equal to 30")
    ]
    assert _issues({"name": "x", "window": float("nan")}) == [
        ("window", "Input should be a finite number")
    ]


def test_length_bounds_are_worded_per_kind() -> None:
    class Sized(Strict):
        items: list[int] = Field(min_length=2)
        names: dict[str, int] = Field(min_length=1)
        text: Annotated[str, Field(max_length=3, pattern=r"^[a-z]+$")] = "ab"

    with pytest.raises(ValidationError) as exc:
        Sized.model_validate({"items": [1], "names": {}, "text": "abcd"})
    assert [i.message for i in exc.value.issues] == [
        "List should have at least 2 items after validation, not 1",
        "Dictionary should have at least 1 item after validation, not 0",
        "String should have at most 3 characters",
    ]
    with pytest.raises(ValidationError) as exc:
        Sized.model_validate({"items": [1, 2], "names": {"a": 1}, "text": "A"})
    assert [i.message for i in exc.value.issues] == ["String should match pattern '^[a-z]+$'"]


def test_rules_across_fields_run_only_on_valid_fields() -> None:
    assert _issues({"name": "x", "weight": 3}) == [("", "weight is only used with enabled: true")]
    # a field problem hides the rule: its message would be about a value that is not there
    assert _issues({"name": 1, "weight": 3}) == [
        ("name", "Input should be a valid string, got int 1")
    ]
    with pytest.raises(ValidationError) as exc:
        Outer.model_validate({"name": "x", "inner": None, "inners": [{"port": 1}, {"port": 99999}]})
    assert [(i.loc, i.message) for i in exc.value.issues] == [
        (("inners", 1, "port"), "Input should be less than or equal to 65535")
    ]


def test_records_are_frozen_equal_by_value_and_hashable() -> None:
    a = Inner.model_validate({"port": 53})
    with pytest.raises(AttributeError):
        a.port = 54  # type: ignore[misc]
    assert a == Inner(port=53)
    assert hash(a) == hash(Inner(port=53))
    assert a != Inner(port=53, proto="tcp")
    assert repr(a) == "Inner(port=53, proto='udp')"
    # a mutable default is copied per record, so one record can never change another's
    x, y = Outer(name="x"), Outer(name="y")
    assert x.hosts == {}
    assert x.hosts is not y.hosts
    assert hash(x) != hash(y)


def test_building_a_record_by_hand_is_validated_too() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Inner(port=0)


def test_annotations_are_read_on_first_use_only() -> None:
    # class creation records field names only; a name the annotation uses is looked up when data
    # is first validated (so an import pays nothing for sections a profile does not have)
    class Later(Strict):
        value: NotDefinedYet  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(NameError):
        Later.model_validate({"value": 1})


def test_the_schema_does_not_load_pydantic() -> None:
    code = "import sys, sixcheck.plugin, sixcheck.schema; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
