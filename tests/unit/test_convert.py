"""Conversion: every kind converts for real, and the proof is real (original vs ONNX)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from app.errors import (
    Cancelled,
    ConversionError,
    EnvironmentMismatchError,
    ModelError,
    ParityError,
    UnsupportedModelError,
    UsageError,
)
from app.model.convert import ConvertOptions, convert_model
from app.model.picklescan import UntrustedModelError
from app.progress import CancelToken, RecordingProgress
from app.serving.signature import Signature
from tests.unit import models

FAST = ConvertOptions(generated_rows=200)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("convert")
    script, whole = models.torch_models(d / "torch")
    return {
        "pipeline": models.sklearn_pipeline_frame(d / "pipe.joblib"),
        "forest": models.sklearn_forest_regressor(d / "forest.pkl"),
        "xgb_pickle": models.xgboost_classifier_frame(d / "xgb.pkl"),
        "xgb_json": models.xgboost_native(d / "xgb.json"),
        "xgb_pipeline": models.xgboost_in_pipeline(d / "xgb-pipe.joblib"),
        "xgb_ubj": models.xgboost_native(d / "xgb.ubj"),
        "lgbm_joblib": models.lightgbm_classifier(d / "lgbm.joblib"),
        "lgbm_pipeline": models.lightgbm_classifier(d / "lgbm-pipe.joblib", in_pipeline=True),
        "lgbm_txt": models.lightgbm_native(d / "lgbm.txt"),
        "torchscript": script,
        "torch_module": whole,
    }


def _python_with_module(model: Path, tmp_path: Path) -> str:
    """A Python where the model's own class (tinynet.py) is installed, as in the
    environment it was trained in: the converter never imports code from beside the model."""
    wrapper = tmp_path / "python-with-tinynet"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{model.parent}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _files_written(result) -> None:
    assert result.onnx_path.exists()
    assert result.signature_path == Signature.path_for(result.onnx_path)
    assert Signature.load(result.signature_path) == result.signature
    assert result.signature.has_dynamic_batch
    proof = json.loads(result.proof_path.read_text())
    assert proof["schema"] == 1 and proof["tolerance"] == result.report.tolerance
    return proof


def test_pipeline_with_string_categories_on_dataframe(files, tmp_path: Path) -> None:
    progress = RecordingProgress()
    result = convert_model(files["pipeline"], tmp_path / "pipe.onnx", FAST, progress)
    r = result.report
    assert r.passed and r.rows == 200 and r.labels_agreeing == 200
    assert r.max_abs_diff_probabilities is not None and r.max_abs_diff_probabilities < 1e-4
    assert "same label on 200 of 200 rows" in r.summary()
    sig = result.signature
    assert [c.name for c in sig.columns] == ["age", "income", "city"]
    assert [(t.name, t.dtype) for t in sig.inputs] == [
        ("age", "float32"),
        ("income", "float32"),
        ("city", "str"),
    ]
    assert sig.task == "classification" and sig.class_labels == ["no", "yes"]
    assert sig.label_output == "label" and sig.probability_output == "probabilities"
    proof = _files_written(result)
    assert proof["columns"] == ["age", "income", "city"]
    assert len(proof["rows"]) == 20 and set(proof["rows"][0]) == {"age", "income", "city"}
    assert {row["city"] for row in proof["rows"]} <= set(models.CITIES)
    assert set(proof["predictions"]) <= {"yes", "no"}
    assert len(proof["probabilities"][0]) == 2
    # the ONNX model itself, fed from the proof's records, gives the original's answers
    sess = ort.InferenceSession(str(result.onnx_path))
    feeds = {
        "age": np.array([[r["age"]] for r in proof["rows"]], dtype=np.float32),
        "income": np.array([[r["income"]] for r in proof["rows"]], dtype=np.float32),
        "city": np.array([[r["city"]] for r in proof["rows"]], dtype=object),
    }
    labels, probs = sess.run(["label", "probabilities"], feeds)
    assert list(labels) == proof["predictions"]
    assert np.abs(probs - np.array(proof["probabilities"])).max() < 1e-4
    assert "Running the original model on sample rows" in str(progress.events)


def test_forest_regressor_from_numpy(files, tmp_path: Path) -> None:
    result = convert_model(files["forest"], tmp_path / "forest.onnx", FAST)
    assert result.report.passed and result.report.labels_agreeing is None
    assert result.report.max_abs_diff < 1e-4
    assert result.signature.task == "regression"
    assert [c.name for c in result.signature.columns] == ["f0", "f1", "f2", "f3"]
    assert {c.input for c in result.signature.columns} == {"input"}
    proof = _files_written(result)
    assert len(proof["predictions"]) == 20 and isinstance(proof["predictions"][0], float)


@pytest.mark.parametrize("key", ["xgb_pickle", "lgbm_joblib", "lgbm_pipeline", "lgbm_txt"])
def test_boosted_classifiers(files, tmp_path: Path, key: str) -> None:
    result = convert_model(files[key], tmp_path / f"{key}.onnx", FAST)
    r = result.report
    assert r.passed, r.summary()
    assert r.labels_agreeing == r.rows == 200
    assert r.max_abs_diff_probabilities < 1e-4
    assert result.signature.probability_output and result.signature.label_output
    _files_written(result)
    if key == "xgb_pickle":  # DataFrame feature names survive into the signature
        assert [c.name for c in result.signature.columns] == ["alpha", "beta", "gamma", "delta"]


@pytest.mark.parametrize("key", ["xgb_json", "xgb_ubj", "xgb_pipeline"])
def test_xgboost_regressors(files, tmp_path: Path, key: str) -> None:
    result = convert_model(files[key], tmp_path / f"{key}.onnx", FAST)
    assert result.report.passed, result.report.summary()
    assert result.signature.framework == ("sklearn" if key == "xgb_pipeline" else "xgboost")
    assert result.signature.task == "regression"
    _files_written(result)


@pytest.mark.parametrize("key", ["torchscript", "torch_module"])
def test_pytorch(files, tmp_path: Path, key: str) -> None:
    opts = ConvertOptions(input_shape=[1, 3, 16, 16], generated_rows=200)
    if key == "torch_module":
        # a whole module pickles the user's own class: unknown code, loaded only on trust
        with pytest.raises(UntrustedModelError, match=r"tinynet\.TinyNet"):
            convert_model(files[key], tmp_path / f"{key}.onnx", opts)
        opts = ConvertOptions(
            input_shape=[1, 3, 16, 16],
            generated_rows=200,
            trust=True,
            python=_python_with_module(files[key], tmp_path),
        )
    result = convert_model(files[key], tmp_path / f"{key}.onnx", opts)
    r = result.report
    assert r.passed and r.rows == 200 and r.max_abs_diff < 1e-4
    sig = result.signature
    assert sig.columns == [] and sig.inputs[0].shape == [None, 3, 16, 16]
    proof = _files_written(result)
    assert proof["columns"] is None
    assert np.asarray(proof["inputs"]["input"]).shape[1:] == (3, 16, 16)
    assert np.asarray(proof["outputs"]["output"]).shape[1] == 2
    # the batch axis really is dynamic
    sess = ort.InferenceSession(str(result.onnx_path))
    assert sess.run(None, {"input": np.zeros((7, 3, 16, 16), np.float32)})[0].shape == (7, 2)


def test_pytorch_without_input_shape(files, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="input shape") as err:
        convert_model(files["torchscript"], tmp_path / "x.onnx", FAST)
    assert "--input-shape" in err.value.hint


def test_pytorch_with_wrong_input_shape(files, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not accept an input of shape"):
        convert_model(
            files["torchscript"], tmp_path / "x.onnx", ConvertOptions(input_shape=[1, 5, 8, 8])
        )


def test_quantize_has_its_own_proof(files, tmp_path: Path) -> None:
    opts = ConvertOptions(input_shape=[1, 3, 16, 16], quantize=True)
    result = convert_model(files["torchscript"], tmp_path / "q.onnx", opts)
    q = result.quantized
    assert q is not None and q.onnx_path.name == "q.int8.onnx"
    assert q.report.quantized and q.report.tolerance == 0.05 and q.report.passed
    assert q.report.rows == 200
    assert q.report.size_saved_bytes == result.report.onnx_size_bytes - q.report.onnx_size_bytes
    assert q.proof_path.exists() and q.signature_path.exists()
    assert "quantized model" in q.report.summary()


def test_sample_csv_is_used_and_checked(files, tmp_path: Path) -> None:
    df, y = models.tabular_frame(n=50, seed=9)
    csv = tmp_path / "rows.csv"
    df.assign(label=y)[["city", "income", "age", "label"]].to_csv(csv, index=False)
    result = convert_model(files["pipeline"], tmp_path / "p.onnx", ConvertOptions(sample_csv=csv))
    assert result.report.rows == 50 and result.report.rows_from == "csv"
    assert any("label" in w for w in result.report.warnings)  # the extra column is named
    bad = tmp_path / "bad.csv"
    df.drop(columns=["city"]).to_csv(bad, index=False)
    with pytest.raises(UsageError, match=r"lacks the model's column.*city"):
        convert_model(files["pipeline"], tmp_path / "p2.onnx", ConvertOptions(sample_csv=bad))


def test_parity_failure_and_override(files, tmp_path: Path) -> None:
    strict = ConvertOptions(tolerance=1e-12)
    with pytest.raises(ParityError) as err:
        convert_model(files["xgb_json"], tmp_path / "s.onnx", strict)
    assert err.value.report.passed is False and err.value.report.rows_over_tolerance > 0
    assert "--tolerance" in err.value.hint  # values only: a looser tolerance is the way on
    assert not (tmp_path / "s.onnx").exists()  # nothing unproven is left behind
    result = convert_model(
        files["xgb_json"], tmp_path / "s.onnx", ConvertOptions(tolerance=1e-12, allow_mismatch=True)
    )
    assert not result.report.passed and "more than the tolerance" in result.report.summary()


def test_onnx_in_is_checked_and_described(files, tmp_path: Path) -> None:
    first = convert_model(files["forest"], tmp_path / "a.onnx", FAST)
    again = convert_model(first.onnx_path, tmp_path / "b.onnx", FAST)
    assert again.signature.framework == "onnx" and again.report.rows == 0
    assert "already ONNX" in again.report.summary()


def test_version_mismatch_names_both_versions(files, tmp_path: Path) -> None:
    import sklearn

    data = files["forest"].read_bytes()
    fake = "1.0.0"[: len(sklearn.__version__)].ljust(len(sklearn.__version__), "0")
    old = tmp_path / "old.pkl"
    old.write_bytes(data.replace(sklearn.__version__.encode(), fake.encode()))
    with pytest.raises(EnvironmentMismatchError) as err:
        convert_model(old, tmp_path / "o.onnx", FAST)
    assert fake in err.value.message and sklearn.__version__ in err.value.message
    assert "--python" in err.value.hint and "--match-env" in err.value.hint


def test_chosen_python_is_used_and_missing_converter_is_named(files, tmp_path: Path) -> None:
    python = shutil.which("python3", path="/usr/bin")
    if not python or python == sys.executable:
        pytest.skip("no second Python without the converters on this machine")
    with pytest.raises(EnvironmentMismatchError, match=r"onnxmltools|xgboost") as err:
        convert_model(files["xgb_json"], tmp_path / "x.onnx", ConvertOptions(python=python))
    assert "pip install" in err.value.hint and python in err.value.hint


def test_version_mismatch_found_by_the_chosen_python(files, tmp_path: Path) -> None:
    """With --python the check runs in that interpreter, before the pickle is loaded."""
    import sklearn

    data = files["forest"].read_bytes()
    fake = "1.0.0"[: len(sklearn.__version__)].ljust(len(sklearn.__version__), "0")
    old = tmp_path / "old.pkl"
    old.write_bytes(data.replace(sklearn.__version__.encode(), fake.encode()))
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(EnvironmentMismatchError) as err:
        convert_model(old, tmp_path / "o.onnx", ConvertOptions(python=str(wrapper)))
    assert fake in err.value.message and sklearn.__version__ in err.value.message
    assert f"scikit-learn=={fake}" in err.value.hint


def test_transformer_alone_is_not_a_model(tmp_path: Path) -> None:
    import pickle

    from sklearn.preprocessing import StandardScaler

    X, _, _ = models.numeric_data()
    path = tmp_path / "scaler.pkl"
    path.write_bytes(pickle.dumps(StandardScaler().fit(X)))
    with pytest.raises(UnsupportedModelError, match="only transforms data"):
        convert_model(path, tmp_path / "s.onnx", FAST)


def test_python_that_does_not_exist(files, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        convert_model(files["forest"], tmp_path / "x.onnx", ConvertOptions(python="/no/python"))


def test_unsupported_estimator_is_named(tmp_path: Path) -> None:
    import pickle

    from sklearn.isotonic import IsotonicRegression

    X, _, y = models.numeric_data()
    path = tmp_path / "iso.pkl"
    path.write_bytes(pickle.dumps(IsotonicRegression().fit(X[:, 0], y)))
    with pytest.raises((UnsupportedModelError, ModelError)) as err:
        convert_model(path, tmp_path / "iso.onnx", FAST)
    assert "IsotonicRegression" in err.value.message
    assert "XGBoost" in err.value.hint


def test_cancel_stops_the_worker(files, tmp_path: Path) -> None:
    token = CancelToken()

    class CancelOnFirstUpdate(RecordingProgress):
        def update(self, fraction=None, message=None) -> None:
            super().update(fraction, message)
            token.cancel()

    with pytest.raises(Cancelled):
        convert_model(files["forest"], tmp_path / "c.onnx", FAST, CancelOnFirstUpdate(), token)
    assert not (tmp_path / "c.onnx").exists()


def test_timeout(files, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="longer than"):
        convert_model(files["forest"], tmp_path / "t.onnx", ConvertOptions(timeout_s=0.2))
    assert not (tmp_path / "t.onnx").exists()


def test_worker_needs_nothing_from_app(files, tmp_path: Path) -> None:
    """The worker runs under other Pythons (and from the frozen app): it must stand alone.

    A wrapper interpreter that makes ``import app`` fail runs a whole conversion. The
    worker's package reaches outside its folder only for the facts it shares with intake
    and for isolation.py, both standard library only.
    """
    import ast

    from app.model.convert import WORKER

    sources = sorted(WORKER.parent.glob("*.py"))
    sources += [WORKER.parents[1] / "isolation.py", WORKER.parents[2] / "modelfacts.py"]
    imported, outside = set(), set()
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            if isinstance(n, ast.Import | ast.ImportFrom):
                for a in n.names:
                    imported.add((n.module or "") if isinstance(n, ast.ImportFrom) else a.name)
            if isinstance(n, ast.ImportFrom) and n.level > 1:
                outside |= {"." * n.level + (n.module or a.name) for a in n.names}
    assert not {m for m in imported if m == "app" or m.startswith("app.")}
    assert outside <= {"..isolation", "...modelfacts"}, outside
    wrapper = tmp_path / "python-without-app"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{sys.executable}" -c "import runpy, sys; sys.modules[\'app\'] = None; '
        'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name=\'__main__\')" "$@"\n'
    )
    wrapper.chmod(0o755)
    result = convert_model(
        files["forest"], tmp_path / "w.onnx", ConvertOptions(python=str(wrapper), generated_rows=30)
    )
    assert result.report.passed and result.report.rows == 30


def test_pytorch_sample_npy_gives_shape_and_rows(files, tmp_path: Path) -> None:
    sample = tmp_path / "inputs.npy"
    np.save(sample, np.random.default_rng(3).normal(size=(12, 3, 10, 10)).astype(np.float32))
    result = convert_model(
        files["torch_module"],
        tmp_path / "n.onnx",
        ConvertOptions(
            sample_csv=sample,
            trust=True,
            python=_python_with_module(files["torch_module"], tmp_path),
        ),
    )
    assert result.report.rows == 12 and result.report.rows_from == "npy" and result.report.passed
    assert result.signature.inputs[0].shape == [None, 3, 10, 10]
    assert "your sample" in result.report.summary()
    with pytest.raises(UsageError, match=r"\.npy file"):
        convert_model(
            files["torch_module"],
            tmp_path / "m.onnx",
            ConvertOptions(
                sample_csv=models.sklearn_forest_regressor(tmp_path / "not-a-sample.csv"),
                trust=True,
            ),
        )
