"""The vpn checks on the lab's VPN client: healthy and blackholed pass, the leaks fail by name.

One lab instance (``v{pid}``) is shared by the module and rebuilt per scenario (``up`` tears the
previous one down first, about a second); the lab profile runs inside the ``vpn`` namespace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, needs_root
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"v{os.getpid()}"
PROFILE = REPO / "profiles" / "lab-vpn.yaml"

FLAGSHIP = (
    "IPv6 to intranet.example.net (2001:db8:10::10) leaves by eth0 around the IPv4-only VPN wg0"
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        yield lab


def _run(
    lab: Lab, faults: list[str], tmp_path: Path, *extra: str
) -> tuple[dict[str, str], dict, str]:  # type: ignore[type-arg]
    lab.up(faults=faults)
    out = tmp_path / "results.json"
    proc = netns.run_pytest_in(
        lab.ns("vpn"),
        ["--profile", str(PROFILE), "--report-dir", str(tmp_path), "--json-file", str(out), *extra],
        REPO,
        timeout=120,
    )
    text = proc.stdout + proc.stderr
    assert out.exists(), text
    data = json.loads(out.read_text())
    outcomes = {c["id"].split("::", 1)[1]: c["outcome"] for c in data["checks"]}
    messages = {c["id"].split("::", 1)[1]: c.get("message") or "" for c in data["checks"]}
    assert "Traceback" not in text
    return outcomes, messages, text


def test_healthy_vpn_carries_both_families(lab: Lab, tmp_path: Path) -> None:
    outcomes, _, text = _run(lab, [], tmp_path)
    assert set(outcomes.values()) == {"passed"}, text
    vpn = [k for k in outcomes if k.startswith("test_") and "vpn" in k]
    assert "test_protected_destination_stays_in_vpn[IPv6-intranet.example.net]" in vpn
    assert "test_probe_packet_stays_in_vpn[IPv6-2001:db8:10::/64]" in vpn
    assert "test_dns_goes_through_vpn[host-resolvers]" in vpn
    html = next(tmp_path.glob("lab-vpn-*.html")).read_text()
    assert "seen on wg0" in html  # the captured datagram is evidence
    assert "32766: from all lookup main" in html  # the rule walk is evidence


def test_route_decisions_are_recorded_as_such(lab: Lab, tmp_path: Path) -> None:
    """The evidence of a route decision says `RouteDecision`, its route type is `route_type`, and
    a baseline an older sixcheck wrote of the same healthy site (its decisions recorded as
    `"kind": "unicast"`) compares without a change."""
    legacy = REPO / "tests" / "fixtures" / "legacy" / "healthy-lab-vpn.json"
    outcomes, _, text = _run(lab, [], tmp_path, "--baseline", str(legacy))
    assert set(outcomes.values()) == {"passed"}, text
    data = json.loads((tmp_path / "results.json").read_text())
    seen = [
        (e["request"]["probe"], e["observation"])
        for c in data["checks"]
        for e in c["evidence"]
        if "observation" in e
    ]
    routes = [o for probe, o in seen if probe == "RouteGet"]
    assert routes, text
    assert {o["kind"] for o in routes} == {"RouteDecision"}
    assert {o["route_type"] for o in routes} == {"unicast"}
    nested = [d for probe, o in seen if probe == "NameEgress" for d in o["decisions"]]
    assert nested, text
    assert all(d["route_type"] == "unicast" and "kind" not in d for d in nested)
    assert "route_type" in data["observation_fields"]["RouteDecision"]["stable"]
    changes = data["baseline"]["changes"]
    assert data["baseline"]["counts"]["still-passing"] == len(outcomes), changes
    assert changes == [], changes


def test_blackholed_ipv6_passes(lab: Lab, tmp_path: Path) -> None:
    outcomes, _, text = _run(lab, ["vpn-blackhole"], tmp_path)
    assert set(outcomes.values()) == {"passed"}, text


def test_ipv4_only_vpn_leak_fails_with_the_flagship_message(lab: Lab, tmp_path: Path) -> None:
    outcomes, messages, text = _run(lab, ["vpn-leak"], tmp_path)
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert "test_protected_destination_stays_in_vpn[IPv6-intranet.example.net]" in failed
    assert "test_probe_packet_stays_in_vpn[IPv6-intranet.example.net]" in failed
    assert "test_preferred_family_is_protected[intranet.example.net]" in failed
    # IPv4 still goes into the tunnel, and the other areas are untouched
    assert outcomes["test_protected_destination_stays_in_vpn[IPv4-intranet.example.net]"] == (
        "passed"
    )
    assert all(v == "passed" for k, v in outcomes.items() if k.startswith("test_sysctl"))
    msg = messages["test_protected_destination_stays_in_vpn[IPv6-intranet.example.net]"]
    assert msg.startswith(FLAGSHIP), msg
    assert "default via fe80::ff:fe00:101 dev eth0" in msg
    cap = messages["test_probe_packet_stays_in_vpn[IPv6-intranet.example.net]"]
    assert "captured leaving by eth0" in cap, cap
    assert FLAGSHIP in text


def test_public_resolver_is_a_dns_leak(lab: Lab, tmp_path: Path) -> None:
    outcomes, messages, text = _run(lab, ["vpn-dns-public"], tmp_path)
    failed = {k for k, v in outcomes.items() if v == "failed"}
    assert failed == {"test_dns_goes_through_vpn[host-resolvers]"}, text
    msg = messages["test_dns_goes_through_vpn[host-resolvers]"]
    assert msg.startswith(
        "DNS for protected names goes to 2001:db8:53::53, which is not one of the VPN's "
        "resolvers (2001:db8:f::53, 203.0.113.153), and leaves by eth0 around the VPN wg0"
    ), msg
