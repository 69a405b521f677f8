"""A tiny NTP server whose clock is off by a fixed number of seconds (the ntp-skewed fault).

Run as a standalone script inside the lab's ``inet`` namespace. It answers every client-mode
(3) request with a well-formed server-mode (4) reply, stratum 2 and no leap warning, so only a
check that compares the server's time with the local clock notices: a server that lies is the
failure an offset check exists for. It never sets any clock.
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


def reply(request: bytes, skew: float) -> bytes | None:
    """The server reply to ``request``, or None if it is not an NTP client request."""
    if len(request) < 48:
        return None
    version = (request[0] >> 3) & 0x7
    mode = request[0] & 0x7
    if mode != 3:
        return None
    now = time.time() + skew
    first = (0 << 6) | (version << 3) | 4  # LI=0, VN as asked, mode 4 (server)
    header = struct.pack(
        "!BBbbII4s", first, 2, request[2], -20, 0, 1 << 12, socket.inet_aton("192.0.2.1")
    )
    return header + ntp_timestamp(now - 16) + request[40:48] + ntp_timestamp(now) * 2


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=123)
    parser.add_argument("--skew", type=float, default=300.0)
    args = parser.parse_args()
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((args.bind, args.port))
    print(f"ntpliar: serving on [{args.bind}]:{args.port} with skew {args.skew:+.0f}s", flush=True)
    while True:
        data, peer = sock.recvfrom(512)
        answer = reply(data, args.skew)
        if answer is not None:
            sock.sendto(answer, peer)


if __name__ == "__main__":
    main()
