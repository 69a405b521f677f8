"""Running sixcheck as another user when the interpreter sits where that user cannot go.

The tests that drop to `nobody` run the test venv's python. Its interpreter often lives below a
folder only root may enter (a pyenv under /root, mode 0700), so `nobody` cannot even start it
and such a test could only skip. Rather than loosen a folder on the machine, each run gets a
private mount namespace in which every such folder is covered by an empty tmpfs showing only
the subtrees the run needs (interpreter, venv, repository), bound in from the original: what an
installed sixcheck's interpreter looks like to its user. Nothing outside that view changes.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from conftest import REPO

NOBODY = 65534
#: `setpriv` to nobody with no capability at all (permitted and effective sets are cleared by
#: the uid change; inheritable and ambient ones explicitly).
AS_NOBODY = (
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=-all",
    "--ambient-caps=-all",
)


def needed() -> list[Path]:
    """What a sixcheck run from this checkout reads: interpreter, venv, base install, repo."""
    return [Path(os.path.realpath(p)) for p in (sys.executable, sys.prefix, sys.base_prefix, REPO)]


def closed_folders(paths: Iterable[Path]) -> dict[Path, set[str]]:
    """{folder others cannot enter: the names in it that lead to `paths`}, for every such
    folder on the way to each path (a closed folder inside a shown subtree needs its own)."""
    out: dict[Path, set[str]] = {}
    for path in paths:
        for folder in reversed(path.parents):
            if folder != Path("/") and not os.stat(folder).st_mode & stat.S_IXOTH:
                out.setdefault(folder, set()).add(path.parts[len(folder.parts)])
    return out


def reveal_script(paths: Iterable[Path] | None = None) -> str:
    """Shell lines (bash, as root, in a private mount namespace) that let any user reach
    `paths` (default: `needed()`) and nothing else of the folders on the way that are closed
    to them. Ends in the folder it started in, by path: the view there is the new one."""
    folders = closed_folders(needed() if paths is None else paths)
    lines = ["_reveal_start=$PWD"]
    for folder in sorted(folders, key=lambda f: len(f.parts)):  # outer before inner
        q = shlex.quote(str(folder))
        # the shell's cwd keeps the original folder reachable once the tmpfs covers its path
        lines += [f"cd {q}", f"mount -t tmpfs -o mode=755 sixcheck-reveal {q}"]
        for name in sorted(folders[folder]):
            inside = shlex.quote(str(folder / name))
            make = "mkdir" if (folder / name).is_dir() else "touch"
            lines += [
                f"{make} {inside}",
                f"mount --no-canonicalize --bind {shlex.quote('./' + name)} {inside}",
            ]
    lines.append('cd "$_reveal_start"')
    return "\n".join(lines) + "\n"


def in_view(script: str, cmd: Sequence[str]) -> list[str]:
    """argv: `script` (bash, after `reveal_script()`) in a private mount namespace, with `cmd`
    as its "$@"."""
    body = f"set -euo pipefail\n{reveal_script()}{script}"
    return ["unshare", "-m", "--propagation", "private", "bash", "-c", body, "reveal", *cmd]


def as_nobody(cmd: Sequence[str]) -> list[str]:
    """argv: `cmd` as nobody without capabilities, able to start this checkout's python."""
    setpriv = " ".join(shlex.quote(a) for a in AS_NOBODY)
    return in_view(f'exec setpriv {setpriv} -- "$@"\n', cmd)
