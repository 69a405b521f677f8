"""The audit runs as its hardened systemd unit runs it, without systemd.

contrib/systemd/sixcheck-audit.service promises: a dedicated unprivileged user with CAP_NET_RAW
only, ProtectSystem=strict (everything read-only but /dev, /proc, /sys), ProtectHome, PrivateTmp,
and only the report and textfile folders writable. Each lab profile runs in its node that way:

- a private mount namespace (`unshare -m`) in which every mount is remounted read-only except the
  kernel's (/proc, /sys, /dev), a fresh /tmp and /var/tmp, and the report and textfile folders;
- `setpriv` to an unprivileged user (nobody) with CAP_NET_RAW as its only capability (inheritable,
  ambient and bounding set: what AmbientCapabilities=/CapabilityBoundingSet= give), no new
  privileges, a clean environment;
- HOME an existing folder the user cannot read, with root's caches in it (what `sudo -u` or
  `setpriv` without resetting HOME gives), or no HOME at all.

Every check that passes as root passes there too, raw-socket ones included; reports, JSON and the
Prometheus textfile are written; nothing else on the filesystem changed (a listing of mtimes
before and after). An unwritable --report-dir stops the run with exit 4 before any probe.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from unprivileged import NOBODY, in_view, needed

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"u{os.getpid()}"
PROFILES = {"gw": "lab-gw", "lan": "lab-lan", "out": "lab-out", "vpn": "lab-vpn"}
USER = NOBODY  # an account with no HOME of its own to write
#: Checks whose probes open raw sockets: they must pass with CAP_NET_RAW alone.
RAW_CHECKS = ("test_ra_received", "test_no_rogue_router")

#: Runs as root inside `unshare -m` in the node's network namespace; builds the unit's view of
#: the filesystem, then drops to the user with CAP_NET_RAW only and execs "$@".
#: The interpreter may live below a folder the user cannot enter (a pyenv under /root):
#: `unprivileged.in_view` first shows only the subtrees the run needs (this view only).
SANDBOX = r"""
base=$1; user=$2; shift 2
start=$PWD
# PrivateTmp=yes: a fresh /tmp and /var/tmp; what the run needs there (the test's own folder,
# and the checkout and venv when CI cloned them below /tmp) stays at its path
{private_tmp}
# ReadWritePaths=: the report and textfile folders
mount --bind "$base/reports" "$base/reports"
mount --bind "$base/textfile" "$base/textfile"
# ProtectSystem=strict: every other mount read-only, but the kernel's API file systems
while read -r _ target _ opts _; do
  target=$(printf '%b' "$target")
  case "$target" in
    /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/tmp|/var/tmp) continue ;;
    "$base/reports"|"$base/textfile") continue ;;
  esac
  case ",$opts," in *,ro,*) continue ;; esac
  mount -o remount,bind,ro "$target" || [ "$target" != / ]
done < /proc/self/mounts
cd "$start" 2>/dev/null || cd /
exec setpriv --reuid="$user" --regid="$user" --clear-groups --no-new-privs \
  --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw -- "$@"
