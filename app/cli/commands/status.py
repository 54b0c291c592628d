"""`modelship status [NAME]`: deployments, and whether each one answers right now.

Only the rendering: the rows (the live check through the target's own client) are the
core's, :mod:`app.run.status`, as the dashboard and the wizard read them. With a NAME
the exit code says it: 0 when it answers, 1 when it does not. Torn-down deployments are
history: ``--all`` lists them too, marked removed (and a NAME that was removed says so).
"""

from __future__ import annotations

import argparse

from app.cli.commands._console import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one deployment (default: all)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.add_argument(
        "--all", action="store_true", help="also list removed (torn-down) deployments"
    )


def run(args: argparse.Namespace) -> int:
    from app.run.status import interrupted, removed_count, statuses

    rows = statuses(args.name, include_removed=getattr(args, "all", False))
    leftovers = interrupted(args.name)
    if args.json:
        print_json(rows if not args.name else rows[0])
    elif not rows and not leftovers:
        print("No deployments. Deploy one with: modelship deploy MODEL")
    else:
        for row in rows:
            print(f"{row['name']}  [{row['target']}]  version {row['version']}  {row['state']}")
            if row["removed"]:
                print(f"    removed: {row['removed_at']}  ({row['message']})")
                continue
            print(f"    url:    {row['url']}")
            print(f"    detail: {row['detail']}")
            if row["smoke"]:
                print(f"    smoke:  {row['smoke']}")
            if row["cost"]:
                print(f"    cost:   {row['cost']}")
    if not args.name and not getattr(args, "all", False) and not args.json:
        gone = removed_count()
        if gone:
            print(f"({gone} removed deployment(s) not shown: modelship status --all)")
    for name in leftovers:
        print(
            f"note: an interrupted deploy of {name!r} may have left resources behind; "
            f"remove them with: modelship teardown {name}",
            file=__import__("sys").stderr,
        )
    if args.name:
        return 0 if rows[0]["answering"] else 1
    return 0
