"""Stateful DHCPv6 and prefix delegation: the expected servers answer on each link, nobody else does,
what they offer is what the site hands out, the RA's M/O flags promise only what answers, this
node's firewall lets the answers in, and a router holds its delegated prefix and numbers its LANs
from it.

Every exchange is a Solicit (or Information-Request) and its Advertises: never a Request, so no
server allocates anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sixcheck.check import Simple, targets
from sixcheck.probes.dhcpv6_requests import Dhcpv6Exchange
from sixcheck.probes.nd_requests import RouterAdverts
from sixcheck.probes.netlink_requests import ReadAddresses, ReadRoutes
from sixcheck.schema import Profile
from sixcheck.schema.dhcpv6 import Delegation, Dhcpv6Area, Dhcpv6Interface

if TYPE_CHECKING:  # what the probes answer: loaded when they run, not when pytest collects
    from sixcheck.probes.dhcpv6 import Dhcpv6Observation, Dhcpv6Reply
    from sixcheck.probes.nd import RaObservation
    from sixcheck.probes.netlink import AddressList, Route, RouteTable

AREA = "dhcpv6"

#: Route types DHCPv6-PD clients install for the whole delegated prefix.
HOLDING_TYPES = ("unreachable", "blackhole", "prohibit")
ULA = ipaddress.IPv6Network("fc00::/7")


# ------------------------------------------------------------------------------- targets


def _listen(cfg: Dhcpv6Interface, area: Dhcpv6Area) -> dict[str, Any]:
    """How long every exchange on the interface listens: up to the area's window, less once the
    listed servers have answered (the same for every check, so the plan sends each once)."""
    return {
        "window": area.window,
        "servers": tuple(
            (str(s.address) if s.address is not None else None, s.duid) for s in cfg.servers
        ),
        "whole_window": area.listen_whole_window,
    }


def _main(
    name: str, cfg: Dhcpv6Interface, area: Dhcpv6Area, ia_na: bool | None = None
) -> Dhcpv6Exchange:
    na = cfg.ia_na if ia_na is None else ia_na
    return Dhcpv6Exchange(name, ia_na=na, ia_pd=cfg.ia_pd, **_listen(cfg, area))


def _info(name: str, cfg: Dhcpv6Interface, area: Dhcpv6Area) -> Dhcpv6Exchange:
    return Dhcpv6Exchange(name, information=True, **_listen(cfg, area))


def _exchanges(name: str, cfg: Dhcpv6Interface, area: Dhcpv6Area) -> tuple[Dhcpv6Exchange, ...]:
    """Every exchange an interface's checks look at: the Solicit and/or Information-Request."""
    out = []
    if cfg.solicits():
        out.append(_main(name, cfg, area))
    if cfg.information:
        out.append(_info(name, cfg, area))
    return tuple(out)


def _class_exchange(name: str, cfg: Dhcpv6Interface, area: Dhcpv6Area, cls: Any) -> Dhcpv6Exchange:
    """Ask as the client class would: a Solicit for the IAs the link hands out, else stateless."""
    return Dhcpv6Exchange(
        name,
        information=not cfg.solicits(),
        ia_na=cfg.ia_na,
        ia_pd=cfg.ia_pd,
        client_arch=cls.arch,
        user_class=cls.user_class,
        **_listen(cfg, area),
    )


def _per_interface(
    pick: Callable[[Dhcpv6Interface], bool] = lambda c: True, *, with_classes: bool = False
) -> Callable[[Profile], Iterator[Simple]]:
    def gen(p: Profile) -> Iterator[Simple]:
        assert p.dhcpv6 is not None
        w = p.dhcpv6
        for name, cfg in p.dhcpv6.interfaces.items():
            if pick(cfg):
                reqs = _exchanges(name, cfg, w)
                if with_classes:
                    reqs += tuple(_class_exchange(name, cfg, w, c) for c in cfg.client_classes)
                yield Simple(name, reqs, {"cfg": cfg, "area": w})

    return gen


def _per_exchange(p: Profile) -> Iterator[Simple]:
    assert p.dhcpv6 is not None
    w = p.dhcpv6
    for name, cfg in p.dhcpv6.interfaces.items():
        for req in _exchanges(name, cfg, w):
            kind = "information" if req.information else "solicit"
            yield Simple(f"{name}-{kind}", (req,), {"cfg": cfg})


# ------------------------------------------------------------------------------- helpers


