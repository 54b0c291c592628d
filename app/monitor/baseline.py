"""The baseline: a small summary of every row the proof ran on, kept in the proof file
as ``proof["baseline"]`` so that drift can later be measured against all of them, not
only the 20 rows the proof keeps.

Numbers become about ten quantile bins (``edges`` and ``counts``); the outer bins reach
to minus and plus infinity, so a value outside the sample's range still has a bin. Text
becomes category shares (the most common categories and ``"(other)"``). Missing values
are counted apart. The same functions bin the captured values (:mod:`app.monitor.drift`),
so both sides are counted by one rule.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

BINS = 10
TOP_CATEGORIES = 20
OTHER = "(other)"
MISSING = "(missing)"


def _round(x: float) -> float:
    """Six significant digits: enough to bin by, short in the file."""
    return float(f"{x:.6g}")


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v == ""


def as_number(v: Any) -> float | None:
    """A value as a float, or None where it is missing or not a number."""
    if _is_missing(v) or isinstance(v, bool):
        return None
    if isinstance(v, int | float | np.integer | np.floating):
        f = float(v)
        return None if math.isnan(f) else f
    try:
        f = float(str(v))
    except ValueError:
        return None
    return None if math.isnan(f) else f


def is_numeric(values: Sequence[Any]) -> bool:
    """A column is numeric when every value present is a number (not a string of one)."""
    present = [v for v in values if not _is_missing(v)]
    return bool(present) and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in present
    )


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin: bin 0 is below ``edges[1]``, the last at or above ``edges[-2]``
    (the outer bins are open-ended); a constant column (two equal edges) has one bin."""
    k = max(len(edges) - 1, 1)
    if not len(values):
        return [0] * k
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    idx = np.searchsorted(inner, np.asarray(values, dtype=np.float64), side="right")
    return np.bincount(idx, minlength=k)[:k].astype(int).tolist()


def number_summary(values: Sequence[Any], bins: int = BINS) -> dict[str, Any]:
    nums = [f for f in (as_number(v) for v in values) if f is not None]
    missing = len(values) - len(nums)
    if not nums:
        return {"kind": "number", "edges": [], "counts": [], "missing": missing}
    arr = np.asarray(nums, dtype=np.float64)
    qs = np.quantile(arr, np.linspace(0.0, 1.0, bins + 1))
    edges = sorted({_round(q) for q in qs})  # ties collapse into fewer bins
    if len(edges) == 1:
        edges = [edges[0], edges[0]]
    return {
        "kind": "number",
        "edges": edges,
        "counts": bin_counts(nums, edges),
        "missing": missing,
    }


def category_summary(values: Sequence[Any], top: int = TOP_CATEGORIES) -> dict[str, Any]:
    n = len(values)
    counts = Counter(MISSING if _is_missing(v) else str(v) for v in values)
    shares: dict[str, float] = {}
    rest = 0
    for i, (cat, c) in enumerate(counts.most_common()):
        if i < top:
            shares[cat] = round(c / n, 6)
        else:
            rest += c
    if rest:
        shares[OTHER] = round(rest / n, 6)
    return {"kind": "category", "shares": shares}


def column_summary(values: Sequence[Any]) -> dict[str, Any]:
    return number_summary(values) if is_numeric(values) else category_summary(values)


def summarize(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    predictions: Sequence[Any] | None,
    text: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``{"rows": N, "columns": {name: summary}, "predictions": summary | None}``.

    Predictions that are numbers with many distinct values (a regression) become bins;
    labels (classes) become shares. Columns named in ``text`` (the signature's string
    inputs) are categories even where their values look like numbers.
    """
    out: dict[str, Any] = {"rows": len(rows), "columns": {}, "predictions": None}
    for j, name in enumerate(columns):
        values = [r[j] for r in rows]
        out["columns"][name] = category_summary(values) if name in text else column_summary(values)
    if predictions is not None and len(predictions):
        out["predictions"] = prediction_summary(predictions)
    return out


def prediction_summary(predictions: Sequence[Any]) -> dict[str, Any]:
    flat = [p[0] if isinstance(p, list | tuple) and len(p) == 1 else p for p in predictions]
    if is_numeric(flat) and any(isinstance(p, float | np.floating) for p in flat):
        return number_summary(flat)
    return category_summary(flat)


def from_proof(proof: dict[str, Any]) -> dict[str, Any] | None:
    """The proof's baseline, or one made from its kept ``rows``/``predictions`` (proofs
    written before the baseline existed); None for a model without named columns."""
    base = proof.get("baseline")
    if isinstance(base, dict) and base.get("columns"):
        return base
    columns, rows = proof.get("columns"), proof.get("rows")
    if not columns or not rows:
        return None
    table = [
        [r.get(c) if isinstance(r, dict) else r[j] for j, c in enumerate(columns)] for r in rows
    ]
    return summarize(columns, table, proof.get("predictions"))
