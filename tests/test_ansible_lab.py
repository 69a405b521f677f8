"""contrib/ansible against the lab's nodes over real SSH, from a venv with ansible-core.

The playbook installs the wheel (from a wheelhouse: the nodes have no package index) into a venv
per node, runs each node's profile, fetches the results JSON and merges them into a site report
on the controller (the lab's management namespace). A second run of the install changes nothing.
ansible-core is installed into a venv of its own here; it is not a dependency of sixcheck.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sixcheck import locate
from sixcheck.lab import Lab, sshd

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,  # installs ansible-core and four venvs: minutes
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root"),
]

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = REPO / "contrib" / "ansible" / "site.yml"
#: Reused between test sessions when it still works: installing ansible-core takes a while.
ANSIBLE_VENV = Path("/tmp/sixcheck-tests/ansible-venv")


def _run(
    argv: list[str],
    timeout: float = 600,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def ansible() -> Path:
    playbook = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if not playbook.exists() or _run([str(playbook), "--version"]).returncode != 0:
        shutil.rmtree(ANSIBLE_VENV, ignore_errors=True)
        ANSIBLE_VENV.parent.mkdir(parents=True, exist_ok=True)
        assert _run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)]).returncode == 0
        pip = _run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"])
        assert pip.returncode == 0, pip.stderr[-2000:]
    return playbook


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sixcheck's wheel and its dependencies' wheels (from pip's index and cache), built once
    from a copy of the tree (the tree itself gets no build/ or egg-info): what a host without
    a package index installs from."""
    src = tmp_path_factory.mktemp("src")
    listed = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    house = tmp_path_factory.mktemp("wheelhouse")
    proc = _run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(house), str(src)], cwd=src)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return house


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(f"a{os.getpid()}") as lab:
        lab.up(sshd=True)
        yield lab


def _inventory(lab: Lab, wheelhouse: Path) -> Path:
    assert lab.ssh is not None
    (wheel,) = wheelhouse.glob("sixcheck-*.whl")
    profiles = locate.profiles_dir()
    lines = [
        "lab:",
        "  vars:",
        f"    ansible_ssh_common_args: -F {lab.ssh.ssh_config}",
        "    ansible_python_interpreter: /usr/bin/python3",
        f"    sixcheck_wheel: {wheel}",
        f"    sixcheck_wheelhouse: {wheelhouse}",
        "    sixcheck_site: lab",
        "  hosts:",
    ]
    for node in sshd.NODES:
        lines += [
            f"    {node}:",
            f"      ansible_host: {sshd.node_addr(node)}",  # the node's address, the lab's key
            # the nodes share this machine's file system: one sixcheck home per node
            f"      sixcheck_home: {lab.state_dir / 'ansible' / node}",
            # out's profile is a file on the controller (copied over), the others' are names
            f"      sixcheck_profile: {profiles / 'lab-out.yaml' if node == 'out' else f'lab-{node}'}",
        ]
    path = lab.state_dir / "inventory.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _playbook(
    lab: Lab, ansible: Path, inventory: Path, results: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    assert lab.ssh is not None
    state = lab.state_dir
    env = dict(
        os.environ,
        ANSIBLE_HOME=str(state / "ansible-home"),  # nothing of Ansible's in ~ either
        ANSIBLE_LOCAL_TEMP=str(state / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(state / "ansible-remote-tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(state / "ansible-cp"),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_HOST_KEY_CHECKING="1",
    )
    merge = json.dumps([sys.executable, "-m", "sixcheck", "site"])
    argv = [
        str(ansible),
        "-i",
        str(inventory),
        str(PLAYBOOK),
        "-e",
        f"sixcheck_fetch_dir={results}",
        "-e",
        f'{{"sixcheck_site_command": {merge}}}',
        *args,
    ]
    return _run(netns_argv(lab, argv), timeout=1200, env=env)


def netns_argv(lab: Lab, argv: list[str]) -> list[str]:
    assert lab.ssh is not None
    return ["ip", "netns", "exec", lab.ssh.ctl_ns, *argv]


def _recap(out: str) -> dict[str, dict[str, int]]:
    recap = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", out, re.M):
        recap[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return recap


def test_playbook_installs_runs_fetches_and_merges(
    lab: Lab, ansible: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    inventory = _inventory(lab, wheelhouse)
    results = tmp_path / "results"
    first = _playbook(lab, ansible, inventory, results)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    recap = _recap(first.stdout)
    for node in sshd.NODES:
        assert recap[node]["failed"] == 0, first.stdout[-4000:]
        assert recap[node]["changed"] > 0  # installed this time
        doc = json.loads((results / "lab" / f"{node}.json").read_text())
        assert doc["profile"]["name"] == f"lab-{node}"
        # The checks' verdicts are test_site_lab's business (four runs at once on a busy
        # machine can time out a probe); here: a whole run's results came back.
        assert doc["exitstatus"] in (0, 1)
        assert doc["summary"]["passed"] > 0, doc["summary"]
        if node == "out":
            assert doc["profile"]["path"] == str(
                lab.state_dir / "ansible/out/profiles/lab-out.yaml"
            )
        venv = lab.state_dir / "ansible" / node / "venv"
        version = _run([str(venv / "bin" / "sixcheck"), "--version"])
        assert version.stdout.split()[:1] == ["sixcheck"], version
    site = json.loads((results / "lab" / "site" / "site.json").read_text())
    assert sorted(v["name"] for v in site["vantages"]) == sorted(f"lab-{n}" for n in sshd.NODES)
    assert site["exitstatus"] == max(
        json.loads((results / "lab" / f"{n}.json").read_text())["exitstatus"] for n in sshd.NODES
    )

    again = _playbook(lab, ansible, inventory, results, "--tags", "sixcheck_install")
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    recap = _recap(again.stdout)
    assert sorted(recap) == sorted(sshd.NODES), again.stdout[-3000:]
    for node in sshd.NODES:
        assert recap[node]["changed"] == 0, again.stdout[-6000:]
        assert recap[node]["failed"] == 0, again.stdout[-6000:]
