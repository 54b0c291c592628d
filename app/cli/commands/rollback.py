"""`modelship rollback NAME`: serve the version before the current one again."""

from __future__ import annotations

import argparse

from app.cli.commands._console import ConsoleProgress
from app.cli.commands.deploy import cancel_on_interrupt, print_result
from app.progress import CancelToken


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment to roll back")
    parser.add_argument("--json", action="store_true", help="print the deployment record as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show logs")


def run(args: argparse.Namespace) -> int:
    from app.run import ProgressEvents, run_rollback

    progress = ConsoleProgress(verbose=args.verbose)
    cancel = CancelToken()
    with cancel_on_interrupt(cancel, progress):
        record = run_rollback(args.name, on_event=ProgressEvents(progress), cancel=cancel)
    print_result(record, as_json=args.json, verb="Rolled back")
    return 0
