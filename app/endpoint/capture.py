"""Captured requests as ModelShip reads them (issue 24; the server side is
app/serving/capture.py): :class:`CaptureRecord` and :func:`parse_lines`. Qt-free.

Where the lines come from is each target's :meth:`targets.base.Target.captured` (the
local server's folder, SageMaker's own Data Capture, else ``GET /capture`` through the
endpoint's client); :func:`app.run.monitor.pull` joins the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class CaptureRecord:
    """One captured request: its inputs (``columns``/``rows``, or ``shape`` for a tensor
    model) and the predictions the server answered, in row order."""

    t: float
    route: str
    n: int
    columns: list[str] | None
    rows: list[list[Any]] | None
    predictions: list[Any] | None
    shape: list[int] | None = None


def parse_lines(data: bytes) -> list[CaptureRecord]:
    """The records of JSON Lines ``data``; a broken line (e.g. a partly written last one,
    or one of a future format) is skipped."""
    out: list[CaptureRecord] = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        rec = _record(obj)
        if rec is not None:
            out.append(rec)
    return out


def _record(obj: Any) -> CaptureRecord | None:
    if not isinstance(obj, dict):
        return None
    t, route, n = obj.get("t"), obj.get("route"), obj.get("n")
    if not isinstance(t, int | float) or isinstance(t, bool) or not isinstance(route, str):
        return None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    columns, rows = obj.get("columns"), obj.get("rows")
    preds, shape = obj.get("predictions"), obj.get("shape")
    if columns is not None and not (
        isinstance(columns, list) and all(isinstance(c, str) for c in columns)
    ):
        return None
    if rows is not None and not (
        isinstance(rows, list)
        and all(isinstance(r, list) and len(r) == len(columns or []) for r in rows)
    ):
        return None
    if preds is not None and not isinstance(preds, list):
        return None
    if shape is not None and not (
        isinstance(shape, list) and all(isinstance(d, int) for d in shape)
    ):
        return None
    return CaptureRecord(float(t), route, n, columns, rows, preds, shape)


__all__ = ["CaptureRecord", "parse_lines"]
