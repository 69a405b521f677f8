"""The site view over recorded lab runs: causes across vantages, the report, the command line.

The fixtures under tests/fixtures/site/SCENARIO/ are the JSON results of the four lab profiles run
inside their nodes under a fault (re-record with tests/fixtures/site/record.py).
"""

from __future__ import annotations

import copy
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM, run_chromium
from sixcheck import siteview
from sixcheck.sitediag import SiteCause, Vantage, diagnose_site

FIXTURES = Path(__file__).parent / "fixtures" / "site"


def vantages(scenario: str) -> list[Vantage]:
    return [siteview.load_vantage(p) for p in sorted((FIXTURES / scenario).glob("*.json"))]


def failures_of(cause: SiteCause) -> set[tuple[str, str]]:
    return {(r.vantage, r.check) for r in cause.failures}


def failed(scenario: str, vantage: str, contains: str) -> set[tuple[str, str]]:
    doc = json.loads((FIXTURES / scenario / f"{vantage}.json").read_text())
    found = {
        (vantage, c["id"])
        for c in doc["checks"]
        if c["outcome"] in ("failed", "error") and contains in c["id"]
    }
    assert found, f"no failed {contains} on {vantage} in {scenario}"
    return found


def test_forwarding_off_on_the_gateway_explains_the_lan_and_the_outside() -> None:
    causes, rels = diagnose_site(vantages("forwarding-off"))
    top = causes[0]
    assert (top.vantage, top.area) == ("lab-gw", "sysctl")
    assert any("forwarding = 0" in t for t in top.ties)
    # the LAN host's missing Router flag and the outside's failed echo are consequences
    assert failed("forwarding-off", "lab-lan", "test_router_neighbor") <= failures_of(top)
    assert failed("forwarding-off", "lab-out", "test_echo_policy") <= failures_of(top)
    assert set(top.vantages()) == {"lab-gw", "lab-lan", "lab-out"}
    # each tie names the addresses that put the vantages together
    assert any("fe80::ff:fe00:101" in t and "Router flag" in t for t in top.ties)
    assert any("2001:db8:1:1::/64" in t for t in top.ties)
    assert {(r.vantage, r.kind) for r in rels if r.gateway == "lab-gw"} >= {
        ("lab-lan", "lan"),
        ("lab-out", "beyond"),
    }
    # nothing on the healthy VPN client is blamed
    assert all("lab-vpn" not in c.vantages() for c in causes)


def test_gateway_dropping_nd_explains_its_own_route_and_the_lans_timeouts() -> None:
    causes, _ = diagnose_site(vantages("icmpv6-dropped"))
    top = causes[0]
    assert top.vantage == "lab-gw"
    assert top.area in ("nd", "firewall")  # firewall once the run's own diagnosis names it
    assert failed("icmpv6-dropped", "lab-lan", "test_router_neighbor") <= failures_of(top)
    assert failed("icmpv6-dropped", "lab-lan", "test_resolver_answers") <= failures_of(top)
    assert {"lab-gw", "lab-lan", "lab-out"} <= set(top.vantages())


def test_gateway_without_default_route_explains_the_others() -> None:
    causes, _ = diagnose_site(vantages("accept-ra-ignored"))
    top = causes[0]
    assert top.vantage == "lab-gw"
    assert any("no IPv6 default route" in t for t in top.ties)
    assert failed("accept-ra-ignored", "lab-out", "test_inbound_allowed") <= failures_of(top)


def test_two_independent_faults_stay_two_causes() -> None:
    causes, _ = diagnose_site(vantages("tunnel-far-end-gone+resolver-down"))
    tunnel = [c for c in causes if c.vantage == "lab-gw"]
    dns = [c for c in causes if c.vantage == "lab-lan"]
    assert tunnel
    assert dns
    for c in causes:  # no cause mixes the gateway's tunnel with the LAN's resolver
        assert len(c.vantages()) == 1, c
    assert all(c.area == "tunnel" for c in tunnel)


def test_a_lan_fault_stays_on_the_lan() -> None:
    causes, _ = diagnose_site(vantages("ra-stopped"))
    assert causes[0].vantage == "lab-lan"
    assert causes[0].area == "nd"
    assert not any(c.vantage == "lab-gw" for c in causes)
    # the outside's failed echo to the LAN host's SLAAC address: the host has no address there
    assert failed("ra-stopped", "lab-out", "test_echo_policy") <= failures_of(causes[0])
    assert any("interface identifier" in t for t in causes[0].ties)


def test_healthy_site_has_no_cause(tmp_path: Path) -> None:
    rep = siteview.write_site_report(vantages("healthy"), tmp_path / "site")
    assert rep.causes == []
    assert rep.exitstatus == 0
    doc = json.loads(rep.json.read_text())
    assert doc["schema"] == "sixcheck-site/1"
    assert doc["causes"] == []


def test_ties_come_from_addresses_not_names() -> None:
    vs = vantages("forwarding-off")
    gw = next(v for v in vs if v.name == "lab-gw")
    blind = copy.deepcopy(dict(gw.doc or {}))
    blind["vantage"]["interfaces"] = {}  # same names, no addresses to tie the others to
    vs[vs.index(gw)] = Vantage("lab-gw", blind, source=gw.source)
    causes, rels = diagnose_site(vs)
    assert rels == []
    assert all(c.vantages() == [c.vantage] for c in causes)


