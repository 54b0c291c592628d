"""`modelship invoke NAME --csv rows.csv | --json rows.json`: predictions from a deployment.

Goes through the deployment's own client (bearer key from the keyring, pinned
certificate, SageMaker's signed InvokeEndpoint), so it works the same on every target.
Predictions go to stdout: CSV for CSV in, JSON for JSON in. With ``-o OUT`` OUT holds
the file's rows with their predictions. Either way a CSV is scored in chunks
(``app.endpoint.batch``) with only the columns the model takes (the others, e.g. an ID or the
label, are named on stderr), and a column the model needs but the file lacks is named
before anything is sent.
"""

from __future__ import annotations

import argparse
import csv
import io
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
    from app.endpoint.batch import (
        dropped_words,
        fit_columns,
        model_columns,
        predict_chunks,
        read_table,
    )
    from app.endpoint.client import EndpointError, EndpointUnreachable, error_words
    from app.errors import TargetError, UsageError
    from app.run import deployment_client

    path: Path = args.csv or args.json
    if getattr(args, "output", None) is not None and not args.csv:
        raise UsageError("-o goes with --csv.", "Give the rows as a CSV file.")
    record, client = deployment_client(args.name)
    if args.csv:
        # the same columns are sent with or without -o: those the model takes (an ID or
        # the label in the file is left out and named); a missing one stops us first
        columns = model_columns(record)
        if args.output is not None:
            from app.cli.commands._console import ConsoleProgress
            from app.endpoint.batch import score_csv

            result = score_csv(
                client,
                args.csv,
                args.output,
                columns=columns,
                progress=ConsoleProgress(),
                name=record.name,
            )
            print(f"Scored {result.rows} rows into {result.path}")
            return 0
        header, rows = read_table(args.csv)
        send, dropped = fit_columns(header, columns)
        if dropped:
            print(dropped_words(dropped), file=sys.stderr)
        first = True
        for _, head, predicted in predict_chunks(client, header, rows, send, name=record.name):
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(
                [head, *predicted] if first else predicted
            )
            sys.stdout.write(out.getvalue())
            first = False
        return 0
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.", "Check the file name.") from None
    try:
        rows_in = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc}.", "Give a list of rows.") from None
    if not isinstance(rows_in, list):
        raise UsageError(f"{path} holds no list of rows.", "Give [[...], ...] or [{...}].")
    try:
        print(json.dumps(client.predict(rows_in), indent=2))
    except EndpointError as exc:
        raise TargetError(
            f"The model did not score the rows: {error_words(exc)}",
            "Check the rows: column names and kinds of value must fit the model.",
        ) from None
    except EndpointUnreachable as exc:
        from app.endpoint.batch import unreachable_error

        raise unreachable_error(record.name, exc) from None
    return 0
