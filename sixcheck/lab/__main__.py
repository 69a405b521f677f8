"""``python -m sixcheck.lab``: see sixcheck/lab/README.md."""

from __future__ import annotations

import sys

from sixcheck.lab.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # `... faults | head`: the reader left, nothing to report
    sys.stderr.close()
    sys.exit(1)