def _servers(cfg: Dhcpv6Interface) -> str:
    return ", ".join(s.label() for s in cfg.servers)


def _listed(cfg: Dhcpv6Interface, r: Dhcpv6Reply) -> bool:
    return any(s.matches(r.server, r.server_duid) for s in cfg.servers)


def _observed(obs: Dhcpv6Observation) -> Dhcpv6Observation:
    assert obs.error is None, f"could not tell: {obs.error}"
    return obs


def _nothing(obs: Dhcpv6Observation) -> str:
    return (
        f"nothing came back within {obs.window:g} s on {obs.interface} ({obs.sent} "
        f"{obs.message} sent from {obs.source} to ff02::1:2)"
    )


def _answers(obs: Dhcpv6Observation, cfg: Dhcpv6Interface) -> list[Dhcpv6Reply]:
    """The answers of the profile's servers; fails saying why there are none."""
    _observed(obs)
    assert obs.replies, (
        f"{_nothing(obs)}: expected an answer from {_servers(cfg)}; is the DHCPv6 server running "
        "and listening on this link (or a relay forwarding to it)? is UDP 547 filtered on the way?"
    )
    good = [r for r in obs.replies if _listed(cfg, r)]
    assert good, (
        f"no answer from the expected server {_servers(cfg)} within {obs.window:g} s on "
        f"{obs.interface}; only from {', '.join(obs.servers())}: is the server running, and is "
        f"dhcpv6.interfaces.{obs.interface}.servers right?"
    )
    return good


def _all_answers(target: Simple, observe: Callable[[Any], Dhcpv6Observation]) -> list[Dhcpv6Reply]:
    cfg: Dhcpv6Interface = target.data["cfg"]
    out: list[Dhcpv6Reply] = []
    for req in target.requests:
        if isinstance(req, Dhcpv6Exchange) and not (req.client_arch or req.user_class):
            out += _answers(observe(req), cfg)
    return out


