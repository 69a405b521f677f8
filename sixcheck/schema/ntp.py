"""Area `ntp`: profile section (to be filled by the area's issue)."""

from __future__ import annotations

from .base import Strict


class NtpArea(Strict):
    """`ntp:` section. No keys yet: any key is reported as unknown."""
