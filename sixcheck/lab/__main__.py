"""``python -m sixcheck.lab``: see sixcheck/lab/README.md."""

from __future__ import annotations

import sys

from sixcheck.lab.cli import main

sys.exit(main())
