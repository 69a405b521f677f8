"""The lab's matrix makes a site report per scenario, and its top site cause is the fault's.

One fault scenario (the gateway's forwarding off: failures on three vantages) through the real
matrix code path: every lab profile run in its node, the runs merged into one site report.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from sixcheck.lab import Lab, matrix

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: run as root"),
]


def test_matrix_writes_the_site_report_and_judges_it(tmp_path: Path) -> None:
    result = matrix.run(
        Lab(f"s{os.getpid()}"), only=["forwarding-off"], out=io.StringIO(), site_dir=tmp_path
    )
    (row,) = result.scenarios
    assert row.site["diagnosed"] is True, row.site
    assert row.site["top"]["vantage"] == "lab-gw"
    assert {"lab-lan", "lab-out"} <= set(row.site["top"]["vantages"])
    site = json.loads((tmp_path / "forwarding-off" / "site.json").read_text())
    assert site["schema"] == "sixcheck-site/1"
    # every vantage links its own HTML report, copied beside the site report
    for v in site["vantages"]:
        assert v["report"], v
        assert (tmp_path / "forwarding-off" / v["report"]).is_file()
    assert result.to_json()["forwarding-off"]["site"]["diagnosed"] is True
