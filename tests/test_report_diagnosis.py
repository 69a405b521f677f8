"""The diagnosis where a person meets it first: the terminal summary, the HTML report as Chromium
renders it (Diagnosis above the results table), the JSON, JUnit and Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import run_sixcheck

# A host whose IPv6 forwarding is off everywhere while the profile says on: all.forwarding sets
# every interface's, so lo's failure is its consequence. Read-only sysctl reads, no traffic.
PROFILE = (
    "description: forwarding expected (a router) on a host\nnode: {role: router}\n"
    "interfaces: {lo: {role: other}}\n"
    "sysctl:\n  all: {forwarding: 1}\n  interfaces: {lo: {forwarding: 1, disable_ipv6: 0}}\n"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# appended to a copy of the report: where the browser laid out the Diagnosis and the table
MEASURE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const d = document.getElementById('sixcheck-diagnosis').getBoundingClientRect();
  const t = document.getElementById('results-table').getBoundingClientRect();
  const m = document.createElement('pre');
  m.id = 'sx-measure';
  m.textContent = JSON.stringify({diagnosis: d.top, table: t.top, viewport: innerHeight});
  document.body.appendChild(m);
}, 500));
</script>"""


@pytest.fixture(scope="module")
def failing(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    if os.path.exists("/proc/sys/net/ipv6/conf/all/forwarding") and (
        Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text().strip() != "0"
    ):
        pytest.skip("this machine forwards IPv6: the profile's claim would hold")
    d = tmp_path_factory.mktemp("diag")
    (d / "router.yaml").write_text(PROFILE)
    proc = run_sixcheck(
        "--profile", str(d / "router.yaml"), "--report-dir", str(d / "r"),
        "--json-file", str(d / "r.json"), "--html", str(d / "r.html"), "--self-contained-html",
        "--junitxml", str(d / "j.xml"), "--prometheus", str(d / "s.prom"),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return d, proc


def test_terminal_opens_the_sixcheck_summary_with_the_probable_cause(
    failing: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, proc = failing
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("sixcheck:")]
    assert lines[0] == (
        "sixcheck: probable cause [sysctl]: net.ipv6.conf.all.forwarding is 0 (expected 1) "
        "(explains 1 failure; shown by 1 check)"
    ), proc.stdout


def test_terminal_leads_with_the_cause_before_the_failure_details(
    failing: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """Read top-down, the cause and what to do come before pytest's failure details; read from
    the bottom, the one-line verdict is after the short summary, just above the counts."""
    _, proc = failing
    out = proc.stdout
    head = out.index("sixcheck: 1 probable cause of 2 failures")
    details = out.index("= FAILURES =")
    assert head < details, out
    section = out[head:details].splitlines()[1:]
    assert section[0] == "1. [sysctl] net.ipv6.conf.all.forwarding is 0 (expected 1)", out
    assert (
        section[1]
        == "   shown by checks/test_sysctl.py::test_sysctl[net.ipv6.conf.all.forwarding]:"
    )
    assert section[2].startswith("     "), out
    assert "expected 1" in section[2], out
    assert section[3] == "   explains 1 failure (sysctl 1): read them after fixing this", out
    verdict = out.index("sixcheck: probable cause [sysctl]")
    assert out.index("short test summary info") < verdict < out.rindex(" failed"), out


def test_terminal_section_groups_consequences_by_area() -> None:
    """On a recorded run (lab-lan, no default route: one cause, 21 consequences in four areas)."""
    from sixcheck.diagnosis import diagnose, terminal_section

    doc = json.loads(
        (Path(__file__).parent / "fixtures/diagnosis/lan-no-default-route/lab-lan.json").read_text()
    )
    causes = diagnose(doc)
    failed = {
        c["id"]: (c.get("area"), c.get("message", ""))
        for c in doc["checks"]
        if c["outcome"] in ("failed", "error")
    }
    title, lines = terminal_section(causes, failed)
    assert title == f"sixcheck: 1 probable cause of {len(failed)} failures"
    assert lines[0].startswith("1. [routes] no default route on eth0"), lines
    [explains] = [ln for ln in lines if ln.startswith("   explains ")]
    counts = explains.split("(", 1)[1].split(")", 1)[0].split(", ")
    assert sum(int(c.rsplit(" ", 1)[1]) for c in counts) == len(causes[0].explains), explains
    assert counts[0].startswith("dns "), explains  # the biggest share first
    assert terminal_section(causes * 7, failed)[1][-1] == "... and 2 more causes (see the report)"


def test_json_junit_and_prometheus_carry_the_causes(
    failing: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    d, _ = failing
    data = json.loads((d / "r.json").read_text())
    [cause] = data["causes"]
    assert cause["key"] == "sysctl:net.ipv6.conf.all.forwarding"
    assert cause["explains"] == ["checks/test_sysctl.py::test_sysctl[net.ipv6.conf.lo.forwarding]"]
    root = ET.parse(d / "j.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["sixcheck_causes"] == "1"
    assert props["sixcheck_top_cause"] == cause["title"]
    prom = (d / "s.prom").read_text()
    assert 'sixcheck_causes{profile="router"} 1' in prom


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/bootstrap adds it)"
)
def test_chromium_shows_the_diagnosis_above_the_table(
    failing: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    d, _ = failing
    page = (d / "r.html").read_text()
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", MEASURE + "</body>"))
    common = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000",
        "--window-size=1280,1000", "--hide-scrollbars",
    ]  # fmt: skip
    env = dict(os.environ, HOME=str(tmp_path))
    shot = d / "diagnosis.png"  # kept beside the report for a person to look at
    for extra in (["--dump-dom", measured.as_uri()], [f"--screenshot={shot}", page_uri(d)]):
        proc = subprocess.run(
            [CHROMIUM, *common, *extra],
            capture_output=True, text=True, timeout=90, check=False, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        if "--dump-dom" in extra:
            dom = proc.stdout
    box = json.loads(dom.split('<pre id="sx-measure">', 1)[1].split("</pre>", 1)[0])
    # the Diagnosis is laid out above the results table, and within the first screen
    assert box["diagnosis"] < box["table"], box
    assert box["diagnosis"] < box["viewport"], box
    assert "net.ipv6.conf.all.forwarding is 0" in dom
    assert 'href="#checks/test_sysctl.py::test_sysctl[net.ipv6.conf.lo.forwarding]"' in dom
    # the consequence's row exists under that id once the report's script has drawn the table
    assert 'id="checks/test_sysctl.py::test_sysctl[net.ipv6.conf.lo.forwarding]"' in dom
    assert shot.stat().st_size > 10_000


def page_uri(d: Path) -> str:
    return (d / "r.html").as_uri()


def test_a_broken_diagnosis_still_writes_the_results(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sixcheck.report import CheckResult, Results
    from sixcheck.schema import load
    from sixcheck.vantage import Vantage

    (tmp_path / "router.yaml").write_text(PROFILE)
    results = Results(load(tmp_path / "router.yaml"), datetime.now(UTC), tmp_path / "r.json", None)
    results.__dict__["vantage"] = Vantage("test", "0")  # no netlink read in a unit test
    failed = CheckResult("checks/test_sysctl.py::test_x[a]", "sysctl", "failed", "expected 1")
    results.checks[failed.id] = failed  # something failed: the diagnosis runs (and breaks)

    def broken(doc: dict[str, object]) -> list[object]:
        raise RuntimeError("a bug")

    doc = results.finish(1, broken)  # type: ignore[arg-type]
    assert doc["diagnosis_error"] == "RuntimeError: a bug"
    assert "causes" not in doc
    assert json.loads((tmp_path / "r.json").read_text())["diagnosis_error"] == "RuntimeError: a bug"
    assert results.terminal_lines()[0].startswith("sixcheck: JSON results")


def test_a_run_without_failures_has_no_causes_and_never_loads_the_rules(tmp_path: Path) -> None:
    """Nothing failed, nothing to explain: the JSON says `causes: []`, the report says so, and the
    diagnosis module is not imported (a healthy run's memory and time)."""
    (tmp_path / "router.yaml").write_text(PROFILE)
    code = f"""
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from sixcheck.report import CheckResult, Results
from sixcheck.schema import load
from sixcheck.vantage import Vantage
results = Results(load(Path({str(tmp_path / "router.yaml")!r})), datetime.now(UTC), None, None)
results.__dict__["vantage"] = Vantage("test", "0")
results.checks["c"] = CheckResult("c", "sysctl", "passed")
def must_not_run(doc):
    raise AssertionError("diagnosed a healthy run")
doc = results.finish(0, must_not_run)
print(json.dumps(doc["causes"]), "sixcheck.diagnosis" in sys.modules)
print("No failures: nothing to diagnose." in "".join(results.html_summary()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "False", "True"]
