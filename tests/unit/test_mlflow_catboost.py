"""Issue 15 (items 2-4): MLflow model folders of each flavor, skops and CatBoost files,
and LightGBM/XGBoost files that keep their feature names; every model is trained here
and converted for real, with the proof (original vs ONNX) passing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.commands.inspect import describe
from app.errors import ModelError, UnsupportedModelError
from app.hashing import sha256_file
from app.model.convert import ConvertOptions, convert_model
from app.model.intake import inspect_model
from app.model.picklescan import SAFE, UNKNOWN, UntrustedModelError
from tests.unit import mlflow_models as mm

FAST = ConvertOptions(generated_rows=100)
NAMES = mm.COLUMNS


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("issue15")
    out = {
        "mlflow_sklearn": mm.mlflow_sklearn(d / "sk-skops"),
        "mlflow_sklearn_pickle": mm.mlflow_sklearn(d / "sk-pickle", "cloudpickle"),
        "mlflow_sklearn_numpy": mm.mlflow_sklearn_numpy(d / "sk-numpy"),
        "mlflow_xgboost": mm.mlflow_xgboost(d / "xgb"),
        "mlflow_lightgbm": mm.mlflow_lightgbm(d / "lgbm"),
        "mlflow_lightgbm_booster": mm.mlflow_lightgbm(d / "lgbm-booster", booster=True),
        "mlflow_catboost": mm.mlflow_catboost(d / "catboost"),
        "mlflow_pytorch": mm.mlflow_pytorch(d / "torch"),
        "mlflow_pytorch_pickle": mm.mlflow_pytorch(d / "torch-pickle", "pickle"),
        "mlflow_onnx": mm.mlflow_onnx(d / "onnx"),
        "pyfunc": mm.pyfunc_only(d / "pyfunc"),
    }
    out.update({f"cb_{k}": v for k, v in mm.catboost_files(d / "cb").items()})
    out.update({f"skops_{k}": v for k, v in mm.skops_files(d / "skops").items()})
    out.update(mm.named_boosters(d / "boosters"))
    return out


# ---------------------------------------------------------------------------
# intake
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "kind", "fmt"),
    [
        ("mlflow_sklearn", "sklearn", "skops"),
        ("mlflow_sklearn_pickle", "sklearn", "pickle"),
        ("mlflow_xgboost", "xgboost", "xgboost-ubj"),
        ("mlflow_lightgbm", "lightgbm", "skops"),
        ("mlflow_lightgbm_booster", "lightgbm", "lightgbm-txt"),
        ("mlflow_catboost", "catboost", "catboost-cbm"),
    ],
)
def test_mlflow_folder_intake(files, key: str, kind: str, fmt: str) -> None:
    art = inspect_model(files[key])
    assert (art.kind, art.format) == (kind, fmt)
    assert art.mlflow is not None and art.mlflow.folder == files[key]
    assert art.path.parent == files[key] and art.name == files[key].name
    # the signature's names, and the input example as sample rows
    assert [c["name"] for c in art.inputs] == NAMES
    assert art.mlflow.example["columns"] == NAMES and len(art.mlflow.example["rows"]) == 5
    # the recorded requirements are the artifact's recorded library versions
    flavor_dist = {"sklearn": "scikit-learn"}.get(kind, kind)
    assert art.libraries[flavor_dist] == art.mlflow.requirements.get(
        flavor_dist, art.mlflow.requirements.get("xgboost")
    )
    assert "mlflow" in art.mlflow.requirements and "mlflow" not in art.libraries
    text = "\n".join(describe(art))
    assert f"{files[key].name}: an MLflow model ({art.mlflow.flavor} flavor)" in text
    assert json.dumps(art.to_dict())  # inspect --json


def test_mlflow_skops_is_checked_by_skops(files) -> None:
    art = inspect_model(files["mlflow_sklearn"])
    assert art.safety is not None and art.safety.verdict == SAFE
    assert not art.runs_code_on_load
    assert art.libraries["skops"] == art.mlflow.requirements["skops"]
    lgbm = inspect_model(files["mlflow_lightgbm"])  # skops lists lightgbm's types: known
    assert lgbm.safety.verdict == SAFE and "lightgbm.basic.Booster" in lgbm.safety.imports


def test_mlflow_pytorch_and_onnx_intake(files) -> None:
    art = inspect_model(files["mlflow_pytorch"])
    assert (art.kind, art.format) == ("pytorch", "torch-export")
    assert art.inputs == [{"name": "input", "dtype": "float32", "shape": [None, 3]}]
    assert len(art.mlflow.example["array"]) == 5
    assert not any("needs an input shape" in w for w in art.warnings)
    onx = inspect_model(files["mlflow_onnx"])
    assert (onx.kind, onx.format) == ("onnx", "onnx")


def test_pyfunc_only_folder_is_refused_naming_the_flavors(files, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        inspect_model(files["pyfunc"])
    assert "python_function" in err.value.message
    assert "sklearn, xgboost, lightgbm, catboost, pytorch and onnx" in err.value.hint
    plain = tmp_path / "plain-folder"
    plain.mkdir()
    with pytest.raises(ModelError) as err:
        inspect_model(plain)
    assert "no MLmodel file" in err.value.message


def test_mlflow_uri_needs_a_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ModelError) as err:
        inspect_model("runs:/0123abc/model")
    assert "no MLflow tracking server is configured" in err.value.message
    assert "MLFLOW_TRACKING_URI" in err.value.hint


def test_mlflow_uri_is_downloaded_from_the_tracking_server(files, tmp_path: Path) -> None:
    """Logged to a real (file-based) tracking store, then read back by its runs:/ URI.

    Both run in their own process: MLflow's artifact repository keeps a thread pool.
    """
    store = tmp_path / "mlruns"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.as_uri(),
        # a file-based tracking store: a real MLflow backend that needs no server here
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    log = (
        "import mlflow, sys\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_artifacts(sys.argv[1], artifact_path='model')\n"
        "print(run.info.run_id)\n"
    )
    logged = subprocess.run(
        [sys.executable, "-c", log, str(files["mlflow_xgboost"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert logged.returncode == 0, logged.stderr
    uri = f"runs:/{logged.stdout.split()[-1]}/model"
    res = subprocess.run(
        [sys.executable, "-m", "app.cli", "inspect", uri, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    art = json.loads(res.stdout)
    assert art["kind"] == "xgboost" and art["mlflow"]["uri"] == uri
    assert [c["name"] for c in art["inputs"]] == NAMES


def test_folder_hash_covers_every_file(files, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(files["mlflow_sklearn"], copy)
    assert sha256_file(copy) == sha256_file(files["mlflow_sklearn"])
    (copy / "input_example.json").write_text("{}")
    assert sha256_file(copy) != sha256_file(files["mlflow_sklearn"])


def test_catboost_intake(files) -> None:
    art = inspect_model(files["cb_cbm"])
    assert (art.kind, art.format) == ("catboost", "catboost-cbm")
    assert art.safety is None and not art.runs_code_on_load
    assert [c["name"] for c in art.inputs] == NAMES
    assert (art.task, art.classes) == ("classification", ["no", "yes"])
    assert inspect_model(files["cb_cbm_reg"]).task == "regression"
    pkl = inspect_model(files["cb_pickle"])
    assert (pkl.kind, pkl.format) == ("catboost", "pickle")
    assert pkl.safety.verdict == SAFE and pkl.classes == ["no", "yes"]
    assert [c["name"] for c in pkl.inputs] == NAMES


def test_skops_file_outside_mlflow(files) -> None:
    art = inspect_model(files["skops_plain"])
    assert (art.kind, art.format) == ("sklearn", "skops")
    assert art.safety.verdict == SAFE and art.classes == ["no", "yes"]
    assert [c["name"] for c in art.inputs] == NAMES
    custom = inspect_model(files["skops_custom"])
    assert custom.safety.verdict == UNKNOWN
    assert "tests.unit.mlflow_models.double" in custom.safety.unknown


def test_booster_files_report_their_names_and_format(files) -> None:
    for key in ("lgbm_txt", "xgb_json", "xgb_ubj"):
        assert [c["name"] for c in inspect_model(files[key]).inputs] == NAMES, key
    unnamed = inspect_model(files["lgbm_txt_unnamed"])
    assert [c["name"] for c in unnamed.inputs] == ["f0", "f1", "f2"]
    # joblib writes a plain pickle when the model holds no arrays: still joblib
    art = inspect_model(files["xgb_joblib"])
    assert art.format == "joblib"
    assert "saved with joblib" in describe(art)[0]


# ---------------------------------------------------------------------------
# conversion, with the proof
# ---------------------------------------------------------------------------
def _columns(result) -> list[str]:
    return [c.name for c in result.signature.columns]


@pytest.mark.parametrize(
    "key",
    [
        "mlflow_sklearn",
        "mlflow_sklearn_pickle",
        "mlflow_xgboost",
        "mlflow_lightgbm",
        "mlflow_lightgbm_booster",
        "mlflow_catboost",
    ],
)
def test_mlflow_tabular_flavors_convert_with_proof(files, tmp_path: Path, key: str) -> None:
    result = convert_model(files[key], tmp_path / "m.onnx", FAST)
    assert result.report.passed and result.report.rows_from == "example"
    assert result.report.rows == 105  # the 5 example rows first, then generated ones
    assert _columns(result) == NAMES
    assert result.signature.task == "classification"
    assert result.signature.model_name == files[key].name
    proof = json.loads(result.proof_path.read_text())
    assert proof["columns"] == NAMES and len(proof["rows"]) == 20
    assert "input example" in result.report.summary()


def test_mlflow_signature_names_a_model_fitted_on_an_array(files, tmp_path: Path) -> None:
    result = convert_model(files["mlflow_sklearn_numpy"], tmp_path / "m.onnx", FAST)
    assert result.report.passed and _columns(result) == NAMES
    assert result.signature.task == "regression"


@pytest.mark.parametrize("key", ["mlflow_pytorch", "mlflow_pytorch_pickle"])
def test_mlflow_pytorch_converts_with_shape_from_the_signature(
    files, tmp_path: Path, key: str
) -> None:
    result = convert_model(files[key], tmp_path / "m.onnx", FAST)
    assert result.report.passed and result.report.rows_from == "example"
    assert result.report.rows == 105
    assert result.signature.inputs[0].shape[1:] == [3]


def test_mlflow_onnx_is_adopted(files, tmp_path: Path) -> None:
    result = convert_model(files["mlflow_onnx"], tmp_path / "m.onnx", FAST)
    assert result.report.passed and result.signature.framework == "onnx"
    assert result.signature.model_name == "onnx"


@pytest.mark.parametrize("key", ["cb_cbm", "cb_pickle"])
def test_catboost_classifier_converts_with_proof(files, tmp_path: Path, key: str) -> None:
    result = convert_model(files[key], tmp_path / "m.onnx", FAST)
    assert result.report.passed and result.report.labels_agreeing == result.report.rows
    sig = result.signature
    assert _columns(sig_holder := result) == NAMES and sig_holder is result
    assert sig.task == "classification" and sig.class_labels == ["no", "yes"]
    assert sig.probability_output == "probabilities" and sig.label_output == "label"


def test_catboost_regressor_converts_with_proof(files, tmp_path: Path) -> None:
    result = convert_model(files["cb_cbm_reg"], tmp_path / "m.onnx", FAST)
    assert result.report.passed and result.signature.task == "regression"
    assert _columns(result) == NAMES


def test_skops_conversion_needs_trust_for_unknown_types(files, tmp_path: Path) -> None:
    ok = convert_model(files["skops_plain"], tmp_path / "plain.onnx", FAST)
    assert ok.report.passed and _columns(ok) == NAMES
    with pytest.raises(UntrustedModelError) as err:
        convert_model(files["skops_custom"], tmp_path / "custom.onnx", FAST)
    assert "tests.unit.mlflow_models.double" in err.value.message


@pytest.mark.parametrize("key", ["lgbm_txt", "xgb_json", "xgb_ubj"])
def test_native_boosters_keep_their_feature_names(files, tmp_path: Path, key: str) -> None:
    result = convert_model(files[key], tmp_path / "m.onnx", FAST)
    assert result.report.passed and _columns(result) == NAMES
    proof = json.loads(result.proof_path.read_text())
    assert list(proof["rows"][0]) == NAMES


def test_lightgbm_default_names_stay_generic(files, tmp_path: Path) -> None:
    result = convert_model(files["lgbm_txt_unnamed"], tmp_path / "m.onnx", FAST)
    assert result.report.passed and _columns(result) == ["f0", "f1", "f2"]


def test_catboost_with_categorical_features_is_refused_plainly(tmp_path: Path) -> None:
    from catboost import CatBoostClassifier

    X, y = mm.frame()
    X["city"] = ["Ulm" if a > 45 else "Bonn" for a in X["age"]]
    model = CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False).fit(
        X, y, cat_features=["city"]
    )
    path = tmp_path / "cats.cbm"
    model.save_model(str(path))
    art = inspect_model(path)
    assert {c["name"]: c["dtype"] for c in art.inputs}["city"] == "str"
    with pytest.raises(UnsupportedModelError) as err:
        convert_model(path, tmp_path / "cats.onnx", FAST)
    assert "categorical features" in err.value.message
    assert "one-hot" in err.value.hint
