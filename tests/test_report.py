"""What a person and a CI server read: the HTML report as a browser renders it, JUnit XML with the
evidence, and no secret in any of them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import CHROMIUM, run_chromium, run_sixcheck
from sixcheck import secrets
from sixcheck.schema import ProfileError, parse
from sixcheck.schema.model import Strict, ValidationError
from sixcheck.schema.secret import Secret, SecretValue

PASSING = (
    "description: loopback only\nnode: {role: host}\ninterfaces: {lo: {role: other}}\n"
    "sysctl:\n  interfaces: {lo: {disable_ipv6: 0, forwarding: 0}}\n"
)
# lo never forwards: this check fails with a message and the evidence of what was read
FAILING = PASSING.replace("forwarding: 0", "forwarding: 1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A passing run, then a failing run compared with it, with HTML, JSON and JUnit XML."""
    d = tmp_path_factory.mktemp("report")
    prof = d / "site.yaml"
    prof.write_text(PASSING)
    proc = run_sixcheck(
        "--profile", str(prof), "--report-dir", str(d / "r"), "--json-file", str(d / "before.json")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prof.write_text(FAILING)
    proc = run_sixcheck(
        "--profile",
        str(prof),
        "--report-dir",
        str(d / "r"),
        "--json-file",
        str(d / "after.json"),
        "--html",
        str(d / "after.html"),
        "--self-contained-html",
        "--baseline",
        str(d / "before.json"),
        "--junitxml",
        str(d / "junit.xml"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return d


def _dump_dom(page: Path, tmp_path: Path) -> str:
    return run_chromium(page, tmp_path, "--dump-dom")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/bootstrap adds it)"
)
def test_html_renders_summary_baseline_and_evidence(runs: Path, tmp_path: Path) -> None:
    dom = _dump_dom(runs / "after.html", tmp_path)
    # the summary per area and the comparison, regressions first, before the results table
    assert "Per area" in dom
    assert "Compared with the baseline" in dom
    top = dom.index("Compared with the baseline")
    assert top < dom.index("Per area") < dom.index('id="results-table"')
    assert dom.index("regression", top) < dom.index("still passing", top)
    # the changed expectation, under what a person calls it
    assert 'the profile</div><div class="sx-line">expected <del>0</del> → <ins>1</ins>' in dom
    # a failed check's message and evidence, rendered by the report's JavaScript
    assert "net.ipv6.conf.lo.forwarding is 0, expected 1" in dom
    assert "SysctlValue" in dom
    assert "Evidence" in dom


def test_html_is_one_self_contained_file(runs: Path) -> None:
    page = (runs / "after.html").read_text()
    assert '<link rel="stylesheet" href="assets' not in page
    assert 'src="assets' not in page
    assert not (runs / "assets").exists()
    reports = sorted((runs / "r").glob("site-*.html"))  # the default report too
    assert reports
    assert not (runs / "r" / "assets").exists()


def test_junit_xml_carries_evidence(runs: Path) -> None:
    root = ET.parse(runs / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    failed = cases["test_sysctl[net.ipv6.conf.lo.forwarding]"]
    failure = failed.find("failure")
    assert failure is not None
    assert "net.ipv6.conf.lo.forwarding is 0, expected 1" in (failure.get("message") or "")
    props = {p.get("name"): p.get("value") for p in failed.iter("property")}
    ev = props["sixcheck_evidence"] or ""
    assert "probe: SysctlRead" in ev
    assert "value: '0'" in ev
    passed = cases["test_sysctl[net.ipv6.conf.lo.disable_ipv6]"]
    assert (
        "SysctlValue"
        in {p.get("name"): p.get("value") for p in passed.iter("property")}["sixcheck_evidence"]
    )


# ---------------------------------------------------------------------------------------------
# secrets


class _Needs(Strict):
    key: Secret


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SX_TEST_TSIG", "c2l4Y2hlY2stdHNpZw==")
    f = tmp_path / "pw"
    f.write_text("broker-password\n")
    try:
        a = _Needs.model_validate({"key": {"env": "SX_TEST_TSIG"}}).key
        b = _Needs.model_validate({"key": {"file": str(f)}}).key
        assert isinstance(a, SecretValue)
        assert a.reveal() == "c2l4Y2hlY2stdHNpZw=="
        assert b.reveal() == "broker-password"
        assert "c2l4" not in f"{a} {a!r} {_Needs(key=a).model_dump()}"
        assert str(b) == "<redacted> (file " + str(f) + ")"
        assert secrets.redact("key=c2l4Y2hlY2stdHNpZw== pw=broker-password") == (
            "key=<redacted> pw=<redacted>"
        )
    finally:
        secrets.forget_all()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("inline-secret-value", "a secret is never written into a profile"),
        ({"env": "SX_TEST_UNSET"}, "environment variable SX_TEST_UNSET is not set"),
        ({"file": "/nonexistent/secret"}, "secret file /nonexistent/secret does not exist"),
        ({"env": "SX_TEST_SHORT"}, "shorter than 6 characters"),
        ({"vault": "x"}, "expected {env: VARIABLE} or {file: /path/to/file}"),
    ],
)
def test_bad_secrets_are_profile_errors(
    value: object, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SX_TEST_UNSET", raising=False)
    monkeypatch.setenv("SX_TEST_SHORT", "abc")
    with pytest.raises(ValidationError) as exc:
        _Needs.model_validate({"key": value})
    (issue,) = exc.value.issues
    assert expected in issue.message
    assert "inline-secret-value" not in issue.message  # the loader shows only the message


def test_profile_errors_never_echo_a_secret() -> None:
    # the profile loader reports problems with key paths; values it does not understand are named
    # by type, so a secret pasted in the wrong place is not echoed either
    with pytest.raises(ProfileError) as exc:
        parse("node: {role: host}\nsysctl:\n  all: {forwarding: 'hunter2-pasted'}\n", "p.yaml")
    assert "sysctl.all.forwarding" in str(exc.value)


CHECK_MODULE = '''
"""A check that leaks its secret everywhere it can: message, evidence, captured output."""
from sixcheck import secrets
from sixcheck.check import Simple, targets
from sixcheck.probes.sysctl import SysctlRead

AREA = "sysctl"
SECRET = "hunter2-tsig-key-value"
secrets.register(SECRET)  # what loading {env: NAME} does; a probe holds the revealed value


def _targets(profile):
    yield Simple("leaky-" + SECRET[:3], (SysctlRead("net.ipv6.conf.lo.disable_ipv6"),))


@targets(_targets)
def test_leaky(target, observe, evidence):
    evidence["used_key"] = SECRET
    print("logging in with", SECRET)
    obs = observe(target.requests[0])
    assert obs.value == "9", f"server refused key {SECRET}: expected 9, found {obs.value}"
'''


def test_secrets_never_reach_a_report(tmp_path: Path) -> None:
    check = tmp_path / "test_leaky.py"
    check.write_text(CHECK_MODULE)
    prof = tmp_path / "site.yaml"
    prof.write_text(PASSING)
    proc = run_sixcheck(
        "--profile",
        str(prof),
        "--report-dir",
        str(tmp_path / "r"),
        "--json-file",
        str(tmp_path / "r.json"),
        "--junitxml",
        str(tmp_path / "j.xml"),
        "-o",
        "junit_logging=all",
        "--prometheus",
        str(tmp_path / "s.prom"),
        "-rA",
        str(check),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "server refused key <redacted>" in out
    written = {
        p.name: p.read_text()
        for p in [*tmp_path.glob("*.*"), *(tmp_path / "r").iterdir()]
        if p.suffix in (".json", ".xml", ".html", ".prom")
    }
    assert {"r.json", "j.xml", "s.prom", "index.html"} <= set(written)
    assert any(n.endswith(".html") and n != "index.html" for n in written)
    for name, text in {"terminal": out, **written}.items():
        assert "hunter2-tsig-key-value" not in text, name
    data = json.loads(written["r.json"])
    (leaky,) = data["checks"]
    assert leaky["message"].startswith("server refused key <redacted>")
    assert leaky["evidence"][0] == {"notes": {"used_key": "<redacted>"}}
    assert "logging in with &lt;redacted&gt;" in written["j.xml"]  # captured output too
