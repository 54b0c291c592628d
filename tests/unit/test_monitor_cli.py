"""`modelship monitor NAME`: a real proof (the bundled churn sample, converted), a local
deployment's record, and captured requests in its capture folder as the server writes
them (JSON Lines, app/serving/capture.py's file names)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from app.cli import main
from app.domain import DeploymentRecord, ModelVersion
from app.model.convert import ConvertOptions, convert_model
from app.model.samples import sample_csv_path, sample_model_path
from app.progress import RecordingProgress
from app.store.records import save_record
from targets.local.target import capture_dir

COLUMNS = ["tenure_months", "monthly_charges", "support_calls", "age", "plan"]
ONNX: list[Path] = []  # the converted model, once the fixture made it


@pytest.fixture(scope="module")
def churn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("monitor") / "churn.onnx"
    convert_model(
        sample_model_path(), out, ConvertOptions(sample_csv=sample_csv_path()), RecordingProgress()
    )
    ONNX[:] = [out]
    return out


def _sample_rows() -> list[list]:
    with open(sample_csv_path(), newline="", encoding="utf-8") as fh:
        return [
            [int(r["tenure_months"]), float(r["monthly_charges"]), int(r["support_calls"]),
             int(r["age"]), r["plan"]]
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def _deployment(onnx: Path, rate: float = 0.5, name: str = "churn") -> DeploymentRecord:
    version = ModelVersion(1, str(onnx), str(sample_model_path()), target="local")
    record = DeploymentRecord(
        name=name,
        target="local",
        profile={"name": name, "target": {"kind": "local", "settings": {"capture_rate": rate}}},
        versions=[version.to_dict()],
        current_version=1,
    )
    save_record(record)
    return record


def _answers(onnx: Path, rows: list[list]) -> list[str]:
    """What the deployed model answers for ``rows`` (the ONNX model itself)."""
    import numpy as np
    import onnxruntime as ort

    from app.serving.signature import Signature

    sig = Signature.load(Signature.path_for(onnx))
    feeds = {}
    for t in sig.inputs:
        cols = sorted((c for c in sig.columns if c.input == t.name), key=lambda c: c.index)
        idx = [COLUMNS.index(c.name) for c in cols]
        if t.dtype == "str":
            feeds[t.name] = np.array([[str(r[i]) for i in idx] for r in rows], dtype=object)
        else:
            feeds[t.name] = np.array([[r[i] for i in idx] for r in rows], dtype=t.dtype)
    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    labels = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    return [str(v) for v in labels[sig.label_output]]


def _capture(name: str, rows: list[list], t: float, seq: int = 1) -> None:
    folder = capture_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"v": 1, "t": t + k, "route": "/predict", "n": len(rows[k : k + 5]),
                    "columns": COLUMNS, "rows": rows[k : k + 5],
                    "predictions": _answers(ONNX[0], rows[k : k + 5])})
        for k in range(0, len(rows), 5)
    ]  # fmt: skip
    with open(folder / f"capture-4242-{seq}.jsonl", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def test_a_shifted_age_is_reported_in_words(churn_onnx: Path, capsys) -> None:
    _deployment(churn_onnx)
    older = [[r[0], r[1], r[2], r[3] + 35, r[4]] for r in _sample_rows()[:200]]
    _capture("churn", older, time.time() - 3 * 3600)
    assert main(["monitor", "churn"]) == 1
    out = capsys.readouterr().out
    assert "churn  [local]  version 1" in out
    assert "Drift in 'age': 200 captured rows compared with the 300 rows" in out
    assert "DRIFT" in out and "'age' is now mostly above " in out
    assert "'plan' looks like the sample." in out
    # the same report as JSON
    assert main(["monitor", "churn", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["level"] == "drift" and doc["rows"] == 200
    assert {c["name"]: c["level"] for c in doc["columns"]}["age"] == "drift"
    # --since: the last hour only, where the rows look like the sample
    _capture("churn", _sample_rows()[:150], time.time() - 60, seq=2)
    assert main(["monitor", "churn", "--since", "60"]) == 0
    out = capsys.readouterr().out
    assert "No drift: 150 captured rows" in out and "DRIFT" not in out


def test_errors_say_what_to_do(churn_onnx: Path, capsys) -> None:
    assert main(["monitor", "nope"]) == 2
    err = capsys.readouterr().err
    assert "No deployment named 'nope'" in err and "modelship status" in err

    _deployment(churn_onnx, rate=0.0, name="quiet")
    assert main(["monitor", "quiet"]) == 2
    err = capsys.readouterr().err
    assert "Capture is off for 'quiet'" in err
    assert "capture_rate" in err and "“Capture share”" in err

    _deployment(churn_onnx, rate=0.1, name="fresh")
    assert main(["monitor", "fresh"]) == 2
    err = capsys.readouterr().err
    assert "Nothing captured from 'fresh' yet (it keeps 10% of requests)." in err

    _capture("fresh", _sample_rows()[:10], time.time() - 30)
    assert main(["monitor", "fresh"]) == 0
    assert "Too few captured rows to judge (10; at least 50 needed)." in capsys.readouterr().out
