"""`modelship teardown NAME`: remove a deployment and everything it created."""

from __future__ import annotations

import argparse

from app.cli.commands._console import ConsoleProgress, print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment to remove")
    parser.add_argument("--json", action="store_true", help="print what was removed as JSON")


def run(args: argparse.Namespace) -> int:
    from app.run import ProgressEvents, teardown
    from app.run.teardown import already_removed
    from app.store.records import removed_words

    gone = already_removed(args.name)
    if gone is not None:  # a second teardown: say so, and when (nothing to do is no error)
        if args.json:
            print_json({"name": args.name, "removed": [], "removed_at": gone.removed_at})
        else:
            print(f"{removed_words(gone, already=True)}; nothing of it is left to remove.")
        return 0
    removed = teardown(args.name, on_event=ProgressEvents(ConsoleProgress()))
    if args.json:
        print_json({"name": args.name, "removed": removed})
    elif removed:
        print(f"Removed {args.name!r}: " + "; ".join(removed) + ".")
    else:
        print(f"Removed {args.name!r} (nothing of it was still running).")
    return 0
