"""Shared helpers for sixcheck's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def load_checks(area: str) -> Any:
    """checks/test_AREA.py as a module, for unit tests that call its checks with crafted
    observations (registered in sys.modules: its dataclasses look their module up)."""
    import importlib.util

    name = f"sixcheck_checks_{area}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / f"checks/test_{area}.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def run_sixcheck(
    *args: str, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pytest ARGS` as a user would, in the repository, without a namespace."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(page: Path, tmp: Path, *args: str) -> str:
    """Headless Chromium on a local page (`--dump-dom`, `--screenshot=...`); its stdout. Offline:
    no background networking, no sync, a profile of its own under `tmp`."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=dict(os.environ, HOME=str(tmp)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
