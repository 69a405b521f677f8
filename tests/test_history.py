"""Report rotation and the index page; the scheduled-audit examples driven as cron/systemd run them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, needs_root, run_sixcheck
from sixcheck import history
from sixcheck.__main__ import main

LO_PROFILE = (
    "description: loopback only\nnode: {role: host}\ninterfaces: {lo: {role: other}}\n"
    "sysctl:\n  interfaces: {lo: {disable_ipv6: 0}}\n"
)


def _fake_run(folder: Path, profile: str, ts: str, failed: int = 0, html: bool = True) -> str:
    stem = f"{profile}-{ts}"
    doc = {
        "schema": "sixcheck-results/1",
        "profile": {"name": profile},
        "started": f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[9:11]}:{ts[11:13]}:{ts[13:15]}+00:00",
        "summary": {"passed": 3, "failed": failed, "skipped": 1, "error": 0},
        "exitstatus": 1 if failed else 0,
    }
    (folder / f"{stem}.json").write_text(json.dumps(doc))
    if html:
        (folder / f"{stem}.html").write_text("<html></html>")
    return stem


def test_prune_keeps_newest_per_profile_and_only_our_files(tmp_path: Path) -> None:
    for i in range(5):
        _fake_run(tmp_path, "gw", f"2025010{i + 1}T000000Z", failed=i % 2)
    _fake_run(tmp_path, "out", "20250101T000000Z")
    _fake_run(tmp_path, "gw", "20250105T000000Z-2")  # same second, second run: newest
    (tmp_path / "notes.json").write_text("{}")  # not ours
    (tmp_path / "gw-20250101T000000Z.txt").write_text("")  # not ours
    (tmp_path / "other-20250101T000000Z.json").write_text('{"schema": "else"}')  # not ours
    removed, index = history.rotate(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == sorted(
        f"gw-2025010{i}T000000Z.{ext}" for i in (1, 2, 3, 4) for ext in ("json", "html")
    )
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert left == sorted(
        [
            "gw-20250105T000000Z.html",
            "gw-20250105T000000Z.json",
            "gw-20250105T000000Z-2.html",
            "gw-20250105T000000Z-2.json",
            "out-20250101T000000Z.html",
            "out-20250101T000000Z.json",
            "notes.json",
            "gw-20250101T000000Z.txt",
            "other-20250101T000000Z.json",
            "index.html",
        ]
    )
    page = index.read_text()
    assert page.index("gw-20250105T000000Z-2.html") < page.index("gw-20250105T000000Z.html")
    assert "out-20250101T000000Z.json" in page
    assert "gw-20250101" not in page
    assert "3 runs, newest first" in page


def test_html_without_json_counts_as_a_run(tmp_path: Path) -> None:
    old = [tmp_path / f"gw-2024010{i}T000000Z.html" for i in (1, 2, 3)]  # --json-file elsewhere
    fresh = tmp_path / "gw-20230101T000000Z.html"  # old name, but being written: a run in progress
    for p in [*old, fresh]:
        p.write_text("<html></html>")
    for p in old:
        os.utime(p, (time.time() - 3 * 3600,) * 2)
    _fake_run(tmp_path, "gw", "20250101T000000Z")
    history.rotate(tmp_path, keep=2)
    assert fresh.exists()
    assert [p.exists() for p in old] == [False, False, True]
    assert (tmp_path / "gw-20250101T000000Z.json").exists()


def _audit(folder: Path, ts: str, rcode: str, port: int) -> None:
    """One saved audit with a DNS check whose outcome follows the resolver's rcode."""
    ok = rcode == "NOERROR"
    check = {
        "id": "checks/test_dns.py::test_lookup[www]",
        "area": "dns",
        "outcome": "passed" if ok else "failed",
        "message": "" if ok else f"www: {rcode}",
        "evidence": [
            {
                "request": {"probe": "DnsQuery", "server": "2001:db8::53", "name": "www"},
                "observation": {"kind": "DnsAnswer", "rcode": rcode, "source_port": port},
            }
        ],
    }
    stem = f"gw-{ts}"
    doc = {
        "schema": "sixcheck-results/1",
        "profile": {"name": "gw"},
        "started": f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[9:11]}:{ts[11:13]}:{ts[13:15]}+00:00",
        "summary": {"passed": int(ok), "failed": int(not ok), "skipped": 0, "error": 0},
        "exitstatus": int(not ok),
        "checks": [check],
    }
    (folder / f"{stem}.json").write_text(json.dumps(doc))


