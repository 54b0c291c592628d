"""Drift: how the inputs a deployment now gets compare with the rows it was proven on.

:func:`drift_report` takes the proof (its ``baseline``, :mod:`app.monitor.baseline`) and
the captured requests (:class:`app.endpoint.capture.CaptureRecord`) and measures, per
input column, a population stability index (PSI): numbers are counted in the baseline's
quantile bins, text in its categories. The usual PSI conventions give the level: below
0.1 ``ok``, 0.1 to 0.25 ``watch``, above 0.25 ``drift``. Every level comes with words an
analyst reads without knowing what a PSI is ("'age' is now mostly above 60; the sample
had few such rows"), and the predicted classes' shares per hour show how the answers
move over time. Qt-free; the CLI (``modelship monitor``) and the dashboard render it.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from app.monitor.baseline import (
    MISSING,
    OTHER,
    as_number,
    bin_counts,
    from_proof,
)
from app.plain import plain_number

if TYPE_CHECKING:  # pragma: no cover
    from app.endpoint.capture import CaptureRecord

MIN_ROWS = 50
WATCH = 0.1
DRIFT = 0.25
FLOOR = 1e-4  # the share an empty bin counts as (PSI takes a logarithm of each share)
LEVELS = ("ok", "watch", "drift")
UNKNOWN = "unknown"  # too few rows, or nothing to compare with
FEW = 0.15  # a share below this is "few such rows" (one decile bin holds about 0.1)
GENERATED = (
    "The model was proven on generated rows (no sample CSV was given when it was converted): "
    "they spread evenly over each column's range, so real inputs differ from them anyway. "
    "Deploy it with a sample CSV of real rows for a baseline that means something."
)
TABLE_ONLY = "Drift is only measured for table inputs (named columns); this model takes a tensor."


def level_for(psi: float) -> str:
    if psi < WATCH:
        return "ok"
    return "watch" if psi <= DRIFT else "drift"


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = FLOOR) -> float:
    """Population stability index of two share vectors (same bins); empty bins count
    as ``floor``."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, floor), max(a, floor)
        total += (a - e) * math.log(a / e)
    return total


def _pct(share: float) -> str:
    if share <= 0:
        return "none"
    if share < 0.01:
        return "under 1%"
    return f"{round(share * 100)}%"


@dataclass
class ColumnDrift:
    """One input column: its bins (or categories) with the baseline's and the captured
    shares, the PSI, the level and the words."""

    name: str
    kind: str  # "number" | "category"
    psi: float | None
    level: str  # ok | watch | drift | unknown
    words: str
    bins: list[str] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    captured: list[float] = field(default_factory=list)
    rows: int = 0
    edges: list[float] = field(default_factory=list)  # numbers: the baseline's bin edges


@dataclass
class HourShares:
    """The predictions answered in one hour: how many rows and each answer's share."""

    t: float  # the hour's start (seconds since the epoch)
    rows: int
    shares: dict[str, float]


@dataclass
class PredictionDrift:
    kind: str  # "category" (classes) | "number" (a regression's values, binned)
    psi: float | None
    level: str
    words: str
    bins: list[str]
    baseline: list[float]
    captured: list[float]
    hours: list[HourShares]


