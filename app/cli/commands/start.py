"""`modelship start NAME`: start a stopped deployment again and wait until it answers."""

from __future__ import annotations

import argparse

from app.cli.commands._console import ConsoleProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment to start")


def run(args: argparse.Namespace) -> int:
    from app.run.power import start_deployment

    record = start_deployment(args.name, ConsoleProgress())
    print(f"Started {args.name!r}: it answers at {record.url}")
    return 0