def _net(value: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(value, strict=False)


# ------------------------------------------------------------------------------- on the wire


@targets(_per_exchange)
def test_dhcpv6_server_answers(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """An expected server answers within the window, with something usable for every IA asked."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    req = target.requests[0]
    assert isinstance(req, Dhcpv6Exchange)
    evidence["expected"] = {"servers": _servers(cfg), "asked": list(req.asked())}
    obs = observe(req)
    for r in _answers(obs, cfg):
        assert not r.problems, (
            f"the answer of {r.label()} on {obs.interface} is malformed: "
            f"{'; '.join(r.problems)}; clients drop it (check the server's option definitions)"
        )
        assert r.status is None or r.status.ok, (
            f"{r.label()} answered the {obs.message} on {obs.interface} with status "
            f"{r.status.describe()} instead of an offer; see the server's log"
        )
        for kind, asked in (("IA_NA", req.ia_na), ("IA_PD", req.ia_pd)):
            if not asked:
                continue
            ias = r.ia(kind)
            assert ias, (
                f"{r.label()} answered on {obs.interface} without the {kind} that was asked: "
                f"{'no address' if kind == 'IA_NA' else 'no prefix'} is offered on this link; "
                "configure a pool for it on the server"
            )
            for ia in ias:
                failure = ia.failure()
                what = "an address" if kind == "IA_NA" else "a prefix"
                ok = failure is None and bool(ia.usable())
                assert ok, (
                    f"{r.label()} answered {kind} on {obs.interface} with "
                    f"{failure.describe() if failure else 'nothing'} instead of {what}: "
                    f"its {what.split()[1]} pool for this link is exhausted or missing (free leases, grow "
                    "the pool, or check which subnet/pool the server selects for this link)"
                )


@targets(_per_interface(with_classes=True))
def test_no_rogue_dhcpv6_server(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """Only the servers the profile names answer DHCPv6 on the link."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    evidence["expected"] = {"servers": _servers(cfg)}
    if not cfg.only_listed_servers:
        pytest.skip(f"dhcpv6.interfaces.{target.id}.only_listed_servers is false")
    seen: dict[str, Dhcpv6Reply] = {}
    for req in target.requests:
        obs = _observed(observe(req))
        for r in obs.replies:
            seen.setdefault(r.label(), r)
    assert seen, (
        f"could not tell whether a rogue DHCPv6 server is present: nothing came back on "
        f"{target.id}, not even from {_servers(cfg)}"
    )
    lines = []
    for r in seen.values():
        if _listed(cfg, r):
            continue
        offers = [x.value for x in (*r.addresses(), *r.prefixes())]
        what = ", ".join(offers) or "no address or prefix"
        dns = f", DNS {', '.join(r.dns_servers)}" if r.dns_servers else ""
        lines.append(
            f"rogue DHCPv6 server {r.label()} (MAC {r.mac}) on {target.id} offers {what}{dns}"
        )
    assert not lines, (
        "; ".join(lines) + f"; expected only {_servers(cfg)}: find and stop it (or list it under "
        f"dhcpv6.interfaces.{target.id}.servers); DHCPv6 guard / port ACLs on the switch keep it out"
    )


@targets(_per_interface(lambda c: c.address_pool is not None))
def test_offered_addresses_in_pool(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """Every address offered by IA_NA lies inside the site's pool."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    assert cfg.address_pool is not None
    evidence["expected"] = {"address_pool": str(cfg.address_pool)}
    obs = observe(_main(target.id, cfg, target.data["area"]))
    for r in _answers(obs, cfg):
        offered = r.addresses()
        assert offered, (
            f"{r.label()} offered no address on {target.id} (see test_dhcpv6_server_answers)"
        )
        outside = [
            x.value for x in offered if ipaddress.IPv6Address(x.value) not in cfg.address_pool
        ]
        assert not outside, (
            f"{r.label()} on {target.id} offers {', '.join(outside)}, outside the pool "
            f"{cfg.address_pool}: hosts would take addresses the site does not route here; fix the "
            "server's pool for this link"
        )


@targets(_per_interface(lambda c: c.prefix is not None))
def test_offered_prefix(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """The delegated prefix offered by IA_PD has the expected length and lies in the aggregate."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    exp = cfg.prefix
    assert exp is not None
    evidence["expected"] = exp.model_dump(mode="json")
    obs = observe(_main(target.id, cfg, target.data["area"]))
    for r in _answers(obs, cfg):
        offered = r.prefixes()
        assert offered, (
            f"{r.label()} offered no prefix on {target.id} (see test_dhcpv6_server_answers)"
        )
        for lease in offered:
            net = _net(lease.value)
            if exp.length is not None:
                assert net.prefixlen == exp.length, (
                    f"{r.label()} on {target.id} delegates {net} (a /{net.prefixlen}), expected a "
                    f"/{exp.length}: the router cannot number its LANs as planned; fix the "
                    "pool's delegated length on the server"
                )
            if exp.within is not None:
                assert net.subnet_of(exp.within), (
                    f"{r.label()} on {target.id} delegates {net}, outside the aggregate "
                    f"{exp.within}: it is not routed to this site; fix the server's prefix pool"
                )


@targets(_per_interface(lambda c: c.solicits()))
def test_offered_lifetimes_sane(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """Timers and lifetimes a client accepts: T1 <= T2, preferred <= valid, valid > 0."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    obs = observe(_main(target.id, cfg, target.data["area"]))
    for r in _answers(obs, cfg):
        for ia in r.ias:
            assert not (ia.t1 and ia.t2 and ia.t1 > ia.t2), (
                f"{ia.kind} from {r.label()} on {target.id} has T1 {ia.t1} s > T2 {ia.t2} s: "
                "clients discard the IA (RFC 8415 21.4); fix renew-timer/rebind-timer"
            )
            for x in ia.usable():
                assert x.valid_lifetime > 0, (
                    f"{x.value} from {r.label()} on {target.id} has valid lifetime 0: it is "
                    "withdrawn as soon as it is given"
                )
                assert x.preferred_lifetime <= x.valid_lifetime, (
                    f"{x.value} from {r.label()} on {target.id}: preferred lifetime "
                    f"{x.preferred_lifetime} s > valid lifetime {x.valid_lifetime} s; clients "
                    "ignore it (RFC 8415 21.6); fix the server's lifetimes"
                )


def _has_options(c: Dhcpv6Interface) -> bool:
    return any(v is not None for v in (c.dns, c.domains, c.ntp, c.sntp))


@targets(_per_interface(_has_options))
def test_dhcpv6_options(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """DNS servers, domain list and time servers are exactly the site's."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    want: dict[str, list[str] | None] = {
        "DNS servers (option 23)": [str(a) for a in cfg.dns] if cfg.dns is not None else None,
        "domain list (option 24)": cfg.domains,
        "NTP servers (option 56)": cfg.ntp,
        "SNTP servers (option 31)": [str(a) for a in cfg.sntp] if cfg.sntp is not None else None,
    }
    evidence["expected"] = {k: v for k, v in want.items() if v is not None}
    for r in _all_answers(target, observe):
        got = {
            "DNS servers (option 23)": list(r.dns_servers),
            "domain list (option 24)": list(r.domains),
            "NTP servers (option 56)": list(r.ntp_servers),
            "SNTP servers (option 31)": list(r.sntp_servers),
        }
        for what, expected in want.items():
            if expected is None:
                continue
            norm = [str(ipaddress.IPv6Address(x)) if ":" in x else x for x in got[what]]
            assert sorted(norm) == sorted(expected), (
                f"{what} from {r.label()} to the {r.message} on {target.id}: "
                f"{', '.join(norm) or 'absent'}, expected {', '.join(expected) or 'none'}; "
                "fix the server's option-data (clients use exactly what it hands out)"
            )


def _ra_request(p: Profile, name: str) -> RouterAdverts:
    """The very request the nd checks make for this interface (same routers expected), so the
    plan sends one RS and listens once."""
    nd = p.nd.interfaces.get(name) if p.nd is not None else None
    routers = nd.routers if nd is not None else []
    return RouterAdverts(
        name, tuple((str(r.address) if r.address else None, r.mac) for r in routers)
    )


def _ra_targets(p: Profile) -> Iterator[Simple]:
    assert p.dhcpv6 is not None
    w = p.dhcpv6
    for name, cfg in p.dhcpv6.interfaces.items():
        if cfg.ra_flags:
            yield Simple(
                name, (_ra_request(p, name), *_exchanges(name, cfg, w)), {"cfg": cfg, "area": w}
            )


@targets(_ra_targets)
def test_ra_flags_match_dhcpv6(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """An RA with M=1 promises addresses by DHCPv6, O=1 other settings (DNS): someone must
    answer them."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    area: Dhcpv6Area = target.data["area"]
    ras: RaObservation = observe(target.requests[0])
    if ras.error is not None and not ras.adverts:
        pytest.fail(
            f"could not tell: could not listen for RAs on {target.id}: {ras.error}", pytrace=False
        )
    if not ras.adverts:
        pytest.skip(f"no RA heard on {target.id}: no M/O flags to compare (the nd checks say why)")
    managed = [ra for ra in ras.adverts if ra.managed]
    other = [ra for ra in ras.adverts if ra.other]
    evidence["ra_flags"] = [
        f"{ra.label()} M={int(ra.managed)} O={int(ra.other)}" for ra in ras.adverts
    ]
    if managed:
        req = _main(target.id, cfg, area, ia_na=True)
        obs = _observed(observe(req))
        offered = [r for r in obs.replies if r.addresses()]
        came = (
            "; ".join(
                f"{r.label()}: "
                + ", ".join(f"IA_NA {f.describe()}" for ia in r.ia("IA_NA") if (f := ia.failure()))
                for r in obs.replies
            )
            if obs.replies
            else _nothing(obs)
        )
        assert offered, (
            f"the RA from {managed[0].label()} on {target.id} sets M=1 (hosts ask DHCPv6 for "
            f"addresses) but no server offers an address by IA_NA ({came}): a broken LAN for "
            "hosts that wait for DHCPv6; run a stateful DHCPv6 server with an address pool on "
            "this link, or clear AdvManagedFlag"
        )
    if other:
        req = _info(target.id, cfg, area)
        obs = _observed(observe(req))
        with_dns = [r for r in obs.replies if r.dns_servers and not r.problems]
        came = (
            ", ".join(f"{r.label()} without DNS servers" for r in obs.replies)
            if obs.replies
            else _nothing(obs)
        )
        assert with_dns, (
            f"the RA from {other[0].label()} on {target.id} sets O=1 (hosts ask DHCPv6 for DNS "
            f"and other settings) but no Information-Request answer carries DNS servers ({came}): "
            "hosts that rely on it have no resolver; run a stateless DHCPv6 server with "
            "dns-servers on this link, or clear AdvOtherConfigFlag and advertise RDNSS"
        )


def _class_targets(p: Profile) -> Iterator[Simple]:
    assert p.dhcpv6 is not None
    w = p.dhcpv6
    for name, cfg in p.dhcpv6.interfaces.items():
        for cls in cfg.client_classes:
            yield Simple(
                f"{name}-{cls.name}",
                (_class_exchange(name, cfg, w, cls),),
                {"cfg": cfg, "cls": cls},
            )


@targets(_class_targets)
def test_client_class_options(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """A client of the given architecture / user class is handed its boot options (iPXE)."""
    cfg: Dhcpv6Interface = target.data["cfg"]
    cls = target.data["cls"]
    evidence["expected"] = cls.model_dump(mode="json")
    req = target.requests[0]
    assert isinstance(req, Dhcpv6Exchange)
    as_what = " and ".join(
        x
        for x in (
            f"client architecture {cls.arch}" if cls.arch is not None else "",
            f"user class {cls.user_class!r}" if cls.user_class is not None else "",
        )
        if x
    )
    for r in _answers(observe(req), cfg):
        if cls.expect.bootfile_url is not None:
            assert r.bootfile_url == cls.expect.bootfile_url, (
                f"{r.label()} on {req.interface} hands a client with {as_what} "
                f"{'boot file URL ' + repr(r.bootfile_url) if r.bootfile_url else 'no boot file URL (option 59)'}, "
                f"expected {cls.expect.bootfile_url!r}: that client cannot boot over the network; "
                "fix the server's client class (its test on option 61/15, and its bootfile-url)"
            )
        if cls.expect.bootfile_params is not None:
            assert list(r.bootfile_params) == cls.expect.bootfile_params, (
                f"{r.label()} on {req.interface} hands a client with {as_what} boot file "
                f"parameters {list(r.bootfile_params)}, expected {cls.expect.bootfile_params}"
            )


def _swallowed(answers: list[tuple[Any, Dhcpv6Reply]], bound: list[bool | None]) -> str:
    """Servers whose answers vanished inside this node, as the message part ("" when none).

    With nothing bound to port 546 an answer that passes the firewall gets port unreachable
    back and a rejected one an ICMPv6 error; silence from this node means it was dropped (or
    the ICMPv6 error rate limit swallowed every one), which is no "accepted". With a client
    bound, an accepted answer is silent too: that case cannot be told apart and is left alone.
    """
    if any(bound):
        return ""
    answered = {r.label() for _, r in answers if r.local_response is not None}
    quiet = sorted({r.label() for _, r in answers} - answered)
    if not quiet:
        return ""
    why = (
        "nothing on this node listens on UDP port 546"
        if all(b is False for b in bound)
        else "whether a client listens on UDP port 546 could not be read (/proc/net/udp6)"
    )
    return (
        f"the answers of {', '.join(quiet)} got no ICMPv6 back from this node although {why}: "
        "they vanished inside this node (dropped by its firewall, or ICMPv6 errors rate-limited)"
    )


@targets(_per_interface())
def test_dhcpv6_replies_reach_this_node(
    target: Simple, observe: Callable[[Any], Dhcpv6Observation], evidence: dict[str, Any]
) -> None:
    """This node's own firewall lets the servers' answers in (they answer a multicast Solicit from
    their link-local address, so conntrack sees them as NEW, not ESTABLISHED)."""
    answers = []
    unbound: list[bool | None] = []
    for req in target.requests:
        obs = _observed(observe(req))
        answers += [(req, r) for r in obs.replies]
        unbound.append(obs.client_port_bound)
    assert answers, (
        f"could not tell whether this node accepts DHCPv6 answers on {target.id}: nothing came back"
    )
    silent = _swallowed(answers, unbound)
    assert not silent, (
        f"could not tell whether this node accepts DHCPv6 answers on {target.id}: "
        f"{silent}. Expected port unreachable back (the answer passed the firewall) or a "
        "reject; look for a DROP of UDP port 546 in this node's INPUT rules"
    )
    bad = [(q, r) for q, r in answers if r.local_response not in (None, "port-unreachable")]
    assert not bad, "; ".join(
        f"{r.label()} answered the {r.message} on {q.interface}, but this node sent back ICMPv6 "
        f"{r.local_response}: its firewall rejects the answer"
        for q, r in bad
    ) + (
        " (conntrack sees a reply to a multicast Solicit as NEW); accept UDP from fe80::/10 "
        f"port 547 to port 546 on {target.id} before the RELATED,ESTABLISHED rule"
    )


# ------------------------------------------------------------------------------- router state


def _delegation_target(p: Profile) -> Iterator[Simple]:
    assert p.dhcpv6 is not None
    d = p.dhcpv6.delegated
    if d is not None:
        yield Simple(
            "delegated",
            (ReadRoutes(254), *(ReadAddresses(i) for i in d.lan)),
            {"cfg": d},
        )


def _holding(table: RouteTable) -> list[Route]:
    return [r for r in table.routes if r.type in HOLDING_TYPES and r.dst != "default"]


def _lan_prefixes(obs: AddressList) -> list[ipaddress.IPv6Network]:
    return [
        _net(f"{a.address}/{a.prefixlen}")
        for a in obs.addresses
        if a.is_global and ipaddress.IPv6Address(a.address) not in ULA
    ]


def _held(d: Delegation, table: RouteTable) -> ipaddress.IPv6Network | None:
    return next((_net(r.dst) for r in _holding(table) if d.fits(_net(r.dst))), None)


@targets(_delegation_target)
def test_delegated_prefix_held(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """The router holds its delegated prefix as its DHCPv6-PD client installs it."""
    d: Delegation = target.data["cfg"]
    evidence["expected"] = {"delegated": d.describe(), "held_by": d.held_by}
    table: RouteTable = observe(target.requests[0])
    assert table.error is None, f"could not tell: {table.error}"
    holding = _holding(table)
    evidence["holding_routes"] = [r.describe() for r in holding]
    if d.held_by != "lan" and _held(d, table) is not None:
        return
    region = d.region()
    wrong = [r for r in holding if region is not None and _net(r.dst).overlaps(region)]
    assert not wrong, (
        f"this router holds {', '.join(r.describe() for r in wrong)}, expected {d.describe()}: "
        "the delegation changed (another length or prefix); renumber the LANs or fix the "
        "request / the upstream's delegated length"
    )
    carved: list[str] = []
    if d.held_by != "route":
        for req in target.requests[1:]:
            addrs: AddressList = observe(req)
            assert addrs.error is None, f"could not tell: {addrs.error}"
            carved += [
                f"{n} on {addrs.interface}"
                for n in _lan_prefixes(addrs)
                if region is not None and n.subnet_of(region)
            ]
        if carved:
            evidence["carved"] = carved
            return
    how = {
        "route": "no unreachable/blackhole route for it",
        "lan": "no LAN prefix carved out of it",
        "either": "no unreachable/blackhole route for it and no LAN prefix carved out of it",
    }[d.held_by]
    pytest.fail(
        f"this router holds no delegated prefix ({d.describe()}): {how}; its DHCPv6-PD client "
        "got nothing: is it running, does the upstream server answer (and is its reply let in "
        "by the firewall), does the server have a prefix for it?",
        pytrace=False,
    )


def _lan_targets(p: Profile) -> Iterator[Simple]:
    assert p.dhcpv6 is not None
    d = p.dhcpv6.delegated
    if d is not None:
        for name in d.lan:
            yield Simple(name, (ReadRoutes(254), ReadAddresses(name)), {"cfg": d})


@targets(_lan_targets)
def test_lan_prefix_inside_delegation(
    target: Simple, observe: Callable[[Any], Any], evidence: dict[str, Any]
) -> None:
    """Each LAN is numbered from the delegated prefix (a stale prefix after a re-delegation is
    not routed back to the site)."""
    d: Delegation = target.data["cfg"]
    table: RouteTable = observe(target.requests[0])
    addrs: AddressList = observe(target.requests[1])
    assert table.error is None, f"could not tell: {table.error}"
    assert addrs.error is None, f"could not tell: {addrs.error}"
    held = _held(d, table) or d.prefix
    assert held is not None, (
        f"could not tell whether {target.id} is numbered from the delegation: this router holds "
        f"no delegated prefix ({d.describe()}; see test_delegated_prefix_held)"
    )
    evidence["delegated"] = str(held)
    prefixes = _lan_prefixes(addrs)
    assert prefixes, f"{target.id} has no global address: it is not numbered at all"
    outside = [str(n) for n in prefixes if not n.subnet_of(held)]
    assert not outside, (
        f"{target.id} is numbered from {', '.join(outside)}, outside the delegated prefix "
        f"{held}: traffic to it is not routed to this site; renumber {target.id} (and its RA) "
        "from the delegated prefix"
    )
