"""The plugin as a user meets it: options, exit codes, one line per profile problem."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_sixcheck


def _write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


BAD = {
    "bad key": (
        "node: {role: router}\nsysctl:\n  all: {forwrding: 1}\n",
        "3: sysctl.all.forwrding: unknown key",
    ),
    "bad address": (
        "node: {role: host}\ninterfaces:\n  eth0: {role: lan}\nsysctl:\n  all: {forwarding: 0}\n"
        "dns: {resolvers: [2001:db8::zz]}\n",
        "dns",
    ),
    "syntax": ("node: {role: router\n", "YAML syntax error"),
    "not a mapping": ("42\n", "a profile is a mapping"),
}


def test_bad_profiles_exit_4_without_traceback(tmp_path: Path) -> None:
    for case, (text, expected) in BAD.items():
        f = _write(tmp_path, text, f"{case.replace(' ', '-')}.yaml")
        proc = run_sixcheck("--profile", str(f), "--report-dir", str(tmp_path / "r"))
        out = proc.stdout + proc.stderr
        assert proc.returncode == 4, f"{case}: exit {proc.returncode}\n{out}"
        assert expected in out, f"{case}: {out}"
        assert str(f) in out
        assert "Traceback" not in out, out


def test_missing_profile_exits_4(tmp_path: Path) -> None:
    proc = run_sixcheck("--profile", "no-such-profile")
    assert proc.returncode == 4
    assert "no profile named 'no-such-profile'" in proc.stderr


def test_checks_without_profile_exit_4() -> None:
    proc = run_sixcheck()
    assert proc.returncode == 4
    assert "checks need a site profile" in proc.stderr


def test_bad_option_exits_4() -> None:
    proc = run_sixcheck("--profile")
    assert proc.returncode == 4


def test_list_profiles() -> None:
    proc = run_sixcheck("--list-profiles")
    assert proc.returncode == 0
    assert "home-gw" in proc.stdout
    assert "Home gateway" in proc.stdout


def test_absent_areas_are_deselected_not_failed(tmp_path: Path) -> None:
    # a profile whose only area checks the loopback's IPv6 switch, which every node has
    f = _write(
        tmp_path,
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n"
        "  interfaces: {lo: {disable_ipv6: 0}}\n",
    )
    out_json = tmp_path / "r.json"
    proc = run_sixcheck(
        "--profile", str(f), "--report-dir", str(tmp_path), "--json-file", str(out_json)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deselected" in proc.stdout
    data = json.loads(out_json.read_text())
    assert data["schema"] == "sixcheck-results/1"
    assert [c["id"] for c in data["checks"]] == [
        "checks/test_sysctl.py::test_sysctl[net.ipv6.conf.lo.disable_ipv6]"
    ]
    assert data["summary"]["passed"] == 1
    assert list(tmp_path.glob("site-*.html")), "no HTML report written"


def test_no_report(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n"
        "  interfaces: {lo: {disable_ipv6: 0}}\n",
    )
    proc = run_sixcheck("--profile", str(f), "--report-dir", str(tmp_path / "r"), "--no-report")
    assert proc.returncode == 0
    assert not (tmp_path / "r").exists()


def test_a_run_without_pytest_html_writes_its_json_and_claims_no_html(tmp_path: Path) -> None:
    """`-p no:html` (pytest-html disabled) used to end in INTERNALERROR: sixcheck's pytest-html
    hooks were not optional. The JSON results are then the report; no HTML is promised."""
    f = _write(
        tmp_path,
        "node: {role: host}\ninterfaces: {lo: {role: other}}\nsysctl:\n"
        "  interfaces: {lo: {disable_ipv6: 0}}\n",
    )
    proc = run_sixcheck("--profile", str(f), "--report-dir", str(tmp_path / "r"), "-p", "no:html")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    assert "JSON results" in proc.stdout
    assert "HTML report" not in proc.stdout
    assert [p.suffix for p in (tmp_path / "r").glob("site-*")] == [".json"]
