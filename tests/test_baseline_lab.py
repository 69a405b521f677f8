"""Post-change validation against the lab gateway: a healthy snapshot, a fault, the regression
listed first with its changed evidence; `--fail-on regressions` tolerates a failure the baseline
already had and fails on a new one."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM, REPO, needs_root, run_chromium
from sixcheck.lab import Lab, netns

pytestmark = [needs_root, pytest.mark.lab]

INSTANCE = f"b{os.getpid() % 100000}"
PROFILE = str(REPO / "profiles" / "lab-gw.yaml")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(INSTANCE) as lab:
        yield lab


def _run(
    lab: Lab, tmp: Path, name: str, *args: str, node: str = "gw", profile: str = PROFILE
) -> tuple[int, dict[str, Any], str]:
    out = tmp / f"{name}.json"
    proc = netns.run_pytest_in(
        lab.ns(node),
        [
            "--profile",
            profile,
            "--report-dir",
            str(tmp / "reports"),
            "--json-file",
            str(out),
            "--html",
            str(tmp / f"{name}.html"),
            "-p",
            "no:cacheprovider",
            *args,
        ],
        REPO,
        timeout=180,
    )
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    return proc.returncode, json.loads(out.read_text()), text


def test_snapshot_change_validate(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, _, out = _run(lab, tmp_path, "before")
    assert rc == 0, out

    # the change: IPv6 forwarding off on the gateway
    lab.up(faults=["forwarding-off"])
    rc, after, out = _run(lab, tmp_path, "after", "--baseline", str(tmp_path / "before.json"))
    assert rc == 1, out
    changes = after["baseline"]["changes"]
    assert changes[0]["category"] == "regression"
    first = changes[0]
    assert first["id"].endswith("test_sysctl[net.ipv6.conf.all.forwarding]"), changes[:3]
    assert {
        "request": "sysctl net.ipv6.conf.all.forwarding",
        "field": "value",
        "path": "sysctl net.ipv6.conf.all.forwarding > value",
        "before": "1",
        "after": "0",
        "text": "value 1 → 0",
    } in first["evidence"]
    # the terminal leads with the regressions, each with what changed
    summary = out[out.index("sixcheck baseline:") :].splitlines()
    assert summary[1].split()[0] == "sysctl", summary[:3]  # per-area counts first
    regression = next(i for i, s in enumerate(summary) if "REGRESSION" in s)
    assert summary[regression + 1].strip() == "sysctl net.ipv6.conf.all.forwarding"
    assert any(s.strip() == "value 1 → 0" for s in summary)
    page = (tmp_path / "after.html").read_text()
    assert page.index("Compared with the baseline") < page.index("Per area")

    # with the fault as the known state, the same failures are tolerated ...
    rc, again, out = _run(
        lab,
        tmp_path,
        "again",
        "--baseline",
        str(tmp_path / "after.json"),
        "--fail-on",
        "regressions",
    )
    assert rc == 0, out
    assert again["summary"]["failed"] == after["summary"]["failed"] > 0
    assert again["baseline"]["counts"]["regression"] == 0
    assert again["exitstatus"] == 0

    # ... and a new failure is not
    lab.up(faults=["forwarding-off", "tunnel-far-end-gone"])
    rc, worse, out = _run(
        lab,
        tmp_path,
        "worse",
        "--baseline",
        str(tmp_path / "after.json"),
        "--fail-on",
        "regressions",
    )
    assert rc == 1, out
    regressions = [c for c in worse["baseline"]["changes"] if c["category"] == "regression"]
    assert regressions
    assert all(c["area"] == "tunnel" for c in regressions), regressions
    assert worse["baseline"]["changes"][0]["category"] == "regression"


# ---------------------------------------------------------------------------------------------
# issue 19: the comparison reads like a change review (lab-lan, from the LAN host)

#: the comparison never shows what belongs to one run
RUN_NOISE = re.compile(
    r"source_port|elapsed|rtt|\bt[1-4]\b|sent_at|listen_seconds|rs_sent|lifetime|expires|"
    r"root_delay|(?<![\w:])\d\d:\d\d:\d\d(?![\w:])"
)
#: ... nor a field that describes one run only
RUN_FIELDS = {"at", "count", "attempts", "poll", "delay", "flags", "port", "source_port", "ttl"}


def _fields(doc: dict[str, Any]) -> set[str]:
    return {
        w for c in doc["baseline"]["changes"] for f in c["evidence"] for w in f["field"].split()
    }


def _lan_profile(tmp: Path) -> Path:
    """lab-lan with its NTP server by address only, so a resolver fault breaks DNS alone (the
    named server would need the resolver too), and generous deadlines."""
    text = (REPO / "profiles" / "lab-lan.yaml").read_text()
    text = text.replace(
        "servers: [2001:db8:123::123, ntp.example.net]", "servers: [2001:db8:123::123]"
    )
    assert "servers: [2001:db8:123::123]\n" in text  # the NTP section's line was found
    # generous deadlines: the comparison is under test here, not speed on a busy machine
    text = text.replace("probe: 1.5", "probe: 5").replace("run: 30", "run: 90")
    path = tmp / "lan.yaml"
    path.write_text(text)
    return path


def _lan_run(lab: Lab, tmp: Path, name: str, *args: str) -> tuple[int, dict[str, Any], str]:
    return _run(lab, tmp, name, *args, node="lan", profile=str(_lan_profile(tmp)))


#: one screen: a 1280x1024 window, the comparison section scrolled to the top
SCREEN = (1280, 1024)
MEASURE = (
    # once pytest-html's own script has laid out the page, keep only the comparison section (with
    # the report's styles) at the top of the window and record its height
    "<script>window.addEventListener('load', () => setTimeout(() => {"
    "const s = document.getElementById('sixcheck-baseline');"
    "const nodes = [];"
    "let n = s.previousElementSibling && s.previousElementSibling.tagName === 'STYLE'"
    " ? s.previousElementSibling : s;"
    "for (; n && n.id !== 'sixcheck-areas'; n = n.nextElementSibling) nodes.push(n);"
    "document.body.replaceChildren(...nodes);"
    "window.scrollTo(0, 0);"
    "const bottom = Math.max(...nodes.map((x) => x.getBoundingClientRect().bottom));"
    "document.body.setAttribute('data-sx-height', String(Math.round(bottom)));"
    "}, 1000));</script>"
)


def _comparison_height(report: Path, tmp: Path) -> int:
    """The height in CSS pixels of the report's comparison section as Chromium lays it out; a
    screenshot scrolled to it is left next to the report (`comparison.png`) for a person."""
    page = report.with_name("measured.html")  # next to the report: its assets/ apply
    page.write_text(report.read_text().replace("</body>", MEASURE + "</body>"))
    window = (f"--window-size={SCREEN[0]},{SCREEN[1]}", "--hide-scrollbars")
    run_chromium(page, tmp, *window, f"--screenshot={tmp / 'comparison.png'}")
    m = re.search(r'data-sx-height="(\d+)"', run_chromium(page, tmp, *window, "--dump-dom"))
    assert m, "the comparison section was not rendered"
    return int(m.group(1))


def _comparison_text(out: str) -> str:
    """The terminal's comparison block, without its first line (which names the baseline file and
    when it ran)."""
    block = out[out.index("sixcheck baseline:") :].split("sixcheck: ", maxsplit=1)[0]
    return "\n".join(block.splitlines()[1:])


def _lines(doc: dict[str, Any]) -> list[str]:
    return [f["text"] for c in doc["baseline"]["changes"] for f in c["evidence"]]


def test_change_review_healthy_resolver_rogue_ra(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    rc, first, out = _lan_run(lab, tmp_path, "healthy1")
    assert rc == 0, out
    assert "DnsAnswer" in first["observation_fields"]
    base = str(tmp_path / "healthy1.json")

    # two healthy runs: not a single changed line
    rc, again, out = _lan_run(lab, tmp_path, "healthy2", "--baseline", base)
    assert rc == 0, out
    counts = again["baseline"]["counts"]
    assert counts["regression"] == counts["new-failure"] == 0, counts
    assert _lines(again) == [], again["baseline"]["changes"]
    assert f"{counts['still-passing']} still passing, nothing meaningful changed" in out

    # the resolver refuses the LAN: DNS regressions only, each with its rcode/answer change
    lab.up(faults=["resolver-refuses-lan"])
    rc, refused, out = _lan_run(
        lab, tmp_path, "refused", "--baseline", base, "--fail-on", "regressions"
    )
    assert rc == 1, out
    regressions = [c for c in refused["baseline"]["changes"] if c["category"] == "regression"]
    assert regressions
    assert {c["area"] for c in regressions} == {"dns"}, [c["id"] for c in regressions]
    for c in regressions:
        fields = {f["field"] for f in c["evidence"]}
        assert fields & {"rcode", "answers"}, (c["id"], c["evidence"])
    assert any(
        f["text"] == "rcode NOERROR → REFUSED" for c in regressions for f in c["evidence"]
    ), regressions
    shown = "\n".join(_lines(refused)) + _comparison_text(out)
    assert not RUN_NOISE.search(shown), RUN_NOISE.search(shown)
    assert not _fields(refused) & RUN_FIELDS, _fields(refused)
    assert "AAAA www.example.net @ 2001:db8:53::53 over UDP" in out
    assert "DnsQuery(" not in out
    summary = out.split("sixcheck baseline:")[1].splitlines()
    assert summary[1].split()[0] == "dns", summary[:3]  # per-area counts first
    assert "→" in summary[1]

    # the section a person reads fits one screen
    if CHROMIUM is not None:
        height = _comparison_height(tmp_path / "refused.html", tmp_path)
        assert 0 < height <= SCREEN[1] - 100, height  # room for the browser's own bars
        assert (tmp_path / "comparison.png").stat().st_size > 0

    # a rogue router on the LAN: its address and its prefix are named
    lab.up(faults=["rogue-router"])
    rc, rogue, out = _lan_run(lab, tmp_path, "rogue", "--baseline", base)
    text = "\n".join(_lines(rogue))
    assert "2001:db8:bad::/64" in text, text
    assert re.search(r"adverts router \+ fe80::\S+", text), text
    # the rogue's low router preference reaches the kernel's default route as "low"
    assert re.search(r"routes \+ default type unicast gateway fe80::\S+ .*pref low", text), text
    shown = text + _comparison_text(out)
    assert not RUN_NOISE.search(shown), RUN_NOISE.search(shown)
    assert not _fields(rogue) & RUN_FIELDS, _fields(rogue)
