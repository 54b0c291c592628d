"""Batch scoring: a CSV of rows in, a CSV of the same rows with predictions out.

The rows go to the deployment in chunks through its own client (bearer key, pinned
certificate, SageMaker's signed call), so a large file never becomes one huge request
and progress and cancelling work between chunks. The output holds every input column,
then the endpoint's answer for that row (``prediction`` and, for classifiers, one
``probability_<class>`` column per class), in the input's order. Columns the model
does not take (an ID, the true label) stay in the output but are not sent (and are
named), when the model's columns are known (its signature file); a column the model
needs and the file lacks is named before anything is sent. It is written to a
temporary file and renamed at the end: a cancelled or failed run leaves no half file.

Plain function with a progress/cancel pair (the Orange3 pattern), used by the wizard's
"Score a file" and by ``modelship invoke NAME --csv IN -o OUT``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import TargetError, UsageError, closest
from app.nextstep import run_command, say
from app.progress import CancelToken, NullProgress, Progress

CHUNK_ROWS = 500  # rows per request: well under the server's limit and 6 MB (SageMaker)


@dataclass
class BatchResult:
    path: Path  # the predictions CSV
    rows: int  # rows scored
    columns: list[str]  # the output's header
    dropped: list[str] = field(default_factory=list)  # file columns the model does not take


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


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def fit_columns(header: list[str], columns: list[str] | None) -> tuple[list[int], list[str]]:
    """Which of the file's columns to send (their indexes) and which the model does not
    take (an ID, the true label: left out and named). Without the model's columns
    (a tensor model) everything is sent.

    Raises UsageError, before anything is sent, when the file lacks a column the model
    needs: "Your file has no column 'age', which the model needs."
    """
    if not columns:
        return list(range(len(header))), []
    names = [c.strip() for c in header]
    missing = [c for c in columns if c not in names]
    if missing:
        one = len(missing) == 1
        what = f"no column {missing[0]!r}" if one else f"no columns {_names(missing)}"
        near = []
        for m in missing:
            guess = closest(m, [n for n in names if n not in columns])
            if guess is not None:
                near.append(f"{guess!r} is spelled differently: rename it to {m!r}")
        also = f" ({'; '.join(near)})" if near else ""
        raise UsageError(
            f"Your file has {what}, which the model needs{also}.",
            f"Add {'it' if one else 'them'} to the file; the model takes: {_names(columns)}.",
        )
    wanted = set(columns)
    send = [names.index(c) for c in columns]  # in the model's order
    dropped = [n for n in names if n not in wanted]
    return send, dropped


def dropped_words(dropped: list[str]) -> str:
    """``Not sent (the model does not take them): 'id', 'churned'``."""
    them = "it" if len(dropped) == 1 else "them"
    return f"Not sent (the model does not take {them}): {_names(dropped)}"


def unreachable_error(name: str | None, exc: Exception) -> TargetError:
    who = f"{name!r}" if name else "The endpoint"
    return TargetError(
        f"{who} did not answer: nothing answers at its address now.",
        say(
            "See whether it runs: ",
            run_command("status", name or "NAME", quote=""),
            "; ",
            run_command("start", name or "NAME", verb="start it again with"),
            " if it was stopped.",
        ),
        details=str(exc),
    )


def predict_chunks(
    client: Any,
    header: list[str],
    rows: list[list[str]],
    send: list[int],
    *,
    chunk_rows: int = CHUNK_ROWS,
    cancel: CancelToken | None = None,
    name: str | None = None,
) -> Iterator[tuple[int, list[str], list[list[str]]]]:
    """Send the rows in chunks (only the columns ``send``); yield (start, the answer's
    header, its rows) per chunk. Errors in plain words: no HTTP codes, no JSON."""
    from app.endpoint.client import EndpointError, EndpointUnreachable, error_words

    cancel = cancel or CancelToken()
    total = len(rows)
    for start in range(0, total, max(1, chunk_rows)):
        cancel.raise_if_cancelled()
        chunk = rows[start : start + chunk_rows]
        part = [[r[i] if i < len(r) else "" for i in send] for r in [header, *chunk]]
        try:
            answer = client.predict_csv(_csv_text(part))
        except EndpointError as exc:
            where = f"rows {start + 1}-{start + len(chunk)}" if total > len(chunk) else "the rows"
            raise TargetError(
                f"The model did not score {where}: {error_words(exc)}",
                "Check those rows: each column's values must be of the kind the model "
                "was trained on.",
            ) from None
        except EndpointUnreachable as exc:
            raise unreachable_error(name, exc) from None
        table = [r for r in csv.reader(io.StringIO(answer)) if r]
        head, predicted = (table[0], table[1:]) if table else ([], [])
        if len(predicted) != len(chunk):
            raise TargetError(
                f"The endpoint answered {len(predicted)} predictions for {len(chunk)} rows.",
                "Check the file for rows the model cannot read.",
            )
        yield start, head, predicted


def score_csv(
    client: Any,
    source: Path,
    output: Path | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    columns: list[str] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    name: str | None = None,
) -> BatchResult:
    """Score every row of ``source`` through ``client`` (an ``EndpointClient``).

    With ``columns`` (the model's, see :func:`model_columns`) only those are sent, and
    a file without one of them is refused before anything is sent; the others (an ID,
    the label) are written back unchanged and named in ``BatchResult.dropped``.

    Raises Cancelled (between chunks), UsageError for an unreadable file or a missing
    column, TargetError when the endpoint refuses a chunk (with the rows it was at).
    """
    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    output = output or default_output(source)
    header, rows = read_table(source)
    send, dropped = fit_columns(header, columns)
    if dropped:
        progress.update(None, dropped_words(dropped))
    total = len(rows)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    out_header: list[str] | None = None
    done = 0
    progress.update(0.0, f"Scoring {total} rows")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            chunks = predict_chunks(
                client, header, rows, send, chunk_rows=chunk_rows, cancel=cancel, name=name
            )
            for start, head, predicted in chunks:
                chunk = rows[start : start + len(predicted)]
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
    return BatchResult(output, done, out_header or [], dropped)


__all__ = [
    "CHUNK_ROWS",
    "BatchResult",
    "default_output",
    "dropped_words",
    "fit_columns",
    "model_columns",
    "predict_chunks",
    "read_table",
    "score_csv",
]
