"""sixcheck as users get it: a wheel, installed into a fresh venv, run from any folder.

The wheel is built from a copy of this tree, installed with its dependencies into a new venv
outside the source tree, and driven from a temporary folder: the shipped profiles resolve by
name, `sixcheck run` and `pytest --profile` run the installed checks (inside a network namespace
made for the purpose) and write their reports, and a run that checks nothing exits 4 saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, needs_root, run_sixcheck
from sixcheck import emptyrun, locate

#: a profile with one check that every network namespace passes (the loopback's IPv6 switch)
LOOPBACK = (
    "description: loopback only\nnode: {role: host}\ninterfaces: {lo: {role: other}}\n"
    "sysctl:\n  interfaces: {lo: {disable_ipv6: 0}}\n"
)
SHIPPED = ["home-gw", "lab-gw", "lab-lan", "lab-out", "lab-vpn"]


def _run(
    argv: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
    )


def _tracked(*tops: str) -> list[str]:
    """Files of the tree as git sees them (tracked, or new and not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *tops],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


# ---------------------------------------------------------------------------------------------
# without building anything


def test_every_subpackage_is_in_the_wheel_config() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "sixcheck").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(found - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"


def test_a_checkout_finds_its_own_folders() -> None:
    assert locate.checkout() == REPO
    assert locate.checks_dir() == REPO / "checks"
    assert locate.profiles_dir() == REPO / "profiles"
    assert (locate.contrib_dir() / "sixcheck-audit").is_file()


def test_check_ids_do_not_depend_on_the_folder_a_run_starts_in() -> None:
    path = locate.checks_dir() / "test_sysctl.py"
    for nodeid in ("test_sysctl.py::t[a::1]", "../../x/checks/test_sysctl.py::t[a::1]"):
        assert locate.check_id(nodeid, path) == "checks/test_sysctl.py::t[a::1]"
    other = REPO / "tests" / "test_x.py"
    assert locate.check_id("tests/test_x.py::t", other) == "tests/test_x.py::t"


def test_nothing_checked_names_why(tmp_path: Path) -> None:
    sel = emptyrun.Selection(tmp_path / "checks")
    why = emptyrun.why_nothing(emptyrun.Tally(), 0, "p", ["sysctl"], sel)
    assert why is not None
    assert "the checks folder" in why
    assert "is missing" in why
    tally = emptyrun.Tally(checks=3, not_applicable=3)
    why = emptyrun.why_nothing(tally, 0, "p", ["sysctl"], sel)
    assert why is not None
    assert "areas (sysctl) give no check a target" in why
    tally = emptyrun.Tally(checks=3, not_applicable=2)
    keyword = emptyrun.Selection(tmp_path, keyword="dns")
    assert emptyrun.why_nothing(tally, 0, "p", ["sysctl"], keyword) == (
        "sixcheck: nothing checked for profile p: -k 'dns' matched none of its 1 check"
    )
    assert emptyrun.why_nothing(tally, 1, "p", ["sysctl"], keyword) is None
    paths = emptyrun.Selection(tmp_path, paths=("tests/",))
    why = emptyrun.why_nothing(emptyrun.Tally(), 0, "p", ["sysctl"], paths)
    assert why is not None
    assert "no sixcheck checks in tests/" in why


def test_a_profile_without_targets_exits_4(tmp_path: Path) -> None:
    """Collection ends the run before any probe: safe outside a namespace."""
    f = tmp_path / "none.yaml"
    f.write_text(
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n  interfaces: {lo: {}}\n"
    )
    proc = run_sixcheck("--profile", str(f), "--no-report")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "its areas (sysctl) give no check a target" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_keyword_matching_nothing_exits_4(tmp_path: Path) -> None:
    f = tmp_path / "lo.yaml"
    f.write_text(LOOPBACK)
    proc = run_sixcheck("--profile", str(f), "--no-report", "-k", "nothing-matches")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "-k 'nothing-matches' matched none of its 1 check" in proc.stderr


def test_the_command_and_python_m_are_one(tmp_path: Path) -> None:
    cmd = Path(sys.executable).with_name("sixcheck")
    if not cmd.exists():
        pytest.skip("no sixcheck console script beside this python (not installed with pip)")
    a = _run([str(cmd), "profiles"], tmp_path)
    b = _run([sys.executable, "-m", "sixcheck", "profiles"], tmp_path)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout
    assert all(name in a.stdout for name in SHIPPED)


def test_lab_help_names_the_command_it_was_called_by(tmp_path: Path) -> None:
    via_cli = _run([sys.executable, "-m", "sixcheck", "lab", "--help"], tmp_path)
    via_module = _run([sys.executable, "-m", "sixcheck.lab", "--help"], tmp_path)
    assert via_cli.stdout.startswith("usage: sixcheck lab "), via_cli.stdout
    assert via_module.stdout.startswith("usage: python -m sixcheck.lab "), via_module.stdout


def test_cli_usage_errors_exit_4(tmp_path: Path) -> None:
    run = _run([sys.executable, "-m", "sixcheck", "run"], tmp_path)
    assert run.returncode == 4
    assert "name a profile first" in run.stderr
    bogus = _run([sys.executable, "-m", "sixcheck", "no-such-command"], tmp_path)
    assert bogus.returncode == 4
    assert "invalid choice" in bogus.stderr
    site = _run([sys.executable, "-m", "sixcheck", "site", "--help"], tmp_path)
    try:
        import sixcheck.siteview  # noqa: F401
    except ModuleNotFoundError:
        assert site.returncode == 4
        assert site.stderr.strip() == (
            "sixcheck site: not available in this build (no sixcheck.siteview)"
        )
    else:
        assert "not available" not in site.stderr


# ---------------------------------------------------------------------------------------------
# the wheel, installed


def _new_setuptools() -> bool:
    """The dev extra brings setuptools >= 77: builds need no isolated env to download."""
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel users get, built from this tree's sdist (so both carry the product) in a copy of
    the tree (the tree itself gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for f in _tracked():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_bytes((REPO / f).read_bytes())
        (src / f).chmod((REPO / f).stat().st_mode)
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist)]
    if _new_setuptools():
        sdist = "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])"
        proc = _run([sys.executable, "-c", sdist, str(dist)], src)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (built,) = dist.glob("sixcheck-*.tar.gz")
        proc = _run([*pip_wheel, "--no-build-isolation", str(built)], dist)
    else:
        proc = _run([*pip_wheel, str(src)], src)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = dist.glob("sixcheck-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the source tree with the wheel and its dependencies, as pip gives
    them to a user (from pip's index and cache; --no-compile keeps it quick)."""
    root = tmp_path_factory.mktemp("venv")
    assert not root.is_relative_to(REPO)
    proc = _run([sys.executable, "-m", "venv", "--without-pip", str(root)], root)
    assert proc.returncode == 0, proc.stderr
    python = root / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    proc = _run([*install, "--no-compile", str(wheel)], root, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


@pytest.mark.slow
def test_wheel_carries_the_product(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"sixcheck", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    expected = [f for f in _tracked("sixcheck") if "__pycache__" not in f]
    for top in ("checks", "profiles", "contrib"):  # mapped into the package
        expected += [f"sixcheck/{f}" for f in _tracked(top)]
    missing = sorted(set(expected) - names)
    assert not missing, f"not in the wheel (package data in pyproject.toml?): {missing}"
    meta = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/METADATA")
    assert b"License-Expression: MIT" in meta
    entry = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt")
    assert b"sixcheck = sixcheck.cli:entry" in entry
    assert b"sixcheck = sixcheck.plugin" in entry


@pytest.mark.slow
def test_installed_lists_the_shipped_profiles(venv: Path, tmp_path: Path) -> None:
    bin_ = venv / "bin"
    for argv in (
        [str(bin_ / "sixcheck"), "profiles"],
        [str(bin_ / "python"), "-m", "sixcheck", "profiles"],
        [str(bin_ / "pytest"), "-p", "no:cacheprovider", "--list-profiles"],
    ):
        proc = _run(argv, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for name in SHIPPED:
            assert f"{name} " in proc.stdout, f"{argv}: {name} missing\n{proc.stdout}"
        assert str(venv) in proc.stdout  # from the installed copy, not this checkout
        assert str(REPO) not in proc.stdout
    where = _run([str(bin_ / "sixcheck"), "contrib"], tmp_path)
    assert (Path(where.stdout.strip()) / "systemd" / "sixcheck-audit.service").is_file()
    assert os.access(Path(where.stdout.strip()) / "sixcheck-audit", os.X_OK)


@needs_root
@pytest.mark.slow
def test_installed_runs_from_any_folder(venv: Path, tmp_path: Path) -> None:
    from sixcheck.lab import netns

    bin_ = venv / "bin"
    profile = tmp_path / "lo.yaml"
    profile.write_text(LOOPBACK)
    work = tmp_path / "work"
    work.mkdir()
    with netns.temp_netns("sxpkg") as ns:
        runs = {
            "sixcheck run": [str(bin_ / "sixcheck"), "run", str(profile)],
            "pytest --profile": [str(bin_ / "pytest"), "--profile", str(profile)],
        }
        for what, argv in runs.items():
            reports = tmp_path / what.replace(" ", "-")
            proc = _run(netns.exec_argv(ns, [*argv, "--report-dir", str(reports)]), work)
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{out}"
            summary = proc.stdout.strip().splitlines()[-1]
            assert "1 passed" in summary, out
            assert "warning" not in summary, out  # e.g. pytest unable to rewrite a module
            (js,) = reports.glob("lo-*.json")
            assert list(reports.glob("lo-*.html")), f"{what}: no HTML report"
            data = json.loads(js.read_text())
            assert [c["id"] for c in data["checks"]] == [
                "checks/test_sysctl.py::test_sysctl[net.ipv6.conf.lo.disable_ipv6]"
            ], what
            assert data["summary"]["passed"] == 1, data["summary"]
        nothing = [str(bin_ / "sixcheck"), "run", str(profile), "--no-report"]
        proc = _run(netns.exec_argv(ns, [*nothing, "-k", "nothing-matches"]), work)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "-k 'nothing-matches' matched none of its 1 check" in proc.stderr
        # a shipped profile by name, from the installed checks (collection only: no probe)
        proc = _run(
            netns.exec_argv(ns, [str(bin_ / "sixcheck"), "run", "lab-gw", "--co", "-q"]), work
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "checks/test_" in proc.stdout or "test_sysctl.py::" in proc.stdout
        # an install that lost its checks folder checks nothing: exit 4, never a pass
        checks = next(venv.glob("lib/python*/site-packages/sixcheck/checks"))
        checks.rename(checks.with_name("checks-away"))
        try:
            proc = _run(netns.exec_argv(ns, nothing), work)
        finally:
            checks.with_name("checks-away").rename(checks)
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert f"the checks folder {checks} is missing" in proc.stderr
    # reports go where --report-dir says, never into the folder a run starts in
    assert not [p for p in work.rglob("*") if p.suffix in (".html", ".json")]
