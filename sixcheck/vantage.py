"""Where a run stood: the node's name, kernel and IPv6 addresses, recorded in every report.

A report handed to someone else must say which box it was made on and what that box had, or its
findings cannot be checked against the site.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Vantage:
    hostname: str
    kernel: str
    interfaces: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def read_vantage() -> Vantage:
    """Read the vantage via netlink; never fails (an error is recorded instead)."""
    uname = os.uname()
    try:
        from .probes.netlink import ip_route

        with ip_route() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            addrs: dict[str, list[str]] = {n: [] for n in names.values()}
            for a in ipr.get_addr(family=socket.AF_INET6):
                name = names.get(a["index"], str(a["index"]))
                addrs.setdefault(name, []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        return Vantage(socket.gethostname(), uname.release, addrs)
    except Exception as exc:  # the report header must never break a run
        return Vantage(socket.gethostname(), uname.release, {}, f"cannot read interfaces: {exc}")
