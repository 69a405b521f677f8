"""The tunnel's path MTU is measured through the tunnel or not at all.

A node without its tunnel interface still reaches the far target through eth0; the path-MTU walk
there succeeds, and used to pass the tunnel check although no packet went through the tunnel.
Two throwaway namespaces: the node (eth0, default route) and a router holding the target on lo.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import netns

pytestmark = [needs_root, pytest.mark.lab]

TARGET = "2001:db8:77::1"
PROFILE = f"""\
description: a gateway whose tunnel client is not running
node: {{role: router}}
interfaces:
  eth0: {{role: wan}}
  tun6: {{role: tunnel}}
timeouts: {{probe: 1, run: 10}}
tunnel:
  interface: tun6
  path_mtu: {{target: "{TARGET}", mtu: 1280, start: 1500}}
"""


def test_path_mtu_fails_when_the_target_is_not_routed_through_the_tunnel(tmp_path: Path) -> None:
    prof = tmp_path / "gw.yaml"
    prof.write_text(PROFILE)
    out = tmp_path / "r.json"
    with netns.temp_netns("sxpm") as node, netns.temp_netns("sxpr") as router:
        for ns, cmd in (
            (node, f"ip link add eth0 type veth peer name up0 netns {router}"),
            (node, "ip link set eth0 up"),
            (node, "ip -6 addr add 2001:db8:0:1::2/64 dev eth0 nodad"),
            (node, "ip -6 route add default via 2001:db8:0:1::1 dev eth0"),
            (router, "ip link set up0 up"),
            (router, "ip -6 addr add 2001:db8:0:1::1/64 dev up0 nodad"),
            (router, f"ip -6 addr add {TARGET}/128 dev lo"),
        ):
            netns.run(ns, cmd, check=True)
        # the path through eth0 carries 1500 bytes: the walk alone would find nothing wrong
        ping = netns.run(node, f"ping -6 -c 1 -W 2 -M do -s 1452 {TARGET}", check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        proc = netns.run_pytest_in(
            node,
            ["--profile", str(prof), "--json-file", str(out), "--no-report",
             "-p", "no:cacheprovider", "checks/test_tunnel.py"],
            REPO,
            timeout=120,
        )  # fmt: skip
    assert "Traceback" not in proc.stdout, proc.stdout[-3000:]
    by = {c["id"].split("::", 1)[1]: c for c in json.loads(out.read_text())["checks"]}
    check = by[f"test_tunnel_path_mtu[{TARGET}]"]
    assert check["outcome"] == "failed", check
    assert "leaves by eth0" in check["message"], check["message"]
    assert "not routed through the tunnel" in check["message"], check["message"]
    seen = [e["observation"] for e in check["evidence"] if "observation" in e]
    route = next(o for o in seen if o["kind"] == "RouteLookup")
    assert route["dev"] == "eth0", route
    # and the interface check names the missing tunnel
    assert by["test_tunnel_interface[tun6]"]["outcome"] == "failed"
