"""`modelship stop NAME`: stop a deployment without removing it (local, docker)."""

from __future__ import annotations

import argparse

from app.cli.commands._console import ConsoleProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment to stop")


def run(args: argparse.Namespace) -> int:
    from app.run.power import stop_deployment

    stop_deployment(args.name, ConsoleProgress())
    print(f"Stopped {args.name!r}. Start it again with: modelship start {args.name}")
    return 0
