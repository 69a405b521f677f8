"""DHCPv6 on the wire: a Solicit (or Information-Request) from an interface's link-local address
to ff02::1:2, and every Advertise (or Reply) that comes back during a window.

Why it is read-only: a Solicit without Rapid Commit makes servers *offer* (Advertise) and allocate
nothing; only a Request would take a lease, and this probe never sends one. Why on the wire: what a
host's DHCPv6 client made of the answers can look right while a second (rogue) server answers too,
or while the server answers and this node's own firewall throws the answer away. The reply to a
multicast Solicit comes from the server's link-local address, so conntrack never saw its flow: a
ruleset that accepts only RELATED,ESTABLISHED rejects it. The probe captures on a packet socket,
which sees the answer before the firewall, and also sees the ICMPv6 error this node sends back when
its firewall rejects the answer (or when no client listens on port 546): both are recorded.

Decoding is a small TLV walk over the UDP payload rather than scapy's dissector, so that a
malformed option becomes a named problem in the observation instead of an opaque Raw layer. What is
sent is built by `struct` too, and framed and filtered by `ndwire` (the nd probe's packet-socket
helpers): importing scapy's DHCP6 and inet6 layers cost ~0.2 s and ~45 MiB per run (issue 15),
more than the exchange itself. Tests cross-check both directions against scapy.

The window is adaptive, as the RA window is: an exchange ends SETTLE_TIME after its send once every
server the profile lists has answered and no unlisted server was heard; otherwise it listens the
whole `window` (see `_Listening`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from . import ndwire
from .base import Fields, Observation, ProbeContext, ProbeFailed, ProbeRequest, Threshold

# The request lives apart (pytest's collection imports only it); this module answers it.
from .dhcpv6_requests import DEFAULT_ORO, Dhcpv6Exchange

ALL_DHCP_AGENTS = "ff02::1:2"
ALL_DHCP_AGENTS_MAC = "33:33:00:01:00:02"
CLIENT_PORT = 546
SERVER_PORT = 547
ETH_P_IPV6 = ndwire.ETH_P_IPV6
PACKET_OUTGOING = ndwire.PACKET_OUTGOING
#: A flood of answers must not grow the observation without bound.
MAX_REPLIES = 64
#: Deadline of the preparation (netlink, the packet socket: slow only on a loaded machine), kept
#: apart from the answer window.
PREPARE_TIMEOUT = 10.0
#: How long after the send an exchange keeps listening once every listed server has answered.
#:
#: RFC 8415 has no server-side delay: a server answers a Solicit or Information-Request at once
#: (18.3.1, 18.3.6), and a relay forwards at once (19.1, 19.2), unlike a router's random delay of
#: up to MAX_RA_DELAY_TIME before a solicited RA (RFC 4861 10, 6.2.6). What an answer waits for
#: is transit and the server's processing: under a millisecond for the lab's Kea (perfdhcp's own
#: measure, benchmarks/RESULTS.md), tens of milliseconds for a relayed, database-backed server.
#: 0.5 s covers that many times over, is half of what a real client itself collects Advertises
#: for before it picks a server (the first retransmission time, SOL_TIMEOUT = 1 s, RFC 8415 7.6,
#: 18.2.1), and equals the RA window's MAX_RA_DELAY_TIME, so a profile with nd checks too pays
#: nothing for it (both windows run at once). A rogue server that answers later than this after
#: the listed ones is missed by the early close; `dhcpv6.listen_whole_window` keeps listening.
SETTLE_TIME = 0.5
#: An early close also waits this long after the last answer: this node's own ICMPv6 error about
#: that answer (its firewall's reject, `local_response`) is captured right after the answer.
LOCAL_GRACE = 0.05

MSG_SOLICIT, MSG_ADVERTISE, MSG_REPLY, MSG_INFORMATION_REQUEST = 1, 2, 7, 11
MESSAGES = {1: "solicit", 2: "advertise", 3: "request", 7: "reply", 11: "information-request"}

OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR = 1, 2, 3, 5
OPT_ORO, OPT_PREFERENCE, OPT_ELAPSED, OPT_STATUS = 6, 7, 8, 13
OPT_RAPID_COMMIT, OPT_USER_CLASS = 14, 15
OPT_DNS, OPT_DOMAINS, OPT_IA_PD, OPT_IAPREFIX = 23, 24, 25, 26
OPT_SNTP, OPT_NTP, OPT_BOOTFILE_URL, OPT_BOOTFILE_PARAM = 31, 56, 59, 60
OPT_CLIENT_ARCH, OPT_INFO_REFRESH = 61, 82

STATUS_NAMES = {
    0: "Success",
    1: "UnspecFail",
    2: "NoAddrsAvail",
    3: "NoBinding",
    4: "NotOnLink",
    5: "UseMulticast",
    6: "NoPrefixAvail",
}
#: IAIDs of the probe's own IAs ("sx" + 1/2): distinct from what a real client on the node uses.
IAID_NA = 0x73780001
IAID_PD = 0x73780002
_DUID_NAMESPACE = uuid.UUID("5e3c6b0e-6c1d-4d55-9a2f-7369786368b6")


# ------------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class Status:
    """A Status Code option: `NoPrefixAvail (6): no prefixes available`."""

    code: int
    name: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        text = f"{self.name} ({self.code})"
        return f"{text}: {self.message!r}" if self.message else text


@dataclass(frozen=True, kw_only=True)
class Lease:
    """One offered address (IAADDR) or prefix (IAPREFIX, written PREFIX/LEN)."""

    value: str
    preferred_lifetime: int
    valid_lifetime: int
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class IaOffer:
    """One IA_NA or IA_PD in an answer: its timers, what it offers, or why it offers nothing."""

    kind: str  # "IA_NA" | "IA_PD"
    iaid: int
    t1: int
    t2: int
    leases: tuple[Lease, ...] = ()
    status: Status | None = None

    def usable(self) -> tuple[Lease, ...]:
        return tuple(x for x in self.leases if x.status is None or x.status.ok)

    def failure(self) -> Status | None:
        """The status that explains an IA without anything usable in it, if the server gave one."""
        if self.status is not None and not self.status.ok:
            return self.status
        if not self.usable():
            bad = [x.status for x in self.leases if x.status is not None and not x.status.ok]
            return bad[0] if bad else None
        return None


@dataclass(frozen=True, kw_only=True)
class Dhcpv6Reply:
    """One decoded Advertise or Reply: who sent it and everything sixcheck knows in it."""

    message: str  # advertise | reply | other message names
    server: str  # IPv6 source address (a link-local address unless relayed)
    mac: str | None = None
    server_duid: str | None = None  # hex bytes joined by ':'
    echoes_client_id: bool = False
    at: float = 0.0  # seconds after the first message was sent
    preference: int | None = None
    status: Status | None = None  # message-level status code
    ias: tuple[IaOffer, ...] = ()
    dns_servers: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    ntp_servers: tuple[str, ...] = ()  # option 56: addresses, multicast groups and names
    sntp_servers: tuple[str, ...] = ()
    bootfile_url: str | None = None
    bootfile_params: tuple[str, ...] = ()
    info_refresh: int | None = None
    other_options: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()  # malformed parts, each named
    #: what this node sent back when the answer reached its kernel: an ICMPv6 error such as
    #: "admin-prohibited" (its firewall rejected the answer) or "port-unreachable" (the answer
    #: passed the firewall and no client listens on port 546); None: nothing was sent back
    local_response: str | None = None
    count: int = 1  # identical answers from this server during the window (retransmissions)

    def ia(self, kind: str) -> list[IaOffer]:
        return [i for i in self.ias if i.kind == kind]

    def addresses(self) -> list[Lease]:
        return [x for i in self.ia("IA_NA") for x in i.usable()]

    def prefixes(self) -> list[Lease]:
        return [x for i in self.ia("IA_PD") for x in i.usable()]

    def label(self) -> str:
        duid = f" (DUID {self.server_duid})" if self.server_duid else ""
        return f"{self.server}{duid}"


@dataclass(frozen=True, kw_only=True)
class Dhcpv6Observation(Observation):
    """What one exchange on one interface saw: every answer to our transaction in the window."""

    family: str = "ipv6"
    interface: str
    message: str = "solicit"  # what was sent: solicit | information-request
    source: str | None = None  # the link-local address it was sent from
    mac: str | None = None
    client_duid: str | None = None
    transaction_id: str | None = None
    asked: tuple[str, ...] = ()  # IA_NA, IA_PD, ORO ..., client-arch 7, user-class iPXE
    sent: int = 0
    window: float = 0.0
    replies: tuple[Dhcpv6Reply, ...] = ()
    other_transactions: int = 0  # DHCPv6 answers to other clients seen meanwhile
    dropped: int = 0  # answers beyond MAX_REPLIES
    #: whether something on this node listens on UDP port 546 (a DHCPv6 client), read from
    #: /proc/net/udp6: explains a missing port-unreachable
    client_port_bound: bool | None = None
    listened: float = 0.0  # seconds it did listen: `window`, or less when it closed early
    #: why listening stopped: "listed servers answered" (early, SETTLE_TIME after the send) or
    #: "window elapsed: ..." with the reason it stayed open
    stopped: str = ""

    compared: ClassVar[Fields] = Fields(
        stable=(
            "error",
            "interface",
            "message",
            "source",
            "replies.{server,server_duid,message}",
            "replies.status.name",
            "replies.ias.{kind,status}",
            "replies.ias.leases.{value,status}",
            "replies.ias.leases.valid_lifetime",
            "replies.dns_servers",
            "replies.domains",
            "replies.ntp_servers",
            "replies.sntp_servers",
            "replies.bootfile_url",
            "replies.bootfile_params",
            "replies.problems",
            "replies.local_response",
        ),
        volatile=(
            "transaction_id",
            "sent",
            "window",
            "other_transactions",
            "dropped",
            "client_port_bound",
            "listened",
            "stopped",
            "replies.at",
            "replies.count",
            "replies.ias.t1",
            "replies.ias.t2",
            "replies.ias.leases.preferred_lifetime",
        ),
        thresholds={"replies.ias.leases.valid_lifetime": Threshold(limits=(0,))},
    )

    def servers(self) -> list[str]:
        return list(dict.fromkeys(r.label() for r in self.replies))


# ------------------------------------------------------------------------------- decoding


def _hex(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _options(data: bytes, where: str, problems: list[str]) -> list[tuple[int, bytes]]:
    """Walk DHCPv6 options (code, length, value); a truncated option ends the walk, named."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            problems.append(f"{where}: {len(data) - pos} stray byte(s) after the last option")
            break
        code, length = struct.unpack_from("!HH", data, pos)
        if pos + 4 + length > len(data):
            problems.append(
                f"{where}: option {code} at byte {pos} claims {length} bytes, only "
                f"{len(data) - pos - 4} left (truncated or malformed)"
            )
            break
        out.append((code, data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out


def _status(value: bytes, where: str, problems: list[str]) -> Status | None:
    if len(value) < 2:
        problems.append(f"{where}: status code option of {len(value)} bytes (needs 2)")
        return None
    code = struct.unpack_from("!H", value)[0]
    msg = value[2:].decode("utf-8", errors="replace")
    return Status(code=code, name=STATUS_NAMES.get(code, f"status-{code}"), message=msg)


def _addresses(value: bytes, what: str, problems: list[str]) -> tuple[str, ...]:
    if len(value) % 16:
        problems.append(f"{what}: {len(value)} bytes is not a list of IPv6 addresses")
        value = value[: len(value) - len(value) % 16]
    return tuple(str(ipaddress.IPv6Address(value[i : i + 16])) for i in range(0, len(value), 16))


def _names(value: bytes, what: str, problems: list[str]) -> tuple[str, ...]:
    """DNS names in wire format, uncompressed (RFC 8415 10), as dotted text without the root dot."""
    names: list[str] = []
    labels: list[str] = []
    pos = 0
    while pos < len(value):
        n = value[pos]
        if n == 0:
            names.append(".".join(labels).lower())
            labels = []
            pos += 1
            continue
        if n > 63 or pos + 1 + n > len(value):
            problems.append(f"{what}: malformed name at byte {pos}")
            return tuple(names)
        labels.append(value[pos + 1 : pos + 1 + n].decode("ascii", errors="replace"))
        pos += 1 + n
    if labels:  # a partial name (no root label): RFC 8415 allows it; keep it as written
        names.append(".".join(labels).lower())
    return tuple(names)


def _ia(code: int, value: bytes, problems: list[str]) -> IaOffer | None:
    kind = "IA_NA" if code == OPT_IA_NA else "IA_PD"
    if len(value) < 12:
        problems.append(f"{kind}: {len(value)} bytes, shorter than its 12-byte header")
        return None
    iaid, t1, t2 = struct.unpack_from("!III", value)
    leases: list[Lease] = []
    status = None
    where = f"{kind} {iaid:#x}"
    for sub, sval in _options(value[12:], where, problems):
        if sub == OPT_STATUS:
            status = _status(sval, where, problems)
        elif sub == OPT_IAADDR and kind == "IA_NA":
            if len(sval) < 24:
                problems.append(f"{where}: IAADDR of {len(sval)} bytes (needs 24)")
                continue
            pref, valid = struct.unpack_from("!II", sval, 16)
            leases.append(_lease(str(ipaddress.IPv6Address(sval[:16])), pref, valid, sval[24:]))
        elif sub == OPT_IAPREFIX and kind == "IA_PD":
            if len(sval) < 25:
                problems.append(f"{where}: IAPREFIX of {len(sval)} bytes (needs 25)")
                continue
            pref, valid, plen = struct.unpack_from("!IIB", sval)
            if plen > 128:
                problems.append(f"{where}: prefix length {plen} is more than 128")
                continue
            net = ipaddress.IPv6Network((ipaddress.IPv6Address(sval[9:25]), plen), strict=False)
            leases.append(_lease(str(net), pref, valid, sval[25:]))
    return IaOffer(kind=kind, iaid=iaid, t1=t1, t2=t2, leases=tuple(leases), status=status)


def _lease(value: str, pref: int, valid: int, subopts: bytes) -> Lease:
    problems: list[str] = []
    status = None
    for code, sval in _options(subopts, value, problems):
        if code == OPT_STATUS:
            status = _status(sval, value, problems)
    return Lease(value=value, preferred_lifetime=pref, valid_lifetime=valid, status=status)


def _ntp(value: bytes, problems: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for sub, sval in _options(value, "NTP server option", problems):
        if sub in (1, 2):  # server address, multicast address
            out.extend(_addresses(sval, "NTP server address", problems))
        elif sub == 3:
            out.extend(_names(sval, "NTP server name", problems))
    return tuple(out)


def decode_message(
    payload: bytes, *, server: str = "", mac: str | None = None, client_duid: bytes | None = None
) -> tuple[int | None, Dhcpv6Reply]:
    """Decode a DHCPv6 message (the UDP payload): (transaction id, reply). Never raises: what
    cannot be read is listed in `problems`, so a malformed answer is a clear failure, not a crash."""
    problems: list[str] = []
    if len(payload) < 4:
        problems.append(f"DHCPv6 message of {len(payload)} bytes, shorter than its header")
        return None, Dhcpv6Reply(
            message="truncated", server=server, mac=mac, problems=tuple(problems)
        )
    mtype = payload[0]
    xid = int.from_bytes(payload[1:4], "big")
    fields: dict[str, Any] = {}
    ias: list[IaOffer] = []
    other: list[int] = []
    for code, value in _options(payload[4:], "message", problems):
        try:
            if code == OPT_SERVERID:
                fields["server_duid"] = _hex(value)
            elif code == OPT_CLIENTID:
                fields["echoes_client_id"] = client_duid is not None and value == client_duid
            elif code in (OPT_IA_NA, OPT_IA_PD):
                ia = _ia(code, value, problems)
                if ia is not None:
                    ias.append(ia)
            elif code == OPT_STATUS:
                fields["status"] = _status(value, "message", problems)
            elif code == OPT_PREFERENCE:
                if len(value) == 1:
                    fields["preference"] = value[0]
                else:
                    problems.append(f"preference option of {len(value)} bytes (needs 1)")
            elif code == OPT_DNS:
                fields["dns_servers"] = _addresses(value, "DNS servers option", problems)
            elif code == OPT_DOMAINS:
                fields["domains"] = _names(value, "domain list option", problems)
            elif code == OPT_SNTP:
                fields["sntp_servers"] = _addresses(value, "SNTP servers option", problems)
            elif code == OPT_NTP:
                fields["ntp_servers"] = fields.get("ntp_servers", ()) + _ntp(value, problems)
            elif code == OPT_BOOTFILE_URL:
                fields["bootfile_url"] = value.decode("utf-8", errors="replace")
            elif code == OPT_BOOTFILE_PARAM:
                fields["bootfile_params"] = _params(value, problems)
            elif code == OPT_INFO_REFRESH:
                if len(value) == 4:
                    fields["info_refresh"] = struct.unpack("!I", value)[0]
                else:
                    problems.append(f"information refresh time of {len(value)} bytes (needs 4)")
            else:
                other.append(code)
        except (ValueError, struct.error, IndexError) as exc:  # belt and braces: never crash
            problems.append(f"option {code}: {exc}")
    reply = Dhcpv6Reply(
        message=MESSAGES.get(mtype, f"type-{mtype}"),
        server=server,
        mac=mac,
        ias=tuple(ias),
        other_options=tuple(other),
        problems=tuple(problems),
        **fields,
    )
    return xid, reply


def _params(value: bytes, problems: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    pos = 0
    while pos + 2 <= len(value):
        n = struct.unpack_from("!H", value, pos)[0]
        if pos + 2 + n > len(value):
            problems.append("boot file parameters option: truncated parameter")
            break
        out.append(value[pos + 2 : pos + 2 + n].decode("utf-8", errors="replace"))
        pos += 2 + n
    return tuple(out)


def merge_replies(replies: Sequence[Dhcpv6Reply]) -> tuple[Dhcpv6Reply, ...]:
    """One entry per server and content: a retransmitted Solicit is answered twice."""
    out: dict[Any, Dhcpv6Reply] = {}
    for r in replies:
        key = replace(r, at=0.0, count=1, local_response=None)
        if key in out:
            seen = out[key]
            out[key] = replace(
                seen, count=seen.count + 1, local_response=seen.local_response or r.local_response
            )
        else:
            out[key] = r
    return tuple(out.values())


# ------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class _Frame:
    outgoing: bool
    src_mac: str
    src: str
    dst: str
    next_header: int
    l4: bytes


def _parse_frame(data: bytes, pkttype: int) -> _Frame | None:
    if len(data) < 14 + 40 or struct.unpack_from("!H", data, 12)[0] != ETH_P_IPV6:
        return None
    ip = data[14:]
    plen = struct.unpack_from("!H", ip, 4)[0]
    return _Frame(
        outgoing=pkttype == PACKET_OUTGOING,
        src_mac=_hex(data[6:12]),
        src=str(ipaddress.IPv6Address(ip[8:24])),
        dst=str(ipaddress.IPv6Address(ip[24:40])),
        next_header=ip[6],
        l4=ip[40 : 40 + plen],
    )


def _icmp_about(frame: _Frame) -> tuple[str, bytes] | None:
    """An ICMPv6 error this node sent about a DHCPv6 answer: (name, the quoted DHCPv6 payload)."""
    from .sockio import ICMP6_UNREACH_CODES

    l4 = frame.l4
    if frame.next_header != 58 or len(l4) < 8 + 48 or l4[0] != 1:
        return None
    quoted = l4[8:]
    if quoted[6] != 17 or struct.unpack_from("!H", quoted, 42)[0] != CLIENT_PORT:
        return None
    return ICMP6_UNREACH_CODES.get(l4[1], f"unreachable-code-{l4[1]}"), quoted[48:]


def client_port_bound() -> bool | None:
    """Whether a socket on this node (its network namespace) is bound to UDP port 546."""
    try:
        with open("/proc/net/udp6", encoding="ascii") as fh:
            lines = fh.readlines()[1:]
    except OSError:
        return None
    return any(line.split()[1].endswith(f":{CLIENT_PORT:04X}") for line in lines if line.strip())


def probe_duid(mac: str) -> bytes:
    """The probe's own DUID (DUID-UUID, RFC 6355): stable per interface, never a real client's."""
    return b"\x00\x04" + uuid.uuid5(_DUID_NAMESPACE, mac.lower()).bytes


def build_message(
    *,
    information: bool,
    xid: int,
    duid: bytes,
    elapsed_cs: int = 0,
    ia_na: bool = False,
    ia_pd: bool = False,
    oro: Sequence[int] = DEFAULT_ORO,
    client_arch: int | None = None,
    user_class: str | None = None,
) -> bytes:
    """The DHCPv6 payload the probe sends (RFC 8415 16, 21): never Rapid Commit, so a server
    only offers. Options in the order scapy's DHCP6 layers put them (tests compare bytes)."""

    def opt(code: int, value: bytes) -> bytes:
        return struct.pack("!HH", code, len(value)) + value

    mtype = MSG_INFORMATION_REQUEST if information else MSG_SOLICIT
    msg = bytes([mtype]) + (xid & 0xFFFFFF).to_bytes(3, "big")
    msg += opt(OPT_CLIENTID, duid)
    msg += opt(OPT_ELAPSED, struct.pack("!H", min(elapsed_cs, 0xFFFF)))
    msg += opt(OPT_ORO, b"".join(struct.pack("!H", o) for o in oro))
    if ia_na and not information:
        msg += opt(OPT_IA_NA, struct.pack("!III", IAID_NA, 0, 0))
    if ia_pd and not information:
        msg += opt(OPT_IA_PD, struct.pack("!III", IAID_PD, 0, 0))
    if client_arch is not None:
        msg += opt(OPT_CLIENT_ARCH, struct.pack("!H", client_arch))
    if user_class is not None:
        data = user_class.encode()
        msg += opt(OPT_USER_CLASS, struct.pack("!H", len(data)) + data)
    return msg


def _frame(mac: str, src: str, payload: bytes) -> bytes:
    return ndwire.udp_frame(
        mac, ALL_DHCP_AGENTS_MAC, src, ALL_DHCP_AGENTS, CLIENT_PORT, SERVER_PORT, payload
    )


# ------------------------------------------------------------------------------- probe


async def exchange_batch(
    requests: Sequence[ProbeRequest[Any]], ctx: ProbeContext
) -> dict[ProbeRequest[Any], Observation]:
    """Answer a batch of Dhcpv6Exchange (see `dhcpv6_requests`): all interfaces at once."""
    import asyncio

    reqs = [r for r in requests if isinstance(r, Dhcpv6Exchange)]
    results = await asyncio.gather(
        *(exchange_async(r, prepare_timeout=max(PREPARE_TIMEOUT, ctx.probe_timeout)) for r in reqs),
        return_exceptions=True,
    )
    out: dict[ProbeRequest[Any], Observation] = {}
    for req, res in zip(reqs, results, strict=True):
        if isinstance(res, BaseException):
            what = (
                "did not finish"
                if isinstance(res, TimeoutError)
                else f"{type(res).__name__}: {res}"
            )
            out[req] = ProbeFailed(error=f"DHCPv6 probe on {req.interface}: {what}")
        else:
            out[req] = res
    return out


def _open(iface: str) -> socket.socket:
    """A packet socket on `iface` that sees DHCPv6 answers to clients and ICMPv6 errors, in both
    directions (this node's own ICMPv6 errors are how a firewall's reject shows)."""
    return ndwire.udp_or_icmp6_error_socket(iface, CLIENT_PORT)


def exchange(req: Dhcpv6Exchange) -> Dhcpv6Observation:
    """One exchange outside a probe plan (benchmarks, scripts): see `exchange_async`."""
    import asyncio

    return asyncio.run(exchange_async(req))


@dataclass
class _Prepared:
    base: Dhcpv6Observation
    sock: socket.socket | None = None
    duid: bytes = b""
    xid: int = 0
    mac: str = ""
    ll: str = ""
    first: bytes = b""


def _prepare(req: Dhcpv6Exchange) -> _Prepared:
    """The blocking part (netlink, the packet socket): run in a thread."""
    iface = req.interface
    kind = "information-request" if req.information else "solicit"
    link = ndwire.sending_link(iface)  # not netlink: the Solicit must not wait for pyroute2
    ll = link.link_local if link else None
    base = Dhcpv6Observation(interface=iface, message=kind, asked=req.asked(), window=req.window)
    if link is None:
        return _Prepared(replace(base, error=f"interface {iface} does not exist on this node"))
    if not link.up:
        return _Prepared(replace(base, mac=link.mac, error=f"interface {iface} is down"))
    if not link.mac:
        why = f"{iface} has no link-layer address: the DHCPv6 probe sends Ethernet frames only"
        return _Prepared(replace(base, error=why))
    mac = link.mac.lower()
    if not ll:
        why = f"{iface} has no usable link-local address to send DHCPv6 from"
        return _Prepared(replace(base, mac=mac, error=why))
    duid = probe_duid(mac)
    xid = int.from_bytes(os.urandom(3), "big")
    base = replace(
        base,
        source=ll,
        mac=mac,
        client_duid=_hex(duid),
        transaction_id=f"{xid:06x}",
        client_port_bound=client_port_bound(),
    )
    first = _message(req, duid, xid, mac, ll, 0)
    try:
        sock = _open(iface)
    except OSError as exc:
        why = f"cannot open a packet socket on {iface}: {exc.strerror or exc}"
        return _Prepared(replace(base, error=why))
    return _Prepared(base, sock, duid, xid, mac, ll, first)


async def exchange_async(
    req: Dhcpv6Exchange, prepare_timeout: float = PREPARE_TIMEOUT
) -> Dhcpv6Observation:
    """Send the message from `req.interface`'s link-local address and collect answers.

    The window is awaited on the event loop, not in a thread: probes that share the loop's
    thread pool (DNS, netlink) must not queue behind a DHCPv6 window. The preparation has its
    own deadline, so a slow start (netlink on a loaded machine) never eats the window.
    """
    import asyncio

    prep = await asyncio.wait_for(asyncio.to_thread(_prepare, req), timeout=prepare_timeout)
    if prep.sock is None:
        return prep.base
    try:
        run = _run(req, prep.sock, prep.base, prep.duid, prep.xid, prep.mac, prep.ll, prep.first)
        return await asyncio.wait_for(run, timeout=req.window + 1.0)
    finally:
        prep.sock.close()


def _message(req: Dhcpv6Exchange, duid: bytes, xid: int, mac: str, ll: str, elapsed: int) -> bytes:
    payload = build_message(
        information=req.information,
        xid=xid,
        duid=duid,
        elapsed_cs=elapsed,
        ia_na=req.ia_na,
        ia_pd=req.ia_pd,
        oro=req.oro,
        client_arch=req.client_arch,
        user_class=req.user_class,
    )
    return _frame(mac, ll, payload)


class _Collector:
    """Sorts what the packet socket sees: answers to our transaction, answers to other clients,
    and this node's ICMPv6 errors about an answer (pinned to that answer)."""

    def __init__(self, duid: bytes, xid: int, start: float) -> None:
        self.duid, self.xid, self.start = duid, xid, start
        self.seen: list[Dhcpv6Reply] = []
        self.answers: dict[bytes, int] = {}  # answer payload -> index in seen
        self.others = self.dropped = 0

    def feed(self, data: bytes, pkttype: int) -> Dhcpv6Reply | None:
        """Take one captured frame; the answer to our transaction it carried, if it did."""
        frame = _parse_frame(data, pkttype)
        if frame is None:
            return None
        about = _icmp_about(frame) if frame.outgoing else None
        if about is not None:
            name, quoted = about
            idx = next(
                (i for p, i in self.answers.items() if quoted and p.startswith(quoted)), None
            )
            if idx is not None and self.seen[idx].local_response is None:
                self.seen[idx] = replace(self.seen[idx], local_response=name)
            return None
        if frame.outgoing or frame.next_header != 17 or len(frame.l4) < 8:
            return None
        sport, dport = struct.unpack_from("!HH", frame.l4)
        if dport != CLIENT_PORT:
            return None
        payload = frame.l4[8:]
        got_xid, reply = decode_message(
            payload, server=frame.src, mac=frame.src_mac, client_duid=self.duid
        )
        if got_xid != self.xid:
            self.others += 1
            return None
        if len(self.seen) >= MAX_REPLIES:
            self.dropped += 1
            return reply
        if sport != SERVER_PORT:
            reply = replace(
                reply, problems=(*reply.problems, f"sent from UDP port {sport}, not 547")
            )
        self.answers[payload] = len(self.seen)
        self.seen.append(replace(reply, at=round(time.monotonic() - self.start, 4)))
        return reply


class _Listening:
    """When an exchange may stop listening: the DHCPv6 counterpart of nd's adaptive RA window.

    It closes SETTLE_TIME after the send (and LOCAL_GRACE after the last answer) once every
    listed server has answered and nobody else did. It stays open the whole window while a listed
    server is missing (it may yet answer the retransmission), once a stranger answered (there may
    be more of them: hear them all), with `whole_window`, and when no server is listed.
    """

    def __init__(self, req: Dhcpv6Exchange, start: float) -> None:
        self.servers = req.servers
        self.start = start
        self.deadline = start + req.window
        self.missing = set(range(len(req.servers)))
        self.stranger = False
        self.last = start
        self.why_full = (
            "listen_whole_window"
            if req.whole_window
            else ("no servers listed" if not req.servers else "")
        )

    def heard(self, reply: Dhcpv6Reply, at: float) -> None:
        self.last = at
        idx = self.listed(reply.server, reply.server_duid)
        if idx is None:
            self.stranger = True
        else:
            self.missing.discard(idx)

    def listed(self, address: str, duid: str | None) -> int | None:
        """Index of the listed server `address`/`duid` is, None for an unlisted one."""
        addr = ipaddress.IPv6Address(address)
        for i, (want_addr, want_duid) in enumerate(self.servers):
            if want_addr is not None and addr != ipaddress.IPv6Address(want_addr):
                continue
            if want_duid is not None and (duid or "").lower() != want_duid.lower():
                continue
            return i
        return None

    def close_at(self) -> float:
        """When listening ends, as far as is known now."""
        if self.why_full or self.missing or self.stranger:
            return self.deadline
        return min(self.deadline, max(self.start + SETTLE_TIME, self.last + LOCAL_GRACE))

    def stopped(self) -> str:
        """Why listening stopped, for the evidence (as nd's `stopped`)."""
        if self.why_full:
            return f"window elapsed: {self.why_full}"
        if self.stranger:
            return "window elapsed: an unlisted server answered"
        if self.missing:
            return "window elapsed: a listed server did not answer"
        if self.close_at() < self.deadline:
            return "listed servers answered"
        return "window elapsed: the listed servers answered only near its end"


async def _run(
    req: Dhcpv6Exchange,
    sock: socket.socket,
    base: Dhcpv6Observation,
    duid: bytes,
    xid: int,
    mac: str,
    ll: str,
    first: bytes | None = None,
) -> Dhcpv6Observation:
    from .sockio import wait_readable

    first = first or _message(req, duid, xid, mac, ll, 0)
    sock.setblocking(False)
    start = time.monotonic()
    try:
        sock.send(first)
    except OSError as exc:
        return replace(base, error=f"could not send the {base.message} on {req.interface}: {exc}")
    sent = 1
    # one retransmission after a client's first retransmission time (RFC 8415: IRT 1 s)
    retransmit_at = start + min(1.0, req.window / 2)
    got = _Collector(duid, xid, start)
    listen = _Listening(req, start)
    while (now := time.monotonic()) < (close_at := listen.close_at()):
        if sent == 1 and not got.seen and now >= retransmit_at:
            with contextlib.suppress(OSError):
                sock.send(_message(req, duid, xid, mac, ll, int((now - start) * 100)))
                sent = 2
        wait_until = close_at if sent > 1 or got.seen else min(close_at, retransmit_at)
        if not await wait_readable(sock, max(0.0, wait_until - now)):
            continue
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            reply = got.feed(data, addr[2])
            if reply is not None:
                listen.heard(reply, time.monotonic())
    return replace(
        base,
        sent=sent,
        replies=merge_replies(got.seen),
        other_transactions=got.others,
        dropped=got.dropped,
        listened=round(time.monotonic() - start, 3),
        stopped=listen.stopped(),
    )
