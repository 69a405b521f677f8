"""The fault catalogue: each fault is one small declarative class modelled on a real failure.

A fault says which knobs of ``SiteConfig`` it turns (``changes``, applied before anything is
started, so the site is built broken by the same code that builds it healthy) and/or which
commands it runs once the site is up (``after``, for breakage that must happen to a running site,
such as a firewall reload). Its ``area`` is the primary area of checks that should catch it;
``breaks`` is every area whose checks are *expected* to fail, cascade included (no RA means no
default route, which means no DNS over IPv6 from the LAN). The matrix compares the checks that
actually failed with ``breaks``.

A *variant* is a different but safe configuration: the matrix expects every check to pass.

The class docstring is the story: the real failure in ``/work/shared/seeds/`` it reproduces.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from sixcheck.lab import topology as t

AREAS: frozenset[str] = frozenset(
    {"sysctl", "nd", "routes", "dns", "ntp", "firewall", "tunnel", "vpn", "dhcpv6"}
)

#: What a LAN host loses when it has no working IPv6 path out: its routes, DNS and NTP over
#: IPv6, and the outbound-NEW firewall claims (and from outside, inbound probes of its address
#: no longer meet the firewall's adm-prohibited reject).
LAN_OUTAGE: frozenset[str] = frozenset({"routes", "dns", "ntp", "firewall"})


class Fault:
    """Base class; subclasses are registered by ``@register`` and never instantiated twice."""

    name: ClassVar[str]
    area: ClassVar[str]
    breaks: ClassVar[frozenset[str]]
    variant: ClassVar[bool] = False
    #: SiteConfig fields to change before the site is built.
    changes: ClassVar[Mapping[str, Any]] = {}
    #: (node, shell command) pairs run, in order, after the healthy waits have passed.
    after: ClassVar[tuple[tuple[str, str], ...]] = ()

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring: what ``faults`` prints."""
        return inspect.cleandoc(cls.__doc__ or "").splitlines()[0]

    @classmethod
    def story(cls) -> str:
        """The whole docstring."""
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def apply(cls, cfg: t.SiteConfig) -> t.SiteConfig:
        """The site config with this fault's knobs turned."""
        return replace(cfg, **dict(cls.changes))


FAULTS: dict[str, type[Fault]] = {}


def register(cls: type[Fault]) -> type[Fault]:
    """Add a fault class to the catalogue, checking it is well formed (so a typo in an area or
    a knob fails at import, not halfway through a matrix run)."""
    if cls.name in FAULTS:
        raise ValueError(f"duplicate fault name {cls.name}")
    if cls.area not in AREAS or not cls.breaks <= AREAS:
        raise ValueError(f"fault {cls.name}: unknown area in {cls.area} / {sorted(cls.breaks)}")
    if not cls.variant and cls.area not in cls.breaks:
        raise ValueError(f"fault {cls.name}: breaks must include its own area {cls.area}")
    if cls.variant and cls.breaks:
        raise ValueError(f"variant {cls.name} must break nothing")
    known = set(t.SiteConfig.__dataclass_fields__)
    if unknown := set(cls.changes) - known:
        raise ValueError(f"fault {cls.name}: unknown SiteConfig knobs {sorted(unknown)}")
    if not (cls.__doc__ or "").strip():
        raise ValueError(f"fault {cls.name} needs a docstring naming the failure it models")
    FAULTS[cls.name] = cls
    return cls


def get(name: str) -> type[Fault]:
    """The fault called ``name``; KeyError lists the known names."""
    try:
        return FAULTS[name]
    except KeyError:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}") from None


def apply_all(names: list[str] | tuple[str, ...]) -> t.SiteConfig:
    """The site config for a set of faults (healthy if empty)."""
    cfg = t.SiteConfig()
    for name in names:
        cfg = get(name).apply(cfg)
    return cfg


# ------------------------------------------------------------------------------- sysctl


@register
class ForwardingOff(Fault):
    """Gateway with IPv6 forwarding off: the LAN has addresses but nothing leaves the LAN.

    Seed 001 (gw6c gateway) step 11 needs ``net.ipv6.ip_forward = 1`` by hand, and seed 002 has
    a VM that only worked once the forwarding sysctls were set. The gateway still advertises
    itself, so LAN hosts look configured; only traffic through the gateway dies.
    """

    name = "forwarding-off"
    area = "sysctl"
    # nd: the gateway's kernel answers Neighbor Solicitations without the Router flag, and LAN
    # hosts drop it from their default routers (RFC 4861 7.2.5), which the NS/NA check names.
    breaks = frozenset({"sysctl", "nd"}) | LAN_OUTAGE
    changes: ClassVar[Mapping[str, Any]] = {"gw_forwarding": 0}


