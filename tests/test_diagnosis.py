"""Diagnosis over recorded results: causes, consequences, and failures that stay apart.

The fixtures in tests/fixtures/diagnosis/SCENARIO/PROFILE.json are the JSON results of the lab
profiles, each run inside its lab node under one fault (see the README there). Every rule is shown
on a real observation set; the synthetic documents at the end show what is never tied.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sixcheck.diagnosis import LAYERS, Cause, diagnose, html_section, terminal_lines

FIXTURES = Path(__file__).parent / "fixtures" / "diagnosis"


@cache
def _load(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def run(name: str) -> dict[str, Any]:
    """A recorded run, `SCENARIO/PROFILE` (a fresh copy: tests may edit it)."""
    doc: dict[str, Any] = json.loads(_load(name))
    return doc


def failed_ids(doc: dict[str, Any]) -> list[str]:
    return [c["id"] for c in doc["checks"] if c["outcome"] in ("failed", "error")]


ALL = sorted(str(p.relative_to(FIXTURES).with_suffix("")) for p in FIXTURES.glob("*/*.json"))


def _doc(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"schema": "sixcheck-results/1", "profile": {"name": "p"}, "checks": list(checks)}


# ------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("name", ALL)
def test_every_failure_is_in_exactly_one_cause(name: str) -> None:
    doc = run(name)
    causes = diagnose(doc)
    seen = [i for c in causes for i in c.failures]
    assert sorted(seen) == sorted(failed_ids(doc))
    for c in causes:
        assert c.shown_by
        assert not set(c.shown_by) & set(c.explains)
        assert c.layer in LAYERS
        assert c.title
        assert c.vantage == doc["profile"]["name"]
        # a consequence is only claimed with the evidence that ties it
        assert bool(c.ties) or not c.explains, c
        assert Cause.from_json(json.loads(json.dumps(c.to_json()))) == c


@pytest.mark.parametrize("name", [n for n in ALL if n.startswith("healthy/")])
def test_healthy_runs_have_no_cause(name: str) -> None:
    assert diagnose(run(name)) == []


# ------------------------------------------------------------------------------- one fault, one cause


def _only(name: str) -> Cause:
    causes = diagnose(run(name))
    assert len(causes) == 1, [(c.key, c.title) for c in causes]
    return causes[0]


def test_no_ra_explains_no_address_no_default_route_and_every_local_unreachable() -> None:
    doc = run("ra-stopped/lab-lan")
    c = _only("ra-stopped/lab-lan")
    assert (c.key, c.area, c.layer) == ("nd.no-ra@eth0", "nd", "link")
    assert len(failed_ids(doc)) == 29
    assert len(c.shown_by) == 6  # the RA checks: one observation, one RA missing
    assert "checks/test_routes.py::test_addresses[eth0]" in c.explains
    assert "checks/test_routes.py::test_default_route[eth0]" in c.explains
    assert any("test_resolver_answers" in i for i in c.explains)
    ties = " ".join(c.ties)
    assert "no RA on eth0, so no SLAAC address in 2001:db8:1:1::/64" in ties
    assert "no RA on eth0, so no default route" in ties
    assert "Network is unreachable" in ties


def test_forwarding_off_on_the_gateway_is_one_setting() -> None:
    c = _only("forwarding-off/lab-gw")
    assert c.key == "sysctl:net.ipv6.conf.all.forwarding"
    assert c.area == "sysctl"
    assert len(c.explains) == 2
    assert all("forwarding" in i for i in c.explains)


def test_router_without_router_flag_explains_the_lans_lost_route_and_timeouts() -> None:
    c = _only("forwarding-off/lab-lan")
    assert c.key == "nd.not-router@eth0"
    assert "fe80::ff:fe00:101" in c.title
    assert "checks/test_routes.py::test_default_route[eth0]" in c.explains
    assert len(c.explains) == 22
    ties = " ".join(c.ties)
    assert "answered without the Router flag" in ties
    assert "timed out" in ties  # the DNS queries sent before the route went


def test_router_dropped_mid_run_explains_what_could_no_longer_be_sent() -> None:
    # the default route was still there when the routes were read, and gone for the later
    # probes: NTP got "no route", TCP could not even be sent; the router's missing flag is why
    c = _only("forwarding-off/lab-lan-route-gone-midrun")
    assert c.key == "nd.not-router@eth0"
    assert len(c.explains) == 20
    assert any("could not even send" in t for t in c.ties)
    assert any("'no route to its network'" in t for t in c.ties)


def test_accept_ra_ignored_explains_the_gateways_missing_default_route() -> None:
    c = _only("accept-ra-ignored/lab-gw")
    assert (c.key, c.area) == ("sysctl.ra-ignored@wan0", "sysctl")
    assert len(c.shown_by) == 2  # the sysctl and the upstream-RA check: one fault
    assert "checks/test_routes.py::test_default_route[wan0]" in c.explains
    assert any("test_route_get" in i for i in c.explains)


def test_the_same_routers_icmpv6_error_ties_a_lans_failures() -> None:
    # the gateway has no default route: it answers no-route to the LAN host's TCP and UDP;
    # DNS and NTP, which do not record the sender, only time out
    c = _only("accept-ra-ignored/lab-lan")
    assert c.key == "path.icmp:no-route@2001:db8:1:1::1"
    assert len(c.shown_by) == 2
    assert len(c.explains) == 18
    assert any("rate-limits its ICMPv6 errors" in t for t in c.ties)


def test_wrong_prefix_explains_the_address_and_every_reply_that_never_came() -> None:
    c = _only("wrong-prefix/lab-lan")
    assert (c.key, c.area) == ("nd.prefix@eth0", "nd")
    assert "2001:db8:2:1::/64" in c.title
    assert "checks/test_routes.py::test_addresses[eth0]" in c.explains
    assert any("sent from 2001:db8:2:1:0:ff:fe00:110" in t for t in c.ties)
    assert len(c.explains) == 22


def test_rogue_router_explains_the_extra_address_and_default_route() -> None:
    c = _only("rogue-router/lab-lan")
    assert c.key == "nd.rogue@eth0"
    assert sorted(c.explains) == [
        "checks/test_routes.py::test_addresses[eth0]",
        "checks/test_routes.py::test_default_route[eth0]",
    ]
    assert any("fe80::ff:fe00:166, the rogue router" in t for t in c.ties)


def test_missing_default_route_explains_every_network_unreachable() -> None:
    c = _only("lan-no-default-route/lab-lan")
    assert (c.key, c.area, c.layer) == ("route.no-default@eth0", "routes", "route")
    assert "accept_ra_defrtr=0" in c.title
    assert len(c.explains) == 21


def test_icmpv6_dropped_on_input_is_this_nodes_firewall() -> None:
    c = _only("icmpv6-dropped/lab-gw")
    assert (c.key, c.area) == ("firewall.icmpv6-input", "firewall")
    assert sorted(i.partition("[")[0].rsplit("::", 1)[-1] for i in c.explains) == [
        "test_anyip_answers",
        "test_tunnel_far_end",
        "test_tunnel_path_mtu",
    ]


def test_router_silent_to_nd_explains_no_ra_and_every_remote_timeout() -> None:
    c = _only("icmpv6-dropped/lab-lan")
    assert c.key == "nd.silent@eth0"
    assert len(c.explains) == 26
    assert any("answers neither Router nor Neighbor Solicitations" in t for t in c.ties)


def test_outbound_blocked_is_one_silent_path_shown_by_the_firewall_check() -> None:
    c = _only("outbound-new-dropped/lab-lan")
    assert (c.key, c.area, c.layer) == ("dst:2001:db8:80::80", "firewall", "path")
    assert len(c.explains) == 18


def test_resolver_down_explains_names_that_do_not_resolve() -> None:
    c = _only("resolver-down/lab-lan")
    assert (c.key, c.area) == ("dst:2001:db8:53::53", "dns")
    assert "nothing listens" in c.title
    assert sorted(c.explains) == sorted(
        f"checks/test_ntp.py::{t}[ntp.example.net]"
        for t in ("test_ntp_answers", "test_ntp_synchronised", "test_ntp_offset")
    )


def test_a_resolver_that_refuses_this_node_is_one_cause_for_every_name() -> None:
    c = _only("resolver-refuses-lan/lab-lan")
    assert (c.key, c.area) == ("dst:2001:db8:53::53", "dns")
    assert c.title == "resolver 2001:db8:53::53 answers REFUSED to this node's questions"
    # every question refused shows it, DNS64's too: a REFUSED ipv4only.arpa says nothing about
    # DNS64 ("could not tell"), it is the same refusal
    assert len(c.shown_by) == 12
    assert "checks/test_dns.py::test_dns64[2001:db8:53::53]" in c.shown_by
    assert all("ntp.example.net" in i for i in c.explains)


def test_a_silent_dhcpv6_exchange_is_one_cause_and_explains_the_missing_delegation() -> None:
    c = _only("lan-dhcpv6-down/lab-lan")
    assert (c.key, c.area) == ("dhcpv6.silent@eth0", "dhcpv6")
    assert len(c.shown_by) == 7
    c = _only("dhcpv6-server-down/lab-gw")
    assert c.key == "dhcpv6.silent@wan0"
    assert c.explains == ("checks/test_dhcpv6.py::test_delegated_prefix_held[delegated]",)
    assert "(IA_PD)" in c.ties[0]


def test_vpn_without_ipv6_is_one_leak() -> None:
    c = _only("vpn-leak/lab-vpn")
    assert (c.key, c.area) == ("vpn.leak@wg0", "vpn")
    assert len(c.shown_by) == 9
    assert "wg0 carries no IPv6" in c.title


def test_tunnel_far_end_gone_explains_the_target_behind_it() -> None:
    causes = diagnose(run("tunnel-far-end-gone/lab-gw"))
    top = causes[0]
    assert top.key == "dst:2001:db8:0:7::1"
    assert top.explains == ("checks/test_tunnel.py::test_tunnel_path_mtu[2001:db8:77::1]",)
    assert "goes via 2001:db8:0:7::1" in top.ties[0]


def test_one_ntp_server_is_one_cause_by_address_and_by_name() -> None:
    # answers, synchronised and offset, asked of the address and of its name: one server
    for name, key in (
        ("ntp-down/lab-lan", "dst:2001:db8:123::123"),
        ("ntp-kiss-rate/lab-lan", "ntp:2001:db8:123::123"),
        ("ntp-unsynchronised/lab-lan", "ntp:2001:db8:123::123"),
    ):
        c = _only(name)
        assert (c.key, c.area) == (key, "ntp")
        assert any("ntp.example.net" in i for i in c.shown_by), c.shown_by


def test_inbound_connections_reaching_the_inside_are_one_firewall_cause() -> None:
    c = _only("inbound-new-accepted/lab-out")
    assert (c.key, c.area) == ("firewall.inbound-open", "firewall")
    assert len(c.shown_by) == 2
    assert "get through the firewall" in c.title


def test_lone_failure_is_its_own_cause_in_its_own_words() -> None:
    doc = run("vpn-dns-public/lab-vpn")
    [only] = failed_ids(doc)
    c = _only("vpn-dns-public/lab-vpn")
    assert c.shown_by == (only,)
    assert c.explains == ()
    message = next(x["message"] for x in doc["checks"] if x["id"] == only)
    assert message.startswith(c.title.rstrip("…"))


# ------------------------------------------------------------------------------- kept apart


def test_tunnel_mtu_and_a_broken_probe_stay_two_causes_the_evidence_first() -> None:
    causes = diagnose(run("tunnel-mtu-blackhole/lab-gw"))
    assert causes[0].key == "tunnel.mtu@tun6"
    assert causes[0].explains == ("checks/test_tunnel.py::test_tunnel_path_mtu[2001:db8:77::1]",)
    assert any("exactly tun6's MTU" in t for t in causes[0].ties)
    # the RA listener that did not finish (a loaded machine) is not tied to the tunnel
    rest = {c.key for c in causes[1:]}
    assert all(k.startswith("probe:") for k in rest), rest


def test_a_broken_probe_is_one_cause_for_every_check_that_used_it() -> None:
    c = _only("resolver-down/lab-gw")
    assert c.key == "probe:RouterAdverts(interface=wan0)"
    assert len(c.shown_by) == 4
    assert c.explains == ()


def _merged(a: dict[str, Any], b: dict[str, Any], b_failures: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(a)
    doc["checks"] += [c for c in b["checks"] if c["id"] in b_failures]
    return doc


def test_two_faults_on_one_host_stay_two_causes() -> None:
    """The rogue router's failures beside an NTP server that skews: nothing ties them."""
    rogue = run("rogue-router/lab-lan")
    ntp = _doc(
        {
            "id": "checks/test_ntp.py::test_ntp_offset[2001:db8:123::123]",
            "area": "ntp",
            "outcome": "failed",
            "message": "NTP server 2001:db8:123::123 differs from the local clock by +300 s",
            "evidence": [
                {
                    "request": {"probe": "NtpQuery", "server": "2001:db8:123::123"},
                    "observation": {
                        "kind": "NtpAnswer",
                        "error": None,
                        "server": "2001:db8:123::123",
                        "address": "2001:db8:123::123",
                        "responded": True,
                        "offset": 300.0,
                    },
                }
            ],
        }
    )
    ids = failed_ids(ntp)
    causes = diagnose(_merged(rogue, ntp, ids))
    assert [c.key for c in causes] == ["nd.rogue@eth0", "ntp:2001:db8:123::123"]
    assert causes[1].shown_by == tuple(ids)