def test_vantage_without_results_is_a_finding(tmp_path: Path) -> None:
    vs = [
        *vantages("healthy"),
        siteview.VantageResult("vpn-2", error="ssh: connect to host vpn2 port 22: timed out"),
    ]
    rep = siteview.write_site_report(vs, tmp_path / "out.html")
    assert rep.exitstatus == 1
    assert rep.html == tmp_path / "out.html"
    assert rep.json == tmp_path / "out.json"
    assert [c.key for c in rep.causes] == ["vpn-2:no-results"]
    page = rep.html.read_text()
    assert "no results" in page
    assert "timed out" in page
    doc = json.loads(rep.json.read_text())
    assert doc["summary"]["without_results"] == 1
    row = next(r for r in doc["vantages"] if r["name"] == "vpn-2")
    assert row["error"].startswith("ssh:")


def test_report_links_each_vantage_and_draws_the_site(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "forwarding-off", runs)
    (runs / "lab-lan.html").write_text("<html>lan</html>")
    rc = siteview.main([*map(str, sorted(runs.glob("*.json"))), "-o", str(tmp_path / "site")])
    assert rc == 1
    page = (tmp_path / "site" / "index.html").read_text()
    assert "href='../runs/lab-lan.html'" in page  # its own HTML report, else its JSON
    assert "href='../runs/lab-gw.json'" in page
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    root = ET.fromstring(svg)  # well-formed: it prints and embeds anywhere
    assert "script" not in svg.lower()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "lab-gw" in texts
    assert "2001:db8:53::53" in texts
    assert page.index("Diagnosis") < page.index("<svg")


def test_bad_input_is_one_line_per_problem_and_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"schema": "something-else"}')
    (tmp_path / "odd.json").write_text('{"schema": "sixcheck-results/1", "checks": [1]}')
    names = ["missing.json", "x.json", "other.json", "odd.json"]
    rc = siteview.main([str(tmp_path / n) for n in names])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 4
    assert len(err) == 4
    assert "missing.json: no such file" in err[0]
    assert "not JSON" in err[1]
    assert "not sixcheck JSON results" in err[2]
    assert "odd.json: " in err[3]
    assert not (tmp_path / "site-report").exists()
    assert siteview.main([]) == 4  # no files at all: argparse's usage line, exit 4


def test_site_run_is_forwarded(capsys: pytest.CaptureFixture[str]) -> None:
    """`sixcheck site run ...` reaches sixcheck.siterun with the rest of its arguments."""
    assert siteview.main(["run", "--help"]) == 0
    assert "--report-dir DIR" in capsys.readouterr().out


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/bootstrap adds it)"
)
def test_site_report_screenshot(tmp_path: Path) -> None:
    """Rendered by a real browser: the picture is there, drawn, and below the Diagnosis."""
    rep = siteview.write_site_report(vantages("forwarding-off"), tmp_path / "site")
    png = tmp_path / "site.png"
    run_chromium(rep.html, tmp_path, "--window-size=1000,1600", f"--screenshot={png}")
    assert png.stat().st_size > 20_000
    dom = run_chromium(rep.html, tmp_path, "--window-size=1000,1600", "--dump-dom")
    assert dom.index("Diagnosis") < dom.index("sx-site-picture") < dom.index("Vantages")
    assert "net.ipv6.conf.all.forwarding is 0" in dom
    assert 'class="sx-cause-mark"' in dom


def _scenario(scenario: str, area: str) -> Any:
    from sixcheck.lab import matrix

    s = matrix.Scenario(scenario, "fault", area, frozenset({area}), (scenario,))
    for p in sorted((FIXTURES / scenario).glob("*.json")):
        doc = json.loads(p.read_text())
        s.runs[p.name] = matrix.ProfileRun(p.name, p.stem, 1, 0.0, doc["checks"], doc=doc)
    s.diagnosis = {"diagnosed": True, "note": ""}
    return s


@pytest.mark.parametrize(
    ("scenario", "area"),
    [
        ("forwarding-off", "sysctl"),
        ("icmpv6-dropped", "firewall"),
        ("accept-ra-ignored", "sysctl"),
        ("ra-stopped", "nd"),
        ("outbound-new-dropped", "firewall"),
    ],
)
def test_matrix_site_verdict_names_the_faults_area(
    scenario: str, area: str, tmp_path: Path
) -> None:
    from sixcheck.lab import matrix

    s = _scenario(scenario, area)
    matrix.judge_site(s, tmp_path, None)
    assert s.site["diagnosed"] is True, s.site
    assert s.diagnosis["diagnosed"] is True


def test_matrix_site_verdict_overrules_a_wrong_area(tmp_path: Path) -> None:
    from sixcheck.lab import matrix

    s = _scenario("forwarding-off", "dns")  # pretend the fault were the resolver's
    matrix.judge_site(s, tmp_path, None)
    assert s.site["diagnosed"] is False
    assert s.diagnosis["diagnosed"] is False
    assert s.diagnosis["note"].startswith("site: top site cause is sysctl on lab-gw")


def test_a_link_local_address_two_gateways_share_ties_nothing() -> None:
    vs = vantages("ra-stopped")  # the LAN host has only its link-local address
    gw = next(v for v in vs if v.name == "lab-gw")
    twin = copy.deepcopy(dict(gw.doc or {}))
    twin["profile"]["name"] = "other-gw"
    twin["vantage"]["interfaces"] = {"lan9": ["fe80::ff:fe00:101/64"]}  # the same router LL
    _, rels = diagnose_site([*vs, Vantage("other-gw", twin)])
    assert not [r for r in rels if r.vantage == "lab-lan" and r.kind == "lan"]
    _, rels = diagnose_site(vs)
    assert [r.gateway for r in rels if r.vantage == "lab-lan"] == ["lab-gw"]
