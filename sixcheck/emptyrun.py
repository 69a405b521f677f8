"""A run with a profile that checked nothing is an error, never a pass.

pytest ends a session that collected nothing with exit 5 ("no tests ran"); a timer or a script that
treats "not 1" as fine would then report a site as healthy when the checks folder was missing from
the install, a `-k` matched no check, or the profile gave no check a target. The plugin counts the
checks as pytest collects them and, when none is left to run, asks here for the one line that
says why; the run then ends with exit 4 like any other usage error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Tally:
    """The product's checks seen during collection, before any deselection."""

    checks: int = 0
    #: of those, checks the profile gives nothing to check (area absent, no target)
    not_applicable: int = 0

    def seen(self, *, not_applicable: bool) -> None:
        self.checks += 1
        self.not_applicable += not_applicable


@dataclass(frozen=True)
class Selection:
    """What the user asked pytest for, as far as it can leave the checks out."""

    checks_dir: Path
    #: paths named on the command line (empty: sixcheck chose its checks folder)
    paths: tuple[str, ...] = ()
    keyword: str = ""
    markexpr: str = ""
    deselect: tuple[str, ...] = ()


def why_nothing(
    tally: Tally, remaining: int, profile: str, areas: Sequence[str], sel: Selection
) -> str | None:
    """The one-line reason a run of ``profile`` has no check left, or None when some remain."""
    if remaining:
        return None
    head = f"sixcheck: nothing checked for profile {profile}"
    if tally.checks == 0:
        if sel.paths:
            where = ", ".join(sel.paths)
            return (
                f"{head}: no sixcheck checks in {where}; leave the paths out to run the checks "
                f"in {sel.checks_dir}"
            )
        if not sel.checks_dir.is_dir():
            return (
                f"{head}: the checks folder {sel.checks_dir} is missing (an incomplete "
                "install? reinstall sixcheck)"
            )
        return f"{head}: the checks folder {sel.checks_dir} holds no checks"
    applicable = tally.checks - tally.not_applicable
    if applicable == 0:
        return (
            f"{head}: its areas ({', '.join(areas)}) give no check a target (name the "
            "interfaces, resolvers, servers or ports to check; see profiles/README.md)"
        )
    asked = [
        f"{flag} {value!r}" for flag, value in (("-k", sel.keyword), ("-m", sel.markexpr)) if value
    ]
    if sel.deselect:
        asked.append(f"--deselect ({len(sel.deselect)})")
    by = " and ".join(asked) if asked else "the selection options"
    return f"{head}: {by} matched none of its {_checks(applicable)}"


def _checks(n: int) -> str:
    return f"{n} check" if n == 1 else f"{n} checks"