@register
class AcceptRaIgnored(Fault):
    """Gateway uplink with forwarding=1 and accept_ra=1: upstream RAs ignored, default route lost.

    Seed 002 (Telekom PPPoE): a router with forwarding on ignores upstream RAs unless
    ``accept_ra=2`` on that interface, the origin of the "forwarding must be 0 on ppp" folklore.
    The gateway loses its default route; the LAN looks fine but reaches nothing upstream.
    """

    name = "accept-ra-ignored"
    area = "sysctl"
    breaks = frozenset({"sysctl"}) | LAN_OUTAGE
    changes: ClassVar[Mapping[str, Any]] = {"gw_wan_accept_ra": 1}


# ------------------------------------------------------------------------------- nd


@register
class RaStopped(Fault):
    """RA daemon not running on the gateway: LAN hosts get no prefix and no default route.

    Seed 001 (gw6c + radvd): radvd died silently while the init script said OK, and gw6c kept
    running. LAN hosts keep only link-local addresses, so everything over IPv6 fails after.
    """

    name = "ra-stopped"
    area = "nd"
    breaks = frozenset({"nd"}) | LAN_OUTAGE
    changes: ClassVar[Mapping[str, Any]] = {"lan_radvd": False}


@register
class RaNoRdnss(Fault):
    """Router advertisements without RDNSS: SLAAC-only devices learn no resolver.

    Seed 003 (IPv6-only Wi-Fi, phones): devices that only do SLAAC (no DHCPv6, e.g. Android)
    need RDNSS in the RA, or they have an address and a route but no DNS.
    """

    name = "ra-no-rdnss"
    area = "nd"
    breaks = frozenset({"nd"})
    changes: ClassVar[Mapping[str, Any]] = {"lan_rdnss": False}


@register
class WrongPrefix(Fault):
    """The gateway advertises a stale prefix (2001:db8:2:1::/64) that is not routed to it.

    Seed 002 (Telekom DHCPv6-PD): after a reconnect the delegated prefix changes and a hook has
    to rewrite radvd's config; when it does not, hosts keep forming addresses from the old
    prefix, and replies to them never come back.
    """

    name = "wrong-prefix"
    area = "nd"
    breaks = frozenset({"nd"}) | LAN_OUTAGE
    changes: ClassVar[Mapping[str, Any]] = {"lan_prefix": t.WRONG_PREFIX6}


@register
class RogueRouter(Fault):
    """A second router on the LAN advertising 2001:db8:bad::/64 (and itself as a default).

    Seed 000/001: the LAN's addressing is whatever the routers on the link advertise; a stray
    RA (a misconfigured box, Windows ICS) gives every host an extra prefix and default route.
    The rogue advertises a low router preference, so hosts still prefer the real gateway and
    only checks of "only the expected routers and prefixes" notice.
    """

    name = "rogue-router"
    area = "nd"
    breaks = frozenset({"nd", "routes"})
    changes: ClassVar[Mapping[str, Any]] = {"rogue_router": True}


# ------------------------------------------------------------------------------- routes


@register
class LanNoDefaultRoute(Fault):
    """LAN host without a default route (it ignores the RA's router lifetime).

    Seed 000 (IPv6-only host): the host's default route via the gateway's link-local address is
    the first thing to verify; a host with ``accept_ra_defrtr=0`` (or one that forwards) has
    an address in the right prefix and still reaches nothing off-link.
    """

    name = "lan-no-default-route"
    area = "routes"
    # Not "sysctl": the lab-lan profile need not pin accept_ra_defrtr. A profile that does should
    # add it here (a check that catches the cause is the best detection of all).
    breaks = LAN_OUTAGE
    changes: ClassVar[Mapping[str, Any]] = {"lan_accept_ra_defrtr": 0}


# ------------------------------------------------------------------------------- firewall


@register
class InboundNewAccepted(Fault):
    """Gateway forwards NEW connections from outside to LAN hosts: the LAN is wide open.

    Seed 001: with a tunnel broker every LAN host gets a globally reachable address, and it is
    open to the world until the stateful ip6tables rules are loaded (step 15 turns the tunnel
    off until then). Modelled as the final REJECT in FORWARD replaced by ACCEPT.
    """

    name = "inbound-new-accepted"
    area = "firewall"
    breaks = frozenset({"firewall"})
    changes: ClassVar[Mapping[str, Any]] = {"fw_inbound_new": "accept"}


