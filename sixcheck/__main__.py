"""`python -m sixcheck`: the same as the `sixcheck` command (`sixcheck.cli`)."""

from __future__ import annotations

from .cli import entry, main

__all__ = ["main"]

if __name__ == "__main__":
    entry()
