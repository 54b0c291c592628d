"""The inspect / convert / demo commands as a user runs them: plain words, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from tests.unit import models


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    script, _ = models.torch_models(d / "torch")
    return {
        "pipeline": models.sklearn_pipeline_frame(d / "pipe.joblib"),
        "forest": models.sklearn_forest_regressor(d / "forest.pkl"),
        "torchscript": script,
    }


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "next step:" in err
    return lines[0]


def test_inspect_plain_words_and_json(files, capsys) -> None:
    assert main(["inspect", str(files["pipeline"])]) == 0
    out = capsys.readouterr().out
    assert "a scikit-learn model (saved with joblib), sklearn.pipeline.Pipeline" in out
    assert "city (text:" in out and "runs code" in out
    assert main(["inspect", str(files["pipeline"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "sklearn" and data["runs_code_on_load"] is True
    assert [c["name"] for c in data["inputs"]] == ["age", "income", "city"]


def test_convert_json_carries_the_proof(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "f.onnx"
    assert main(["convert", str(files["forest"]), "-o", str(out), "--json", "--rows", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = data["report"]
    assert report["rows"] == 50 and report["passed"] is True
    assert report["max_abs_diff"] < 1e-4 and report["onnx_size_bytes"] > 0
    assert {"original_ms", "onnx_ms", "tolerance"} <= set(report)
    assert Path(data["proof_path"]).exists() and data["signature"]["task"] == "regression"


def test_convert_plain_words(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "p.onnx"
    assert main(["convert", str(files["pipeline"]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "gives the same label on 200 of 200 rows" in text
    assert f"ONNX model: {out}" in text


def test_the_bundled_sample_converts_and_proves_on_its_csv(tmp_path: Path, capsys) -> None:
    """What `modelship demo` converts (its deploy is tested in tests/integration)."""
    from app.model.samples import sample_csv_path, sample_model_path

    assert sample_csv_path().read_text().startswith("tenure_months,")
    out = tmp_path / "demo.onnx"
    args = ["convert", str(sample_model_path()), "--sample", str(sample_csv_path()), "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "gives the same label on 300 of 300 rows (your sample CSV)" in text
    assert (tmp_path / "demo.proof.json").exists()
    first = sample_model_path()
    assert first.exists() and sample_model_path() == first  # cached after the first use


@pytest.mark.parametrize(
    ("make", "extra", "code", "expected"),
    [
        (lambda d: d / "missing.pkl", [], 3, "does not exist"),
        (lambda d: _write(d / "table.csv", b"a,b\n1,2\n3,4\n"), [], 3, "not a model file"),
        (lambda d: _write(d / "cut.pkl", b"\x80\x04\x95\x10\x00\x00"), [], 3, "truncated"),
    ],
)
def test_bad_input_one_line_and_exit_code(tmp_path, capsys, make, extra, code, expected) -> None:
    path = make(tmp_path)
    for command in ("inspect", "convert"):
        assert main([command, str(path), *extra]) == code
        assert expected in _one_error(capsys)


def test_pytorch_without_shape_and_bad_shape(files, capsys) -> None:
    assert main(["convert", str(files["torchscript"])]) == 2
    assert "needs an input shape" in _one_error(capsys)
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(files["torchscript"]), "--input-shape", "1,x"])
    assert exc.value.code == 2
    assert "not a shape" in capsys.readouterr().err


def test_csv_without_the_columns(files, tmp_path: Path, capsys) -> None:
    csv = _write(tmp_path / "wrong.csv", b"height,weight\n1,2\n")
    args = ["convert", str(files["pipeline"]), "--sample", str(csv), "-o", str(tmp_path / "x.onnx")]
    assert main(args) == 2
    assert "lacks the model's column(s) age, income, city" in _one_error(capsys)


def test_version_mismatch_cli(files, tmp_path: Path, capsys) -> None:
    import sklearn

    data = files["forest"].read_bytes()
    fake = "9" * len(sklearn.__version__.replace(".", ""))
    fake = ".".join([fake[0], fake[1], fake[2:]]) if len(sklearn.__version__) == 5 else None
    if fake is None or len(fake) != len(sklearn.__version__):
        pytest.skip("cannot fabricate a same-length version string")
    old = _write(tmp_path / "old.pkl", data.replace(sklearn.__version__.encode(), fake.encode()))
    assert main(["convert", str(old), "-o", str(tmp_path / "o.onnx")]) == 3
    line = _one_error(capsys)
    assert fake in line and sklearn.__version__ in line


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
