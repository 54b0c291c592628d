"""`modelship monitor NAME`: whether the inputs a deployment now gets still look like the
rows its model was proven on (issue 24), per column, in traffic-light words.

Only the rendering: the report is the core's (:mod:`app.run.monitor`,
:mod:`app.monitor.drift`), as the dashboard's "Data drift" tab reads it. The exit code
says the level: 1 for drift, 0 otherwise (ok, watch, or too few rows to judge).
"""

from __future__ import annotations

import argparse
import time

from app.cli.commands._console import print_json


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of minutes above 0 (e.g. --since 60 for the last hour)"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--since",
        type=_minutes,
        metavar="MINUTES",
        help="only requests captured in the last MINUTES (default: all that are kept)",
    )


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "?"


def run(args: argparse.Namespace) -> int:
    from app.run.monitor import deployment_drift
    from app.store.records import load_record

    record = load_record(args.name)
    report = deployment_drift(record, args.since)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{record.name}  [{record.target}]  version {record.current_version}")
        print(
            f"    {report.requests} captured requests, {_when(report.first_t)} to "
            f"{_when(report.last_t)}"
        )
        for line in report.lines():
            print(line)
        preds = report.predictions
        if preds is not None and len(preds.hours) > 1:
            print("  answers per hour:")
            for h in preds.hours[-12:]:
                top = ", ".join(f"{k} {round(v * 100)}%" for k, v in list(h.shares.items())[:4])
                print(f"    {_when(h.t)}  {h.rows:>6} rows  {top}")
    return 1 if report.level == "drift" else 0
