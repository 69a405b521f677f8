"""The firewall keeps the site's hosts closed from outside, opens what is public, and lets out
what the inside needs (with the replies coming back).

Global IPv6 addresses make every LAN host reachable from the whole internet unless the firewall
says no (seed 001: "test from somewhere outside and make sure your hosts are not reachable").
Run the inbound claims from an outside vantage, the outbound ones from a host inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.base import ProbeRequest
from sixcheck.probes.icmp_requests import Echo
from sixcheck.probes.tcp_requests import TcpConnect
from sixcheck.probes.udp_requests import UdpProbe
from sixcheck.schema import Profile
from sixcheck.schema.firewall import AllowGroup

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.icmp import EchoResult
    from sixcheck.probes.tcp import PortResult

AREA = "firewall"

Observe = Callable[[Any], Any]


@dataclass(frozen=True)
class PortTarget:
    """One host x proto/port claim; `host_probes` are every probe of that host's group, so a
    host that answers on all of them can be named as wide open."""

    id: str
    request: ProbeRequest[PortResult]
    style: str = "any"
    host_probes: tuple[ProbeRequest[PortResult], ...] = field(default=(), compare=False)

    def probes(self) -> Iterable[ProbeRequest[Any]]:
        return (self.request, *self.host_probes)


def _port_request(
    p: Profile, host: str, proto: str, port: int, payload: str | None
) -> ProbeRequest[PortResult]:
    assert p.firewall is not None
    pace = {"rate": p.firewall.rate, "concurrency": p.firewall.concurrency}
    if proto == "tcp":
        return TcpConnect(host, port, **pace)
    return UdpProbe(host, port, payload or "empty", **pace)


def _group_targets(
    p: Profile, groups: Iterable[Any], style_of: Callable[[Any], str]
) -> Iterator[PortTarget]:
    for g in groups:
        for h in g.hosts:
            host = str(h)
            reqs = [
                (proto, port, _port_request(p, host, proto, port, g.udp_payload))
                for proto in ("tcp", "udp")
                for port in getattr(g, proto)
            ]
            every = tuple(r for _, _, r in reqs)
            for proto, port, req in reqs:
                yield PortTarget(f"{host}-{proto}-{port}", req, style_of(g), every)


def _inbound_deny(p: Profile) -> Iterator[PortTarget]:
    assert p.firewall is not None
    return _group_targets(p, p.firewall.inbound_deny, lambda g: g.deny)


def _from_this_node(offender: str | None, source: str | None) -> bool:
    """An ICMP(v6) error sent by this node itself, about its own packet (its OUTPUT rules
    rejected it, or no neighbour answered for the next hop): the packet never left."""
    from sixcheck.probes.tcp import is_from  # the probe ran: loaded by now

    return source is not None and is_from(offender, source)


def _not_sent(o: PortResult) -> str | None:
    """Why the probe says nothing about the path to the target, or None when it does. A
    silence or an error that never reached the network is no "denied"."""
    if o.state == "local-error":
        return o.error or "the probe could not send"
    if o.state is None or (o.error is not None and o.state not in ("open", "reset", "icmp")):
        return f"the probe failed: {o.error or 'no state recorded'}"
    if o.state == "icmp" and o.icmp is not None and _from_this_node(o.icmp.offender, o.source):
        return (
            f"the {o.icmp.describe()} came from this node itself ({o.source}): the packet never "
            "left it"
        )
    return None


def _answered_by_host(o: PortResult) -> bool:
    """The probe reached the host itself: a connection, an RST, or the host's own port
    unreachable (nothing on the way filtered it)."""
    if o.state in ("open", "reset"):
        return True
    return bool(
        o.state == "icmp" and o.from_target and o.icmp and o.icmp.name == "port-unreachable"
    )


@targets(_inbound_deny)
def test_inbound_denied(
    target: PortTarget, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """From outside, a protected host/port must not accept a connection, denied in the style
    the profile requires (drop: no answer; reject: TCP RST or an ICMPv6 error; any)."""
    o: PortResult = observe(target.request)
    evidence["expected"] = f"not reachable from here; deny style {target.style}"
    evidence["found"] = o.how()
    where = o.target
    unsent = _not_sent(o)
    assert unsent is None, (
        f"could not tell whether {where} is denied: {unsent}. This vantage cannot send to it "
        "(no route or no IPv6 address here, its own OUTPUT rules, or no neighbour answering "
        "for the next hop?); fix that, or run the audit from a node with IPv6 connectivity"
    )
    if o.state == "open":
        others = [observe(r) for r in target.host_probes if r != target.request]
        every = [o, *others]
        wide_open = len(every) > 1 and all(_answered_by_host(x) for x in every)
        worst = ""
        if wide_open:
            worst = (
                f" Worst finding: {o.dst} answers everything probed from outside "
                f"({', '.join(f'{x.port}/{x.proto} {x.state}' for x in every)}): no firewall "
                "stands between it and the internet."
            )
        raise AssertionError(
            f"{where} accepts connections from outside (connected in {o.rtt_ms:.1f} ms); "
            f"expected it denied ({target.style}).{worst} Fix: make the firewall in front of "
            f"{o.dst} reject or drop NEW inbound connections (e.g. ip6tables -A FORWARD -i WAN "
            "-m conntrack --ctstate NEW -j REJECT --reject-with icmp6-adm-prohibited), accepting "
            "only RELATED,ESTABLISHED back"
        )
    if o.state == "silent":
        evidence["note"] = (
            "UDP silence is open|filtered: a dropped datagram and an open port that ignores "
            "it look the same"
        )
    if target.style == "drop":
        assert o.state in ("dropped", "silent"), (
            f"{where} is {o.how()}; expected it dropped silently (deny: drop). The firewall "
            "rejects instead: use DROP for it, or set deny: reject (or any) in the profile if "
            "rejecting is the policy"
        )
    elif target.style == "reject":
        timeout = profile.timeouts.probe
        assert o.state in ("reset", "icmp"), (
            f"{where} got no answer at all ({o.attempts_text(timeout)}); "
            "expected a reject (TCP reset or ICMPv6 error, deny: reject). "
            + (
                "For UDP, silence could also be an open port that ignores the datagram. "
                if o.proto == "udp"
                else ""
            )
            + "If the firewall does reject, it may be rate-limiting its ICMPv6 errors (Linux: a "
            "burst of 6, then a few per second per destination): lower firewall.rate. "
            "A silently dropping firewall makes clients hang until they time out: reject with "
            "icmp6-adm-prohibited (ip6tables ... -j REJECT --reject-with icmp6-adm-prohibited), "
            "or set deny: drop in the profile if dropping is the policy"
        )


def _inbound_allow(p: Profile) -> Iterator[PortTarget]:
    assert p.firewall is not None
    return _group_targets(p, p.firewall.inbound_allow, lambda g: "allow")


@targets(_inbound_allow)
def test_inbound_allowed(target: PortTarget, observe: Observe, evidence: dict[str, Any]) -> None:
    """A listed public service is reachable from outside (and, for UDP, answers)."""
    o: PortResult = observe(target.request)
    evidence["expected"] = "reachable from outside"
    evidence["found"] = o.how()
    assert o.state == "open", (
        f"{o.target} is a listed public service, but from here it was {o.how()}; expected a "
        f"{'connection' if o.proto == 'tcp' else 'reply'}. Fix: accept NEW inbound to it in the "
        f"firewall (ip6tables -A INPUT/FORWARD -d {o.dst} -p {o.proto} --dport {o.port} -j "
        "ACCEPT) and check that the service listens on that address"
    )


def _echo(p: Profile) -> Iterator[Simple]:
    assert p.firewall is not None
    e = p.firewall.echo
    if e is None:
        return
    for h in e.hosts:
        req = Echo(str(h), rate=p.firewall.rate, concurrency=p.firewall.concurrency)
        yield Simple(str(h), (req,), {"policy": e.policy})


@targets(_echo)
def test_echo_policy(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """ICMPv6 echo to the host is answered or not, as the profile's policy says."""
    policy = target.data["policy"]
    o: EchoResult = observe(target.requests[0])
    evidence["expected"] = f"echo {policy}"
    evidence["found"] = o.summary()
    assert o.outcome not in ("local-error", None), f"could not tell: {o.summary()}"
    assert not (o.icmp is not None and _from_this_node(o.icmp.offender, o.source)), (
        f"could not tell whether {o.dst} answers ICMPv6 echo: {o.summary()}, an error from this "
        "node itself: the echo request never left it (its own OUTPUT rules, or no neighbour "
        "answering for the next hop); fix that, or run from a node with IPv6 connectivity"
    )
    if policy == "allowed":
        assert o.answered, (
            f"ICMPv6 echo to {o.dst} is allowed by the profile, but {o.summary()}. A firewall "
            "that drops echo often drops all ICMPv6, and with it Packet Too Big (PMTU discovery "
            "breaks: large transfers hang) and Neighbor Discovery. Fix: accept ICMPv6 before "
            "the conntrack rules (ip6tables -A FORWARD -p ipv6-icmp -j ACCEPT, RFC 4890)"
        )
    else:
        assert not o.answered, (
            f"{o.dst} answers ICMPv6 echo from outside ({o.summary()}); the profile says echo is "
            "denied. Fix: drop or reject echo-request (type 128) inbound, but keep Packet Too Big "
            "(2), Destination Unreachable (1), Time Exceeded (3) and Parameter Problem (4) open"
        )


