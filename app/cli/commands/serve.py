"""``modelship serve MODEL.onnx``: the serving runtime as a plain local process.

The same server that runs inside every image (app/serving), so what works here works
in a container. Binds 127.0.0.1 unless told otherwise: a model is not put on the
network by accident.
"""

from __future__ import annotations

import argparse

from app.errors import ModelError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from app.serving.__main__ import add_arguments as serving_arguments

    serving_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from app.serving.config import ConfigError, from_env
    from app.serving.server import StartError, serve

    try:
        config = from_env(args.model, args.host, args.port, args.workers)
    except ConfigError as exc:
        raise UsageError(str(exc), "Fix the value and run again.") from None
    if not config.model.is_file():
        raise UsageError(
            f"There is no model file at {config.model}.",
            "Give the path of a .onnx file: modelship serve MODEL.onnx "
            "(convert one first with: modelship convert MODEL).",
        )
    try:
        return serve(config)
    except StartError as exc:
        text = str(exc)
        if "listen" in text:
            raise UsageError(text, "Choose a free port with --port.") from None
        raise ModelError(text, "Check the model file, or convert it again.") from None