"""


def private_tmp(keep: list[Path]) -> str:
    """Shell lines that put fresh tmpfs on /tmp and /var/tmp and bind the folders of `keep`
    that lie below them back at their paths (each held open by a descriptor while covered;
    the kernel follows /proc/PID/fd/N to the folder itself, not to its now hidden path)."""
    tmps = (Path("/tmp"), Path("/var/tmp"))
    kept: list[Path] = []
    for p in sorted({Path(os.path.realpath(k)) for k in keep}, key=lambda p: len(p.parts)):
        if any(t in p.parents for t in tmps) and not any(k in p.parents for k in kept):
            kept.append(p)
    lines = [f"exec {10 + i}<{shlex.quote(str(p))}" for i, p in enumerate(kept)]
    lines += [f"mount -t tmpfs -o mode=1777 sixcheck-{t.name} {t}" for t in tmps]
    for i, p in enumerate(kept):
        q = shlex.quote(str(p))
        lines += [f"mkdir -p {q}", f"mount --no-canonicalize --bind /proc/$$/fd/{10 + i} {q}"]
    return "\n".join(lines)


def listing(roots: list[Path], owner: int | None = None) -> dict[str, tuple[int, int, int]]:
    """path -> (mtime_ns, size, mode) of every file and folder below `roots` (not following
    links); with `owner`, only entries of that user (a shared folder such as /dev/shm)."""
    out: dict[str, tuple[int, int, int]] = {}
    todo = list(roots)
    while todo:
        top = todo.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if owner is None or st.st_uid == owner:
                out[e.path] = (st.st_mtime_ns, st.st_size, st.st_mode)
            if e.is_dir(follow_symlinks=False):
                todo.append(Path(e.path))
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


class Unit:
    """A base folder (reports, textfile, unreadable home) and the sandboxed runs in it."""

    def __init__(self, lab: Lab, base: Path) -> None:
        self.lab = lab
        self.base = base
        for sub, mode in (("reports", 0o777), ("textfile", 0o777), ("home", 0o711)):
            (base / sub).mkdir()
            (base / sub).chmod(mode)
        # HOME as `sudo -u` leaves it (root's): the user may not list it, and the caches in it
        # exist but are root's (scapy stats ~/.cache/scapy/*.pickle and got EACCES: issue 18)
        for sub in (".cache/scapy", ".config/scapy"):
            (base / "home" / sub).mkdir(parents=True, mode=0o700)
            (base / "home" / sub).parent.chmod(0o700)
        (base / "ro-reports").mkdir(mode=0o755)

    def run(self, node: str, home: bool = True, report_dir: str | None = None) -> Any:
        """Run the node's profile as the unit's ExecStart does: `sixcheck audit CONFIG`."""
        name = PROFILES[node]
        env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG=C.UTF-8"]
        if home:
            env.append(f"HOME={self.base / 'home'}")
        tag = f"{node}-{'home' if home else 'nohome'}{'-given' if report_dir else ''}"
        config = self.base / f"{tag}.conf"
        config.write_text(
            f"SIXCHECK_PROFILE={REPO / 'profiles' / name}.yaml\n"
            f"SIXCHECK_REPORT_DIR={report_dir or self.base / 'reports' / tag}\n"
            f"SIXCHECK_PROMETHEUS={self.base / 'textfile' / tag}.prom\n"
            f"SIXCHECK_ARGS='--json-file {self.base / 'reports' / tag}.json'\n"
        )
        cmd = [*env, sys.executable, "-m", "sixcheck", "audit", str(config)]
        argv = netns.exec_argv(
            self.lab.ns(node),
            in_view(
                SANDBOX.replace("{private_tmp}", private_tmp([self.base, *needed()])),
                [str(self.base), str(USER), *cmd],
            ),
        )
        proc = subprocess.run(
            argv, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
        )
        f = self.base / "reports" / f"{tag}.json"
        data = json.loads(f.read_text()) if f.exists() else {"checks": []}
        return proc.returncode, data, proc.stdout + proc.stderr, tag


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"].split("::", 1)[1]: c for c in data["checks"]}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        lab.up()
        yield lab


@pytest.fixture(scope="module")
def as_root(lab: Lab) -> Iterator[dict[str, set[str]]]:
    """What passes when each profile runs as root: the bar the sandboxed runs must meet."""
    out = Path(tempfile.mkdtemp(prefix="sixcheck-root-"))
    try:
        passed = {}
        for node, name in PROFILES.items():
            f = out / f"{node}.json"
            netns.run_pytest_in(
                lab.ns(node),
                ["--profile", f"profiles/{name}.yaml", "--no-report", "--json-file", str(f)],
                REPO,
                timeout=240,
            )
            data = json.loads(f.read_text()) if f.exists() else {"checks": []}
            passed[node] = {k for k, c in _by_id(data).items() if c["outcome"] == "passed"}
        yield passed
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def unit(lab: Lab) -> Iterator[Unit]:
    base = Path(tempfile.mkdtemp(prefix="sixcheck-unit-"))
    base.chmod(0o755)
    try:
        yield Unit(lab, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("home", [True, False], ids=["unreadable-home", "no-home"])
def test_every_profile_runs_as_the_unit_would(
    unit: Unit, as_root: dict[str, set[str]], home: bool
) -> None:
    roots = [REPO, unit.base / "home", unit.base / "ro-reports", Path(sys.prefix)]
    before = listing(roots)
    shm_before = listing([Path("/dev/shm")], owner=USER)
    raw: dict[str, str] = {}
    for node, name in PROFILES.items():  # one after the other: 2 cores are shared
        rc, data, out, tag = unit.run(node, home=home)
        assert "Traceback" not in out, out
        assert "INTERNALERROR" not in out, out
        assert data["checks"], f"{tag}: no JSON results:\n{out[-3000:]}"
        by = _by_id(data)
        lost = {
            k: (by[k]["outcome"], by[k]["message"]) if k in by else "missing"
            for k in as_root[node]
            if by.get(k, {}).get("outcome") != "passed"
        }
        assert not lost, f"{tag}: passes as root, not as the unit: {lost}"
        failed = any(c["outcome"] in ("failed", "error") for c in by.values())
        assert rc == (1 if failed else 0), out[-2000:]
        assert data["raw_sockets"] is True, f"{tag}: CAP_NET_RAW alone must count as raw sockets"
        reports = unit.base / "reports" / tag
        assert list(reports.glob(f"{name}-*.html")), f"{tag}: no HTML report"
        assert (reports / "index.html").exists()
        prom = (unit.base / "textfile" / f"{tag}.prom").read_text()
        assert "sixcheck_check_passed{" in prom, prom[:500]
        raw.update({k: c["outcome"] for k, c in by.items() if k.startswith(RAW_CHECKS)})
    assert raw, "the lab profiles have raw-socket checks"
    assert set(raw.values()) == {"passed"}, raw
    assert not _changed(before, listing(roots)), _changed(before, listing(roots))
    assert not _changed(shm_before, listing([Path("/dev/shm")], owner=USER))


@pytest.mark.parametrize("sub", ["", "new"], ids=["existing", "to-create"])
def test_unwritable_report_dir_stops_before_any_probe(unit: Unit, sub: str) -> None:
    """The unit's report folder read-only or not the user's: exit 4, saying so, probing nothing."""
    target = unit.base / "ro-reports" / sub if sub else unit.base / "ro-reports"
    rc, data, out, _ = unit.run("lan", report_dir=str(target))
    assert rc == 4, out
    if sub:  # the wrapper's `mkdir -p` fails first
        assert f"cannot create the report folder {target}" in out, out
    else:
        assert "cannot save this run's results" in out, out
        assert f"--report-dir {target}: {target} is a read-only file system" in out, out
    assert "collected" not in out, out  # stopped while configuring: nothing collected or probed
    assert not data["checks"]
    assert not list((unit.base / "ro-reports").iterdir())
