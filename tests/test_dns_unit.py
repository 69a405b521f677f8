"""DNS area without a lab: schema, answer judging, NAT64 prefixes, resolv.conf reading, and the
probe against tiny responders on ::1 (a real socket on loopback, no namespace needed)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import load_checks
from sixcheck.probes.base import ProbeContext
from sixcheck.probes.dns import (
    DnsAnswer,
    DnsQuery,
    DnsRecord,
    nat64_prefixes,
    parse_resolv_conf,
    read_host_resolvers,
)
from sixcheck.probes.plan import run_plan
from sixcheck.schema import ProfileError, parse

CHECKS = load_checks("dns")
HEAD = "node: {role: host}\ninterfaces: {eth0: {role: lan}}\n"


# ------------------------------------------------------------------------------- schema


def _problems(text: str) -> str:
    with pytest.raises(ProfileError) as exc:
        parse(HEAD + text, "p.yaml")
    return str(exc.value)


def test_schema_accepts_the_documented_example() -> None:
    p = parse(
        HEAD
        + """dns:
  resolvers: [2001:db8:53::53]
  lookups:
    - {name: www.example.net, expect: [2001:db8:80::80]}
    - {name: www.example.net, type: A, expect: 203.0.113.80}
    - {name: v4only.example.net, expect: nodata}
    - {name: gone.example.net, expect: nxdomain}
  reverse: [{address: "2001:db8:1:1::10", name: host.example.net}]
  host_resolvers: {require_ipv6: true, expected: [2001:db8:53::53]}
  dns64: {nat64: required, prefix: 64:ff9b::/96}
  ddns: [{name: host.example.net, interface: eth0}]
""",
        "p.yaml",
    )
    assert p.dns is not None
    assert p.dns.lookups[1].expect == ["203.0.113.80"]
    assert p.dns.lookups[2].expect == "nodata"
    assert p.dns.transports == ["udp", "tcp"]


def test_ipv4_resolver_is_refused_with_the_reason() -> None:
    msg = _problems("dns: {resolvers: [203.0.113.53]}\n")
    assert "dns.resolvers.0: '203.0.113.53' is an IPv4 address; an IPv6 address is needed" in msg


def test_expect_values_must_fit_the_record_type() -> None:
    msg = _problems(
        "dns:\n  resolvers: ['2001:db8::53']\n  lookups: [{name: a.example, expect: [192.0.2.1]}]\n"
    )
    assert "a AAAA record holds IPv6 addresses" in msg


def test_lookups_need_resolvers_and_ddns_interfaces_must_be_declared() -> None:
    assert "need resolvers to ask" in _problems("dns: {lookups: [{name: a.example}]}\n")
    msg = _problems(
        "dns:\n  resolvers: ['2001:db8::53']\n  ddns: [{name: a.example, interface: wan9}]\n"
    )
    assert "names interface 'wan9', not declared" in msg


def test_dns64_prefix_must_be_an_rfc6052_length() -> None:
    msg = _problems(
        "dns:\n  resolvers: ['2001:db8::53']\n  dns64: {nat64: required, prefix: 64:ff9b::/80}\n"
    )
    assert "cannot be a NAT64 prefix" in msg


# ------------------------------------------------------------------------------- judging


def _answer(**kw: object) -> DnsAnswer:
    base: dict[str, object] = {
        "server": "2001:db8:53::53",
        "port": 53,
        "transport": "udp",
        "family": "ipv6",
        "name": "www.example.net",
        "rdtype": "AAAA",
        "responded": True,
        "rcode": "NOERROR",
    }
    base.update(kw)
    return DnsAnswer(**base)  # type: ignore[arg-type]


def _aaaa(*values: str) -> tuple[DnsRecord, ...]:
    return tuple(DnsRecord("www.example.net", "AAAA", 300, v) for v in values)


def test_judge_names_the_transport_layer() -> None:
    ans = _answer(
        responded=False,
        rcode=None,
        error_kind="timeout",
        error="resolver 2001:db8:53::53 over UDP/IPv6 did not answer within 1.5 s (timeout)",
    )
    msg = CHECKS.judge_lookup(ans, ["2001:db8:80::80"])
    assert msg.startswith(
        "could not look up www.example.net AAAA: resolver 2001:db8:53::53 over "
        "UDP/IPv6 did not answer within 1.5 s (timeout)"
    )


def test_judge_names_the_record_layer() -> None:
    msg = CHECKS.judge_lookup(_answer(), ["2001:db8:80::80"])
    assert msg == (
        "resolver 2001:db8:53::53 over UDP/IPv6 answered NOERROR but www.example.net has no AAAA "
        "(expected AAAA 2001:db8:80::80); add the AAAA record for www.example.net to its zone"
    )


def test_judge_compares_addresses_as_addresses() -> None:
    assert (
        CHECKS.judge_lookup(_answer(answers=_aaaa("2001:DB8:80:0::80")), ["2001:db8:80::80"])
        is None
    )
    msg = CHECKS.judge_lookup(_answer(answers=_aaaa("2001:db8:80::81")), ["2001:db8:80::80"])
    assert "missing 2001:db8:80::80; unexpected 2001:db8:80::81" in msg


def test_judge_nxdomain_and_nodata() -> None:
    assert CHECKS.judge_lookup(_answer(rcode="NXDOMAIN"), "nxdomain") is None
    assert CHECKS.judge_lookup(_answer(), "nodata") is None
    assert "answered NXDOMAIN" in CHECKS.judge_lookup(_answer(rcode="NXDOMAIN"), "nodata")
    assert "has AAAA 2001:db8::1" in CHECKS.judge_lookup(
        _answer(answers=_aaaa("2001:db8::1")), "nodata"
    )
    assert "answered REFUSED" in CHECKS.judge_lookup(_answer(rcode="REFUSED"), "any")


# ------------------------------------------------------------------------------- NAT64 and resolv.conf


def test_nat64_prefix_from_ipv4only_arpa_answers() -> None:
    wk = [ipaddress.IPv6Address("64:ff9b::c000:aa"), ipaddress.IPv6Address("64:ff9b::c000:ab")]
    assert [str(n) for n in nat64_prefixes(wk)] == ["64:ff9b::/96"]
    # a /64 prefix: the IPv4 address sits in bits 72-103, after the u octet
    v = int(ipaddress.IPv6Address("2001:db8:64:64::")) | (0xC00000AA << 24)
    assert [str(n) for n in nat64_prefixes([ipaddress.IPv6Address(v)])] == ["2001:db8:64:64::/64"]
    assert nat64_prefixes([ipaddress.IPv6Address("2001:db8:80::80")]) == []


def test_host_resolvers_follow_the_systemd_stub(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text("# stub\nnameserver 127.0.0.53\noptions edns0\n")
    rd = tmp_path / "run/systemd/resolve"
    rd.mkdir(parents=True)
    (rd / "resolv.conf").write_text("nameserver 2001:db8:53::53\nnameserver 192.0.2.53\n")
    found = read_host_resolvers(str(tmp_path))
    assert found.error is None
    assert found.via_stub
    assert found.effective == ("2001:db8:53::53", "192.0.2.53")
    assert "rdnssd" in found.missing
    assert parse_resolv_conf("nameserver fe80::1%eth0 ; comment\nsearch x\n") == ("fe80::1%eth0",)


def test_missing_resolv_conf_is_an_error(tmp_path: Path) -> None:
    assert "does not exist" in (read_host_resolvers(str(tmp_path)).error or "")


# ------------------------------------------------------------------------------- probe on ::1


class Responder:
    """A UDP DNS responder on [::1]:port whose behaviour a test chooses per name."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.bind(("::1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rrset

        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            q = dns.message.from_wire(data)
            name = q.question[0].name.to_text()
            if name.startswith("garbage"):
                self.sock.sendto(b"\x00\x01garbage", peer)
                continue
            if name.startswith("silent"):
                continue
            r = dns.message.make_response(q)
            if name.startswith("refused"):
                r.set_rcode(dns.rcode.REFUSED)
            elif name.startswith("big"):
                r.flags |= dns.flags.TC
            else:
                r.answer.append(dns.rrset.from_text(name, 60, "IN", "AAAA", "2001:db8::80"))
            self.sock.sendto(r.to_wire(), peer)


