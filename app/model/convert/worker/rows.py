"""Sample rows: generated from the model's value ranges, from its input example, or read
from the user's CSV."""

from __future__ import annotations

import csv

from .common import WorkerError, act


def generate_rows(desc: dict, ranges: dict, n: int, seed: int) -> list[list]:
    import numpy as np

    rng = np.random.default_rng(seed)
    cols = []
    for name in desc["names"]:
        if name in desc["str_cols"]:
            cats = desc["str_cols"][name]
            cols.append([str(v) for v in rng.choice(cats, size=n)])
        else:
            lo, hi = ranges.get(name, (-2.0, 2.0))
            if hi <= lo:
                lo, hi = lo - 1.0, hi + 1.0
            vals = np.round(rng.uniform(lo, hi, size=n), 3)
            # exactly representable in float32: the original (float64) and the ONNX
            # model (float32) then see the very same numbers
            cols.append([float(np.float32(v)) for v in vals])
    return [list(r) for r in zip(*cols, strict=True)]


def example_rows(example: dict, desc: dict) -> list[list]:
    """An MLflow input example ({"columns", "rows"}) in the model's column order."""
    columns = [str(c) for c in example.get("columns") or []]
    names = desc["names"]
    if set(names) <= set(columns):
        pos = [columns.index(c) for c in names]
    elif len(columns) == len(names):
        pos = list(range(len(names)))
    else:
        raise WorkerError(
            "csv_columns",
            "The model's input example has the columns " + ", ".join(columns[:10]) + ", but "
            "the model takes " + ", ".join(names[:10]) + ".",
            [
                "Log the model again with an input example of its own columns, or give "
                "sample rows (",
                act("set_setting", field="sample_csv", title="Sample rows", flag="--sample"),
                ").",
            ],
        )
    out = []
    for raw in example.get("rows") or []:
        row = []
        for c, i in zip(names, pos, strict=True):
            v = raw[i] if i < len(raw) else None
            if c in desc["str_cols"]:
                row.append("" if v is None else str(v))
            else:
                row.append(float("nan") if v is None else float(v))
        out.append(row)
    return out


def read_csv_rows(path: str, desc: dict, limit: int = 5000) -> tuple[list[list], list[str]]:
    notes: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            names = desc["names"]
            if header and names[0] == "f0" and not set(names) & set(header):
                # model fitted without column names: take the CSV's columns in order
                if len(header) < len(names):
                    raise WorkerError(
                        "csv_columns",
                        f"The sample CSV has {len(header)} columns; the model takes "
                        f"{len(names)} features.",
                        "Give a CSV with one column per feature, in the model's order.",
                    )
                mapping = dict(zip(names, header, strict=False))
            else:
                missing = [c for c in names if c not in header]
                if missing:
                    raise WorkerError(
                        "csv_columns",
                        "The sample CSV lacks the model's column(s) "
                        + ", ".join(missing[:10])
                        + f" (it has: {', '.join(header[:10]) or 'no header'}).",
                        "Give a CSV whose header names the columns: " + ", ".join(names[:20]),
                    )
                mapping = {c: c for c in names}
                extra = [h for h in header if h not in names]
                if extra:
                    notes.append(
                        "Ignored CSV column(s) the model does not use: " + ", ".join(extra)
                    )
            rows = []
            for i, rec in enumerate(reader):
                if i >= limit:
                    notes.append(f"Used the first {limit} rows of the CSV.")
                    break
                rec = {(k or "").strip(): v for k, v in rec.items()}
                row = []
                for c in names:
                    raw = (rec.get(mapping[c]) or "").strip()
                    if c in desc["str_cols"]:
                        row.append(raw)
                    else:
                        try:
                            row.append(float(raw) if raw else float("nan"))
                        except ValueError:
                            raise WorkerError(
                                "csv_columns",
                                f"The sample CSV's column {c} holds text ({raw!r} in row "
                                f"{i + 2}), but the model expects numbers there.",
                                "Fix that column or give a different CSV.",
                            ) from None
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WorkerError(
            "csv_columns",
            f"The sample CSV could not be read ({exc}).",
            "Give a UTF-8 CSV file with a header row.",
        ) from None
    if not rows:
        raise WorkerError("csv_columns", "The sample CSV has no data rows.", "Add rows to it.")
    return rows, notes