def test_index_says_which_run_changed_what_and_since_when(tmp_path: Path) -> None:
    _audit(tmp_path, "20250101T000000Z", "NOERROR", 1111)
    _audit(tmp_path, "20250102T000000Z", "NOERROR", 2222)  # only the source port differs
    _audit(tmp_path, "20250103T000000Z", "REFUSED", 3333)
    _audit(tmp_path, "20250104T000000Z", "REFUSED", 4444)
    page = history.write_index(tmp_path).read_text()
    rows = page.split("<tr class=")[1:]  # newest first
    assert "no meaningful change" in rows[0]  # still failing the same way
    assert "1 regression" in rows[1]
    assert "AAAA www @ 2001:db8::53 over UDP" in rows[1]
    assert "rcode NOERROR → REFUSED" in rows[1]
    assert "no meaningful change" in rows[2]  # a new source port is not a change
    assert "(first run)" in rows[3]
    assert "source_port" not in page
    assert "test_lookup[www] <small>(dns)</small> failing since 2025-01-03 00:00:00 UTC" in page


def test_keep_zero_deletes_nothing(tmp_path: Path) -> None:
    for i in range(3):
        _fake_run(tmp_path, "gw", f"2025010{i + 1}T000000Z")
    assert main(["index", str(tmp_path), "--keep", "0"]) == 0
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_lock_serialises_two_writers(tmp_path: Path) -> None:
    with history.locked(tmp_path):
        with (
            pytest.raises(history.HistoryError, match="another sixcheck run holds"),
            history.locked(tmp_path, timeout=0.3),
        ):
            pass
        done = threading.Event()

        def other() -> None:
            with history.locked(tmp_path, timeout=10):
                done.set()

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        assert not done.is_set()  # waits for us
    t.join(5)
    assert done.is_set()


