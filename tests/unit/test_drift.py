"""Drift: captured inputs against the proof's baseline, in levels and plain words."""

from __future__ import annotations

import json

import numpy as np

from app.endpoint.capture import CaptureRecord, parse_lines
from app.monitor.baseline import summarize
from app.monitor.drift import MIN_ROWS, TABLE_ONLY, drift_report, psi

COLUMNS = ["age", "plan", "tenure"]
T0 = 1_765_000_000.0


def _table(n: int, seed: int, age_mean: float = 40.0, pro: float = 0.3) -> list[list]:
    rng = np.random.default_rng(seed)
    ages = np.clip(rng.normal(age_mean, 8.0, n), 18, 95).round().astype(int)
    plans = np.where(rng.random(n) < pro, "pro", "basic")
    tenure = rng.exponential(20.0, n).round(1)
    return [[int(a), str(p), float(t)] for a, p, t in zip(ages, plans, tenure, strict=True)]


def _proof(n: int = 2000) -> dict:
    rows = _table(n, seed=1)
    preds = ["yes" if r[0] > 50 else "no" for r in rows]
    kept = [dict(zip(COLUMNS, r, strict=True)) for r in rows[:20]]
    return {
        "schema": 1,
        "columns": COLUMNS,
        "rows": kept,
        "predictions": preds[:20],
        "baseline": summarize(COLUMNS, rows, preds),
    }


def _records(rows: list[list], per: int = 10, start: float = T0) -> list[CaptureRecord]:
    """Records as the server writes them: through the JSON Lines reader."""
    lines = []
    for k in range(0, len(rows), per):
        chunk = rows[k : k + per]
        lines.append(
            json.dumps(
                {
                    "v": 1,
                    "t": start + k * 30.0,
                    "route": "/predict",
                    "n": len(chunk),
                    "columns": COLUMNS,
                    "rows": chunk,
                    "predictions": ["yes" if r[0] > 50 else "no" for r in chunk],
                }
            )
        )
    return parse_lines(("\n".join(lines) + "\n").encode())


def test_a_shifted_column_is_flagged_in_plain_words() -> None:
    report = drift_report(_proof(), _records(_table(400, seed=2, age_mean=68.0)))
    by = {c.name: c for c in report.columns}
    assert by["age"].level == "drift" and by["age"].psi is not None and by["age"].psi > 0.25
    words = by["age"].words
    assert (
        words.startswith("'age' is now mostly above ") and "the sample had few such rows" in words
    )
    assert by["plan"].level == "ok" and by["tenure"].level == "ok"
    assert report.level == "drift" and report.headline.startswith("Drift in 'age'")
    # the answers moved with it, and say so
    assert report.predictions is not None and report.predictions.level == "drift"
    assert "answers 'yes'" in report.predictions.words
    # a chart's data: the same bins on both sides, shares that add up
    assert len(by["age"].bins) == len(by["age"].baseline) == len(by["age"].captured)
    assert abs(sum(by["age"].captured) - 1) < 1e-9
    text = "\n".join(report.lines())
    assert "DRIFT" in text and "'age' is now mostly above" in text
    json.dumps(report.to_dict())  # --json


def test_an_unshifted_sample_stays_ok() -> None:
    report = drift_report(_proof(), _records(_table(500, seed=3)))
    assert report.level == "ok", report.lines()
    assert all(c.level == "ok" for c in report.columns)
    assert all(c.words.endswith("looks like the sample.") for c in report.columns)
    assert report.headline.startswith("No drift: 500 captured rows")


def test_categories_shift() -> None:
    proof = _proof()
    report = drift_report(proof, _records(_table(400, seed=4, pro=0.85)))
    plan = next(c for c in report.columns if c.name == "plan")
    assert plan.level == "drift"
    assert plan.words.startswith("'plan' is now mostly 'pro' (")
    was = round(proof["baseline"]["columns"]["plan"]["shares"]["pro"] * 100)
    assert plan.words.endswith(f"; against {was}% in the sample.")
    new = [[40, "enterprise", 10.0]] * 60 + _table(60, seed=5)
    plan = next(c for c in drift_report(_proof(), _records(new)).columns if c.name == "plan")
    assert plan.level == "drift" and "'enterprise', which the sample never had" in plan.words


def test_too_few_rows_to_judge() -> None:
    report = drift_report(_proof(), _records(_table(MIN_ROWS - 1, seed=6, age_mean=70.0)))
    assert report.level == "unknown"
    assert (
        report.headline == f"Too few captured rows to judge ({MIN_ROWS - 1}; at least 50 needed)."
    )
    assert all(c.level == "unknown" for c in report.columns)


def test_tensor_models_are_not_measured() -> None:
    line = json.dumps(
        {
            "v": 1,
            "t": T0,
            "route": "/predict",
            "n": 4,
            "columns": None,
            "shape": [4, 3, 16, 16],
            "predictions": [0, 1, 1, 0],
        }
    )
    proof = {"schema": 1, "columns": None, "inputs": {"input": [[0.0]]}}
    report = drift_report(proof, parse_lines(line.encode()))
    assert report.headline == TABLE_ONLY and report.columns == []
    assert "only measured for table inputs" in report.lines()[0]


def test_predicted_class_shares_per_hour_and_old_proofs() -> None:
    early = _records(_table(200, seed=7), start=T0)
    late = _records(_table(200, seed=8, age_mean=70.0), start=T0 + 7200)
    proof = _proof()
    del proof["baseline"]  # a proof written before the baseline: its 20 kept rows
    report = drift_report(proof, early + late)
    hours = report.predictions.hours if report.predictions else []
    assert len(hours) >= 2 and sum(h.rows for h in hours) == 400
    assert hours[-1].shares.get("yes", 0) > 0.8 > hours[0].shares.get("yes", 0)
    assert report.baseline_rows == 20 and "convert the model again" in report.notes[0]


def test_psi_floors_empty_bins() -> None:
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert 0 < psi([1.0, 0.0], [0.9, 0.1]) < 10


def test_a_baseline_of_generated_rows_says_so() -> None:
    proof = _proof()
    proof["baseline"]["rows_from"] = "generated"
    report = drift_report(proof, _records(_table(300, seed=9)))
    assert "with the 2000 generated rows the model was proven on" in report.headline
    assert report.notes[0].startswith("The model was proven on generated rows")
    assert "sample CSV of real rows" in report.notes[0]
    assert report.lines()[1] == report.notes[0]