def test_no_evidence_no_tie() -> None:
    """Two timeouts while another off-link destination answers: no silent path, two causes."""

    def dns(server: str, outcome: str, responded: bool) -> dict[str, Any]:
        return {
            "id": f"checks/test_dns.py::test_resolver_answers[{server}-udp]",
            "area": "dns",
            "outcome": outcome,
            "message": f"resolver {server} did not answer" if outcome == "failed" else "",
            "evidence": [
                {
                    "request": {"probe": "DnsQuery", "server": server},
                    "observation": {
                        "kind": "DnsAnswer",
                        "server": server,
                        "responded": responded,
                        "error": None if responded else "timeout",
                        "error_kind": None if responded else "timeout",
                        "source": "2001:db8:1:1::10",
                    },
                }
            ],
        }

    doc = _doc(
        dns("2001:db8:53::53", "failed", False),
        dns("2001:db8:54::53", "failed", False),
        dns("2001:db8:55::53", "passed", True),
    )
    causes = diagnose(doc)
    assert [c.key for c in causes] == ["dst:2001:db8:53::53", "dst:2001:db8:54::53"]
    assert all(c.explains == () for c in causes)
    # without the answering one, nothing off-link answers: one silent path
    doc["checks"].pop()
    assert len(diagnose(doc)) == 1


