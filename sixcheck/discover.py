"""`python -m sixcheck discover`: a starter profile from what this node sees now.

Most people start from what their site does today rather than from a blank file: interfaces by
role, the IPv6 switches, the RAs on upstream links, addresses, default routes and policy rules, the
resolvers in use (with a question to each) and the configured NTP servers (asked once). What cannot
be seen from here - which ports must stay closed, which names the VPN protects - is left as
commented templates for a person to decide.

Read-only, like every probe: it reads netlink, /proc and configuration files; the only packets it
sends are one Router Solicitation per upstream interface (only with `--ra-listen`), one DNS question
per resolver and transport, and one NTP query per configured server - all to what this node is
already configured to use. The output is validated (`sixcheck.schema.parse`) before it is printed.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .probes.base import Observation, ProbeContext, ProbeRequest, has_raw_sockets
from .probes.dns import DnsAnswer, HostResolvers
from .probes.dns_requests import DnsQuery, ReadHostResolvers
from .probes.nd import RaObservation
from .probes.nd_requests import RouterAdverts
from .probes.netlink import AddressList, RouteTable, RuleList
from .probes.netlink_requests import ReadAddresses, ReadRoutes, ReadRules
from .probes.ntp import NtpAnswer
from .probes.ntp_requests import NtpQuery
from .probes.plan import run_plan
from .probes.sysctl import SysctlValue, read_sysctl
from .schema import parse

VPN_NAMES = re.compile(r"^(wg|tailscale|zt|nordlynx|ipsec|vti|xfrm|utun)")
TUNNEL_NAMES = re.compile(r"^(tun|sit|ip6tnl|ip6gre|gre|he-|6in4|6to4|tap|teredo)")
NTP_FILES = (
    "/etc/chrony/chrony.conf",
    "/etc/chrony.conf",
    "/etc/ntp.conf",
    "/etc/ntpsec/ntp.conf",
    "/etc/openntpd/ntpd.conf",
    "/etc/systemd/timesyncd.conf",
)
#: Policy rules every Linux box has (local, main, default): not worth a line in a profile.
STANDARD_RULES = {(0, 255), (32766, 254), (32767, 253)}


@dataclass
class Iface:
    name: str
    role: str
    upstream_ra: bool = False
    why: str = ""
    mtu: int | None = None
    addresses: list[Any] = field(default_factory=list)


def _q(value: Any) -> str:
    """A YAML scalar: strings double-quoted (valid YAML), the rest as JSON writes them."""
    return json.dumps(str(value) if isinstance(value, ipaddress._BaseAddress) else value)


def _flow(d: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_q(v)}" for k, v in d.items()) + "}"


def _links() -> list[tuple[str, bool]]:
    """(name, up) of every link but loopback."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        out = []
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name == "lo":
                continue
            out.append((name, bool(link["flags"] & 1)))
        return out


def _sysctl(key: str) -> int | None:
    v: SysctlValue = read_sysctl(key)
    return v.as_int()


def _ntp_servers(files: tuple[str, ...] = NTP_FILES) -> list[tuple[str, str]]:
    """(server, file) from the local NTP client configuration, if readable."""
    found: list[tuple[str, str]] = []
    for path in files:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] in ("server", "pool", "peer"):
                found.append((parts[1], path))
            elif parts and parts[0].startswith("NTP="):  # timesyncd
                first = parts[0].split("=", 1)[1]
                found += [(s, path) for s in [first, *parts[1:]] if s]
    unique: dict[str, str] = {}
    for server, path in found:
        unique.setdefault(server, path)
    return list(unique.items())


def _is_v6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).version == 6
    except ValueError:
        return False


def _ll(addr: str | None) -> bool:
    return addr is not None and ipaddress.IPv6Address(addr.split("%", 1)[0]).is_link_local


#: DHCPv6 clients by process name (/proc/PID/comm).
DHCPV6_CLIENTS = ("dhclient", "dhcpcd", "odhcp6c", "systemd-network", "wide-dhcp6c", "dhcp6c")


