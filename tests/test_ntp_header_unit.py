"""sixcheck's struct-based NTP header (issue 15: no scapy import per run) reads and writes what
scapy's NTP layer does."""

from __future__ import annotations

import time

from sixcheck.probes.ntp import NTP_EPOCH_OFFSET, NtpHeader


def test_request_bytes_are_scapys() -> None:
    from scapy.layers.ntp import NTPHeader

    t = time.time() + NTP_EPOCH_OFFSET
    ours = NtpHeader.request(t)
    theirs = NTPHeader(leap=0, version=4, mode=3, stratum=0, poll=0, precision=0, sent=t)
    assert NtpHeader(ours).getfieldval("sent") == NTPHeader(bytes(theirs)).getfieldval("sent")
    assert ours[:1] == bytes(theirs)[:1]  # LI 0, VN 4, mode 3
    assert len(ours) == 48


def test_reply_fields_read_as_scapy_reads_them() -> None:
    from scapy.layers.ntp import NTPHeader

    now = time.time() + NTP_EPOCH_OFFSET
    raw = bytes(
        NTPHeader(
            leap=3, mode=4, stratum=2, poll=-6, precision=-20, delay=0.5, dispersion=0.25,
            id="192.0.2.1", ref=now - 30, orig=now - 1, recv=now, sent=now + 0.001,
        )
    )  # fmt: skip
    ours, theirs = NtpHeader(raw), NTPHeader(raw)
    for name in ("leap", "version", "mode", "stratum", "poll", "precision"):
        assert getattr(ours, name) == int(getattr(theirs, name)), name
    for name in ("delay", "dispersion", "ref", "orig", "recv", "sent"):
        assert ours.getfieldval(name) == int(theirs.getfieldval(name)), name
    assert bytes(ours) == raw
