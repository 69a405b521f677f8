"""The `Secret` profile type: a value that is needed to probe but must never reach a report.

A profile never holds a secret itself (profiles are shared, checked in, attached to tickets); it
names where the secret is:

    tsig_key: {env: DDNS_TSIG_KEY}          # an environment variable
    password: {file: /etc/sixcheck/broker}  # a file (its content, surrounding whitespace removed)

The value is read when the profile is loaded, so a missing variable or unreadable file is a profile
error (exit 4) before anything is probed. It is registered with `sixcheck.secrets`, which scrubs it
from every report, and `str()`/`repr()` of a `SecretValue` show only where it came from. A probe
calls `reveal()` to use it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from .. import secrets
from .model import Before

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: A secret file is a key or a password, not a data dump.
MAX_FILE_BYTES = 64 * 1024


class SecretValue:
    """A secret loaded from the environment or a file; prints as where it came from."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source
        secrets.register(value)

    def reveal(self) -> str:
        """The real value, for the probe that needs it; never put it in an observation."""
        return self._value

    def __str__(self) -> str:
        return f"{secrets.MASK} ({self.source})"

    def __repr__(self) -> str:
        return f"SecretValue({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self.source))

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self  # immutable; dataclasses.asdict deep-copies fields


def load_secret(value: Any) -> SecretValue:
    """Validate `{env: NAME}` / `{file: PATH}` and read the secret; errors say what to write."""
    if isinstance(value, SecretValue):
        return value
    if isinstance(value, str):
        raise ValueError(
            "a secret is never written into a profile: name where it is, "
            "{env: VARIABLE} or {file: /path/to/file}"
        )
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("env", "file"):
        raise ValueError(f"expected {{env: VARIABLE}} or {{file: /path/to/file}}, got {value!r}")
    kind, where = next(iter(value.items()))
    if not isinstance(where, str) or not where.strip():
        raise ValueError(f"{kind}: expected a non-empty string, got {where!r}")
    if kind == "env":
        if not _ENV_NAME.match(where):
            raise ValueError(f"{where!r} is not an environment variable name")
        text = os.environ.get(where)
        if text is None:
            raise ValueError(f"environment variable {where} is not set (it holds this secret)")
        source = f"env {where}"
    else:
        path = Path(where)
        try:
            raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
        except FileNotFoundError:
            raise ValueError(f"secret file {where} does not exist") from None
        except OSError as exc:
            raise ValueError(f"cannot read secret file {where}: {exc.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"secret file {where} is larger than {MAX_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"secret file {where} is not UTF-8 text") from None
        source = f"file {where}"
    text = text.strip()
    if not text:
        raise ValueError(f"the secret from {source} is empty")
    if len(text) < secrets.MIN_LENGTH:
        raise ValueError(
            f"the secret from {source} is shorter than {secrets.MIN_LENGTH} characters: "
            "too short to be redacted reliably from reports"
        )
    return SecretValue(text, source)


#: Use as a field type in an area's schema: `tsig_key: Secret`.
Secret = Annotated[SecretValue, Before(load_secret)]
