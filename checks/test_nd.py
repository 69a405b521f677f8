"""What the routers on each link advertise, that only the expected routers advertise at all, and
that the default routers answer Neighbor Discovery.

All RA checks of an interface share one observation: one RS, one listening window.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sixcheck.check import Simple, targets
from sixcheck.probes.nd_requests import RouterAdverts, RouterNeighbors
from sixcheck.schema import Profile
from sixcheck.schema.nd import NdInterface

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.nd import NeighborObservation, RaObservation, RouterAdvert

AREA = "nd"

USABLE = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"}


def _ra_targets(
    pick: Callable[[NdInterface], bool] = lambda c: True,
) -> Callable[[Profile], Iterator[Simple]]:
    def gen(p: Profile) -> Iterator[Simple]:
        assert p.nd is not None
        for name, cfg in p.nd.interfaces.items():
            if pick(cfg):
                yield Simple(name, (RouterAdverts(name, _expect(cfg)),), {"cfg": cfg})

    return gen


def _expect(cfg: NdInterface) -> tuple[tuple[str | None, str | None], ...]:
    """The listed routers, for the RA window to close early once each has answered."""
    return tuple((str(r.address) if r.address else None, r.mac) for r in cfg.routers)


def _routers(cfg: NdInterface) -> str:
    return ", ".join(r.label() for r in cfg.routers)


def _split(obs: RaObservation, cfg: NdInterface) -> tuple[list[RouterAdvert], list[RouterAdvert]]:
    """(RAs of expected routers, RAs of anybody else)."""
    good, rogue = [], []
    for ra in obs.adverts:
        (good if any(r.matches(ra.router, ra.mac) for r in cfg.routers) else rogue).append(ra)
    return good, rogue


def _no_ra(obs: RaObservation) -> str:
    return (
        f"no RA within {obs.listen_seconds:g} s on {obs.interface} "
        f"(sent {obs.rs_sent} RS from {obs.source})"
    )


def _expected_ras(target: Simple, observe: Callable[[Any], RaObservation]) -> list[RouterAdvert]:
    """The RAs of the profile's routers; fails saying why there are none."""
    obs = observe(target.requests[0])
    cfg: NdInterface = target.data["cfg"]
    assert obs.error is None or obs.adverts, f"{target.id}: could not listen for RAs: {obs.error}"
    good, rogue = _split(obs, cfg)
    assert obs.adverts, (
        f"{_no_ra(obs)}: is radvd running? expected RAs from {_routers(cfg)}; without them hosts "
        f"on {obs.interface} get no prefix and no default route (check the RA daemon on the router "
        "and that ICMPv6 is not filtered)"
    )
    assert good, (
        f"no RA from the expected router {_routers(cfg)} within {obs.listen_seconds:g} s on "
        f"{obs.interface}; only from {', '.join(ra.label() for ra in rogue)}: is the router's RA "
        f"daemon running, and is nd.interfaces.{obs.interface}.routers right?"
    )
    return good


@targets(_ra_targets())
def test_ra_received(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """An expected router advertises on the link, correctly framed, as a default router if it must."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {"routers": _routers(cfg), "default_router": cfg.default_router}
    for ra in _expected_ras(target, observe):
        assert ra.link_local, (
            f"RA on {target.id} from {ra.router}, a non-link-local source: hosts must ignore it "
            "(RFC 4861 6.1.2); the router must send RAs from its fe80:: address"
        )
        assert ra.ip_hop_limit == 255, (
            f"RA on {target.id} from {ra.label()} arrived with hop limit {ra.ip_hop_limit}, not "
            "255: it was forwarded by a router and hosts drop it"
        )
        if cfg.default_router:
            assert ra.router_lifetime > 0, (
                f"RA on {target.id} from {ra.label()} has router lifetime 0: it does not offer "
                "itself as a default router and hosts get no default route; set "
                "AdvDefaultLifetime > 0 (radvd also advertises 0 when IPv6 forwarding is off)"
            )


@targets(_ra_targets(lambda c: c.prefixes is not None))
def test_ra_prefixes(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """Every expected prefix is advertised with the right L/A flags and sane lifetimes."""
    cfg: NdInterface = target.data["cfg"]
    assert cfg.prefixes is not None
    evidence["expected"] = [p.model_dump(mode="json") for p in cfg.prefixes]
    ras = _expected_ras(target, observe)
    seen = {pi.prefix: (ra, pi) for ra in ras for pi in ra.prefixes}
    wanted = {str(p.prefix) for p in cfg.prefixes}
    for exp in cfg.prefixes:
        key = str(exp.prefix)
        others = ", ".join(sorted(seen)) or "no prefix at all"
        assert key in seen, (
            f"{key} is not advertised on {target.id} ({ras[0].router} advertises {others}): "
            f"hosts form no address in {key}; fix the prefix in the RA daemon's config "
            "(a stale delegated prefix?)"
        )
        ra, pi = seen[key]
        assert (pi.on_link, pi.autonomous) == (exp.on_link, exp.autonomous), (
            f"{key} on {target.id} from {ra.router} has L={int(pi.on_link)} A={int(pi.autonomous)}, "
            f"expected L={int(exp.on_link)} A={int(exp.autonomous)}: set AdvOnLink/AdvAutonomous"
        )
        assert pi.valid_lifetime > 0, (
            f"{key} on {target.id} is advertised with valid lifetime 0: hosts remove their "
            "addresses in it (the prefix is being withdrawn)"
        )
        assert pi.preferred_lifetime <= pi.valid_lifetime, (
            f"{key} on {target.id}: preferred lifetime {pi.preferred_lifetime} s > valid lifetime "
            f"{pi.valid_lifetime} s; hosts ignore the option (RFC 4862 5.5.3)"
        )
        if not exp.deprecated:
            assert pi.preferred_lifetime > 0, (
                f"{key} on {target.id} is advertised with preferred lifetime 0: addresses in it "
                "are deprecated and not used for new connections; set deprecated: true if meant"
            )
        if exp.min_valid is not None:
            assert pi.valid_lifetime >= exp.min_valid, (
                f"{key} on {target.id}: valid lifetime {pi.valid_lifetime} s, expected at least "
                f"{exp.min_valid} s"
            )
    if cfg.only_listed_prefixes:
        extra = sorted(set(seen) - wanted)
        assert not extra, (
            f"{seen[extra[0]][0].label()} on {target.id} also advertises {', '.join(extra)}, "
            f"expected only {', '.join(sorted(wanted))}: hosts form addresses in it; remove it "
            "from the RA daemon's config or list it in the profile"
        )


@targets(_ra_targets(lambda c: c.managed is not None or c.other is not None))
def test_ra_flags(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """M (addresses by DHCPv6) and O (other configuration by DHCPv6) as the site runs them."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {"managed": cfg.managed, "other": cfg.other}
    for ra in _expected_ras(target, observe):
        for flag, want, got, knob in (
            ("M", cfg.managed, ra.managed, "AdvManagedFlag"),
            ("O", cfg.other, ra.other, "AdvOtherConfigFlag"),
        ):
            if want is not None:
                assert got == want, (
                    f"RA on {target.id} from {ra.label()} has {flag}={int(got)}, expected "
                    f"{flag}={int(want)}: hosts {'do not ' if want else ''}ask DHCPv6 for "
                    f"{'addresses' if flag == 'M' else 'DNS and other settings'}; set {knob} "
                    f"{'on' if want else 'off'}"
                )


@targets(_ra_targets(lambda c: c.rdnss is not None or c.dnssl is not None))
def test_ra_dns(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """RDNSS (and DNSSL) carry the site's resolvers: SLAAC-only hosts learn DNS nowhere else."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {
        "rdnss": [str(a) for a in cfg.rdnss] if cfg.rdnss is not None else None,
        "dnssl": cfg.dnssl,
    }
    for ra in _expected_ras(target, observe):
        if cfg.rdnss is not None:
            want = sorted(str(a) for a in cfg.rdnss)
            got = sorted(set(ra.rdnss_servers()))
            assert got or not want, (
                f"no RDNSS in the RA from {ra.label()} on {target.id} (expected "
                f"{', '.join(want)}): SLAAC-only hosts (Android, many IoT) learn no resolver; "
                "add RDNSS to the RA daemon's config"
            )
            assert got == want, (
                f"RDNSS from {ra.label()} on {target.id} is {', '.join(got) or 'absent'}, "
                f"expected {', '.join(want) or 'none'}; fix RDNSS in the RA daemon's config"
            )
            dead = [o for o in ra.rdnss if o.lifetime == 0]
            assert not dead, (
                f"RDNSS {', '.join(dead[0].servers)} from {ra.label()} on {target.id} has "
                "lifetime 0: hosts drop it at once"
            )
        if cfg.dnssl is not None:
            got_d = sorted(set(ra.dnssl_domains()))
            assert got_d == sorted(cfg.dnssl), (
                f"DNSSL from {ra.label()} on {target.id} is {', '.join(got_d) or 'absent'}, "
                f"expected {', '.join(sorted(cfg.dnssl)) or 'none'}; fix DNSSL in the RA "
                "daemon's config"
            )


@targets(_ra_targets(lambda c: c.mtu is not None))
def test_ra_mtu(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """The MTU option tells hosts the link MTU (1280 behind a tunnel, 1492 on PPPoE...)."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {"mtu": cfg.mtu}
    for ra in _expected_ras(target, observe):
        assert ra.mtu == cfg.mtu, (
            f"RA on {target.id} from {ra.label()} carries MTU {ra.mtu or 'none (no MTU option)'}, "
            f"expected {cfg.mtu}; set AdvLinkMTU {cfg.mtu}"
        )


@targets(_ra_targets())
def test_no_rogue_router(
    target: Simple, observe: Callable[[Any], RaObservation], evidence: dict[str, Any]
) -> None:
    """Only the routers the profile names advertise on the link."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {"routers": _routers(cfg)}
    obs = observe(target.requests[0])
    assert obs.error is None or obs.adverts, f"{target.id}: could not listen for RAs: {obs.error}"
    assert obs.adverts, (
        f"could not tell whether a rogue router is present: {_no_ra(obs)}, not even from "
        f"{_routers(cfg)}"
    )
    assert obs.rs_sent, (
        f"could not tell whether a rogue router is present on {target.id}: the Router "
        f"Solicitation could not be sent, so only unsolicited RAs of {obs.listen_seconds:g} s "
        "were heard (a router that answers solicitations only goes unseen); check that "
        f"{target.id} is up and this node may send on it, then run again"
    )
    good, rogue = _split(obs, cfg)
    lines = []
    for ra in rogue:
        what = ", ".join(p.prefix for p in ra.prefixes) or "no prefix"
        role = (
            f"router lifetime {ra.router_lifetime} s, preference {ra.preference}"
            if ra.router_lifetime
            else "not as a default router"
        )
        lines.append(f"rogue router {ra.label()} on {target.id} advertises {what} ({role})")
    lines += _kernel_rogues(obs, cfg, good)
    if lines and obs.kernel is not None and obs.kernel.prefixes:
        lines.append(f"the kernel holds RA prefixes {', '.join(obs.kernel.prefixes)}")
    assert not lines, (
        "; ".join(lines) + f"; expected only {_routers(cfg)}: find and stop it (or list it under "
        f"nd.interfaces.{target.id}.routers); RA guard on the switch keeps it out"
    )


def _kernel_rogues(obs: RaObservation, cfg: NdInterface, good: list[RouterAdvert]) -> list[str]:
    """Routers the kernel learnt from RAs (before or during the window) that are not listed.

    A router that sends only periodic RAs (no answer to our RS) may be silent during a short
    window; the kernel kept its default route and its neighbour entry with the router flag.
    Router-flagged entries count only for link-local addresses (RAs come from those; a global
    address of a forwarding host answers NAs with R=1 too) and only with a MAC of no known router.
    """
    if obs.kernel is None:
        return []
    seen_addrs = {ra.router for ra in obs.adverts}
    known_macs = {r.mac for r in cfg.routers if r.mac} | {ra.mac for ra in good if ra.mac}
    listed = {str(r.address) for r in cfg.routers if r.address is not None}
    out = []
    for kr in obs.kernel.routers:
        if kr.address in listed or kr.address in seen_addrs or (kr.mac and kr.mac in known_macs):
            continue  # listed, or already judged from its RA in the window
        if kr.default_route:
            out.append(
                f"the kernel of this node has a default route via {kr.address} on {obs.interface} "
                "learnt from an RA of an unlisted router (not heard in the window)"
            )
        elif (
            kr.router_flag
            and kr.mac
            and ipaddress.IPv6Address(kr.address).is_link_local
            and kr.state not in ("FAILED", "INCOMPLETE")
        ):
            out.append(
                f"the kernel's neighbour entry {kr.address} ({kr.mac}, {kr.state}) on "
                f"{obs.interface} has the router flag: an unlisted router advertised or "
                "answered as a router (not heard in the window)"
            )
    return out


def _neighbor_targets(p: Profile) -> Iterator[Simple]:
    assert p.nd is not None
    for name, cfg in p.nd.interfaces.items():
        if cfg.neighbor:
            addrs = tuple(str(r.address) for r in cfg.routers if r.address is not None)
            yield Simple(name, (RouterNeighbors(name, addrs),), {"cfg": cfg})


@targets(_neighbor_targets)
def test_router_neighbor(
    target: Simple, observe: Callable[[Any], NeighborObservation], evidence: dict[str, Any]
) -> None:
    """Each router answers a Neighbor Solicitation as a router, and this node's kernel can reach
    it (its neighbour entry is usable afterwards)."""
    cfg: NdInterface = target.data["cfg"]
    evidence["expected"] = {"routers": _routers(cfg)}
    obs = observe(target.requests[0])
    assert obs.error is None, f"could not tell: {obs.error}"
    evidence["asked"] = f"{', '.join(r.target for r in obs.results)} (from the {obs.targets_from})"
    for res in obs.results:
        who = f"{res.target} on {obs.interface}"
        assert res.na_received, (
            f"no Neighbor Advertisement from {who} within the probe timeout (NS sent from "
            f"{obs.source}): the router does not answer Neighbor Discovery, so nothing reaches it; "
            "is ICMPv6 (NS/NA) dropped by its firewall? ND must be accepted before any "
            "conntrack rule"
        )
        assert res.na_router, (
            f"{who} answered without the Router flag: it does not forward IPv6 (forwarding=0 "
            "on it?), and hosts remove it from their default routers; enable forwarding there"
        )
        assert res.na_solicited, f"{who} answered our NS with an NA without the Solicited flag"
        macs = [r.mac for r in cfg.routers if r.mac and r.address and str(r.address) == res.target]
        if macs:
            assert res.na_mac == macs[0], (
                f"{who} answered from MAC {res.na_mac}, expected {macs[0]}: another device "
                "claims the router's address (a duplicate or spoofed router)"
            )
        usable = bool(res.echo_ok) and res.cache_state in USABLE
        assert usable, (
            f"this node cannot reach {who} although the router answered our NS on the wire: "
            f"echo {'answered' if res.echo_ok else 'failed (' + str(res.echo_error) + ')'}, "
            f"kernel neighbour entry {res.cache_state}; ICMPv6 (NA) is dropped on the way into "
            "this node's kernel? allow ICMPv6 ND in its INPUT chain"
        )
