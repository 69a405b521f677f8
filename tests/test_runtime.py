"""Where a profile run may write (sixcheck.runtime), without a lab: --collect-only probes nothing.

A small plugin passed with `-p` reports what the run set up: the XDG folders, bytecode, and
whether pytest's cache provider is loaded. The full proof (every lab profile as the systemd unit
would run it) is tests/test_unit_sandbox_lab.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from sixcheck.runtime import XDG_VARS, cannot_write

SPY = f"""
import json, os, sys, tempfile
XDG_VARS = {XDG_VARS!r}

def pytest_collection_finish(session):
    pm = session.config.pluginmanager
    seen = {{
        "xdg": {{v: os.environ.get(v) for v in XDG_VARS}},
        "tmp": tempfile.gettempdir(),
        "bytecode_off": sys.dont_write_bytecode,
        "cacheprovider": pm.get_plugin("cacheprovider") is not None,
        "scapy": "scapy" in sys.modules,
    }}
    with open(os.environ["SPY_OUT"], "w") as fh:
        json.dump(seen, fh)
"""

PROFILE = "node: {role: host}\nntp: {servers: ['2001:db8::123']}\n"


def _run(tmp_path: Path, *args: str, home: str | None = None) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    (tmp_path / "spy_plugin.py").write_text(SPY)
    work = tmp_path / "work"  # no pytest ini here: only sixcheck can turn the cache off
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PYTHONDONTWRITE"))}
    env.pop("HOME", None)
    if home is not None:
        env["HOME"] = home
    env["PYTHONPATH"] = str(tmp_path)
    env["SPY_OUT"] = str(tmp_path / "spy.json")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "spy_plugin", "--collect-only", "-q", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    spy = tmp_path / "spy.json"
    seen = json.loads(spy.read_text()) if spy.exists() else {}
    return proc.returncode, seen, proc.stdout + proc.stderr


def test_profile_run_confines_caches_bytecode_and_pytest_cache(tmp_path: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text(PROFILE)
    home = tmp_path / "home"
    home.mkdir()
    rc, seen, out = _run(tmp_path, "--profile", str(profile), home=str(home))
    assert rc == 0, out
    assert seen["bytecode_off"] is True
    assert seen["cacheprovider"] is False
    private = {Path(p).parent for p in seen["xdg"].values()}
    assert len(private) == 1, seen  # one private folder ...
    (folder,) = private
    assert folder.parent == Path(seen["tmp"])  # ... in the system temporary folder ...
    assert folder.name.startswith("sixcheck-")
    assert not folder.exists()  # ... removed when the run ends
    assert not list(home.iterdir())  # HOME untouched
    assert not (tmp_path / "work" / ".pytest_cache").exists()
    assert not list((tmp_path / "work").rglob("__pycache__"))


def test_no_home_at_all_is_fine(tmp_path: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text(PROFILE)
    rc, seen, out = _run(tmp_path, "--profile", str(profile), home=None)
    assert rc == 0, out
    assert all(v for v in seen["xdg"].values()), seen


def test_without_a_profile_pytest_is_left_alone(tmp_path: Path) -> None:
    """sixcheck's plugin is loaded by every pytest run of the venv: only profile runs change."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "test_x.py").write_text("def test_x():\n    pass\n")
    rc, seen, out = _run(tmp_path)
    assert rc == 0, out
    assert seen["cacheprovider"] is True
    assert seen["xdg"] == {v: None for v in XDG_VARS}


def test_unwritable_output_is_exit_4_before_collection(tmp_path: Path) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text(PROFILE)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    prom = blocker / "site.prom"
    rc, seen, out = _run(
        tmp_path, "--profile", str(profile), "--no-report", "--prometheus", str(prom)
    )
    assert rc == 4, out
    assert "cannot save this run's results" in out
    assert f"--prometheus {prom}: {blocker} is not a folder" in out
    assert seen == {}  # stopped before collection, so before any probe


def test_cannot_write_accepts_creatable_paths(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    assert cannot_write([("--report-dir", deep, True)]) == []
    assert cannot_write([("--json-file", deep / "r.json", False)]) == []
    assert cannot_write([("--report-dir", REPO / "README.md", True)]) != []