@dataclass
class DriftReport:
    level: str  # the worst column's level, or unknown
    headline: str
    rows: int  # captured rows compared
    requests: int
    baseline_rows: int
    first_t: float | None
    last_t: float | None
    columns: list[ColumnDrift]
    predictions: PredictionDrift | None
    notes: list[str] = field(default_factory=list)
    made_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report in plain lines (what ``modelship monitor`` prints)."""
        out = [self.headline, *self.notes]
        width = max((len(c.name) for c in self.columns), default=0)
        for c in self.columns:
            # too few rows: a figure beside "too few to judge" would read as a judgement
            judged = c.psi is not None and c.level != UNKNOWN
            psi_txt = f"  (PSI {c.psi:.2f})" if judged else ""
            out.append(f"  {c.level.upper():7} {c.name:{width}}  {c.words}{psi_txt}")
        if self.predictions is not None:
            p = self.predictions
            out.append(f"  {p.level.upper():7} predictions  {p.words}")
        return out


# -- numbers ---------------------------------------------------------------------------


def _number_labels(edges: Sequence[float]) -> list[str]:
    """Plain names of the bins: 'below 30', '30 to 45', 'above 60'."""
    k = len(edges) - 1
    if k <= 1:
        return [plain_number(edges[0]) if edges else "all"]
    labels = []
    for i in range(k):
        lo, hi = plain_number(edges[i]), plain_number(edges[i + 1])
        if i == 0:
            labels.append(f"below {hi}")
        elif i == k - 1:
            labels.append(f"above {lo}")
        else:
            labels.append(f"{lo} to {hi}")
    return labels


def _number_column(
    name: str, base: dict[str, Any], values: Sequence[Any]
) -> tuple[list[str], list[float], list[float]]:
    edges = base.get("edges") or []
    counts = list(base.get("counts") or [])
    labels = _number_labels(edges) if edges else []
    nums = [f for f in (as_number(v) for v in values) if f is not None]
    got = bin_counts(nums, edges) if edges else []
    b_missing, c_missing = int(base.get("missing") or 0), len(values) - len(nums)
    if b_missing or c_missing:
        labels, counts, got = [*labels, "missing"], [*counts, b_missing], [*got, c_missing]
    return labels, _shares(counts), _shares(got)


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total if total else 0.0 for c in counts]


# -- categories ------------------------------------------------------------------------


def _category_column(
    base: dict[str, Any], values: Sequence[Any]
) -> tuple[list[str], list[float], list[float], set[str]]:
    shares: dict[str, float] = dict(base.get("shares") or {})
    seen = Counter(MISSING if v is None or v == "" else str(v) for v in values)
    known = set(shares)
    if OTHER in shares:  # the baseline lumped its rare categories: so do the captured ones
        lumped: Counter[str] = Counter()
        for cat, c in seen.items():
            lumped[cat if cat in known else OTHER] += c
        seen = lumped
    new = {c for c in seen if c not in known}
    labels = [*shares, *sorted(new, key=lambda c: -seen[c])]
    n = sum(seen.values())
    got = [seen.get(c, 0) / n if n else 0.0 for c in labels]
    return labels, [shares.get(c, 0.0) for c in labels], got, new


# -- words -----------------------------------------------------------------------------


def _gainer(labels: Sequence[str], base: Sequence[float], got: Sequence[float]) -> int:
    return max(range(len(labels)), key=lambda i: got[i] - base[i])


def _number_words(
    name: str, level: str, labels: list[str], base: list[float], got: list[float]
) -> str:
    if level == "ok":
        return f"'{name}' looks like the sample."
    i = _gainer(labels, base, got)
    where = "missing" if labels[i] == "missing" else labels[i]
    had = (
        f"the sample had few such rows ({_pct(base[i])})"
        if base[i] < FEW
        else f"against {_pct(base[i])} in the sample"
    )
    if got[i] > 0.5:
        return f"'{name}' is now mostly {where} ({_pct(got[i])} of rows); {had}."
    return f"'{name}' is now more often {where} ({_pct(got[i])} of rows); {had}."


def _category_words(
    name: str, level: str, labels: list[str], base: list[float], got: list[float], new: set[str]
) -> str:
    if level == "ok":
        return f"'{name}' looks like the sample."
    i = _gainer(labels, base, got)
    cat = labels[i]
    shown = "values the sample did not list" if cat == OTHER else f"'{cat}'"
    if cat in new:
        return f"'{name}' now has {shown}, which the sample never had ({_pct(got[i])} of rows)."
    had = (
        f"the sample had few such rows ({_pct(base[i])})"
        if base[i] < FEW
        else f"against {_pct(base[i])} in the sample"
    )
    mostly = "mostly" if got[i] > 0.5 else "more often"
    return f"'{name}' is now {mostly} {shown} ({_pct(got[i])} of rows); {had}."


# -- the report ------------------------------------------------------------------------


def _table(records: Sequence[CaptureRecord], columns: Sequence[str]) -> dict[str, list[Any]]:
    """Captured values per proof column (by name: a caller's column order may differ)."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for rec in records:
        if not rec.columns or not rec.rows:
            continue
        pos = {c: j for j, c in enumerate(rec.columns)}
        for row in rec.rows:
            for c in columns:
                j = pos.get(c)
                out[c].append(row[j] if j is not None and j < len(row) else None)
    return out


def _predictions(
    base: dict[str, Any] | None, records: Sequence[CaptureRecord], enough: bool
) -> PredictionDrift | None:
    if not base:
        return None
    pairs: list[tuple[float, Any]] = []
    for rec in records:
        for p in rec.predictions or []:
            pairs.append((rec.t, p[0] if isinstance(p, list) and len(p) == 1 else p))
    if not pairs:
        return None
    values = [p for _, p in pairs]
    if base.get("kind") == "number":
        edges = base.get("edges") or []
        labels, b, g = _number_column("predictions", base, values)

        def key(v: Any) -> str:
            f = as_number(v)
            if f is None:
                return "missing"
            return labels[bin_counts([f], edges).index(1)] if edges else labels[0]
    else:
        labels, b, g, _new = _category_column(base, values)
        known = set(base.get("shares") or {})

        def key(v: Any) -> str:
            s = MISSING if v is None else str(v)
            return s if s in known or OTHER not in known else OTHER

    value = psi(b, g)
    level = level_for(value) if enough else UNKNOWN
    hours: dict[float, Counter[str]] = {}
    for t, v in pairs:
        hours.setdefault(math.floor(t / 3600) * 3600.0, Counter())[key(v)] += 1
    by_hour = [
        HourShares(h, sum(c.values()), {k: n / sum(c.values()) for k, n in c.most_common()})
        for h, c in sorted(hours.items())
    ]
    if not enough:
        words = "too few captured rows to judge."
    elif level == "ok":
        words = "the answers are shared out as in the proof."
    else:
        i = _gainer(labels, b, g)
        what = f"'{labels[i]}'" if base.get("kind") != "number" else labels[i]
        words = f"the model now answers {what} for {_pct(g[i])} of rows; in the proof {_pct(b[i])}."
    return PredictionDrift(
        str(base.get("kind") or "category"), value, level, words, labels, b, g, by_hour
    )


def drift_report(proof: dict[str, Any], records: Sequence[CaptureRecord]) -> DriftReport:
    """Compare the captured requests with the proof's baseline, column by column."""
    times = [r.t for r in records]
    first, last = (min(times), max(times)) if times else (None, None)
    n_rows = sum(len(r.rows or []) for r in records if r.columns)
    tensor = sum(r.n for r in records if not r.columns)
    base = from_proof(proof)
    if base is None or (tensor and not n_rows):
        return DriftReport(
            UNKNOWN,
            TABLE_ONLY,
            tensor or n_rows,
            len(records),
            int((base or {}).get("rows") or 0),
            first,
            last,
            [],
            None,
        )
    enough = n_rows >= MIN_ROWS
    columns = list(base["columns"])
    table = _table(records, columns)
    out: list[ColumnDrift] = []
    for name in columns:
        summary = base["columns"][name]
        values = table[name]
        if summary.get("kind") == "number":
            labels, b, g = _number_column(name, summary, values)
            new: set[str] = set()
        else:
            labels, b, g, new = _category_column(summary, values)
        if not labels or not values:
            out.append(
                ColumnDrift(name, summary.get("kind", ""), None, UNKNOWN, "no values captured.")
            )
            continue
        value = psi(b, g)
        level = level_for(value) if enough else UNKNOWN
        if not enough:
            words = "too few captured rows to judge."
        elif summary.get("kind") == "number":
            words = _number_words(name, level, labels, b, g)
        else:
            words = _category_words(name, level, labels, b, g, new)
        edges = list(summary.get("edges") or []) if summary.get("kind") == "number" else []
        out.append(
            ColumnDrift(
                name,
                summary["kind"],
                round(value, 4),
                level,
                words,
                labels,
                b,
                g,
                len(values),
                edges,
            )
        )
    preds = _predictions(base.get("predictions"), records, enough)
    judged = [c.level for c in out if c.level in LEVELS]
    if preds is not None and preds.level in LEVELS:
        judged.append(preds.level)
    baseline_rows = int(base.get("rows") or 0)
    notes: list[str] = []
    generated = base.get("rows_from") == "generated"
    if generated:
        notes.append(GENERATED)
    if "baseline" not in proof:
        notes.append(
            f"The proof kept only {baseline_rows} rows to compare with; convert the model again "
            "for a baseline over all the rows it was proven on."
        )
    if not enough:
        level = UNKNOWN
        headline = f"Too few captured rows to judge ({n_rows}; at least {MIN_ROWS} needed)."
    else:
        level = max(judged, key=LEVELS.index) if judged else UNKNOWN
        drifted = [f"'{c.name}'" for c in out if c.level == "drift"]
        watch = [f"'{c.name}'" for c in out if c.level == "watch"]
        if preds is not None and preds.level in ("drift", "watch"):
            (drifted if preds.level == "drift" else watch).append("the model's answers")
        compared = (
            f"{n_rows} captured rows compared with the {baseline_rows} rows the model was proven on"
        )
        if generated:
            compared = compared.replace("rows the model", "generated rows the model")
        if drifted:
            headline = f"Drift in {_names(drifted)}: {compared}."
        elif watch:
            headline = f"Worth watching: {_names(watch)}; {compared}."
        else:
            headline = f"No drift: {compared}."
    return DriftReport(
        level, headline, n_rows, len(records), baseline_rows, first, last, out, preds, notes
    )


def _names(names: Sequence[str]) -> str:
    quoted = list(names)
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
