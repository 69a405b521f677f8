"""The dhcpv6 checks against the lab's real Kea servers and dhclient: all pass on the healthy site
(gateway and LAN host), and each DHCPv6 fault fails with a message naming the interface, the
server and the cause (nothing came back, a status code, the firewall's reject, the rogue server)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

CHECKS = ["checks/test_dhcpv6.py"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(f"d{os.getpid()}") as lab:
        yield lab


def run(lab: Lab, node: str, tmp_path: Path) -> tuple[int, dict[str, str], dict[str, str], str]:
    """Run the node's lab profile's dhcpv6 checks: (exit, outcomes, failure messages, output)."""
    out = tmp_path / f"{node}.json"
    proc = netns.run_pytest_in(
        lab.ns(node),
        ["--profile", f"profiles/lab-{node}.yaml", "--no-report", "--json-file", str(out), *CHECKS],
        REPO,
        timeout=120,
    )
    data = json.loads(out.read_text()) if out.exists() else {"checks": []}
    got = {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}
    bad = {
        c["id"].split("::", 1)[1]: c["message"] for c in data["checks"] if c["outcome"] == "failed"
    }
    return proc.returncode, got, bad, proc.stdout + proc.stderr


def test_healthy_site_passes(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    for node, count in (("gw", 10), ("lan", 7)):
        rc, got, _, out = run(lab, node, tmp_path)
        assert rc == 0, out[-3000:]
        assert set(got.values()) == {"passed"}, got
        assert len(got) == count, got


def test_server_down_says_nothing_came_back_and_no_prefix_is_held(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["dhcpv6-server-down"])
    rc, _, bad, out = run(lab, "gw", tmp_path)
    assert rc == 1, out
    msg = bad["test_dhcpv6_server_answers[wan0-solicit]"]
    assert msg.startswith("nothing came back within 2.5 s on wan0"), msg
    assert "fe80::ff:fe00:1" in msg
    held = bad["test_delegated_prefix_held[delegated]"]
    assert "holds no delegated prefix (2001:db8:1::/48)" in held, held


def test_pool_exhausted_names_the_status_code(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["pd-pool-exhausted"])
    rc, _, bad, out = run(lab, "gw", tmp_path)
    assert rc == 1, out
    assert set(bad) == {
        "test_dhcpv6_server_answers[wan0-solicit]",
        "test_offered_prefix[wan0]",
    }, bad
    msg = bad["test_dhcpv6_server_answers[wan0-solicit]"]
    assert "answered IA_PD on wan0 with NoPrefixAvail (6)" in msg, msg
    assert "fe80::ff:fe00:1 (DUID 00:03:00:01:02:00:00:00:00:01)" in msg


def test_wrong_length_is_named_on_the_wire_and_in_the_routing_table(
    lab: Lab, tmp_path: Path
) -> None:
    lab.up(faults=["pd-wrong-length"])
    rc, _, bad, out = run(lab, "gw", tmp_path)
    assert rc == 1, out
    assert "(a /56), expected a /48" in bad["test_offered_prefix[wan0]"]
    held = bad["test_delegated_prefix_held[delegated]"]
    assert "holds unreachable 2001:db8:1::/56" in held, held


def test_reply_dropped_names_this_nodes_firewall(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["dhcpv6-reply-dropped"])
    rc, _, bad, out = run(lab, "gw", tmp_path)
    assert rc == 1, out
    msg = bad["test_dhcpv6_replies_reach_this_node[wan0]"]
    assert "this node sent back ICMPv6 admin-prohibited" in msg, msg
    assert "accept UDP from fe80::/10 port 547 to port 546 on wan0" in msg
    assert "test_dhcpv6_server_answers[wan0-solicit]" not in bad  # the server did answer


def test_rogue_server_is_named(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["rogue-dhcpv6-server"])
    rc, _, bad, out = run(lab, "lan", tmp_path)
    assert rc == 1, out
    assert set(bad) == {"test_no_rogue_dhcpv6_server[eth0]"}, bad
    msg = bad["test_no_rogue_dhcpv6_server[eth0]"]
    assert msg.startswith("rogue DHCPv6 server fe80::ff:fe00:166"), msg
    assert "DNS 2001:db8:bad::53" in msg


def test_managed_flag_without_a_stateful_server(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["ra-managed-no-server"])
    rc, _, bad, out = run(lab, "lan", tmp_path)
    assert rc == 1, out
    msg = bad["test_ra_flags_match_dhcpv6[eth0]"]
    assert "sets M=1" in msg, msg
    assert "IA_NA NoAddrsAvail (2)" in msg


def test_boot_url_missing_for_efi_only(lab: Lab, tmp_path: Path) -> None:
    lab.up(faults=["boot-url-missing"])
    rc, got, bad, out = run(lab, "lan", tmp_path)
    assert rc == 1, out
    assert set(bad) == {"test_client_class_options[eth0-efi-x64]"}, bad
    msg = bad["test_client_class_options[eth0-efi-x64]"]
    assert "client architecture 7 no boot file URL (option 59)" in msg, msg
    assert got["test_client_class_options[eth0-ipxe]"] == "passed"
