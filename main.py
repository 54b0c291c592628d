"""ModelShip entry point: the wizard by default, `modelship <command>` headless."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
