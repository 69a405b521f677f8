"""The IPv6 tunnel works end to end: interface up with the right MTU and addresses, the underlay
endpoint and the far end answering, the default route where the profile says, and a path MTU
that is either carried or signalled, never a black hole.

Seeds 000/001: broker tunnels whose far end disappears while the local interface stays up; seed
002: an MTU larger than the path with Packet Too Big filtered, so big transfers hang.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.icmp_requests import Echo, PathMtu
from sixcheck.probes.netlink_requests import ReadAddresses, ReadRoutes, RouteGet
from sixcheck.schema import Profile

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.icmp import EchoResult, PathMtuResult
    from sixcheck.probes.netlink import AddressList, RouteLookup, RouteTable

AREA = "tunnel"

Observe = Callable[[Any], Any]


def _interface(p: Profile) -> Iterator[Simple]:
    assert p.tunnel is not None
    t = p.tunnel
    yield Simple(
        t.interface,
        (ReadAddresses(t.interface),),
        {"mtu": t.mtu, "addresses": [str(a) for a in t.addresses]},
    )


@targets(_interface)
def test_tunnel_interface(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The tunnel interface exists, is up, and has the expected MTU and addresses."""
    name = target.id
    mtu, want = target.data["mtu"], target.data["addresses"]
    evidence["expected"] = {"up": True, "mtu": mtu, "addresses": want}
    o: AddressList = observe(target.requests[0])
    assert o.exists, (
        f"tunnel interface {name} does not exist on this node: the tunnel client is not running "
        "(or named the interface differently); start it and check its logs"
    )
    assert o.error is None, f"could not tell: reading {name} failed: {o.error}"
    link = o.link
    assert link is not None, f"could not tell: no link details for {name}"
    assert link.up, (
        f"tunnel interface {name} exists but is down (operstate {link.operstate}): nothing goes "
        f"through it; ip link set {name} up, or restart the tunnel client"
    )
    assert link.operstate not in ("DOWN", "LOWERLAYERDOWN"), (
        f"tunnel interface {name} is administratively up but its operstate is {link.operstate}: "
        "the tunnel's lower layer is gone (the client lost its session?)"
    )
    if mtu is not None:
        assert link.mtu == mtu, (
            f"{name} has MTU {link.mtu}, expected {mtu}. "
            + (
                f"An MTU larger than the path makes packets above {mtu} bytes vanish unless "
                "Packet Too Big comes back (a PMTU black hole). "
                if link.mtu and link.mtu > mtu
                else ""
            )
            + f"Fix: ip link set {name} mtu {mtu} (and in the tunnel client's config)"
        )
    have = {a.address for a in o.addresses}
    have_parsed = {ipaddress.ip_address(a) for a in have}
    missing = [a for a in want if ipaddress.ip_address(a) not in have_parsed]
    evidence["found_addresses"] = sorted(have)
    assert not missing, (
        f"{name} lacks {', '.join(missing)} (it has {', '.join(sorted(have)) or 'no IPv6 address'})"
        ": the tunnel client did not configure its end of the tunnel; check its config/logs"
    )


def _underlay(p: Profile) -> Iterator[Simple]:
    assert p.tunnel is not None
    if p.tunnel.underlay is not None:
        addr = str(p.tunnel.underlay)
        yield Simple(addr, (Echo(addr),), {"interface": p.tunnel.interface})


