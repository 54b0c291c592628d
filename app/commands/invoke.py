"""`modelship invoke NAME --csv rows.csv | --json rows.json`: predictions from a deployment.

Goes through the deployment's own client (bearer key from the keyring, pinned
certificate, SageMaker's signed InvokeEndpoint), so it works the same on every target.
Predictions go to stdout: CSV for CSV in, JSON for JSON in. With ``-o OUT`` a CSV is
scored in chunks (``app.batch``) and OUT holds its rows with their predictions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the deployment")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--csv", type=Path, help="a CSV file with a header row")
    what.add_argument("--json", type=Path, help="a JSON file: a list of rows or records")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="with --csv: write the rows with their predictions to this CSV file",
    )


def run(args: argparse.Namespace) -> int:
    from app.endpoint import EndpointError, EndpointUnreachable
    from app.errors import TargetError, UsageError
    from app.profile import Profile
    from app.records import load_record
    from targets import get_target

    record = load_record(args.name)
    endpoint = record.endpoint_obj()
    if endpoint is None:
        raise TargetError(f"{record.name!r} has no live endpoint.", "Deploy it again.")
    path: Path = args.csv or args.json
    if getattr(args, "output", None) is not None:
        if not args.csv:
            raise UsageError("-o goes with --csv.", "Give the rows as a CSV file.")
        from app.batch import model_columns, score_csv
        from app.commands._console import ConsoleProgress

        profile = Profile.model_validate(record.profile)
        client = get_target(endpoint.target).client(endpoint, profile)
        result = score_csv(
            client,
            args.csv,
            args.output,
            columns=model_columns(record),
            progress=ConsoleProgress(),
        )
        print(f"Scored {result.rows} rows into {result.path}")
        return 0
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.", "Check the file name.") from None
    client = get_target(endpoint.target).client(endpoint, Profile.model_validate(record.profile))
    try:
        if args.csv:
            sys.stdout.write(client.predict_csv(data))
            return 0
        try:
            rows = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} is not JSON: {exc}.", "Give a list of rows.") from None
        if not isinstance(rows, list):
            raise UsageError(f"{path} holds no list of rows.", "Give [[...], ...] or [{...}].")
        print(json.dumps(client.predict(rows), indent=2))
    except EndpointError as exc:
        raise TargetError(
            f"The endpoint answered {exc.status}: {exc.body[:300]}",
            "Check the rows: column names and types must fit the model.",
        ) from None
    except EndpointUnreachable as exc:
        raise TargetError(
            f"{record.name!r} did not answer: {exc}", f"Check `modelship status {record.name}`."
        ) from None
    return 0
