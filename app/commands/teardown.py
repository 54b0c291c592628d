"""`modelship teardown NAME`: remove a deployment and everything it created."""

from __future__ import annotations

import argparse

from app.commands._console import ConsoleProgress, print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment to remove")
    parser.add_argument("--json", action="store_true", help="print what was removed as JSON")


def run(args: argparse.Namespace) -> int:
    from app.run import ProgressEvents, teardown

    removed = teardown(args.name, on_event=ProgressEvents(ConsoleProgress()))
    if args.json:
        print_json({"name": args.name, "removed": removed})
    elif removed:
        print(f"Removed {args.name!r}: " + "; ".join(removed) + ".")
    else:
        print(f"Removed {args.name!r} (nothing of it was still running).")
    return 0