@register
class OutboundNewDropped(Fault):
    """Gateway drops NEW connections from the LAN: LAN hosts cannot open anything outside.

    Seed 002: a FORWARD DROP policy with ICMPv6 and RELATED,ESTABLISHED allowed, yet sites hung
    because the rule accepting NEW from the LAN was missing. Pings still work (ICMPv6 is
    accepted first), so only checks that open TCP/UDP flows see it.
    """

    name = "outbound-new-dropped"
    area = "firewall"
    breaks = frozenset({"firewall", "dns", "ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"fw_outbound_new": "drop"}


@register
class Icmpv6Dropped(Fault):
    """All ICMPv6 dropped by the gateway's INPUT and FORWARD chains (ND and Packet Too Big too).

    Seed 001 makes allowing ICMPv6 optional ("you can uncomment the line"), and seed 002 notes
    that flushing the wrong rules kills routing. Without ICMPv6 the gateway answers no Neighbor
    Solicitation, so LAN hosts cannot resolve their default router and nothing works; pings
    through the tunnel die too. Applied to the running site, then neighbour caches flushed so
    the breakage shows at once instead of after the cached entries expire.
    """

    name = "icmpv6-dropped"
    area = "firewall"
    # dhcpv6: the DHCPv6 servers cannot resolve the clients' link-local addresses (the gateway
    # answers no NS and drops the LAN's NAs), so no answer is ever delivered.
    breaks = frozenset({"firewall", "nd", "tunnel", "dhcpv6"}) | LAN_OUTAGE
    after = (
        ("gw", "ip6tables -w -I INPUT 1 -p ipv6-icmp -j DROP"),
        ("gw", "ip6tables -w -I FORWARD 1 -p ipv6-icmp -j DROP"),
        ("gw", "ip -6 neigh flush all"),
        ("lan", "ip -6 neigh flush all"),
        ("vpn", "ip -6 neigh flush all"),
        ("inet", "ip -6 neigh flush all"),
    )


# ------------------------------------------------------------------------------- dns


@register
class ResolverDown(Fault):
    """The public resolver is not running.

    Seed 000: finding a resolver reachable over IPv6 at all was the hard part; when the one
    configured does not answer, every name lookup fails although routing is fine.
    """

    name = "resolver-down"
    area = "dns"
    # Cascades in lab-lan: its NTP server is listed by name (ntp.example.net). The firewall's
    # outbound-UDP claim has a service of its own (udp/7 echo), so it is not broken by this.
    breaks = frozenset({"dns", "ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"resolver": "down"}


@register
class ResolverIpv4Only(Fault):
    """The resolver answers over IPv4 only (2001:db8:53::53 is silent; 203.0.113.100 answers).

    Seed 000: an IPv6-only host needs DNS *over IPv6 transport*; a resolver that returns AAAA
    records but only listens on IPv4 looks healthy from a dual-stacked host.
    """

    name = "resolver-ipv4-only"
    area = "dns"
    # Cascades in lab-lan: its NTP server is listed by name (ntp.example.net). The firewall's
    # outbound-UDP claim has a service of its own (udp/7 echo), so it is not broken by this.
    breaks = frozenset({"dns", "ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"resolver": "ipv4-only"}


@register
class ResolverRefusesLan(Fault):
    """The resolver refuses queries from the LAN's prefix (its access list lost a line).

    Issue 19's change: a resolver ACL rewritten during a migration answers the gateway and the
    outside but sends REFUSED to the LAN, so every lookup from there fails although the resolver
    is up and reachable; a comparison with the healthy run must show `rcode NOERROR → REFUSED`.
    """

    name = "resolver-refuses-lan"
    area = "dns"
    # Cascades in lab-lan like resolver-down: its NTP server is listed by name.
    breaks = frozenset({"dns", "ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"resolver": "refuses-lan"}


@register
class NameMissingAaaa(Fault):
    """www.example.net has lost its AAAA record (A only).

    Seed 003: many popular services had no AAAA at all, so an IPv6-only network could not
    reach them; the record is what a check of the site's expected names has to notice.
    """

    name = "name-missing-aaaa"
    area = "dns"
    breaks = frozenset({"dns"})
    changes: ClassVar[Mapping[str, Any]] = {"www_aaaa": False}


# ------------------------------------------------------------------------------- ntp


@register
class NtpDown(Fault):
    """The NTP server at 2001:db8:123::123 is not running.

    Seed 000: the IPv6-only host had to find an NTP server reachable over IPv6; if the one it is
    configured with is gone, its clock drifts with nobody noticing.
    """

    name = "ntp-down"
    area = "ntp"
    breaks = frozenset({"ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"ntp": "down"}


@register
class NtpSkewed(Fault):
    """The NTP server answers, stratum 2, no leap warning, but its clock is 5 minutes ahead.

    Seed 000 (NTP over IPv6): "it answers" is not "it is right". A server whose clock is off by
    minutes passes a reachability check and breaks everything time-based (TLS, Kerberos, logs).
    Served by a small responder (ntpliar.py), since chronyd -x must never move the machine's
    shared clock.
    """

    name = "ntp-skewed"
    area = "ntp"
    breaks = frozenset({"ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"ntp": "skewed"}


@register
class NtpUnsynchronised(Fault):
    """The NTP server runs but has no time source: chronyd with no sources and no ``local``.

    Issue 17: it answers every request with leap 3 and stratum 0 and a refid that is no kiss
    code. That is an unsynchronised server whose upstream must be fixed, not a Kiss-o'-Death
    telling this node to go away (which is what sixcheck used to say).
    """

    name = "ntp-unsynchronised"
    area = "ntp"
    breaks = frozenset({"ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"ntp": "unsynchronised"}


@register
class NtpKissRate(Fault):
    """The NTP server answers every request with a RATE Kiss-o'-Death (rate limiting).

    Issue 17 / RFC 8633: a server that rate-limits (ntpd ``limited kod``, chrony ``ratelimit``
    with ``kod``) tells the client to query less often; many clients behind one NAT address, or
    one that polls too fast, get only kisses and no time. Served by the lab's small responder.
    """

    name = "ntp-kiss-rate"
    area = "ntp"
    breaks = frozenset({"ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"ntp": "kiss", "ntp_kiss_code": "RATE"}


@register
class NtpStale(Fault):
    """The NTP server says stratum 2, no leap warning, but last set its clock 5 hours ago.

    Issue 17: a server that lost its upstream keeps answering "synchronised" while it coasts on
    its own oscillator; only the age of its reference time gives it away, long before its clock
    is visibly off. Served by the lab's small responder (its clock is the machine's, exact).
    """

    name = "ntp-stale"
    area = "ntp"
    breaks = frozenset({"ntp"})
    changes: ClassVar[Mapping[str, Any]] = {"ntp": "stale", "ntp_reference_age": 5 * 3600.0}


# ------------------------------------------------------------------------------- tunnel


@register
class TunnelFarEndGone(Fault):
    """The tunnel broker's end is gone: the gateway's tun6 is up but nothing answers.

    Seeds 000/001: a broker tunnel (TSP, gw6c) whose server end disappears; the local interface
    stays up with its addresses, and the author had cron restart the client. Only a ping of the
    far-side address (2001:db8:0:7::1) or of a target behind it notices.
    """

    name = "tunnel-far-end-gone"
    area = "tunnel"
    breaks = frozenset({"tunnel"})
    changes: ClassVar[Mapping[str, Any]] = {"tunnel_far_end": False}


@register
class TunnelMtuBlackhole(Fault):
    """Gateway's tunnel MTU 1400 while the path carries 1280, and Packet Too Big dropped.

    Seeds 000/002: a tunnel needs MTU 1280 (gif0 in seed 000; mru/mtu 1380 on PPPoE in seed
    002); set larger than the path, big packets vanish silently while pings and handshakes
    work, the classic PMTU black hole (seed 002's security.debian.org hang).
    """

    name = "tunnel-mtu-blackhole"
    area = "tunnel"
    breaks = frozenset({"tunnel"})
    changes: ClassVar[Mapping[str, Any]] = {"gw_tunnel_mtu": 1400, "fw_drop_ptb": True}


# ------------------------------------------------------------------------------- vpn


@register
class VpnLeak(Fault):
    """IPv4-only VPN: IPv6 to the protected 2001:db8:10::10 leaves by eth0 around the tunnel.

    Seed 004 (World IPv6 Day): clients prefer AAAA, the VPN carried only IPv4, so traffic to
    dual-stacked internal services went over the public IPv6 path and was refused or leaked.
    The tunnel has no IPv6 at all here, so its resolver is reached over IPv4 only.
    """

    name = "vpn-leak"
    area = "vpn"
    breaks = frozenset({"vpn", "dns"})
    changes: ClassVar[Mapping[str, Any]] = {"vpn_ipv6": "none", "vpn_resolv": "vpn-ipv4"}


@register
class VpnDnsPublic(Fault):
    """The VPN client resolves through the public resolver instead of the VPN's.

    Seed 004: the VPN could not push IPv6 (or DNS) settings, so names of protected services
    were answered from outside: internal-only names fail, and the query itself leaks.
    """

    name = "vpn-dns-public"
    area = "vpn"
    breaks = frozenset({"vpn", "dns"})
    changes: ClassVar[Mapping[str, Any]] = {"vpn_resolv": "public"}


@register
class VpnBlackhole(Fault):
    """Variant: IPv6 to the protected prefix is blackholed on the client instead of tunnelled.

    Seed 004's pragmatic fix when a VPN cannot carry IPv6: make sure protected traffic can
    never take the public path. Nothing leaks, so every check is expected to pass.
    """

    name = "vpn-blackhole"
    area = "vpn"
    breaks = frozenset()
    variant = True
    changes: ClassVar[Mapping[str, Any]] = {"vpn_ipv6": "blackhole"}


# ------------------------------------------------------------------------------- dhcpv6


@register
class Dhcpv6ServerDown(Fault):
    """The ISP's DHCPv6 server is not running: the gateway's prefix delegation never happens.

    Seed 002 (Telekom PPPoE): the routed /56 comes only by DHCPv6-PD; with no answer the gateway
    holds no prefix, and nothing but a check of the delegation itself notices (the LAN keeps its
    old numbering until it expires).
    """

    name = "dhcpv6-server-down"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"dhcpv6_upstream": "down"}


@register
class PdPoolExhausted(Fault):
    """The ISP's prefix pool is exhausted: a new request gets NoPrefixAvail.

    Seed 003 (Kea handing prefixes to Docker hosts and routers): a pool sized for today's
    customers runs out; the server still answers, with status NoPrefixAvail in the IA_PD. Here
    the pool holds one /48, leased to a neighbour's CPE (the gateway keeps its reservation).
    """

    name = "pd-pool-exhausted"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"pd_pool": "exhausted"}


@register
class PdWrongLength(Fault):
    """The ISP delegates /56s instead of the /48 the site is planned for.

    Seed 002: the delegated length decides how many LANs a router can number (dhcpcd's
    `ia_pd 1 int/0/64`); a change upstream silently leaves LANs outside what is routed.
    """

    name = "pd-wrong-length"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"pd_length": 56}


@register
class Dhcpv6ReplyDropped(Fault):
    """The gateway's firewall drops the server's replies: RELATED,ESTABLISHED does not cover them.

    Seed 002 ("UDP/ipv6, Port 546 ... sonst geht gar nix"): the server answers a Solicit sent to
    ff02::1:2 from its own link-local address, so conntrack sees a NEW flow and a ruleset that
    accepts RELATED,ESTABLISHED and rejects the rest loses every prefix. Here the gateway's
    `--dport 546` accept rule is missing.
    """

    name = "dhcpv6-reply-dropped"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"gw_fw_dhcpv6_client": False}


@register
class RogueDhcpv6Server(Fault):
    """A second DHCPv6 server on the LAN hands out its own addresses and DNS server.

    Seed 002/003: a forgotten dnsmasq or a NAS answering DHCPv6 gives hosts that ask another
    resolver and addresses from a prefix nobody routes; like a rogue RA, only a check of who
    answers notices.
    """

    name = "rogue-dhcpv6-server"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"rogue_dhcpv6": True}


@register
class RaManagedNoServer(Fault):
    """The LAN's RA says M=1 (addresses by DHCPv6) but no server on the LAN hands out addresses.

    Seed 002 (dnsmasq with `AdvManagedFlag on` in radvd): M=1 is a promise; a LAN whose server
    only does stateless DHCPv6 leaves hosts that wait for a DHCPv6 address without one.
    """

    name = "ra-managed-no-server"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6", "nd"})
    changes: ClassVar[Mapping[str, Any]] = {"lan_ra_managed": True}


@register
class BootUrlMissing(Fault):
    """The LAN's DHCPv6 server has lost the boot file URL for EFI x64 clients (arch 7).

    Seed 003 (iPXE over IPv6): the server hands `bootfile-url` by client architecture and user
    class; without it for arch 7, UEFI machines cannot boot over the network while iPXE's second
    stage (and every other check) still works.
    """

    name = "boot-url-missing"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"lan_boot_efi": False}


@register
class LanDhcpv6Down(Fault):
    """The LAN's RA says O=1 but the LAN's stateless DHCPv6 server is not running.

    Seed 003 (radvd with `AdvOtherConfigFlag on` and a DHCPv6 server for DNS): hosts that learn
    DNS only by DHCPv6 are left without a resolver, and network boot has no boot URL.
    """

    name = "lan-dhcpv6-down"
    area = "dhcpv6"
    breaks = frozenset({"dhcpv6"})
    changes: ClassVar[Mapping[str, Any]] = {"lan_dhcpv6": False}
