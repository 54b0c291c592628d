"""`modelship logs NAME`: the deployment's last log lines, from wherever it runs."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment")
    parser.add_argument("-n", "--lines", type=int, default=100, help="how many lines (100)")


def run(args: argparse.Namespace) -> int:
    from app.store.records import load_record
    from targets import get_target

    record = load_record(args.name)
    text = get_target(record.target).logs(record, max(1, args.lines))
    if text:
        print(text)
    else:
        print(f"{record.name!r} has no logs to show on {get_target(record.target).title}.")
    return 0
