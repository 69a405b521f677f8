"""Property: whatever text it is given, the loader returns a Profile or raises ProfileError.

Three generators: trees built from the schema's real keys mixed with foreign ones and values of
every YAML type (so many reach deep into each area's validators); the lab profiles with lines
mutated; and raw text of YAML's punctuation. Any other exception (a RecursionError, a ValueError
from a constructor, a TypeError from a validator) is a loader bug: it would reach the user as a
traceback instead of "FILE:LINE: key: what is wrong".
"""

from __future__ import annotations

import math
import os
import types
import typing
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from sixcheck.schema import Profile, ProfileError, parse
from sixcheck.schema.model import Strict

SETTINGS = settings(
    max_examples=int(os.environ.get("SIXCHECK_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def _schema_keys() -> list[str]:
    """Every key any section of the schema knows, found by walking the schema's classes."""
    seen: set[type] = set()
    keys: set[str] = set()

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, Strict):
            if tp in seen:
                return
            seen.add(tp)
            keys.update(tp.fields().values())
            for annotation in tp.field_types().values():
                visit(annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, types.UnionType):
            for arg in tp.__args__:
                visit(arg)

    visit(Profile)
    return sorted(keys)


KEYS = _schema_keys()
LAB_PROFILES = [p.read_text() for p in sorted((REPO / "profiles").glob("*.yaml"))]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(),  # far beyond any range the schema allows
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "2001:db8::1",
            "2001:db8::/64",
            "2001:db8::1/64",
            "192.0.2.1",
            "192.0.2.0/24",
            "fe80::1",
            "fe80::1%eth0",
            "::",
            "::/0",
            "2001:db8::zz",
            "www.example.net",
            "eth0",
            "lo",
            "wan0",
            "router",
            "host",
            "outside",
            "lan",
            "wan",
            "udp",
            "tcp",
            "AAAA",
            "any",
            "nodata",
            "drop",
            "reject",
            "slaac",
            "env:SIXCHECK_TEST_UNSET",
            "",
            " ",
            "\u00e9",
        ]
    ),
)
keys = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(["eth0", "lo", "wan0"]), st.text(max_size=8)
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=40,
)
profiles = st.fixed_dictionaries(
    {"node": st.one_of(st.just({"role": "router"}), trees)},
    optional={
        k: trees
        for k in (
            *("interfaces", "timeouts", "version", "description"),
            *("sysctl", "nd", "routes", "dns", "ntp", "firewall", "tunnel", "vpn"),
        )
    },
)


def _only_profile_or_profile_error(text: str) -> None:
    try:
        result: Profile | ProfileError = parse(text, "fuzz.yaml")
    except ProfileError as exc:
        result = exc
    if isinstance(result, ProfileError):
        assert result.problems, "a ProfileError must carry at least one problem"
        assert all(p.file == "fuzz.yaml" and p.message for p in result.problems)
    else:
        assert isinstance(result, Profile)


@SETTINGS
@given(profiles)
def test_generated_trees(tree: dict[str, Any]) -> None:
    _only_profile_or_profile_error(yaml.safe_dump(tree, allow_unicode=True))


@SETTINGS
@given(
    st.sampled_from(LAB_PROFILES),
    st.lists(st.tuples(st.integers(0, 200), st.text(max_size=12)), min_size=1, max_size=4),
)
def test_mutated_lab_profiles(text: str, edits: list[tuple[int, str]]) -> None:
    lines = text.splitlines()
    for pos, junk in edits:
        i = pos % len(lines)
        cut = pos % (len(lines[i]) + 1)
        lines[i] = lines[i][:cut] + junk + lines[i][cut:]
    _only_profile_or_profile_error("\n".join(lines) + "\n")


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("[]{}:-,&*!|>'\"#%@`? \n\tab0.~")), max_size=80))
def test_yaml_punctuation(text: str) -> None:
    _only_profile_or_profile_error(text)


def test_lab_profiles_still_load() -> None:
    """The generators start from real profiles: those must load."""
    for path in sorted((REPO / "profiles").glob("*.yaml")):
        assert isinstance(parse(path.read_text(), str(path)), Profile)


def test_nan_and_huge_values_do_not_slip_through() -> None:
    for value in ("nan", "inf", str(10**40), "1e400"):
        text = f"node: {{role: host}}\nsysctl: {{all: {{forwarding: 1}}}}\ntimeouts: {{probe: {value}}}\n"
        try:
            p = parse(text, "x.yaml")
        except ProfileError:
            continue
        assert math.isfinite(p.timeouts.probe), value
        assert 0 < p.timeouts.probe <= 3600, value


def test_keys_found() -> None:
    assert {"node", "role", "resolvers", "forwarding", "hosts"} <= set(KEYS)
