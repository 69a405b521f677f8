"""Area sysctl without a node: the upstream-RA rule over crafted sysctl readings."""

from __future__ import annotations

from conftest import load_checks
from sixcheck.check import Simple
from sixcheck.probes.sysctl import SysctlRead, SysctlValue

CHECKS = load_checks("sysctl")
KEYS = ("forwarding", "accept_ra", "disable_ipv6")


def _upstream(values: dict[str, str | None]) -> str | None:
    """test_upstream_ras_are_accepted's message (None: passed) for wan0's and all's readings."""
    reads = tuple(SysctlRead(f"net.ipv6.conf.{s}.{k}") for s in ("wan0", "all") for k in KEYS)
    found = {r: SysctlValue(key=r.key, value=values.get(r.key.split(".", 3)[3])) for r in reads}
    try:
        CHECKS.test_upstream_ras_are_accepted(Simple("wan0", reads), found.__getitem__, {})
    except AssertionError as exc:
        return str(exc)
    return None


HEALTHY = {
    "wan0.forwarding": "1",
    "wan0.accept_ra": "2",
    "wan0.disable_ipv6": "0",
    "all.forwarding": "1",
    "all.accept_ra": "1",
    "all.disable_ipv6": "0",
}


def test_upstream_rule_judges_numbers() -> None:
    assert _upstream(HEALTHY) is None
    assert "accept_ra=1 with forwarding=1 on wan0" in (
        _upstream({**HEALTHY, "wan0.accept_ra": "1"}) or ""
    )


def test_upstream_rule_never_passes_on_an_unreadable_value() -> None:
    """A value that is no number said nothing: "RAs are accepted" must not pass on it."""
    msg = _upstream({**HEALTHY, "wan0.accept_ra": ""})
    assert msg is not None
    assert msg.startswith(
        "wan0: could not tell whether upstream RAs are accepted: net.ipv6.conf.wan0.accept_ra "
        "reads '', expected a number"
    ), msg
    assert _upstream({**HEALTHY, "wan0.forwarding": None}) is not None
