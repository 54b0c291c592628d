"""The proof's baseline: every row the proof ran on, summarized small (issue 24 item 3)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.model.convert import ConvertOptions, convert_model
from app.model.samples import CATEGORICAL, NUMERIC, sample_csv_path, sample_model_path
from app.monitor.baseline import bin_counts, from_proof, number_summary, summarize
from app.progress import RecordingProgress


@pytest.fixture(scope="module")
def churn_proof(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("baseline") / "churn.onnx"
    options = ConvertOptions(sample_csv=sample_csv_path())
    result = convert_model(sample_model_path(), out, options, RecordingProgress())
    return json.loads(result.proof_path.read_text(encoding="utf-8")), result.proof_path


def test_baseline_covers_every_row_of_the_sample(churn_proof: tuple[dict, Path]) -> None:
    proof, path = churn_proof
    with open(sample_csv_path(), newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    base = proof["baseline"]
    assert len(proof["rows"]) == 20 and base["rows"] == len(table) == 300
    assert base["rows_from"] == "csv"
    cols = base["columns"]
    assert set(cols) == set(NUMERIC + CATEGORICAL)
    for name in NUMERIC:
        col = cols[name]
        assert col["kind"] == "number"
        assert sum(col["counts"]) == 300 and col["missing"] == 0
        assert len(col["counts"]) == len(col["edges"]) - 1 <= 10
        assert col["edges"] == sorted(col["edges"])
        values = sorted(float(r[name]) for r in table)
        assert col["edges"][0] == pytest.approx(values[0], rel=1e-5)
        assert col["edges"][-1] == pytest.approx(values[-1], rel=1e-5)
    # support_calls has few distinct values: ties collapse bins, none is empty-edged
    assert len(set(cols["support_calls"]["edges"])) == len(cols["support_calls"]["edges"])
    plan = cols["plan"]
    assert plan["kind"] == "category"
    want = {p: sum(r["plan"] == p for r in table) / 300 for p in {r["plan"] for r in table}}
    assert plan["shares"] == pytest.approx(want, abs=1e-6)
    pred = base["predictions"]
    assert pred["kind"] == "category" and set(pred["shares"]) <= {"yes", "no"}
    assert sum(pred["shares"].values()) == pytest.approx(1.0)
    # the proof file stays small
    assert path.stat().st_size < 12_000


def test_ties_and_constant_columns_bin_cleanly() -> None:
    const = number_summary([5] * 40)
    assert const["edges"] == [5.0, 5.0] and const["counts"] == [40]
    ties = number_summary([0] * 90 + [1] * 9 + [7])
    assert ties["edges"] == sorted(set(ties["edges"])) and sum(ties["counts"]) == 100
    assert bin_counts([-100, 100], ties["edges"])[0] == 1  # outer bins are open-ended
    assert bin_counts([-100, 100], ties["edges"])[-1] == 1
    missing = number_summary([1.0, None, float("nan"), 2.0])
    assert missing["missing"] == 2 and sum(missing["counts"]) == 2


def test_old_proofs_fall_back_to_their_kept_rows() -> None:
    proof = {
        "columns": ["age", "plan"],
        "rows": [{"age": 20 + i, "plan": "basic" if i % 4 else "pro"} for i in range(20)],
        "predictions": [0, 1] * 10,
    }
    base = from_proof(proof)
    assert base is not None and base["rows"] == 20
    assert base["columns"]["age"]["kind"] == "number"
    assert base["columns"]["plan"]["shares"] == {"basic": 0.75, "pro": 0.25}
    assert base["predictions"]["shares"] == {"0": 0.5, "1": 0.5}
    assert from_proof({"columns": None, "inputs": {"x": [[1.0]]}}) is None
    made = summarize(["zip"], [["01234"], ["01234"], ["99999"]], None, text={"zip"})
    assert made["columns"]["zip"]["kind"] == "category"


def test_regression_predictions_become_bins(tmp_path: Path) -> None:
    from tests.unit import models

    model = models.sklearn_forest_regressor(tmp_path / "forest.pkl")
    result = convert_model(
        model, tmp_path / "forest.onnx", ConvertOptions(generated_rows=200), RecordingProgress()
    )
    base = json.loads(result.proof_path.read_text(encoding="utf-8"))["baseline"]
    assert base["rows"] == 200
    assert base["predictions"]["kind"] == "number" and sum(base["predictions"]["counts"]) == 200
