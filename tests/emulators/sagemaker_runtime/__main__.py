"""``python -m tests.emulators.sagemaker_runtime --port P --moto-url URL``.

For tests of the packaged executable: the emulator as its own process. Point
``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` at
``http://127.0.0.1:P`` and ``AWS_ENDPOINT_URL`` at moto. On exit (SIGINT/SIGTERM) it
removes every container it started and every image it pulled.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .emulator import Emulator
from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.sagemaker_runtime")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--moto-url", required=True, help="moto server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--startup-timeout", type=float, default=240.0, help="seconds to healthy")
    parser.add_argument("--invocation-timeout", type=float, default=60.0)
    parser.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="AKID:SECRET",
        help="verify SigV4 signatures of this key pair (repeatable)",
    )
    args = parser.parse_args(argv)
    creds = dict(c.split(":", 1) for c in args.credential)
    emulator = Emulator(
        args.moto_url,
        startup_timeout_s=args.startup_timeout,
        invocation_timeout_s=args.invocation_timeout,
        credentials=creds,
    )
    server = EmulatorServer(emulator, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"SageMaker emulator on {server.url} (moto at {emulator.moto_url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