@pytest.fixture
def responder() -> Iterator[Responder]:
    r = Responder()
    r.thread.start()
    yield r
    r.stop = True
    r.thread.join()
    r.sock.close()


def _ask(port: int, name: str, transport: str = "udp", timeout: float = 1.0) -> DnsAnswer:
    return asyncio.run(DnsQuery("::1", name, "AAAA", transport, port).query(timeout))  # type: ignore[arg-type]


def test_probe_reads_an_answer_with_source_and_family(responder: Responder) -> None:
    ans = _ask(responder.port, "www.example.net")
    assert ans.responded
    assert ans.error is None
    assert ans.rcode == "NOERROR"
    assert ans.family == "ipv6"
    assert ans.transport == "udp"
    assert ans.source == "::1"
    assert ans.source_port
    assert ans.values() == ["2001:db8::80"]
    assert ans.ttls() == [60]
    assert "QR" in ans.flags


def test_probe_error_kinds(responder: Responder) -> None:
    refused = _ask(responder.port, "refused.example")
    assert refused.responded
    assert refused.rcode == "REFUSED"
    assert refused.error is None
    truncated = _ask(responder.port, "big.example")
    assert truncated.responded
    assert truncated.error_kind == "truncated"
    assert "needs TCP" in (truncated.error or "")
    garbage = _ask(responder.port, "garbage.example")
    assert garbage.error_kind == "malformed"
    assert not garbage.responded
    silent = _ask(responder.port, "silent.example", timeout=0.3)
    assert silent.error_kind == "timeout"
    assert (
        silent.error
        == f"resolver ::1 port {responder.port} over UDP/IPv6 did not answer within 0.3 s (timeout)"
    )