def test_two_runs_at_once_both_kept_and_indexed(tmp_path: Path) -> None:
    prof = tmp_path / "lo.yaml"
    prof.write_text(LO_PROFILE)
    reports = tmp_path / "reports"
    reports.mkdir()
    for i in range(3):
        _fake_run(reports, "lo", f"2020010{i + 1}T000000Z")
    results: list[subprocess.CompletedProcess[str]] = []

    def go() -> None:
        results.append(
            run_sixcheck("--profile", str(prof), "--report-dir", str(reports), "--keep", "2")
        )

    procs = [threading.Thread(target=go) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [r.returncode for r in results] == [0, 0], [r.stdout + r.stderr for r in results]
    runs = sorted(p.stem for p in reports.glob("lo-*.json"))
    assert len(runs) == 2
    assert not any(r.startswith("lo-2020") for r in runs)  # the old ones were pruned
    assert all((reports / f"{r}.html").stat().st_size > 1000 for r in runs)
    page = (reports / "index.html").read_text()
    assert all(f"{r}.html" in page for r in runs)


# ---------------------------------------------------------------------------------------------
# the scheduled-audit examples, run the way systemd and cron run them


def _exec_start() -> str:
    unit = (REPO / "contrib/systemd/sixcheck-audit.service").read_text()
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=")


def _cron_command() -> str:
    (line,) = [
        x
        for x in (REPO / "contrib/cron/sixcheck-audit").read_text().splitlines()
        if x and not x.startswith("#") and "=" not in x.split()[0]
    ]
    fields = line.split(None, 6)
    assert len(fields) == 7, line  # five time fields, the user, the command
    return fields[6]


def test_unit_and_cron_run_the_same_wrapper() -> None:
    # the installed command, no checkout: `sixcheck audit` runs contrib/sixcheck-audit
    assert _exec_start() == "/usr/local/bin/sixcheck audit /etc/default/sixcheck-audit"
    assert _exec_start() in _cron_command()
    timer = (REPO / "contrib/systemd/sixcheck-audit.timer").read_text()
    assert re.search(r"^OnCalendar=", timer, re.M)
    assert "WantedBy=timers.target" in timer


def _localise(cmd: str, config: Path, lock: Path) -> str:
    return (
        cmd.replace("/usr/local/bin/sixcheck", f"{sys.executable} -m sixcheck")
        .replace("/etc/default/sixcheck-audit", str(config))
        .replace("/var/lib/sixcheck/audit.lock", str(lock))
        .replace("| logger -t sixcheck-audit", "")
    )


@needs_root
@pytest.mark.lab
def test_scheduled_audit_of_the_lab_rotates_reports(tmp_path: Path) -> None:
    """Audits of the lab's outside profile from its outside node, by the unit's and by cron's
    command: only the newest N remain, the index lists them, each run is compared with the one
    before, and a fault shows up as a failed run with its regressions."""
    from sixcheck.lab import Lab

    reports = tmp_path / "reports"
    prom = tmp_path / "textfiles" / "sixcheck-outside.prom"
    config = tmp_path / "sixcheck-audit"
    keep = 3
    with Lab(f"h{os.getpid() % 100000}") as lab:
        config.write_text(
            f"SIXCHECK_PROFILE=lab-out\nSIXCHECK_REPORT_DIR={reports}\nSIXCHECK_KEEP={keep}\n"
            f"SIXCHECK_BASELINE=latest\nSIXCHECK_PROMETHEUS={prom}\n"
            f"SIXCHECK_PYTHON={sys.executable}\nSIXCHECK_NETNS={lab.ns('out')}\n"
        )

        def audit(cmd: str) -> subprocess.CompletedProcess[str]:
            local = _localise(cmd, config, tmp_path / "audit.lock")
            return subprocess.run(
                ["bash", "-c", local],
                cwd="/",
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )

        lab.up()
        for cmd in [_exec_start()] * 2 + [_cron_command()] * 2:
            proc = audit(cmd)
            assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
        lab.up(faults=["inbound-new-accepted"])
        proc = audit(_cron_command())
        assert proc.returncode == 1, proc.stdout + proc.stderr  # the audit fails: the LAN is open
    runs = sorted(p.stem for p in reports.glob("lab-out-*.json"))
    assert len(runs) == keep, runs
    assert len(list(reports.glob("lab-out-*.html"))) == keep
    page = (reports / "index.html").read_text()
    for r in runs:
        assert f"href='{r}.html'" in page
    assert f"{keep} runs, newest first" in page
    newest = json.loads((reports / f"{runs[-1]}.json").read_text())
    assert newest["baseline"]["path"].endswith(f"{runs[-2]}.json")  # compared with the one before
    assert newest["baseline"]["counts"]["regression"] > 0
    assert newest["vantage"]["hostname"]  # recorded where it ran
    assert page.index("FAILED") < page.index(">ok<")  # newest first, and it failed
    assert "sixcheck_check_passed" in prom.read_text()
    assert 'sixcheck_baseline_changes{profile="lab-out",change="regression"}' in prom.read_text()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stems of the results files the index parses, in order, from now on."""
    read: list[str] = []
    real_read = history._read

    def counting(path: Path) -> dict[str, object] | None:
        read.append(path.stem)
        return real_read(path)

    monkeypatch.setattr(history, "_read", counting)
    return read


def test_index_cache_reads_only_the_new_run_and_never_changes_the_page(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A run rebuilds the index from the cache plus its own JSON and its predecessor's; the page
    is the one a rebuild from every JSON gives, also after a JSON changed under the cache."""
    for day, (rcode, port) in enumerate([("NOERROR", 1), ("NOERROR", 2), ("REFUSED", 3)], 1):
        _audit(tmp_path, f"2025010{day}T000000Z", rcode, port)
    history.write_index(tmp_path)
    assert (tmp_path / history.CACHE).exists()
    _audit(tmp_path, "20250104T000000Z", "NOERROR", 4)  # fixed again
    read = request.getfixturevalue("reads")
    cached = history.write_index(tmp_path).read_text()
    assert set(read) == {"gw-20250103T000000Z", "gw-20250104T000000Z"}
    (tmp_path / history.CACHE).unlink()
    rebuilt = history.write_index(tmp_path).read_text()
    strip = re.compile(r"Updated [^.]*\.")
    assert strip.sub("", cached) == strip.sub("", rebuilt)
    assert "1 fixed" in cached.split("<tr class=")[1]
    # a JSON rewritten under the cache (same name, other content) is read again
    _audit(tmp_path, "20250104T000000Z", "SERVFAIL", 4)
    os.utime(tmp_path / "gw-20250104T000000Z.json", ns=(1, 1))
    page = history.write_index(tmp_path).read_text()
    assert "rcode REFUSED → SERVFAIL" in page
    assert "failing since 2025-01-03" in page


def test_the_run_that_just_finished_hands_its_results_to_the_index(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The plugin passes the document it has just written: the index parses only the run before."""
    _audit(tmp_path, "20250101T000000Z", "NOERROR", 1)
    history.rotate(tmp_path, keep=5)
    _audit(tmp_path, "20250102T000000Z", "REFUSED", 2)
    newest = tmp_path / "gw-20250102T000000Z.json"
    doc = json.loads(newest.read_text())
    read = request.getfixturevalue("reads")
    _, index = history.rotate(tmp_path, keep=5, fresh={newest.stem: doc})
    assert read == ["gw-20250101T000000Z"]
    assert "rcode NOERROR → REFUSED" in index.read_text()
