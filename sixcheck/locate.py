"""Where sixcheck's own files are: the checks, the shipped profiles and contrib/.

The project keeps ``checks/``, ``profiles/`` and ``contrib/`` at the top of its checkout; the wheel
carries the same folders inside the package (``sixcheck/checks`` ...), because a top-level
``checks`` package in site-packages would collide with anyone else's. Everything that needs one of
these folders asks here, so `pytest --profile NAME`, `sixcheck run NAME`, the lab and the demo
work the same from a checkout and from an installed copy in any folder.

Only these two layouts count: a folder called ``checks`` next to an installed sixcheck (say
site-packages/checks) is someone else's and is never used.
"""

from __future__ import annotations

import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def checkout() -> Path | None:
    """The source checkout this sixcheck runs from (editable install or PYTHONPATH), if any."""
    root = PACKAGE.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "sixcheck"' in text else None


def _shipped(name: str) -> Path:
    """``name``'s folder: inside the package when installed, else at the checkout's top."""
    inside = PACKAGE / name
    if inside.is_dir():
        return inside
    root = checkout()
    return root / name if root is not None else inside


def checks_dir() -> Path:
    """The folder of the product's checks (may be missing from a broken install: callers say so)."""
    return _shipped("checks")


def profiles_dir() -> Path:
    """The folder of the shipped profiles (home-gw, the lab's)."""
    return _shipped("profiles")


def contrib_dir() -> Path:
    """The scheduled-audit wrapper, its config and its systemd/cron files."""
    return _shipped("contrib")


@functools.cache
def _checks_resolved() -> Path:
    return checks_dir().resolve()


def check_id(nodeid: str, path: Path) -> str:
    """A check's id as the results record it: ``checks/test_sysctl.py::test_sysctl[...]``.

    pytest's node ids are relative to its rootdir, which follows the folder a run starts in; an
    installed copy started from /var/lib/sixcheck and a checkout started at its root would name
    the same check differently, and baselines (which match on ids) would see every check as gone
    and new. Ids of the product's checks are therefore taken relative to the checks folder's
    parent, in both layouts; anything else keeps pytest's id.
    """
    try:
        rel = Path(path).resolve().relative_to(_checks_resolved())
    except (ValueError, OSError):
        return nodeid
    _, sep, rest = nodeid.partition("::")
    return f"checks/{rel.as_posix()}{sep}{rest}"
