"""Intake: every kind is identified from its bytes, and no pickle is ever executed."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest

from app.errors import ModelError, UnsupportedModelError
from app.model.intake import inspect_model, scan_pickle
from app.model.picklescan import UntrustedModelError
from tests.unit import models


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("intake")
    script, whole = models.torch_models(d / "torch")
    return {
        "pipeline_joblib": models.sklearn_pipeline_frame(d / "pipe.joblib"),
        "pipeline_pickle": models.sklearn_pipeline_frame(d / "pipe.pkl", fmt="pickle"),
        "forest": models.sklearn_forest_regressor(d / "forest.pkl"),
        "xgb_pickle": models.xgboost_classifier_frame(d / "xgb.pkl"),
        "xgb_json": models.xgboost_native(d / "xgb.json"),
        "xgb_ubj": models.xgboost_native(d / "xgb.ubj"),
        "lgbm_joblib": models.lightgbm_classifier(d / "lgbm.joblib"),
        "lgbm_txt": models.lightgbm_native(d / "lgbm.txt"),
        "torchscript": script,
        "torch_module": whole,
    }


def test_pipeline_on_dataframe_reports_columns_categories_and_version(files) -> None:
    import sklearn

    for key, fmt in (("pipeline_joblib", "joblib"), ("pipeline_pickle", "pickle")):
        art = inspect_model(files[key])
        assert (art.kind, art.format) == ("sklearn", fmt)
        assert art.estimator == "sklearn.pipeline.Pipeline"
        assert art.libraries["scikit-learn"] == sklearn.__version__
        assert [c["name"] for c in art.inputs] == ["age", "income", "city"]
        assert art.inputs[2]["dtype"] == "str"
        assert sorted(art.inputs[2]["categories"]) == sorted(models.CITIES)
        assert art.task == "classification" and art.classes == ["no", "yes"]
        assert art.runs_code_on_load
        assert "sklearn.compose._column_transformer.ColumnTransformer" in art.pickle_imports
        assert any("runs code" in w for w in art.warnings)


def test_numpy_fitted_forest_has_generic_feature_names(files) -> None:
    art = inspect_model(files["forest"])
    assert art.estimator == "sklearn.ensemble._forest.RandomForestRegressor"
    assert [c["name"] for c in art.inputs] == ["f0", "f1", "f2", "f3"]
    assert art.task == "regression"


def test_boosters_native_and_pickled(files) -> None:
    xgb = inspect_model(files["xgb_pickle"])
    assert (xgb.kind, xgb.format, xgb.estimator) == (
        "xgboost",
        "pickle",
        "xgboost.sklearn.XGBClassifier",
    )
    assert [c["name"] for c in xgb.inputs] == ["alpha", "beta", "gamma", "delta"]
    for key, fmt in (("xgb_json", "xgboost-json"), ("xgb_ubj", "xgboost-ubj")):
        art = inspect_model(files[key])
        assert (art.kind, art.format, art.task) == ("xgboost", fmt, "regression")
        assert len(art.inputs) == 4 and art.libraries["xgboost"]
        assert not art.runs_code_on_load
    lgbm = inspect_model(files["lgbm_joblib"])
    assert (lgbm.kind, lgbm.format) == ("lightgbm", "joblib")
    txt = inspect_model(files["lgbm_txt"])
    assert (txt.kind, txt.format, txt.task, txt.classes) == (
        "lightgbm",
        "lightgbm-txt",
        "classification",
        [0, 1],
    )
    assert txt.libraries["lightgbm"].startswith("v")


def test_torch_files(files) -> None:
    script = inspect_model(files["torchscript"])
    assert (script.kind, script.format) == ("pytorch", "torchscript")
    assert not script.runs_code_on_load
    whole = inspect_model(files["torch_module"])
    assert (whole.kind, whole.format, whole.estimator) == (
        "pytorch",
        "torch-module",
        "tinynet.TinyNet",
    )
    assert whole.runs_code_on_load
    assert any("tinynet.TinyNet must be importable" in w for w in whole.warnings)


def test_onnx_file_inputs(files, tmp_path: Path) -> None:
    from app.model.convert import ConvertOptions, convert_model

    out = convert_model(files["forest"], tmp_path / "f.onnx", ConvertOptions(generated_rows=20))
    art = inspect_model(out.onnx_path)
    assert (art.kind, art.format) == ("onnx", "onnx")
    assert art.inputs == [{"name": "input", "dtype": "float32", "shape": [None, 4]}]


class _Boom:
    """Unpickling this would create a file: proof that inspect never executes pickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_malicious_pickle_is_read_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "was-executed"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    imports, complete = scan_pickle(path.read_bytes())
    assert (complete and "posix.mkdir" in imports) or "os.mkdir" in imports
    # not a model, and dangerous: refused as such, naming the callable
    with pytest.raises(UntrustedModelError, match=r"would call (posix|os)\.mkdir"):
        inspect_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.pkl", b"", "empty"),
        ("data.csv", b"a,b,c\n1,2,3\n4,5,6\n", "CSV table"),
        ("picture.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image"),
        ("noise.bin", bytes(range(7, 200)) * 3, "not a model file"),
        ("broken.onnx", b"\x08\x07\x12\x04garbage-not-protobuf\xff\xff", "truncated or corrupt"),
        ("broken.json", b'{"learner": {"gradient_booster": ', "truncated or corrupt"),
        ("list.pkl", pickle.dumps([1, 2, 3]), "not a trained model"),
    ],
)
def test_bad_files_get_one_plain_error(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        inspect_model(path)
    assert expected in err.value.message
    assert err.value.hint and "\n" not in err.value.message


def test_truncated_files(files, tmp_path: Path) -> None:
    for key in ("pipeline_pickle", "pipeline_joblib", "torch_module", "lgbm_txt", "xgb_ubj"):
        data = files[key].read_bytes()
        cut = tmp_path / f"cut-{files[key].name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelError, match="truncated"):
            inspect_model(cut)


def test_compressed_joblib_is_read_and_truncation_detected(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    X, _, y = models.numeric_data()
    path = tmp_path / "lr.joblib"
    joblib.dump(LinearRegression().fit(X, y), path, compress=3)
    art = inspect_model(path)
    assert (art.format, art.estimator) == ("joblib", "sklearn.linear_model._base.LinearRegression")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        inspect_model(path)


def test_state_dict_and_plain_zip_are_refused(tmp_path: Path) -> None:
    import torch

    sd = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 1).state_dict(), sd)
    with pytest.raises(UnsupportedModelError, match="state_dict"):
        inspect_model(sd)
    z = tmp_path / "stuff.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelError, match="not a saved model"):
        inspect_model(z)


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        inspect_model(tmp_path / "nope.pkl")
    with pytest.raises(ModelError, match="folder"):
        inspect_model(tmp_path)


def test_version_recorded_in_pickle_differs(files, tmp_path: Path) -> None:
    import sklearn

    data = files["pipeline_pickle"].read_bytes()
    fake = "0.0.0"[: len(sklearn.__version__)].ljust(len(sklearn.__version__), "0")
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(sklearn.__version__.encode(), fake.encode()))
    art = inspect_model(path)
    assert art.libraries["scikit-learn"] == fake
    assert any(fake in w and sklearn.__version__ in w and "--python" in w for w in art.warnings)
