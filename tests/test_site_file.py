"""The site file and `site run` without a network: validation, exit codes, unreachable vantages.

The SSH vantages here never open a connection: ``ProxyCommand=false`` makes ssh fail at once the
way an unreachable host does (exit 255), and ``local`` vantages run fake `sixcheck` commands.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sixcheck import __version__, siterun
from sixcheck.schema import ProfileError
from sixcheck.schema import site as sf

GOOD = """\
site: home
defaults:
  deadline: 60
  ssh_options: {ConnectTimeout: 5}
vantages:
  gw: {profile: home-gw, ssh: root@gw.example.net, sixcheck: /opt/sixcheck/venv/bin/sixcheck}
  lan: {profile: lab-lan, netns: sx-lan}
  here: {profile: lab-out, local: true}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ProfileError) as exc:
        sf.parse(text, "s.yaml")
    return [str(p) for p in exc.value.problems]


def test_good_site_file_parses() -> None:
    site = sf.parse(GOOD, "s.yaml")
    assert list(site.vantages) == ["gw", "lan", "here"]
    assert [v.reach for v in site.vantages.values()] == ["ssh", "netns", "local"]
    assert site.defaults.deadline == 60


def test_unknown_key_names_line_and_points_to_the_site_docs() -> None:
    out = problems(GOOD.replace("deadline: 60", "dedline: 60"))
    assert out == [
        "s.yaml:3: defaults.dedline: unknown key (a typo? see docs/site-file.md for the keys "
        "of each section)"
    ]


def test_exactly_one_way_to_reach_a_vantage() -> None:
    out = problems(GOOD.replace("netns: sx-lan", "netns: sx-lan, ssh: root@lan"))
    assert out == [
        "s.yaml:7: vantages.lan: say how to reach it with exactly one of `local: true`, "
        "`netns: NAME` or `ssh: USER@HOST` (found netns, ssh)"
    ]
    assert "exactly one of" in problems(GOOD.replace(", local: true", ""))[0]


def test_no_password_and_no_option_injection_in_the_ssh_target() -> None:
    out = problems(GOOD.replace("root@gw.example.net", "'root:hunter2@gw.example.net'"))
    assert "never put a password in the site file" in out[0]
    assert out[0].startswith("s.yaml:6: vantages.gw.ssh:")
    out = problems(GOOD.replace("root@gw.example.net", "-oProxyCommand=touch"))
    assert "is not USER@HOST" in out[0]


def test_ssh_settings_only_for_ssh_vantages() -> None:
    out = problems(GOOD.replace("local: true}", "local: true, port: 22}"))
    assert out == ["s.yaml:8: vantages.here: port: only for a vantage reached with ssh"]


def test_every_problem_at_once() -> None:
    bad = GOOD.replace("deadline: 60", "deadline: -1").replace("netns: sx-lan", "netns: 'a b'")
    out = problems(bad)
    assert len(out) == 2
    assert out[0].startswith("s.yaml:3: defaults.deadline:")
    assert out[1].startswith("s.yaml:7: vantages.lan.netns:")


def test_local_profile_files_are_validated_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("node: {role: router}\nsysctl: {al: {}}\n")
    site = tmp_path / "site.yaml"
    site.write_text("site: s\nvantages:\n  gw: {profile: broken.yaml, ssh: root@gw}\n")
    with pytest.raises(ProfileError) as exc:
        sf.load(site)
    (only,) = exc.value.problems
    assert str(only).startswith(f"{site}:3: vantages.gw.profile: {tmp_path}/broken.yaml:2:")


def test_bad_site_file_exits_4_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s\nvantages: {}\n")
    assert siterun.main([str(site), "--report-dir", str(tmp_path / "r")]) == 4
    err = capsys.readouterr().err
    assert "bad site file" in err
    assert f"{site}:2: vantages:" in err
    assert "Traceback" not in err


def _fake(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _site(tmp_path: Path, vantages: str) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(f"site: t\ndefaults: {{deadline: 20}}\nvantages:\n{vantages}")
    return site


def test_unreachable_vantage_is_a_finding_and_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _fake(tmp_path, "old", 'echo "sixcheck 0.0.1"')
    site = _site(
        tmp_path,
        "  gw: {profile: lab-gw, ssh: root@gw.invalid, ssh_config: /dev/null,"
        " ssh_options: {ProxyCommand: 'false'}}\n"
        "  gone: {profile: lab-gw, local: true, sixcheck: /nonexistent/sixcheck}\n"
        f"  old: {{profile: lab-gw, local: true, sixcheck: {old}}}\n",
    )
    assert siterun.main([str(site), "--report-dir", str(tmp_path / "r")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gw         NOT RUN   could not reach gw over SSH (root@gw.invalid): ")
    assert out[1].startswith(
        "gone       NOT RUN   sixcheck is not installed on gone (/nonexistent/sixcheck: command "
        "not found)"
    )
    assert out[2].startswith(f"old        NOT RUN   old has sixcheck 0.0.1, this is {__version__}")
    causes = [line for line in out if line.startswith("probable cause (")]  # the site report's
    assert len(causes) == 3, out
    assert any(c.startswith("probable cause (gw): gw: no results") for c in causes), causes
    assert out[-1].startswith("site report: ")
    assert Path(out[-1].removeprefix("site report: ")).is_file()


def test_deadline_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slow = _fake(
        tmp_path,
        "slow",
        f'[ "$1" = --version ] && echo "sixcheck {__version__}" && exit 0\nsleep 30',
    )
    site = _site(
        tmp_path, f"  gw: {{profile: lab-gw, local: true, sixcheck: {slow}, deadline: 1}}\n"
    )
    assert siterun.main([str(site), "--report-dir", str(tmp_path / "r")]) == 1
    assert "gw did not finish within its deadline of 1s (local)" in capsys.readouterr().out


def test_a_refused_profile_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse = _fake(
        tmp_path,
        "refuse",
        f'[ "$1" = --version ] && echo "sixcheck {__version__}" && exit 0\n'
        'echo "ERROR: bad profile: x.yaml:1: nope" >&2; exit 4',
    )
    site = _site(tmp_path, f"  gw: {{profile: lab-gw, local: true, sixcheck: {refuse}}}\n")
    assert siterun.main([str(site), "--report-dir", str(tmp_path / "r")]) == 4
    assert "refused the run (exit 4" in capsys.readouterr().out


def test_ssh_argv_puts_user_options_before_the_defaults() -> None:
    loaded = sf.LoadedSite(Path("/etc/sixcheck/site.yaml"), sf.parse(GOOD, "s.yaml"))
    argv = siterun._ssh_argv(loaded, loaded.site.vantages["gw"])
    assert argv == [
        "ssh",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "BatchMode=yes",
        "-T",
        "--",
        "root@gw.example.net",
    ]
