"""``python -m app.serving [serve] [MODEL.onnx] [--host H] [--port P] [--workers N]``.

The entry point of every image. SageMaker starts a container as ``IMAGE serve``, so
a first word ``serve`` is accepted and ignored. Everything else comes from
``MODELSHIP_*`` variables (see app/serving/config.py); the API key only ever from
``$MODELSHIP_API_KEY``, never from an argument (arguments show up in ``ps``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app.serving.config import ConfigError, from_env
from app.serving.server import EXIT_CANNOT_SERVE, StartError, serve


def add_arguments(parser: argparse.ArgumentParser, *, host_default: str | None = None) -> None:
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL.onnx",
        help="the ONNX model (default: $MODELSHIP_MODEL, else /opt/modelship/model/model.onnx); "
        "its MODEL.signature.json is read when present",
    )
    parser.add_argument(
        "--host",
        default=host_default,
        help="address to listen on (default: $MODELSHIP_HOST, else 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: $PORT, else 8080; 0 = any free)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: $MODELSHIP_WORKERS, else the CPUs this container may use)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] == "serve":
        args_in = args_in[1:]
    parser = argparse.ArgumentParser(
        prog="python -m app.serving", description="Serve an ONNX model over HTTP."
    )
    add_arguments(parser)
    args = parser.parse_args(args_in)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = from_env(args.model, args.host, args.port, args.workers)
        return serve(config)
    except (ConfigError, StartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_SERVE


if __name__ == "__main__":
    sys.exit(main())