@targets(_underlay)
def test_tunnel_underlay(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The tunnel's outer endpoint (usually IPv4) answers echo: the path under the tunnel works."""
    o: EchoResult = observe(target.requests[0])
    evidence["found"] = o.summary()
    name = target.data["interface"]
    assert o.answered, (
        f"the underlay endpoint {o.dst} of {name} does not answer: {o.summary()}. Without it no "
        "tunnel can work: check this node's uplink and route to it "
        f"({'IPv4' if o.family == 'ipv4' else 'IPv6'}), and that the endpoint (the broker's "
        "server) is still the one configured"
    )


def _far_end(p: Profile) -> Iterator[Simple]:
    assert p.tunnel is not None
    t = p.tunnel
    if t.far_end is not None:
        reqs: tuple[Any, ...] = (Echo(str(t.far_end)),)
        if t.underlay is not None:
            reqs = (*reqs, Echo(str(t.underlay)))
        yield Simple(str(t.far_end), reqs, {"interface": t.interface})


@targets(_far_end)
def test_tunnel_far_end(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The far side's IPv6 tunnel address answers ping6 through the tunnel."""
    name = target.data["interface"]
    o: EchoResult = observe(target.requests[0])
    evidence["found"] = o.summary()
    if o.answered:
        assert o.interface in (None, name), (
            f"{o.dst} answers, but from {o.source} on {o.interface}, not through {name}: "
            f"the route to the tunnel's far end does not use the tunnel; ip -6 route get {o.dst}"
        )
        return
    under = ""
    if len(target.requests) > 1:
        u: EchoResult = observe(target.requests[1])
        under = (
            f" {name}'s underlay endpoint {u.dst} does answer, so the path is fine: the tunnel's "
            "far end is gone (broker down, session expired, or the endpoint moved)"
            if u.answered
            else f" The underlay endpoint {u.dst} does not answer either ({u.summary()})"
        )
    assert o.answered, (
        f"the far end {o.dst} of {name} does not answer ping6: {o.summary()}.{under} "
        "Fix: restart the tunnel client / check the broker's status, and that ICMPv6 is "
        "accepted on this node's INPUT"
    )


def _default_route(p: Profile) -> Iterator[Simple]:
    assert p.tunnel is not None
    if p.tunnel.default_route is not None:
        yield Simple(p.tunnel.interface, (ReadRoutes(254),), {"via_tunnel": p.tunnel.default_route})


@targets(_default_route)
def test_tunnel_default_route(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """The IPv6 default route goes through the tunnel (or not), as the profile says."""
    name, want = target.id, target.data["via_tunnel"]
    o: RouteTable = observe(target.requests[0])
    assert o.error is None, f"could not tell: reading the routing table failed: {o.error}"
    defaults = o.defaults()
    found = [r.describe() for r in defaults]
    evidence["expected"] = f"default route {'via' if want else 'not via'} {name}"
    evidence["found"] = found
    via = [r for r in defaults if r.dev == name]
    if want:
        assert via, (
            f"the IPv6 default route does not go through {name} "
            f"({'; '.join(found) or 'no IPv6 default route at all'}): traffic to the internet "
            f"does not use the tunnel. Fix: ip -6 route replace default dev {name} (or via the "
            "far end), as the tunnel client should"
        )
    else:
        assert not via, (
            f"the IPv6 default route goes through {name} ({'; '.join(found)}), but the profile "
            "says it must not (native upstream expected): remove it (ip -6 route del default dev "
            f"{name}) and check the tunnel client's route settings"
        )


def _path_mtu(p: Profile) -> Iterator[Simple]:
    assert p.tunnel is not None
    pm = p.tunnel.path_mtu
    if pm is not None:
        yield Simple(
            str(pm.target),
            (PathMtu(str(pm.target), pm.mtu, pm.start), RouteGet(str(pm.target))),
            {"interface": p.tunnel.interface},
        )


@targets(_path_mtu)
def test_tunnel_path_mtu(target: Simple, observe: Observe, evidence: dict[str, Any]) -> None:
    """A packet of the path MTU reaches the far target through the tunnel; anything larger is
    signalled (Packet Too Big, or this node's own MTU), never silently lost."""
    name = target.data["interface"]
    # a walk that left by another interface measured some other path: it proves nothing about
    # the tunnel (a node without the tunnel interface passed through eth0)
    route: RouteLookup = observe(target.requests[1])
    evidence["route"] = (
        f"{route.destination} via {route.gateway or 'on-link'} dev {route.dev}"
        if route.error is None
        else route.error
    )
    assert route.error is None, (
        f"no route to {route.destination} ({route.error}): the path MTU through {name} cannot be "
        f"measured; expected a route through {name} (is the tunnel up and its route set?)"
    )
    assert route.dev == name, (
        f"the route to {route.destination} leaves by {route.dev} (via "
        f"{route.gateway or 'on-link'}), not through {name}: the target is not routed through the "
        f"tunnel, so its path MTU says nothing about {name}; add the route through {name} (ip -6 "
        f"route add {route.destination} dev {name}) or check that the tunnel client is running"
    )
    o: PathMtuResult = observe(target.requests[0])
    evidence["expected"] = (
        f"{o.mtu}-byte packets arrive; larger ones (from {o.start}) get Packet Too Big or are "
        "refused locally, never vanish"
    )
    evidence["walk"] = [s.summary() for s in ((o.fits,) if o.fits else ()) + o.steps]
    assert o.verdict != "inconclusive", f"could not tell the path MTU to {o.dst}: {o.error}"
    fits = o.fits
    assert o.verdict != "path-broken", (
        f"{o.mtu}-byte packets to {o.dst} do not arrive ({fits.summary() if fits else '?'}), "
        f"although the profile's path MTU is {o.mtu}: the path through {name} is broken or "
        "narrower than 1280 (IPv6's minimum); check the far end and the tunnel first"
    )
    if o.verdict == "blackhole":
        size = o.blackhole_size
        raise AssertionError(
            f"{size}-byte packets to {o.dst} vanish without Packet Too Big while {o.mtu}-byte "
            f"packets arrive: PMTU black hole (this node sends up to {size} bytes into {name}; "
            f"the path carries {o.mtu}). Large transfers will hang after the handshake. Fix: "
            f"lower {name}'s MTU to {o.mtu} (ip link set {name} mtu {o.mtu}, and in the tunnel "
            "client), or make the path send and this node accept ICMPv6 type 2 (Packet Too Big)"
        )