def _dhcpv6_clients() -> list[str]:
    """The DHCPv6 client this node runs: a socket on UDP 546 in this namespace, named by the
    client processes seen (/proc lists every namespace's processes: a process alone proves
    nothing about this node)."""
    from .probes.dhcpv6 import client_port_bound

    if not client_port_bound():
        return []
    names = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in DHCPV6_CLIENTS and name not in names:
            names.append(name)
    return [*names, "a socket on UDP 546"]


def _plen(prefix: str) -> int:
    return ipaddress.IPv6Network(prefix).prefixlen


class _Discovery:
    def __init__(self, vantage: str | None, ra_listen: float) -> None:
        self.ra_listen = ra_listen
        self.ctx = ProbeContext(
            probe_timeout=2.0,
            ra_listen=ra_listen or 3.5,
            run_timeout=30.0,
            has_raw=has_raw_sockets(),
        )
        self.forwarding = _sysctl("net.ipv6.conf.all.forwarding")
        self.vantage = vantage or ("router" if self.forwarding == 1 else "host")
        self.notes: list[str] = []

    def run(self, reqs: list[ProbeRequest[Any]]) -> dict[ProbeRequest[Any], Observation]:
        return run_plan(reqs, self.ctx)[0] if reqs else {}

    # ---- what the node has
    def gather(self) -> None:
        links = _links()
        reqs: list[ProbeRequest[Any]] = [
            *(ReadAddresses(n) for n, _ in links),
            ReadRoutes(254),
            ReadRules(),
            ReadHostResolvers(),
        ]
        obs = self.run(reqs)
        self.addrs: dict[str, AddressList] = {
            n: o for n, _ in links if isinstance(o := obs[ReadAddresses(n)], AddressList)
        }
        main = obs[ReadRoutes(254)]
        self.routes: RouteTable | None = main if isinstance(main, RouteTable) else None
        rules = obs[ReadRules()]
        self.rules: RuleList | None = rules if isinstance(rules, RuleList) else None
        res = obs[ReadHostResolvers()]
        self.resolvers: HostResolvers | None = res if isinstance(res, HostResolvers) else None
        self.down = [n for n, up in links if not up]
        self.ifaces = self._roles([n for n, up in links if up])

    def _roles(self, names: list[str]) -> dict[str, Iface]:
        defaults = self.routes.defaults() if self.routes else []
        default_dev = {r.dev: r for r in defaults if r.dev}
        out: dict[str, Iface] = {}
        skipped = []
        for name in names:
            al = self.addrs.get(name)
            glob = [a for a in (al.addresses if al else ()) if a.is_global]
            mtu = al.link.mtu if al and al.link else None
            ra_default = name in default_dev and default_dev[name].proto == "ra"
            if name in default_dev and not VPN_NAMES.match(name) and not TUNNEL_NAMES.match(name):
                role = "lan" if self.vantage == "host" else "wan"
                why = "carries the default route"
                up_ra = ra_default and self.vantage != "outside"
                out[name] = Iface(name, role, up_ra, why, mtu, glob)
            elif VPN_NAMES.match(name):
                out[name] = Iface(name, "vpn", False, "named like a VPN device", mtu, glob)
            elif TUNNEL_NAMES.match(name):
                why = "named like a tunnel device (tun* is also used by VPNs: decide)"
                out[name] = Iface(name, "tunnel", False, why, mtu, glob)
            elif glob and self.vantage == "router":
                fwd = _sysctl(f"net.ipv6.conf.{name}.forwarding")
                role = "lan" if fwd == 1 else "other"
                why = (
                    "global prefix, forwarding on" if fwd == 1 else "global prefix, not forwarding"
                )
                out[name] = Iface(name, role, False, why, mtu, glob)
            elif glob:
                out[name] = Iface(name, "other", False, "has a global address", mtu, glob)
            else:
                skipped.append(name)
        if skipped:
            self.notes.append(
                f"left out (no global IPv6 address, no default route): {', '.join(skipped)}"
            )
        if self.down:
            self.notes.append(f"left out (down): {', '.join(self.down)}")
        return out

    # ---- sections
    def section_interfaces(self) -> list[str]:
        lines = ["interfaces:"]
        for i in self.ifaces.values():
            extra = ", upstream_ra: true" if i.upstream_ra else ""
            lines.append(f"  {i.name}: {{role: {i.role}{extra}}}    # {i.why}")
        if not self.ifaces:
            lines = ["interfaces: {}   # nothing with IPv6 found: declare the interfaces by hand"]
        return lines

    def section_sysctl(self) -> list[str]:
        keys = {
            "router": ("forwarding", "accept_ra", "disable_ipv6"),
            "host": ("forwarding", "accept_ra", "autoconf", "disable_ipv6"),
            "outside": ("disable_ipv6",),
        }[self.vantage]
        lines = ["sysctl:"]
        if self.vantage == "router" and self.forwarding is not None:
            lines.append(f"  all: {{forwarding: {self.forwarding}}}")
        body = []
        for i in self.ifaces.values():
            if i.role not in ("wan", "lan"):
                continue
            read = {k: _sysctl(f"net.ipv6.conf.{i.name}.{k}") for k in keys}
            vals = {k: v for k, v in read.items() if v is not None}
            if vals:
                body.append(f"    {i.name}: {_flow(vals)}")
            if i.upstream_ra and not self._ra_rule_ok(vals):
                body.append(
                    f"    # WARNING: RAs on {i.name} are not accepted as configured "
                    f"(forwarding={vals.get('forwarding')}, accept_ra={vals.get('accept_ra')}): "
                    "the upstream_ra rule will fail"
                )
        if body:
            lines += ["  interfaces:", *body]
        if self.vantage == "router":
            v4 = _sysctl("net.ipv4.ip_forward")
            if v4 is not None:
                lines.append(f"  ipv4_forwarding: {v4}")
        if len(lines) == 1:
            return ["sysctl:", "  upstream_ra_rule: check"]
        return lines

    @staticmethod
    def _ra_rule_ok(vals: dict[str, int]) -> bool:
        if vals.get("disable_ipv6") == 1:
            return False
        if vals.get("forwarding") == 1:
            return vals.get("accept_ra") == 2
        return (vals.get("accept_ra") or 0) >= 1

    def section_nd(self) -> list[str]:
        upstream = [i.name for i in self.ifaces.values() if i.upstream_ra]
        if not upstream:
            return []
        if self.ra_listen <= 0:
            return [
                f"# nd: not discovered (run with --ra-listen 4 to solicit RAs on "
                f"{', '.join(upstream)})"
            ]
        if not self.ctx.has_raw:
            return ["# nd: not discovered (soliciting RAs needs root or CAP_NET_RAW)"]
        obs = self.run([RouterAdverts(n) for n in upstream])
        lines: list[str] = []
        comments: list[str] = []
        for name in upstream:
            o = obs[RouterAdverts(name)]
            adverts = o.adverts if isinstance(o, RaObservation) else ()
            if not adverts:
                why = o.error if o.error else f"no RA within {self.ctx.ra_listen}s"
                comments.append(f"    # {name}: {why}")
                continue
            lines.append(f"    {name}:")
            lines.append("      routers:")
            for a in adverts:
                r = {"address": a.router} if _ll(a.router) else {}
                if a.mac:
                    r["mac"] = a.mac.lower()
                lines.append(f"        - {_flow(r)}")
            lines.append(f"      default_router: {_q(any(a.router_lifetime > 0 for a in adverts))}")
            if len({(a.managed, a.other) for a in adverts}) == 1:
                lines.append(f"      managed: {_q(adverts[0].managed)}")
                lines.append(f"      other: {_q(adverts[0].other)}")
            prefixes = {p.prefix: p for a in adverts for p in a.prefixes}
            if prefixes:
                lines.append("      prefixes:")
                for p in prefixes.values():
                    lines.append(
                        f"        - {_flow({'prefix': p.prefix, 'on_link': p.on_link, 'autonomous': p.autonomous})}"
                    )
            rdnss = sorted({s for a in adverts for s in a.rdnss_servers()})
            if rdnss:
                lines.append(f"      rdnss: [{', '.join(_q(s) for s in rdnss)}]")
            dnssl = sorted({d for a in adverts for d in a.dnssl_domains()})
            if dnssl:
                lines.append(f"      dnssl: [{', '.join(_q(d) for d in dnssl)}]")
            mtus = {a.mtu for a in adverts if a.mtu}
            if len(mtus) == 1:
                lines.append(f"      mtu: {mtus.pop()}")
        if not lines:
            return ["# nd: " + c.strip(" #") for c in comments]
        return ["nd:", "  interfaces:", *lines, *comments]

    def section_routes(self) -> list[str]:
        lines = ["routes:"]
        addr_lines = []
        for i in self.ifaces.values():
            if i.role not in ("wan", "lan") or not i.addresses:
                continue
            expect: dict[str, dict[str, Any]] = {}
            for a in i.addresses:
                net = ipaddress.IPv6Network(f"{a.address}/{a.prefixlen}", strict=False)
                if a.has("permanent"):
                    method = "static"
                elif a.prefixlen == 128:
                    method = "dhcpv6"
                else:
                    method = "slaac"
                key = f"{net}"
                e = expect.setdefault(key, {"prefix": key, "method": method})
                if e["method"] != method:
                    e["method"] = "any"
                if a.deprecated:
                    e["deprecated_ok"] = True
            addr_lines.append(f"    {i.name}:")
            addr_lines.append("      expect:")
            addr_lines += [f"        - {_flow(e)}" for e in expect.values()]
        if addr_lines:
            lines += ["  addresses:", *addr_lines]
        defaults = self.routes.defaults() if self.routes else []
        declared = [r for r in defaults if r.dev in self.ifaces]
        if declared:
            lines.append("  default:")
            per_dev: dict[str, int] = {}
            for r in declared:
                per_dev[r.dev or ""] = per_dev.get(r.dev or "", 0) + 1
            for r in declared:
                via = "link-local" if _ll(r.gateway) else (r.gateway or "none")
                d: dict[str, Any] = {
                    "interface": r.dev,
                    "via": via,
                    "proto": "ra" if r.proto == "ra" else "static",
                }
                if per_dev[r.dev or ""] > 1:
                    d["exclusive"] = False
                lines.append(f"    - {_flow(d)}")
        rules = [
            r
            for r in (self.rules.rules if self.rules else ())
            if (r.priority, r.table) not in STANDARD_RULES
            and r.action == "lookup"
            and r.src
            and not r.dst
            and r.fwmark is None
            and not r.iif
            and not r.oif
        ]
        if rules:
            lines.append("  rules:")
            for rule in rules:
                entry = {"from": rule.src, "table": rule.table, "priority": rule.priority}
                lines.append(f"    - {_flow(entry)}")
        return lines if len(lines) > 1 else []

    def section_dns(self) -> list[str]:
        if self.resolvers is None:
            return ["# dns: the resolver configuration could not be read"]
        effective = [s.split("%", 1)[0] for s in self.resolvers.effective]
        v6 = [s for s in effective if _is_v6(s) and not _ll(s)]
        if not v6:
            return [
                f"# dns: no global IPv6 resolver configured (resolv.conf: "
                f"{', '.join(effective) or 'none'})"
            ]
        reqs = [
            DnsQuery(ipaddress.ip_address(s), ".", "SOA", t) for s in v6 for t in ("udp", "tcp")
        ]
        obs = self.run(list(reqs))
        ok = {
            (str(q.server), q.transport)
            for q in reqs
            if isinstance(a := obs[q], DnsAnswer) and a.rcode in ("NOERROR", "NXDOMAIN")
        }
        answering = [
            s for s in v6 if any((str(ipaddress.ip_address(s)), t) in ok for t in ("udp", "tcp"))
        ]
        transports = [
            t
            for t in ("udp", "tcp")
            if all((str(ipaddress.ip_address(s)), t) in ok for s in answering)
        ]
        lines = ["dns:"]
        silent = [s for s in v6 if s not in answering]
        if silent:
            lines.append(f"  # did not answer now, left out: {', '.join(silent)}")
        if not answering or not transports:
            return [f"# dns: resolvers {', '.join(v6)} did not answer a question for '.' now"]
        lines.append(f"  resolvers: [{', '.join(_q(s) for s in answering)}]")
        lines.append(f"  transports: [{', '.join(transports)}]")
        if all(_is_v6(s) for s in effective):
            lines.append(
                f"  host_resolvers: {{require_ipv6: true, expected: "
                f"[{', '.join(_q(s) for s in dict.fromkeys(effective))}]}}"
            )
        else:
            lines.append("  host_resolvers: {require_ipv6: true}")
        lines += [
            "  # decide: names that must resolve, and how, e.g.",
            "  # lookups:",
            '  #   - {name: "www.example.net", type: AAAA, expect: any}',
        ]
        return lines

    def section_ntp(self) -> list[str]:
        configured = _ntp_servers()
        if not configured:
            return ["# ntp: no NTP client configuration found (chrony, ntpd, timesyncd)"]
        usable = []
        for s, _ in configured:
            try:
                addr = ipaddress.ip_address(s)
                if addr.version == 6:
                    usable.append(str(addr))
            except ValueError:
                usable.append(s)
        if not usable:
            return [f"# ntp: only IPv4 servers configured: {', '.join(s for s, _ in configured)}"]
        reqs = [NtpQuery(s) for s in usable]
        obs = self.run(list(reqs))
        good = [
            q.server
            for q in reqs
            if isinstance(a := obs[q], NtpAnswer)
            and a.responded
            and a.stratum is not None
            and 1 <= a.stratum <= 15
            and a.offset is not None
            and abs(a.offset) < 1.0
        ]
        files = ", ".join(sorted({f for _, f in configured}))
        if not good:
            return [
                f"# ntp: configured in {files}, none answered usably over IPv6 now: "
                f"{', '.join(usable)}"
            ]
        lines = ["ntp:", f"  servers: [{', '.join(_q(s) for s in good)}]    # from {files}"]
        bad = [s for s in usable if s not in good]
        if bad:
            lines.append(f"  # did not answer usably now, left out: {', '.join(bad)}")
        return lines

    def section_tunnel(self) -> list[str]:
        tunnels = [i for i in self.ifaces.values() if i.role == "tunnel"]
        if not tunnels:
            return []
        t = tunnels[0]
        lines = ["tunnel:", f"  interface: {t.name}"]
        if t.mtu:
            lines.append(f"  mtu: {t.mtu}")
        if t.addresses:
            lines.append(f"  addresses: [{', '.join(_q(a.address) for a in t.addresses)}]")
        lines += [
            "  # decide: the broker's IPv4 endpoint (underlay), the far end to ping (far_end),",
            "  # whether the default route goes through it (default_route), a path_mtu target",
        ]
        if len(tunnels) > 1:
            lines.append(f"  # more tunnel devices: {', '.join(i.name for i in tunnels[1:])}")
        return lines

    def section_dhcpv6(self) -> list[str]:
        """The delegated prefix this router holds (an unreachable/blackhole route, as DHCPv6-PD
        clients install it) and the LANs numbered from it; a running DHCPv6 client alone gets a
        template, since who may answer is for a person to say."""
        held = [
            r
            for r in (self.routes.routes if self.routes else ())
            if r.type in ("unreachable", "blackhole", "prohibit") and r.dst != "default"
        ]
        delegated = next((r for r in held if r.proto == "dhcp"), held[0] if held else None)
        clients = _dhcpv6_clients()
        if delegated is None and not clients:
            return []
        up = [i.name for i in self.ifaces.values() if i.role == "wan"] or ["wan0"]
        template = [
            "  # decide: the servers allowed to answer upstream (any other is a rogue), what to ask:",
            "  # interfaces:",
            f"  #   {up[0]}:",
            '  #     servers: [{address: "fe80::1", duid: "00:03:00:01:02:00:5e:00:53:01"}]',
            "  #     ia_pd: true",
            f"  #     prefix: {{length: {_plen(delegated.dst) if delegated else 56}}}",
        ]
        why = f"# dhcpv6: DHCPv6 client running ({', '.join(clients)})" if clients else ""
        if delegated is None:
            return [why, "# dhcpv6:", *(f"#{line[1:]}" for line in template)]
        net = ipaddress.IPv6Network(delegated.dst)
        lans = [
            i.name
            for i in self.ifaces.values()
            if i.role == "lan" and any(ipaddress.IPv6Address(a.address) in net for a in i.addresses)
        ]
        lines = [
            "dhcpv6:",
            "  delegated:",
            f"    prefix: {_q(delegated.dst)}    # held as: {delegated.describe()}",
            "    held_by: route",
        ]
        if lans:
            lines.append(f"    lan: [{', '.join(lans)}]    # numbered from it")
        return ([why] if why else []) + lines + template

    def templates(self) -> list[str]:
        vpn = [i.name for i in self.ifaces.values() if i.role == "vpn"]
        public = [i.name for i in self.ifaces.values() if i.role in ("wan", "lan")]
        out = [
            "# --- to decide by a person -------------------------------------------------",
            "# firewall: which hosts and ports must stay closed from outside, which must answer",
            "# firewall:",
            "#   inbound_deny:",
            '#     - {hosts: ["2001:db8:1:1::10"], tcp: [22, 445], deny: any}',
            "#   inbound_allow:",
            '#     - {hosts: ["2001:db8:1:1::80"], tcp: [80, 443]}',
        ]
        if vpn:
            out += [
                "# vpn: which names and prefixes the VPN protects",
                "# vpn:",
                f"#   interfaces: [{', '.join(vpn)}]",
                f"#   public: [{', '.join(public)}]",
                '#   names: ["intranet.example.net"]',
                '#   prefixes: ["2001:db8:10::/64"]',
            ]
        return out


