"""NTP over IPv6: each server answers, is synchronised, and agrees with the local clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sixcheck.check import Simple, targets
from sixcheck.probes.ntp import KISS_CODES, NtpAnswer, NtpQuery
from sixcheck.schema import Profile

AREA = "ntp"

Observe = Callable[[Any], Any]


def _servers(p: Profile) -> Iterator[Simple]:
    assert p.ntp is not None
    for server in p.ntp.servers:
        yield Simple(server, (NtpQuery(server, p.ntp.port),))


def _answered(ans: NtpAnswer, what: str) -> None:
    """Fail a dependent check with the layer that broke (transport, KoD) when there is nothing
    to judge."""
    assert ans.responded, f"could not tell {what}: {ans.error}"
    assert ans.kiss_code is None, (
        f"could not tell {what}: {ans.where()} sent a Kiss-o'-Death ({ans.kiss_code})"
    )


@targets(_servers)
def test_ntp_answers(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The server answers an SNTP request over IPv6, and does not send a Kiss-o'-Death."""
    ans: NtpAnswer = observe(target.requests[0])
    assert ans.error_kind != "resolve", (
        f"{ans.error}; expected an IPv6 address for the NTP server: publish its AAAA record or "
        "fix this node's resolvers (or list the server by address)"
    )
    assert ans.responded, (
        f"{ans.error}; expected an NTP answer. Check that the server runs and serves "
        f"[{ans.address or ans.server}]:{ans.port}/udp to this node, and that firewalls pass "
        "NTP over IPv6"
    )
    assert ans.kiss_code is None, (
        f"{ans.where()} answered with a Kiss-o'-Death, code {ans.kiss_code} "
        f"({KISS_CODES.get(ans.kiss_code, 'unknown code')}); expected time. Ask the server's "
        "operator to allow this node (DENY/RSTR) or query less often (RATE)"
    )


@targets(_servers)
def test_ntp_synchronised(
    target: Simple, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """The server's own clock is synchronised: stratum 1..max, no leap alarm (leap 3 means
    'not synchronised', stratum 16 the same). A client must not follow such a server."""
    assert profile.ntp is not None
    max_stratum = profile.ntp.max_stratum
    evidence["max_stratum"] = max_stratum
    ans: NtpAnswer = observe(target.requests[0])
    _answered(ans, "whether it is synchronised")
    assert ans.stratum is not None
    synchronised = 1 <= ans.stratum <= 15 and ans.leap != 3
    assert synchronised, (
        f"{ans.where()} is not synchronised (stratum {ans.stratum}, leap {ans.leap}: "
        f"{ans.leap_text}); expected stratum 1-{max_stratum} and no alarm. Its upstream time "
        "sources are unreachable: fix the server's own sources"
    )
    assert ans.stratum <= max_stratum, (
        f"{ans.where()} is at stratum {ans.stratum} (refid {ans.refid}), expected at most "
        f"{max_stratum}: it is too far from a reference clock; use a closer server"
    )


@targets(_servers)
def test_ntp_offset(
    target: Simple, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """The local clock agrees with the server within the profile's bound (RFC 5905 offset).
    Minutes of skew break TLS, Kerberos and log correlation while every packet still flows."""
    assert profile.ntp is not None
    bound = profile.ntp.max_offset
    evidence["max_offset_s"] = bound
    ans: NtpAnswer = observe(target.requests[0])
    _answered(ans, "the clock offset")
    assert ans.offset is not None
    evidence["offset_s"] = ans.offset
    assert abs(ans.offset) <= bound, (
        f"{ans.where()} differs from the local clock by {ans.offset:+.3f} s (delay "
        f"{ans.delay:.3f} s), expected within ±{bound:g} s: either this node's clock or the "
        "server's is wrong; compare with another server and fix the one that is off"
    )
