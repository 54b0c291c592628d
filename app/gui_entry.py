"""Opening the wizard from the core without importing Qt at module level.

The core must not import Qt (see the import-linter contract); this function imports
the wizard only when a person runs ``modelship`` with no command. It says clearly
what is wrong if no display is available or the GUI cannot start.
"""

from __future__ import annotations

import importlib
import sys


def open_wizard() -> int:
    try:
        wizard_app = importlib.import_module("wizards.app")
    except ModuleNotFoundError as exc:
        print(f"error: the wizard is not available ({exc}).", file=sys.stderr)
        print("  next step: use a command instead, see `modelship --help`.", file=sys.stderr)
        return 2
    return int(wizard_app.run())
