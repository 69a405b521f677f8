"""The sixcheck site lab: a real IPv6 site built from Debian daemons inside network namespaces.

The lab exists to prove the checks right: it builds a healthy site, injects faults modelled on
the field write-ups in ``SCENARIOS.md``, and runs the lab profiles against each (the matrix).
Nothing in ``checks/`` or the rest of ``sixcheck/`` may import this package: checks never know
they are in a lab.

``Lab`` is imported lazily so that ``sixcheck.lab.netns`` stays usable on its own (the plugin's
tests need only the namespace helpers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sixcheck.lab.site import Lab

__all__ = ["Lab"]


def __getattr__(name: str) -> Any:
    """Import ``Lab`` on first use; the site module pulls in more than the netns helpers need."""
    if name == "Lab":
        from sixcheck.lab.site import Lab

        return Lab
    raise AttributeError(name)
