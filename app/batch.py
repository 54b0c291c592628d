"""Batch scoring: a CSV of rows in, a CSV of the same rows with predictions out.

The rows go to the deployment in chunks through its own client (bearer key, pinned
certificate, SageMaker's signed call), so a large file never becomes one huge request
and progress and cancelling work between chunks. The output holds every input column,
then the endpoint's answer for that row (``prediction`` and, for classifiers, one
``probability_<class>`` column per class), in the input's order. Columns the model
does not take (an ID, the true label) stay in the output but are not sent, when the
model's columns are known (its signature file). It is written to a
temporary file and renamed at the end: a cancelled or failed run leaves no half file.

Plain function with a progress/cancel pair (the Orange3 pattern), used by the wizard's
"Score a file" and by ``modelship invoke NAME --csv IN -o OUT``.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import TargetError, UsageError
from app.progress import CancelToken, NullProgress, Progress

CHUNK_ROWS = 500  # rows per request: well under the server's limit and 6 MB (SageMaker)


@dataclass
class BatchResult:
    path: Path  # the predictions CSV
    rows: int  # rows scored
    columns: list[str]  # the output's header


def default_output(source: Path) -> Path:
    """``rows.csv`` -> ``rows.predictions.csv`` next to it."""
    return source.with_name(f"{source.stem}.predictions.csv")


def model_columns(record: Any) -> list[str] | None:
    """The input columns of the deployment's current model (its signature file), or
    None when unknown (a tensor model, files already pruned)."""
    import json

    version = record.version() if record is not None else None
    if version is None:
        return None
    try:
        data = json.loads(version.converted().signature_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = [str(c.get("name")) for c in data.get("columns") or [] if isinstance(c, dict)]
    return names or None


def read_table(source: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the (non-empty) rows of a CSV file."""
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"Cannot read {source}: {exc.strerror}.", "Check the file.") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text.", "Save it as CSV (UTF-8).") from None
    try:
        table = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    except csv.Error as exc:
        raise UsageError(f"{source} cannot be read as CSV: {exc}.", "Check the file.") from None
    if len(table) < 2:
        raise UsageError(
            f"{source} has no rows to score.", "Give a CSV with a header row and data rows."
        )
    return table[0], table[1:]


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def score_csv(
    client: Any,
    source: Path,
    output: Path | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    columns: list[str] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> BatchResult:
    """Score every row of ``source`` through ``client`` (an ``EndpointClient``).

    With ``columns`` (the model's, see :func:`model_columns`), only those are sent when
    the file has them all; the others are written back unchanged.

    Raises Cancelled (between chunks), UsageError for an unreadable file, TargetError
    when the endpoint refuses a chunk (with the rows it was at).
    """
    from app.endpoint import EndpointError, EndpointUnreachable

    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    output = output or default_output(source)
    header, rows = read_table(source)
    total = len(rows)
    head_index = {c.strip(): i for i, c in enumerate(header)}
    send = list(range(len(header)))
    if columns and all(c in head_index for c in columns) and len(columns) < len(header):
        wanted = set(columns)
        send = [i for i, c in enumerate(header) if c.strip() in wanted]
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    out_header: list[str] | None = None
    done = 0
    progress.update(0.0, f"Scoring {total} rows")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            for start in range(0, total, max(1, chunk_rows)):
                cancel.raise_if_cancelled()
                chunk = rows[start : start + chunk_rows]
                try:
                    part = [[r[i] if i < len(r) else "" for i in send] for r in [header, *chunk]]
                    answer = client.predict_csv(_csv_text(part))
                except EndpointError as exc:
                    raise TargetError(
                        f"The endpoint refused rows {start + 1}-{start + len(chunk)}: "
                        f"{exc.status} {exc.body[:300]}",
                        "Check the file's columns: names and types must fit the model.",
                    ) from None
                except EndpointUnreachable as exc:
                    raise TargetError(
                        f"The endpoint did not answer ({exc}).",
                        "Check that the deployment runs, then score the file again.",
                    ) from None
                table = [r for r in csv.reader(io.StringIO(answer)) if r]
                head, predicted = (table[0], table[1:]) if table else ([], [])
                if len(predicted) != len(chunk):
                    raise TargetError(
                        f"The endpoint answered {len(predicted)} predictions for "
                        f"{len(chunk)} rows.",
                        "Check the file for rows the model cannot read.",
                    )
                if out_header is None:
                    out_header = [*header, *head]
                    writer.writerow(out_header)
                for row, pred in zip(chunk, predicted, strict=True):
                    writer.writerow([*row, *pred])
                done += len(chunk)
                progress.update(done / total, f"Scored {done} of {total} rows")
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return BatchResult(output, done, out_header or [])


__all__ = [
    "CHUNK_ROWS",
    "BatchResult",
    "default_output",
    "model_columns",
    "read_table",
    "score_csv",
]
