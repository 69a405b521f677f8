"""Root conftest: the sixcheck plugin is also an installed pytest11 entry point; this line makes a
plain checkout (PYTHONPATH=.) work the same way."""

import importlib.util

if importlib.util.find_spec("sixcheck") is not None:
    import sys

    if "sixcheck.plugin" not in sys.modules:
        pytest_plugins = ["sixcheck.plugin"]
