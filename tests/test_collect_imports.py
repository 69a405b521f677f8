"""What `pytest --profile X --collect-only` may import: what collection needs, nothing of a run.

Start-up is budgeted (0.4 s on a small machine), and most of it is imports. Collection builds the
profile's targets and their probe requests, so the probe modules holding the request classes load;
what only running a probe needs (asyncio and, through it, ssl; ctypes; scapy, pyroute2,
dnspython) loads when the plan runs. Where a probe module is mostly observations and wire code,
its requests live apart (`netlink_requests`, `nd_requests`, `dhcpv6_requests`, `egress_requests`,
`dns_requests`, `icmp_requests`, `tcp_requests`, `udp_requests`, `ntp_requests`) and the module
itself loads when its probes run. A guard, not a timing: a module-level import that creeps back
makes this fail whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

#: only a run needs these (a package with its submodules); each cost collection milliseconds
#: before (asyncio ~12 ms with ssl; the records and observations of nd, netlink, dhcpv6, egress,
#: dns, icmp, tcp, udp and ntp ~0.4 ms per frozen dataclass; icmp, tcp and udp also load sockio)
RUN_ONLY = (
    "asyncio",
    "ssl",
    "ctypes",
    "scapy",
    "pyroute2",
    "dns",
    "sixcheck.probes.nd",
    "sixcheck.probes.ndwire",
    "sixcheck.probes.netlink",
    "sixcheck.probes.dhcpv6",
    "sixcheck.probes.egress",
    "sixcheck.probes.dns",
    "sixcheck.probes.icmp",
    "sixcheck.probes.sockio",
    "sixcheck.probes.tcp",
    "sixcheck.probes.udp",
    "sixcheck.probes.ntp",
)

COLLECT = """
import json, sys
import pytest
rc = pytest.main(["--profile", sys.argv[1], "--collect-only", "-q", "-p", "no:cacheprovider"])
watch = json.loads(sys.argv[2])
loaded = sorted({w for w in watch for m in sys.modules if m == w or m.startswith(w + ".")})
print("LOADED", json.dumps({"rc": int(rc), "loaded": loaded}))
"""

PROFILES = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("name", PROFILES)
def test_collect_only_imports_nothing_only_a_run_needs(name: str) -> None:
    path = REPO / "profiles" / f"{name}.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            COLLECT,
            str(path),
            json.dumps(RUN_ONLY),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED ")]
    assert lines, proc.stdout + proc.stderr
    seen = json.loads(lines[-1].removeprefix("LOADED "))
    assert seen["rc"] == 0, proc.stdout + proc.stderr
    assert "collected" in proc.stdout  # the checks were collected, not skipped
    assert seen["loaded"] == [], f"collect-only imported {seen['loaded']}"