# ------------------------------------------------------------------------------- shown first


def test_terminal_lines_put_the_top_cause_first() -> None:
    causes = diagnose(run("tunnel-mtu-blackhole/lab-gw"))
    lines = terminal_lines(causes)
    assert lines[0].startswith("sixcheck: probable cause [tunnel]: tun6 has MTU 1400")
    assert "explains 1 failure;" in lines[0]
    assert len(terminal_lines(causes * 3, limit=2)) == 3


def test_html_section_links_each_consequence_to_its_row() -> None:
    causes = diagnose(run("ra-stopped/lab-lan"))
    page = html_section(causes)
    assert page.startswith("<style>")
    assert "<h2 id='sixcheck-diagnosis'>Diagnosis</h2>" in page
    assert "href='#checks/test_routes.py::test_default_route[eth0]'" in page
    assert "explains 23 failures" in page
    assert "No failures" in html_section([])


def test_two_faults_recorded_together_stay_two_causes() -> None:
    """Lab runs with two faults at once (Lab.up(faults=[a, b])): each keeps its own cause."""
    causes = diagnose(run("rogue-router+ntp-down/lab-lan"))
    assert sorted(c.key for c in causes) == ["dst:2001:db8:123::123", "nd.rogue@eth0"]
    rogue = next(c for c in causes if c.key == "nd.rogue@eth0")
    assert not any("ntp" in i for i in rogue.failures)
    # two DNS-flavoured faults on one host: no RDNSS in the RA, and the resolver down. The host
    # asks the resolver from resolv.conf, so nothing ties the RA's missing option to it
    causes = diagnose(run("ra-no-rdnss+resolver-down/lab-lan"))
    assert [c.key for c in causes] == [
        "dst:2001:db8:53::53",
        "check:checks/test_nd.py::test_ra_dns[eth0]",
    ]
    assert causes[1].explains == ()


