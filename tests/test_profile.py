"""Profile loading: every bad profile becomes ProfileError problems with file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sixcheck.schema import ProfileError, list_profiles, load, parse

GOOD = """\
description: test
node: {role: router}
interfaces:
  wan0: {role: wan, upstream_ra: true}
sysctl:
  all: {forwarding: 1}
  interfaces:
    wan0: {accept_ra: 2}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as exc:
        parse(text, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_good_profile_parses() -> None:
    p = parse(GOOD, "p.yaml")
    assert p.node.role == "router"
    assert p.sysctl is not None
    assert p.sysctl.interfaces["wan0"].accept_ra == 2
    assert p.areas() == ["sysctl"]


def test_unknown_key_names_line_and_path() -> None:
    out = problems(GOOD.replace("accept_ra: 2", "acept_ra: 2"))
    assert out == [
        "p.yaml:8: sysctl.interfaces.wan0.acept_ra: unknown key (a typo? see profiles/README.md "
        "for the keys of each section)"
    ]


def test_unknown_top_level_key() -> None:
    assert problems(GOOD + "dsn: {}\n")[0].startswith("p.yaml:9: dsn: unknown key")


def test_every_problem_reported_at_once() -> None:
    bad = GOOD.replace("forwarding: 1", "forwarding: 7").replace("accept_ra: 2", "accept_ra: yes")
    out = problems(bad)
    assert len(out) == 2
    assert "sysctl.all.forwarding" in out[0]
    assert "sysctl.interfaces.wan0.accept_ra" in out[1]


def test_wrong_type_is_not_coerced() -> None:
    out = problems(GOOD.replace("accept_ra: 2", 'accept_ra: "2"'))
    assert "valid integer" in out[0]
    assert "'2'" in out[0]


def test_yaml_syntax_error_names_line() -> None:
    out = problems("node: {role: router\nsysctl: {}\n")
    assert out[0].startswith("p.yaml:2: YAML syntax error")


def test_duplicate_keys_are_errors() -> None:
    out = problems(GOOD + "node: {role: host}\n")
    assert out == ["p.yaml:9: node: duplicate key (the later one would win)"]


def test_bad_interface_name() -> None:
    out = problems(GOOD.replace("  wan0: {role: wan", "  wan/0: {role: wan"))
    assert any("cannot be a Linux interface name" in o for o in out)


def test_undeclared_interface_in_sysctl() -> None:
    out = problems(GOOD.replace("    wan0: {accept_ra: 2}", "    eth9: {accept_ra: 2}"))
    assert "eth9" in out[0]
    assert "not declared" in out[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the profile is empty"),
        ("- a\n- b\n", "a profile is a mapping"),
        ("node: {role: switch}\n", "'router', 'host' or 'outside'"),
        ("description: x\n", "node: required key is missing"),
    ],
)
def test_shapes(text: str, message: str) -> None:
    assert message in "\n".join(problems(text))


def test_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load(tmp_path / "missing.yaml")
    with pytest.raises(ProfileError, match="is a directory"):
        load(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ProfileError, match="not UTF-8"):
        load(bad)
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        load("nope", [tmp_path])


def test_loaded_profile_has_name_and_hash(tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(GOOD)
    loaded = load(str(f))
    assert loaded.name == "site"
    assert len(loaded.sha256) == 64


def test_shipped_profiles_are_valid() -> None:
    shipped = list_profiles()
    assert shipped, "no profiles shipped"
    for name, path, desc in shipped:
        assert not desc.startswith("(invalid"), f"{path}: {desc}"
        load(name)
