"""`modelship trust MODEL` / `modelship trust --python PATH`: trust kept on this computer.

What a profile cannot decide for the person at this computer: that a model file which
refers to code ModelShip does not know may be loaded, or that a Python interpreter
other than ModelShip's own may run. Both are recorded in the local trust store
(:mod:`app.store.trust`): a model file by its SHA-256, an interpreter by its path and hash.
"""

from __future__ import annotations

import argparse

from app.cli.commands._console import print_json
from app.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="a model file (or MLflow model folder) you made or trust: loading it may run its code",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="a Python interpreter of yours that may convert models (e.g. the training "
        "environment's bin/python)",
    )
    parser.add_argument(
        "--remove", action="store_true", help="take back the trust given to MODEL / --python"
    )
    parser.add_argument("--list", action="store_true", help="list what is trusted here")
    parser.add_argument("--json", action="store_true", help="with --list: print as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.store import trust

    if args.list:
        models = trust.trusted_models()
        pythons = trust.trusted_pythons()
        if args.json:
            print_json({"models": models, "pythons": pythons})
            return 0
        if not models and not pythons:
            print("Nothing is trusted on this computer yet.")
        for digest, entry in sorted(models.items(), key=lambda kv: str(kv[1].get("name"))):
            print(f"model   {entry.get('name', '?')}  sha256:{digest}")
        for path in sorted(pythons):
            print(f"python  {path}")
        return 0
    if not args.model and not args.python:
        raise UsageError(
            "Say what to trust.",
            "modelship trust MODEL (a model file), or modelship trust --python PATH.",
        )
    if args.model:
        path = Path(args.model).expanduser()
        if not path.exists():
            raise UsageError(f"No such file: {path}", "Give the model file's path.")
        if args.remove:
            gone = trust.forget_model(path)
            print(f"{path.name} is {'no longer' if gone else 'not'} trusted on this computer.")
        else:
            digest = trust.trust_model(path)
            print(
                f"Trusted {path.name} (sha256:{digest[:12]}…) on this computer: convert and "
                "deploy load this exact file; a changed file is asked about again."
            )
    if args.python:
        if args.remove:
            gone = trust.forget_python(args.python)
            print(f"{args.python} is {'no longer' if gone else 'not'} trusted on this computer.")
        else:
            where = trust.trust_python(args.python)
            print(
                f"Trusted the Python interpreter {where} on this computer (while that program "
                "stays the same)."
            )
    return 0