def _outbound_allow(p: Profile) -> Iterator[PortTarget]:
    assert p.firewall is not None
    groups: list[AllowGroup] = p.firewall.outbound_allow
    return _group_targets(p, groups, lambda g: "allow")


@targets(_outbound_allow)
def test_outbound_allowed(
    target: PortTarget, observe: Observe, evidence: dict[str, Any], profile: Profile
) -> None:
    """From inside, a listed outside service is reachable and its replies come back."""
    o: PortResult = observe(target.request)
    evidence["expected"] = "connection established / reply received (stateful return works)"
    evidence["found"] = o.how()
    assert o.state != "local-error", (
        f"could not tell: {o.how()}. This host cannot send to {o.dst} at all (no IPv6 default "
        "route or address?)"
    )
    what = "TCP connection" if o.proto == "tcp" else "UDP exchange"
    hint = (
        "The firewall must accept NEW connections from the inside (ip6tables -A FORWARD -i LAN "
        "-m conntrack --ctstate NEW -j ACCEPT) and RELATED,ESTABLISHED replies back"
    )
    if o.state in ("dropped", "silent"):
        hint = (
            "Nothing came back: outbound NEW traffic (or its return traffic) is dropped on the "
            "way. " + hint
        )
    assert o.state == "open", (
        f"outbound {what} from here to {o.target} failed: {o.how()}"
        f"{f' ({o.attempts_text(profile.timeouts.probe)})' if o.state in ('dropped', 'silent') else ''}"
        f"; expected it to succeed with its replies coming back. {hint}"
    )