def _rejected(kind: str, dst: str, offender: str | None = None) -> dict[str, Any]:
    """A check whose probe got ICMPv6 admin-prohibited: TCP names the sender, DNS/NTP do not."""
    why = "is unreachable: administratively prohibited (ICMPv6 reject by a firewall)"
    obs: dict[str, Any]
    if kind == "tcp":
        obs = {
            "kind": "PortResult",
            "dst": dst,
            "state": "icmp",
            "icmp": {"name": "admin-prohibited", "offender": offender},
            "source": "2001:db8:1:1::10",
        }
    elif kind == "dns":
        obs = {"kind": "DnsAnswer", "server": dst, "responded": False, "error_kind": "unreachable"}
        obs["error"] = f"resolver {dst} over UDP/IPv6 {why}"
        obs["source"] = "2001:db8:1:1::10"
    else:
        obs = {"kind": "NtpAnswer", "server": dst, "address": dst, "responded": False}
        obs |= {"error_kind": "unreachable", "error": f"NTP server {dst} {why}"}
    return {
        "id": f"checks/test_{kind}.py::test_{kind}[{dst}]",
        "area": {"tcp": "firewall", "dns": "dns", "ntp": "ntp"}[kind],
        "outcome": "failed",
        "message": f"{dst}: {why}",
        "evidence": [{"request": {"probe": kind}, "observation": obs}],
    }