def discover(vantage: str | None = None, ra_listen: float = 0.0) -> str:
    """The starter profile as YAML text with comments; validated before it is returned."""
    d = _Discovery(vantage, ra_listen)
    d.gather()
    sections = [
        d.section_interfaces(),
        d.section_sysctl(),
        d.section_nd() if d.vantage != "outside" else [],
        d.section_routes(),
        d.section_dns(),
        d.section_ntp() if d.vantage != "outside" else [],
        d.section_tunnel(),
        d.section_dhcpv6() if d.vantage == "router" else [],
        d.templates(),
    ]
    head = [
        f"# sixcheck starter profile, discovered on {socket.gethostname()} "
        f"(python -m sixcheck discover{' --vantage ' + vantage if vantage else ''}).",
        "# Everything below is what this node does now: review it, it becomes what must stay true.",
        *(f"# note: {n}" for n in d.notes),
        f"description: {_q(f'{socket.gethostname()} ({d.vantage}), discovered')}",
        "node:",
        f"  role: {d.vantage}",
        f"  hostname: {_q(socket.gethostname())}",
        "timeouts: {probe: 2, ra_listen: 3.5, run: 30}",
    ]
    text = "\n".join(head) + "\n\n" + "\n\n".join("\n".join(s) for s in sections if s) + "\n"
    parse(text, "<discovered profile>")  # a ProfileError here is a bug in discover
    return text
