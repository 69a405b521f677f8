"""Where a run may write: its reports, the paths it was given, and its system temporary folder.

The scheduled audit runs as a dedicated user with CAP_NET_RAW only, on a read-only system whose
HOME is absent or unreadable (systemd's ProtectSystem=strict, ProtectHome=yes, PrivateTmp=yes). A
library that caches into HOME, pytest's own cache, or bytecode written next to the checks would
either change the machine behind the operator's back or, where it cannot write, fail a check
that has nothing to do with the network. So a sixcheck run, before anything is imported or
probed:

- points the XDG cache/config/data folders (scapy's services/manuf pickles and its config
  folder; any other library following XDG) at a private folder in the system temporary folder,
  removed when the run ends: whether HOME is set, readable or writable no longer matters;
- writes no bytecode (pytest's rewritten checks, modules imported during the run) and blocks
  pytest's cache provider (.pytest_cache and the `--lf`/stepwise state); pytest's assert
  rewriting is switched off for what is imported later, as it could never be cached;
- checks that the report folder and every output path can be written, so a run that could not
  save its results stops with exit 4 before a single probe (never after an hour of probing).
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest

#: XDG base folders a library may write (or create) under HOME when these are unset.
XDG_VARS = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
#: pytest plugins that write state into the rootdir (.pytest_cache); `-p no:cacheprovider`
#: blocks the same two.
STATEFUL_PLUGINS = ("cacheprovider", "stepwise")


def confine(pluginmanager: pytest.PytestPluginManager) -> Path:
    """Keep this process's writes to the places a run may write; returns the private folder.

    Called from the plugin's earliest hook, before conftests and checks are imported (so no
    bytecode is written for them) and before any probe imports scapy (which reads its cache
    folder once, at import)."""
    sys.dont_write_bytecode = True
    # pytest rewrites the asserts of every module it claims (the checks, and in an installed wheel
    # all of sixcheck as a plugin's distribution) and, with no bytecode kept, redid that on every
    # run (~0.1-0.3 s). A check's assert already says expected, found and what to do, and the
    # plugin shows only that message, so the modules imported from here on load unrewritten.
    hook = getattr(pluginmanager, "rewrite_hook", None)
    if hook in sys.meta_path:
        sys.meta_path.remove(hook)
    for name in STATEFUL_PLUGINS:
        pluginmanager.set_blocked(name)
    private = Path(tempfile.mkdtemp(prefix="sixcheck-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    for var in XDG_VARS:
        os.environ[var] = str(private / var.removeprefix("XDG_").removesuffix("_HOME").lower())
    return private


def cannot_write(paths: Iterable[tuple[str, Path, bool]]) -> list[str]:
    """One line per output that this process cannot write: (option, path, is_folder).

    A folder must exist or be creatable and accept new files; a file's folder must accept new
    files (reports and the textfile are written to a temporary name and renamed), and an
    existing file must be writable. Checked with access(2) for this process's real ids, which
    also reports a read-only mount (EROFS)."""
    problems = []
    for option, path, is_folder in paths:
        folder = path if is_folder else path.parent
        existing = _nearest_existing(folder)
        who = f"uid {os.getuid()}"
        if existing is None or not existing.is_dir():
            problems.append(f"{option} {path}: {existing} is not a folder")
        elif not os.access(existing, os.W_OK | os.X_OK):
            why = "a read-only file system" if _read_only(existing) else f"not writable by {who}"
            problems.append(
                f"{option} {path}: {existing} is {why}; give a folder this user may write "
                "(for the systemd unit: one of its ReadWritePaths)"
            )
        elif not is_folder and path.exists() and not os.access(path, os.W_OK):
            problems.append(f"{option} {path}: the file exists and is not writable by {who}")
    return problems


def _nearest_existing(folder: Path) -> Path | None:
    """The folder itself, or the closest ancestor that exists (where mkdir would happen)."""
    for candidate in (folder, *folder.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:  # an unreadable ancestor: stat fails with EACCES
            return candidate
    return None


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def outputs(config: pytest.Config, reports_off: bool) -> list[tuple[str, Path, bool]]:
    """Every place this run was told to write: (option, path, is_folder)."""
    wanted: list[tuple[str, Path, bool]] = []
    if not reports_off:
        wanted.append(("--report-dir", Path(config.getoption("report_dir")), True))
    for option, dest in (
        ("--json-file", "json_file"),
        ("--prometheus", "prometheus"),
        ("--junitxml", "xmlpath"),
        ("--html", "htmlpath"),
    ):
        value = config.getoption(dest, None)
        if value:
            wanted.append((option, Path(value), False))
    return wanted


def settle() -> None:
    """Move everything loaded so far (pytest, the profile, the checks, the probe modules) out of the
    garbage collector's view, once collection is done.

    pytest's unraisable-exception plugin runs full collections at the end of every session, and
    each walked these long-lived objects again (~40 ms a collection on this machine). Garbage
    the run itself makes is still collected; the frozen objects live until exit anyway."""
    gc.freeze()
