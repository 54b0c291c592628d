"""Issue 15: an MLflow model folder, a CatBoost model and a named LightGBM text file
deploy end to end to the local target (`modelship deploy`, the smoke test passing), and
the endpoint takes the column names the model was trained or logged with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_deploy_cli import modelship
from tests.integration.test_local_target import assert_nothing_left, free_port, predict
from tests.unit import mlflow_models as mm

pytestmark = pytest.mark.slow

ROW = {"age": 61.0, "income": 48.5, "score": 0.7}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("issue15-deploy")
    return {
        "mlflow": mm.mlflow_sklearn(d / "churn-mlflow"),
        "mlflow_xgboost": mm.mlflow_xgboost(d / "churn-xgb-mlflow"),
        "catboost": mm.catboost_files(d / "cb")["cbm"],
        "lightgbm": mm.named_boosters(d / "boosters")["lgbm_txt"],
    }


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("mlflow", "churn-mlflow"),
        ("mlflow_xgboost", "churn-xgb"),
        ("catboost", "churn-cb"),
        ("lightgbm", "churn-lgbm"),
    ],
)
def test_deploy_answers_with_the_models_own_column_names(
    models: dict[str, Path], key: str, name: str
) -> None:
    port = free_port()
    res = modelship("deploy", str(models[key]), "--name", name, "--port", str(port), "--json")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["smoke"]["passed"] is True, record["smoke"]
    url = f"http://127.0.0.1:{port}"
    try:
        answer = predict(url, [ROW])  # the analyst's own column names
        assert len(answer["predictions"]) == 1
        if key != "lightgbm":
            labels = {"mlflow_xgboost": {0, 1}}.get(key, {"no", "yes"})
            assert answer["predictions"][0] in labels
    finally:
        gone = modelship("teardown", name)
        assert gone.returncode == 0, gone.stderr
    assert_nothing_left(name, port)
