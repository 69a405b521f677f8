"""The fault matrix: healthy passes, every fault is detected (or still pending its checks).

Slow (it builds the site once per scenario); run it with ``-m slow`` or as part of the full
suite. The table is printed so CI logs show it.
"""

from __future__ import annotations

import io
import os

import pytest

from sixcheck.lab import Lab, matrix

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root"),
]


def test_fault_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    buf = io.StringIO()
    result = matrix.run(Lab(f"m{os.getpid()}"), out=buf)
    with capsys.disabled():
        print("\n" + result.table())
    assert not result.problems(), "\n".join(result.problems())
