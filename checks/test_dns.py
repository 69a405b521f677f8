"""DNS at this site: resolvers that answer over IPv6 transport, and names that resolve as expected.

Every message says which layer failed: the transport (resolver X did not answer over UDP/IPv6),
the DNS answer (resolver X answered NXDOMAIN / NOERROR without AAAA), or the data (AAAA differs).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.dns_requests import DnsQuery, ReadHostResolvers
from sixcheck.probes.netlink_requests import ReadAddresses
from sixcheck.schema import Profile

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.dns import DnsAnswer, HostResolvers
    from sixcheck.probes.netlink import AddressList

AREA = "dns"

Observe = Callable[[Any], Any]


# ------------------------------------------------------------------------- transport


def _resolver_transports(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    rdtype = "SOA" if p.dns.probe_name == "." else "AAAA"
    for server in p.dns.resolvers:
        for transport in p.dns.transports:
            q = DnsQuery(server, p.dns.probe_name, rdtype, transport)
            yield Simple(f"{server}-{transport}", (q,))


@targets(_resolver_transports)
def test_resolver_answers(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The resolver answers over this transport via IPv6 (UDP for everything, TCP for truncated
    answers and large records): a resolver an IPv6-only host cannot reach is no resolver."""
    ans: DnsAnswer = observe(target.requests[0])
    evidence["claim"] = f"answers a question over {ans.transport.upper()}/IPv6"
    assert ans.responded, (
        f"{ans.error}; expected an answer to {ans.name} {ans.rdtype}. Check that the resolver "
        f"runs and listens on [{ans.server}]:{ans.port}/{ans.transport} and that the path and "
        "firewalls between here and it pass DNS over IPv6"
    )
    assert ans.rcode in ("NOERROR", "NXDOMAIN"), (
        f"{ans.where()} answered {ans.rcode} for {ans.name} {ans.rdtype}: it is reachable but "
        f"{_rcode_meaning(ans.rcode)}"
    )


def _rcode_meaning(rcode: str | None) -> str:
    return {
        "REFUSED": "refuses this node (its access control does not include this node's "
        "addresses: allow them)",
        "SERVFAIL": "cannot resolve (upstream or DNSSEC failure on the resolver)",
        "FORMERR": "did not understand the question",
        "NOTIMP": "does not implement this kind of query",
    }.get(rcode or "", "did not answer the question")


# ------------------------------------------------------------------------- lookups


