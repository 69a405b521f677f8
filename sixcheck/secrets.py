"""Secrets stay out of reports: every secret value loaded from a profile is registered here, and
everything sixcheck writes (JSON, HTML, JUnit, terminal failure text, Prometheus labels) passes
through `redact` first.

Why a registry rather than only a redacting type: a probe has to use the real value (a TSIG key
signs an update, a password logs in), and once it is a plain string it can end up anywhere, in an
error message from a library, in a captured log line, in an assert message. Replacing the known
values in the final text is the one place that catches all of them.
"""

from __future__ import annotations

import threading
from typing import Any

#: What a secret is replaced with in reports.
MASK = "<redacted>"
#: Secrets shorter than this are refused when the profile loads: replacing a two-letter string
#: everywhere in a report would mangle it, and not replacing it would leak it.
MIN_LENGTH = 6

_lock = threading.Lock()
_known: set[str] = set()


def register(value: str) -> None:
    """Remember a secret's value so that every report scrubs it."""
    if not value:
        return
    with _lock:
        _known.add(value)


def known() -> bool:
    """True when this process holds any secret (the scrubbing then has work to do)."""
    return bool(_known)


def forget_all() -> None:
    """Drop every registered value (tests; a long-lived process loading another profile)."""
    with _lock:
        _known.clear()


def redact(text: str) -> str:
    """Replace every registered secret in `text` with the mask; longest first so that a secret
    containing another is not left half-visible."""
    if not _known or not text:
        return text
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, MASK)
    return text


def redact_obj(obj: Any) -> Any:
    """`redact` applied to every string (keys included) inside JSON-like data."""
    if not _known:
        return obj
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj
