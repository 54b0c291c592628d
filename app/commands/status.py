"""`modelship status [NAME]`: deployments, and whether each one answers right now.

"Answers" is checked live through the target's own client (``GET /ping``, a pinned
certificate, SageMaker's signed call), not read from the record. With a NAME the exit
code says it: 0 when it answers, 1 when it does not. Torn-down deployments are history:
``--all`` lists them too, marked removed (and a NAME that was removed says so).
"""

from __future__ import annotations

import argparse
from typing import Any

from app.commands._console import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one deployment (default: all)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.add_argument(
        "--all", action="store_true", help="also list removed (torn-down) deployments"
    )


def deployment_status(record: Any) -> dict[str, Any]:
    """A record plus its live state: is it running, does it answer /ping."""
    from app.endpoint import EndpointError, EndpointUnreachable
    from app.errors import ModelShipError
    from targets import get_target

    cost = ""
    try:
        target = get_target(record.target)
        ts = target.status(record)
        running, detail, cost = ts.running, ts.detail, ts.cost
    except ModelShipError as exc:
        running, detail = False, exc.message
    answering = False
    endpoint = record.endpoint_obj()
    if endpoint is not None:
        try:
            from app.profile import Profile

            profile = Profile.model_validate(record.profile)
            answering = target.client(endpoint, profile).ping(timeout=5.0)
        except (EndpointError, EndpointUnreachable, ModelShipError, ValueError):
            answering = False
    if answering:
        state = "answering"
    elif running:
        state = "running, not answering"
    elif record.state == "stopped":
        state = f"stopped by you (start it again: modelship start {record.name})"
    else:
        state = "stopped"
    if record.state == "failed":
        state += " (kept after a failed smoke test)"
    return {
        "name": record.name,
        "target": record.target,
        "url": record.url,
        "version": record.current_version,
        "versions": [v["version"] for v in record.versions],
        "answering": answering,
        "running": running,
        "state": state,
        "detail": detail,
        "smoke": (record.smoke or {}).get("summary"),
        "cost": cost,
        "created": record.created,
        "updated": record.updated,
        "message": record.message,
        "removed": False,
        "stopped_at": record.stopped_at,
    }


def removed_status(record: Any) -> dict[str, Any]:
    """A torn-down deployment, from its history record (nothing is asked live)."""
    return {
        "name": record.name,
        "target": record.target,
        "url": None,
        "version": record.current_version,
        "versions": [v["version"] for v in record.versions],
        "answering": False,
        "running": False,
        "state": "removed",
        "detail": f"removed {record.removed_at}",
        "smoke": None,
        "cost": "",
        "created": record.created,
        "updated": record.updated,
        "message": record.message,
        "removed": True,
        "removed_at": record.removed_at,
    }


def run(args: argparse.Namespace) -> int:
    from app.journal import open_journals
    from app.records import find_record, find_removed, list_records, list_removed, load_record

    gone = find_removed(args.name) if args.name and find_record(args.name) is None else None
    if gone is not None:
        rows = [removed_status(gone)]
    else:
        records = [load_record(args.name)] if args.name else list_records()
        rows = [deployment_status(r) for r in records]
        if getattr(args, "all", False) and not args.name:
            rows += [removed_status(r) for r in list_removed()]
    leftovers = sorted({j.name for j in open_journals(args.name) if find_record(j.name) is None})
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
        gone = len(list_removed())
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
