"""A tiny NTP server that lies in one chosen way (the ntp-skewed, ntp-kiss and ntp-stale faults).

Run as a standalone script inside the lab's ``inet`` namespace. It answers every client-mode
(3) request with a well-formed server-mode (4) reply, stratum 2 and no leap warning, so only the
check made for the lie notices: ``--skew`` (its clock is off: the offset check), ``--ref-age``
(it last set its clock that long ago while still claiming to be synchronised: the stale check),
``--kiss CODE`` (it answers every request with a Kiss-o'-Death, as ntpd's rate limiting does:
leap 3, stratum 0, the code as refid, the client's transmit timestamp echoed). It never sets
any clock.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def ntp_timestamp(unix: float) -> bytes:
    """64-bit NTP timestamp (seconds since 1900, 32.32 fixed point)."""
    secs = unix + NTP_EPOCH_OFFSET
    whole = int(secs)
    frac = int((secs - whole) * 2**32) & 0xFFFFFFFF
    return struct.pack("!II", whole & 0xFFFFFFFF, frac)


def reply(
    request: bytes, skew: float, ref_age: float = 16.0, kiss: str | None = None
) -> bytes | None:
    """The server reply to ``request``, or None if it is not an NTP client request."""
    if len(request) < 48:
        return None
    version = (request[0] >> 3) & 0x7
    mode = request[0] & 0x7
    if mode != 3:
        return None
    if kiss is not None:
        first = (3 << 6) | (version << 3) | 4  # LI=3 (alarm), VN as asked, mode 4
        code = kiss.encode("ascii").ljust(4, b"\0")[:4]
        header = struct.pack("!BBbbII4s", first, 0, request[2], -20, 0, 0, code)
        echo = request[40:48]  # origin, receive and transmit: the client's own timestamp
        return header + bytes(8) + echo * 3
    now = time.time() + skew
    first = (0 << 6) | (version << 3) | 4  # LI=0, VN as asked, mode 4 (server)
    header = struct.pack(
        "!BBbbII4s", first, 2, request[2], -20, 0, 1 << 12, socket.inet_aton("192.0.2.1")
    )
    return header + ntp_timestamp(now - ref_age) + request[40:48] + ntp_timestamp(now) * 2


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=123)
    parser.add_argument("--skew", type=float, default=300.0)
    parser.add_argument("--ref-age", type=float, default=16.0, help="reference time age (s)")
    parser.add_argument("--kiss", help="answer every request with this Kiss-o'-Death code")
    args = parser.parse_args()
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    print(
        f"ntpliar: serving on [{args.bind}]:{args.port} with skew {args.skew:+.0f}s, reference "
        f"age {args.ref_age:.0f}s, kiss {args.kiss or 'none'}",
        flush=True,
    )
    while True:
        data, peer = sock.recvfrom(512)
        answer = reply(data, args.skew, args.ref_age, args.kiss)
        if answer is not None:
            sock.sendto(answer, peer)


if __name__ == "__main__":
    main()
