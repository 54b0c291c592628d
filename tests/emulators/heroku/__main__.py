"""Run the emulator as a process: ``python -m tests.emulators.heroku --port P ...``.

Why: the packaged executable's tests drive ModelShip out of process and need the
emulator at a fixed address; they inject faults through ``/__emulator__/``. On SIGTERM
or Ctrl-C it removes every container and pulled image it made, and its registry.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .emulator import HerokuEmulator
from .model import RELEASE_SHAPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.heroku")
    parser.add_argument("--port", type=int, default=0, help="Platform API port (0: any free)")
    parser.add_argument(
        "--registry-port", type=int, default=0, help="docker-registry's own port (behind the proxy)"
    )
    parser.add_argument("--api-key", action="append", dest="api_keys", required=True)
    parser.add_argument("--boot-timeout", type=float, default=60.0)
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--rate-limit", type=int, default=4500)
    parser.add_argument(
        "--release-shape",
        choices=RELEASE_SHAPES,
        default="artifacts",
        help="how releases name their image (see HerokuEmulator)",
    )
    args = parser.parse_args(argv)
    emulator = HerokuEmulator(
        api_keys=args.api_keys,
        port=args.port,
        registry_port=args.registry_port,
        boot_timeout=args.boot_timeout,
        request_timeout=args.request_timeout,
        rate_limit=args.rate_limit,
        release_shape=args.release_shape,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    emulator.start()
    try:
        # One JSON line on stdout tells the parent where everything is.
        print(
            json.dumps(
                {
                    "api_url": emulator.api_url,
                    "registry": emulator.registry,
                    "api_key": emulator.api_key,
                    "instance": emulator.instance,
                }
            ),
            flush=True,
        )
        while not done.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