def _lookups(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    for lk in p.dns.lookups:
        for server in lk.resolvers if lk.resolvers is not None else p.dns.resolvers:
            q = DnsQuery(server, lk.name, lk.type, "udp")
            yield Simple(
                f"{server}-udp-{lk.type}-{lk.name}", (q,), {"expect": lk.expect, "type": lk.type}
            )


def _answer_over_tcp_if_truncated(ans: DnsAnswer, q: DnsQuery, observe: Observe) -> DnsAnswer:
    if ans.error_kind != "truncated":
        return ans
    return observe(DnsQuery(q.server, q.name, q.rdtype, "tcp", q.port))  # type: ignore[no-any-return]


def _norm(value: str, rdtype: str) -> str:
    if rdtype in ("AAAA", "A"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if rdtype in ("PTR", "CNAME", "NS"):
        return value.rstrip(".").lower()
    return value


def judge_lookup(ans: DnsAnswer, expect: Any) -> str | None:
    """None when the answer meets `expect`; else the message (transport, rcode or data layer)."""
    rdtype = ans.rdtype
    exp_text = (
        f"expected {rdtype} {', '.join(expect)}"
        if isinstance(expect, list)
        else {
            "any": f"expected at least one {rdtype}",
            "nxdomain": "expected NXDOMAIN (no such name)",
            "nodata": f"expected no {rdtype} record (the name exists without one)",
        }[expect]
    )
    if not ans.responded:
        return f"could not look up {ans.name} {rdtype}: {ans.error} ({exp_text})"
    if ans.error_kind == "truncated":
        return f"could not look up {ans.name} {rdtype}: {ans.error} ({exp_text})"
    if ans.rcode not in ("NOERROR", "NXDOMAIN"):
        return (
            f"{ans.where()} answered {ans.rcode} for {ans.name} {rdtype} ({exp_text}): the "
            f"resolver {_rcode_meaning(ans.rcode)}"
        )
    if expect == "nxdomain":
        if ans.nxdomain:
            return None
        found = ", ".join(ans.values()) or "no records"
        return (
            f"{ans.where()} answered NOERROR for {ans.name} ({found}), {exp_text}: the name "
            "exists; remove it from the zone or fix the expectation"
        )
    if ans.nxdomain:
        return (
            f"{ans.where()} answered NXDOMAIN: {ans.name} does not exist ({exp_text}); add the "
            "name to its zone (or check the spelling)"
        )
    found_set = {_norm(v, rdtype) for v in ans.values()}
    if expect == "nodata":
        if not found_set:
            return None
        return (
            f"{ans.where()} answered NOERROR and {ans.name} has {rdtype} "
            f"{', '.join(sorted(found_set))} ({exp_text}); remove the record"
        )
    if not found_set:
        hint = f"add the {rdtype} record for {ans.name} to its zone"
        return f"{ans.where()} answered NOERROR but {ans.name} has no {rdtype} ({exp_text}); {hint}"
    if expect == "any":
        return None
    want = {_norm(v, rdtype) for v in expect}
    if found_set == want:
        return None
    missing = sorted(want - found_set)
    extra = sorted(found_set - want)
    parts = [
        f"missing {', '.join(missing)}" if missing else "",
        f"unexpected {', '.join(extra)}" if extra else "",
    ]
    return (
        f"{ans.where()}: {ans.name} {rdtype} is {', '.join(sorted(found_set))} ({exp_text}): "
        f"{'; '.join(p for p in parts if p)}; update the zone (or the profile)"
    )


@targets(_lookups)
def test_lookup(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """A name the site needs resolves as the site expects, through each of its resolvers."""
    q = target.requests[0]
    assert isinstance(q, DnsQuery)
    evidence["expect"] = target.data["expect"]
    ans = _answer_over_tcp_if_truncated(observe(q), q, observe)
    problem = judge_lookup(ans, target.data["expect"])
    assert problem is None, problem


# ------------------------------------------------------------------------- reverse


def _reverse(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    for rv in p.dns.reverse:
        rname = rv.address.reverse_pointer
        for server in p.dns.resolvers:
            q = DnsQuery(server, rname, "PTR", "udp")
            yield Simple(
                f"{server}-udp-PTR-{rv.address}",
                (q,),
                {"address": str(rv.address), "name": rv.name},
            )


@targets(_reverse)
def test_reverse(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The site's address has a PTR in ip6.arpa (mail servers and logs need it) naming the host."""
    q = target.requests[0]
    assert isinstance(q, DnsQuery)
    addr, name = target.data["address"], target.data["name"]
    evidence["expect"] = name or "any PTR"
    ans = _answer_over_tcp_if_truncated(observe(q), q, observe)
    problem = judge_lookup(ans, [name] if name else "any")
    assert problem is None, f"reverse lookup of {addr}: {problem}"


# ------------------------------------------------------------------------- host resolvers


def _host_resolvers(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    if p.dns.host_resolvers is not None:
        yield Simple("this-node", (ReadHostResolvers(),))


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).version == 6
    except ValueError:
        return False


@targets(_host_resolvers)
def test_host_resolvers(
    target: Simple, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """The resolvers this node really uses include an IPv6 one (an IPv6-only host needs it) and
    are the ones the site intends."""
    assert profile.dns is not None
    assert profile.dns.host_resolvers is not None
    want = profile.dns.host_resolvers
    found: HostResolvers = observe(target.requests[0])
    assert found.error is None, f"could not tell which resolvers this node uses: {found.error}"
    used = list(found.effective)
    where = "systemd-resolved's upstream servers" if found.via_stub else "/etc/resolv.conf"
    evidence["effective"] = used
    if want.require_ipv6:
        assert any(_is_ipv6(s) for s in used), (
            f"this node uses no IPv6 resolver ({where}: {', '.join(used) or 'none'}); expected at "
            "least one: an IPv6-only host cannot resolve names. Configure one (RDNSS in the RA, "
            "DHCPv6, or a nameserver line)"
        )
    if want.expected is not None:
        exp = {str(a) for a in want.expected}
        got = {s.split("%", 1)[0] for s in used}
        norm = set()
        for s in got:
            try:
                norm.add(str(ipaddress.ip_address(s)))
            except ValueError:
                norm.add(s)
        assert norm == exp, (
            f"this node uses {', '.join(used) or 'no resolver'} ({where}), expected "
            f"{', '.join(sorted(exp))}: missing {', '.join(sorted(exp - norm)) or 'none'}, "
            f"unexpected {', '.join(sorted(norm - exp)) or 'none'}; fix the resolver "
            "configuration (RA RDNSS, DHCPv6 or resolv.conf)"
        )


# ------------------------------------------------------------------------- DNS64


def _dns64(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    if p.dns.dns64 is None:
        return
    for server in p.dns.resolvers:
        q = DnsQuery(server, "ipv4only.arpa", "AAAA", "udp")
        yield Simple(str(server), (q,))


def _dns64_unreadable(ans: DnsAnswer) -> str | None:
    """Why this answer says nothing about DNS64, or None when it does (RFC 7050 3: NOERROR with
    AAAA embedding a well-known address, or NOERROR without AAAA). "No prefix found" in an
    error answer is not "no DNS64": a forbidden DNS64 must not pass on it."""
    if not ans.responded or ans.error_kind is not None:
        return ans.error or f"no usable answer ({ans.error_kind})"
    if ans.rcode == "NXDOMAIN":
        return (
            f"{ans.where()} answered NXDOMAIN for ipv4only.arpa, a name that always exists (A "
            "192.0.0.170 and 192.0.0.171, RFC 7050 2.2 / RFC 8880): the resolver does not see "
            "the real name (a local zone, a filtering forwarder or a broken upstream), so its "
            "answer cannot show a synthesis; expected NOERROR. Fix how the resolver resolves "
            "ipv4only.arpa (remove the local zone or forwarder that hides it), then run again"
        )
    if ans.rcode != "NOERROR":
        return (
            f"{ans.where()} answered {ans.rcode} for ipv4only.arpa AAAA: the resolver "
            f"{_rcode_meaning(ans.rcode)}; expected NOERROR (with or without synthesized "
            "AAAA). Fix the resolver's answer, then run again"
        )
    from sixcheck.probes.dns import nat64_prefixes  # the probe ran: loaded by now

    found = ans.addresses()
    if found and not nat64_prefixes(found):
        return (
            f"{ans.where()} answered ipv4only.arpa AAAA {', '.join(sorted(map(str, found)))}, "
            "which embed neither well-known address 192.0.0.170/171 (RFC 7050 3): no synthesis "
            "a NAT64 prefix can be read from; expected NOERROR with synthesized AAAA or none. "
            "Find what rewrites the answer (a local zone, a filtering forwarder)"
        )
    return None


@targets(_dns64)
def test_dns64(
    target: Simple, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """Whether the resolver synthesizes AAAA for IPv4-only names (RFC 7050 ipv4only.arpa), and
    with which NAT64 prefix, against what the site wants."""
    assert profile.dns is not None
    assert profile.dns.dns64 is not None
    want = profile.dns.dns64
    q = target.requests[0]
    assert isinstance(q, DnsQuery)
    ans = _answer_over_tcp_if_truncated(observe(q), q, observe)
    evidence["wanted"] = want.nat64 + (f" {want.prefix}" if want.prefix else "")
    unreadable = _dns64_unreadable(ans)
    assert unreadable is None, f"could not tell whether DNS64 is on: {unreadable}"
    from sixcheck.probes.dns import nat64_prefixes  # the probe ran: loaded by now

    prefixes = nat64_prefixes(ans.addresses())
    evidence["nat64_prefixes"] = [str(n) for n in prefixes]
    if want.nat64 == "required":
        assert prefixes, (
            f"{ans.where()} does not synthesize AAAA (ipv4only.arpa AAAA: {ans.rcode}, "
            f"{', '.join(ans.values()) or 'no AAAA'}); expected DNS64: IPv6-only hosts cannot "
            "reach IPv4-only names. Enable DNS64 on the resolver (e.g. unbound module-config: "
            '"dns64 iterator")'
        )
        if want.prefix is not None:
            assert want.prefix in prefixes, (
                f"{ans.where()} synthesizes with NAT64 prefix {', '.join(map(str, prefixes))}, "
                f"expected {want.prefix}: synthesized addresses lead to the wrong translator; "
                "set the resolver's dns64-prefix"
            )
    elif want.nat64 == "forbidden":
        assert not prefixes, (
            f"{ans.where()} synthesizes AAAA with NAT64 prefix "
            f"{', '.join(map(str, prefixes))}; expected no DNS64 on this dual-stack network "
            "(IPv4 destinations would needlessly go through NAT64): disable DNS64"
        )


# ------------------------------------------------------------------------- DDNS


def _ddns(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    for d in p.dns.ddns:
        server = p.dns.resolvers[0]
        q = DnsQuery(server, d.name, "AAAA", "udp")
        yield Simple(
            f"{d.name}@{d.interface}",
            (q, ReadAddresses(d.interface)),
            {"name": d.name, "interface": d.interface},
        )


@targets(_ddns)
def test_ddns_fresh(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The dynamic name points at an address this node has now (after a prefix change the
    record must follow, seed 002); a stale AAAA sends everyone to a dead address."""
    q, read = target.requests
    assert isinstance(q, DnsQuery)
    name, iface = target.data["name"], target.data["interface"]
    addrs: AddressList = observe(read)
    assert addrs.error is None, f"could not read the addresses of {iface}: {addrs.error}"
    assert addrs.exists, f"could not read the addresses of {iface}: no such interface"
    current = {
        str(ipaddress.ip_address(a.address))
        for a in addrs.addresses
        if a.is_global and not a.deprecated and not a.has("tentative") and not a.has("dadfailed")
    }
    evidence["current_global"] = sorted(current)
    ans = _answer_over_tcp_if_truncated(observe(q), q, observe)
    problem = judge_lookup(ans, "any")
    assert problem is None, f"DDNS name {name}: {problem}"
    published = {str(a) for a in ans.addresses()}
    assert current, f"{iface} has no current global IPv6 address: {name} cannot be fresh"
    stale = sorted(published - current)
    assert not stale, (
        f"{name} AAAA is {', '.join(sorted(published))} but {iface}'s current global addresses "
        f"are {', '.join(sorted(current))}: {', '.join(stale)} is stale; the DDNS update did not "
        "run after the address changed (check the updater, e.g. nsupdate)"
    )


# ------------------------------------------------------------------------- open resolver


def _open_resolver(p: Profile) -> Iterator[Simple]:
    assert p.dns is not None
    for o in p.dns.open_resolver:
        q = DnsQuery(o.resolver, o.name, "A", o.transport, recursion=True)
        yield Simple(f"{o.resolver}-{o.transport}-{o.name}", (q,))


@targets(_open_resolver)
def test_not_open_resolver(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """From outside, the site's resolver must refuse recursion: an open resolver serves anyone
    and amplifies attacks. Run from an outside vantage."""
    ans: DnsAnswer = observe(target.requests[0])
    evidence["expect"] = "REFUSED for a recursive query of a name outside the site"
    assert ans.responded, (
        f"could not tell whether it is an open resolver: {ans.error}. If the resolver is "
        "firewalled from outside that is fine, but this check needs a REFUSED answer to prove it"
    )
    assert ans.rcode == "REFUSED", (
        f"{ans.where()} answered {ans.rcode} to a recursive query for {ans.name} from outside "
        f"({', '.join(ans.values()) or 'no records'}), expected REFUSED: it serves outsiders "
        "(open resolver). Restrict recursion to the site's prefixes (unbound access-control, "
        "bind allow-recursion)"
    )