def test_the_same_admin_prohibited_on_dns_ntp_and_tcp_is_one_firewall() -> None:
    gw = "2001:db8:1:1::1"
    doc = _doc(
        _rejected("tcp", "2001:db8:80::80", gw),
        _rejected("dns", "2001:db8:53::53"),
        _rejected("ntp", "2001:db8:123::123"),
    )
    [c] = diagnose(doc)
    assert c.key == f"path.icmp:admin-prohibited@{gw}"
    assert len(c.shown_by) == 3
    assert "a firewall rejects the traffic" in c.title
    assert any(f"{gw} is the only router seen sending it" in t for t in c.ties)
    # two routers refusing: which one refused DNS and NTP is not in the evidence, so they are
    # not given to either
    doc["checks"].append(_rejected("tcp", "2001:db8:81::81", "2001:db8:0:1::1"))
    keys = sorted(c.key for c in diagnose(doc))
    assert keys == [
        "path.icmp:admin-prohibited@2001:db8:0:1::1",
        "path.icmp:admin-prohibited@2001:db8:1:1::1",
        "path.icmp:admin-prohibited@?",
    ]


@pytest.mark.parametrize("junk", [None, "", 0, [], {}, "x", [None], {"a": None}])
def test_diagnosis_never_breaks_on_odd_evidence(junk: object) -> None:
    """The diagnosis runs at the end of every run: evidence of an unexpected shape (an older or
    newer probe, a hand-edited file) must not cost the run its results."""
    for name in ALL:
        doc = run(name)
        for check in doc["checks"]:
            for entry in check.get("evidence") or ():
                for part in ("observation", "notes", "request"):
                    if isinstance(entry.get(part), dict):
                        entry[part] = {k: junk for k in entry[part]} | {
                            "kind": entry[part].get("kind")
                        }
        causes = diagnose(doc)
        assert sorted(i for c in causes for i in c.failures) == sorted(failed_ids(doc))
    assert diagnose({"checks": [{"id": "x", "outcome": "failed", "evidence": junk}]})
    assert diagnose({"profile": junk, "checks": junk}) == []
