"""NTP over IPv6: each server answers, is synchronised, and agrees with the local clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.ntp_requests import NtpQuery
from sixcheck.schema import Profile

if TYPE_CHECKING:  # what the probe answers: loaded when it runs, not when pytest collects
    from sixcheck.probes.ntp import NtpAnswer

AREA = "ntp"

Observe = Callable[[Any], Any]


def _servers(p: Profile) -> Iterator[Simple]:
    assert p.ntp is not None
    for server in p.ntp.servers:
        yield Simple(server, (NtpQuery(server, p.ntp.port),))


def _answered(ans: NtpAnswer, what: str) -> None:
    """Fail a dependent check with the layer that broke (transport, bogus reply, KoD) when there
    is nothing to judge."""
    assert ans.responded, f"could not tell {what}: {ans.error}"
    assert ans.kiss_code is None, (
        f"could not tell {what}: {ans.where()} sent a Kiss-o'-Death ({ans.kiss_code})"
    )


def _raw(ans: NtpAnswer, evidence: dict[str, Any]) -> str:
    """The header fields a verdict rests on, into the evidence and as a message fragment."""
    evidence["leap"] = ans.leap
    evidence["stratum"] = ans.stratum
    evidence["refid"] = ans.refid
    evidence["refid_hex"] = ans.refid_hex
    ref = ans.reference_time
    evidence["reference_time"] = _utc(ref) if ref is not None else None
    evidence["reference_age_s"] = ans.reference_age
    return f"leap {ans.leap}, stratum {ans.stratum}, refid {ans.refid_hex}"


def _utc(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _age(seconds: float) -> str:
    """An age a person reads at a glance: 5 h 12 min, 3 min 4 s."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


@targets(_servers)
def test_ntp_answers(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The server answers an SNTP request over IPv6 with a reply to it (not a bogus one: origin
    ours, server mode, NTPv4, a transmit timestamp), and not with a Kiss-o'-Death: a client
    that gets one must stop or slow down (RFC 5905 7.4, RFC 8633)."""
    ans: NtpAnswer = observe(target.requests[0])
    assert ans.error_kind != "resolve", (
        f"{ans.error}; expected an IPv6 address for the NTP server: publish its AAAA record or "
        "fix this node's resolvers (or list the server by address)"
    )
    if ans.stratum is not None:
        _raw(ans, evidence)
    assert ans.error_kind != "bogus", (
        f"{ans.error}; expected a server-mode (4) NTPv4 reply to this request. The server's NTP "
        "software is broken, or something on the path answers or rewrites NTP in its place: "
        "capture the exchange (udp port 123) on both ends and compare"
    )
    assert ans.responded, (
        f"{ans.error}; expected an NTP answer. Check that the server runs and serves "
        f"[{ans.address or ans.server}]:{ans.port}/udp to this node, and that firewalls pass "
        "NTP over IPv6"
    )
    if ans.kiss_code is not None:
        from sixcheck.probes.ntp import KISS_CODES  # the probe ran: loaded by now

        meaning, fix = KISS_CODES.get(
            ans.kiss_code,
            ("a code RFC 5905 does not define", "ask the server's operator what it means"),
        )
        raise AssertionError(
            f"{ans.where()} answered with a Kiss-o'-Death, code {ans.kiss_code} ({meaning}; "
            f"stratum 0, refid {ans.refid_hex}); expected time. To fix: {fix}"
        )


@targets(_servers)
def test_ntp_synchronised(
    target: Simple, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """The server's own clock is synchronised and fresh: not unsynchronised (leap 3, stratum 0
    without a kiss code, or 16), stratum 1..max, its reference time recent and its root distance
    within bounds. A client must not follow an unsynchronised server, and a stale one ("on paper"
    synchronised, coasting since it lost its sources) drifts with nobody noticing."""
    assert profile.ntp is not None
    ntp = profile.ntp
    max_stratum = ntp.max_stratum
    evidence["max_stratum"] = max_stratum
    evidence["max_reference_age_s"] = ntp.max_reference_age
    evidence["max_root_distance_s"] = ntp.max_root_distance
    ans: NtpAnswer = observe(target.requests[0])
    _answered(ans, "whether it is synchronised")
    raw = _raw(ans, evidence)
    assert ans.stratum is not None
    assert ans.state != "unsynchronised", (
        f"{ans.where()} is unsynchronised: {ans.unsynchronised_why} ({raw}); expected a "
        f"synchronised server (leap 0-2, stratum 1-{max_stratum}). The server has no time "
        "source; fix its upstream (its own servers or reference clock must be reachable and "
        "selected)"
    )
    assert ans.stratum <= max_stratum, (
        f"{ans.where()} is at stratum {ans.stratum} (refid {ans.refid}), expected at most "
        f"{max_stratum}: it is too far from a reference clock; use a closer server"
    )
    age, limit = ans.reference_age, ntp.max_reference_age
    assert age is not None, (
        f"{ans.where()} claims to be synchronised ({raw}) but its reference time is 0 (never "
        "set); expected a reference time. Its NTP software is broken, or it has never "
        "synchronised: fix its upstream"
    )
    assert age <= limit, (
        f"{ans.where()} claims to be synchronised ({raw}) but last set its clock "
        f"{_age(age)} ago (reference time {evidence['reference_time']}), expected within "
        f"{_age(limit)}: it has lost its time sources and is coasting on its own clock (stale). "
        "Fix its upstream"
    )
    distance = round((ans.root_delay or 0.0) / 2 + (ans.root_dispersion or 0.0), 6)
    evidence["root_distance_s"] = distance
    assert distance <= ntp.max_root_distance, (
        f"{ans.where()} claims to be synchronised ({raw}) but its root distance is "
        f"{distance:g} s (root delay {ans.root_delay:g} s / 2 + root dispersion "
        f"{ans.root_dispersion:g} s), expected at most {ntp.max_root_distance:g} s: its "
        "error bound has grown (stale sources, or a long poor path to its reference), and "
        "clients reject it (RFC 5905 MAXDIST). Fix its upstream"
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
    assert ans.state != "unsynchronised", (
        f"could not tell the clock offset: {ans.where()} is unsynchronised "
        f"({ans.unsynchronised_why}); its time is not to be followed (RFC 5905 8)"
    )
    assert ans.offset is not None
    evidence["offset_s"] = ans.offset
    assert abs(ans.offset) <= bound, (
        f"{ans.where()} differs from the local clock by {ans.offset:+.3f} s (delay "
        f"{ans.delay:.3f} s), expected within ±{bound:g} s: either this node's clock or the "
        "server's is wrong; compare with another server and fix the one that is off"
    )