def test_probe_names_icmp_port_unreachable_and_tcp_reset() -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now, on UDP or (almost surely) TCP
    udp = _ask(port, "x.example")
    assert udp.error_kind == "unreachable"
    assert "ICMPv6 port unreachable" in (udp.error or "")
    tcp = _ask(port, "x.example", "tcp")
    assert tcp.error_kind == "connection-refused"


def test_dead_resolver_and_twenty_names_cost_one_timeout() -> None:
    """Acceptance: a silent resolver (UDP swallowed, TCP accepted but never answered) asked 20
    names over UDP and TCP finishes in about one probe timeout, not forty."""
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.bind(("::1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.bind(("::1", port))
    tcp.listen(64)  # the kernel completes handshakes; nobody ever reads or answers
    timeout = 1.0
    reqs = [
        DnsQuery("::1", f"name{i}.example.net", "AAAA", tr, port)  # type: ignore[arg-type]
        for i in range(20)
        for tr in ("udp", "tcp")
    ]
    try:
        start = time.monotonic()
        results, _ = run_plan(reqs, ProbeContext(timeout, 1.0, 30.0, False))
        took = time.monotonic() - start
    finally:
        udp.close()
        tcp.close()
    kinds = {r.error_kind for r in results.values() if isinstance(r, DnsAnswer)}
    assert kinds == {"timeout"}, results
    assert len(results) == 40
    assert took < 4 * timeout, f"40 queries to a dead resolver took {took:.1f} s"


# ------------------------------------------------------------------------------- DNS64 verdicts


def _dns64_verdict(nat64: str, ans: DnsAnswer) -> str | None:
    """test_dns64's failure message (None: passed) on one crafted ipv4only.arpa answer."""
    from sixcheck.check import Simple

    profile = parse(
        HEAD + f"dns:\n  resolvers: ['2001:db8:53::53']\n  dns64: {{nat64: {nat64}}}\n", "p.yaml"
    )
    q = DnsQuery("2001:db8:53::53", "ipv4only.arpa", "AAAA", "udp")
    try:
        CHECKS.test_dns64(Simple("2001:db8:53::53", (q,)), lambda _r: ans, {}, profile)
    except AssertionError as exc:
        return str(exc)
    return None


def _v4only(**kw: object) -> DnsAnswer:
    return _answer(name="ipv4only.arpa", **kw)


@pytest.mark.parametrize("nat64", ["forbidden", "required", "any"])
@pytest.mark.parametrize("rcode", ["REFUSED", "SERVFAIL", "NOTIMP", "FORMERR"])
def test_dns64_error_rcode_is_never_no_dns64(nat64: str, rcode: str) -> None:
    """A resolver that refused or failed the question said nothing about DNS64: "forbidden"
    must not pass on it (an error is never a pass), "required" must not blame DNS64."""
    msg = _dns64_verdict(nat64, _v4only(rcode=rcode))
    assert msg is not None
    assert msg.startswith(
        f"could not tell whether DNS64 is on: resolver 2001:db8:53::53 over UDP/IPv6 answered "
        f"{rcode} for ipv4only.arpa AAAA"
    ), msg
    assert "expected NOERROR" in msg


@pytest.mark.parametrize("nat64", ["forbidden", "required"])
def test_dns64_nxdomain_for_ipv4only_arpa_cannot_tell(nat64: str) -> None:
    """ipv4only.arpa always exists (RFC 7050 2.2, RFC 8880): NXDOMAIN means the resolver does
    not see the real name, so whether it would synthesize cannot be read from it."""
    msg = _dns64_verdict(nat64, _v4only(rcode="NXDOMAIN"))
    assert msg is not None
    assert msg.startswith(
        "could not tell whether DNS64 is on: resolver 2001:db8:53::53 over UDP/IPv6 answered "
        "NXDOMAIN for ipv4only.arpa"
    ), msg
    assert "always exists" in msg


def test_dns64_aaaa_without_well_known_address_cannot_tell() -> None:
    """AAAA for ipv4only.arpa that embed neither 192.0.0.170 nor .171 are no synthesis RFC 7050
    can read a prefix from: "forbidden" cannot conclude "no DNS64" from them."""
    odd = _v4only(answers=(DnsRecord("ipv4only.arpa", "AAAA", 300, "2001:db8:bad::1"),))
    msg = _dns64_verdict("forbidden", odd)
    assert msg is not None
    assert msg.startswith("could not tell whether DNS64 is on:"), msg
    assert "2001:db8:bad::1" in msg


def test_dns64_healthy_answers_still_judge() -> None:
    nodata = _v4only()
    synth = _v4only(
        answers=tuple(
            DnsRecord("ipv4only.arpa", "AAAA", 300, v)
            for v in ("64:ff9b::c000:aa", "64:ff9b::c000:ab")
        )
    )
    assert _dns64_verdict("forbidden", nodata) is None
    assert _dns64_verdict("required", synth) is None
    assert "synthesizes AAAA with NAT64 prefix 64:ff9b::/96" in (
        _dns64_verdict("forbidden", synth) or ""
    )
    assert "does not synthesize AAAA" in (_dns64_verdict("required", nodata) or "")
