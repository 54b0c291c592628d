"""Real models of every supported kind are "safe" under the exact allow-list and convert
without --trust, through the guarded worker, with their proof passing."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.model.convert import ConvertOptions, convert_model
from app.model.intake import inspect_model


def _frame(n: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50.0, 12.0, n),
            "city": rng.choice(["a", "b", "c"], n),
        }
    )
    x.loc[5, "age"] = np.nan
    return x, ((x["income"] > 50) ^ (x["city"] == "b")).to_numpy().astype(int)


def _xy(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(int)


def _column_pipeline() -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _frame()
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return Pipeline([("prep", prep), ("lr", LogisticRegression())]).fit(x, y)


def _hgb() -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(*_xy())


def _hgb_categorical() -> object:
    """Categorical columns from the frame's dtype: the model keeps a FunctionTransformer
    of functools.partial(check_array, ...) (listed, see the allow-list's python group)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _frame()
    x["city"] = x["city"].astype("category")
    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y)


def _xgb() -> object:
    import xgboost as xgb

    return xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(*_xy())


def _lgbm() -> object:
    import lightgbm as lgb

    return lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(*_xy())


def _catboost() -> object:
    import catboost as cb

    model = cb.CatBoostClassifier(iterations=5, verbose=False, allow_writing_files=False)
    return model.fit(*_xy())


def _forest_rs() -> object:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
    return model.fit(*_xy())


def _save(model: object, how: str, path: Path) -> Path:
    if how == "pickle":
        path.write_bytes(pickle.dumps(model, protocol=5))
    elif how == "pickle2":
        path.write_bytes(pickle.dumps(model, protocol=2))
    elif how == "joblib":
        import joblib

        joblib.dump(model, path)
    elif how == "joblib-zlib":
        import joblib

        joblib.dump(model, path, compress=("zlib", 3))
    else:
        import skops.io as sio

        sio.dump(model, path)
    return path


CASES: dict[str, tuple[Callable[[], object], str, str]] = {
    "column-transformer-joblib": (_column_pipeline, "joblib", ".joblib"),
    "column-transformer-skops": (_column_pipeline, "skops", ".skops"),
    "hgb-pickle": (_hgb, "pickle", ".pkl"),
    "hgb-joblib-zlib": (_hgb, "joblib-zlib", ".joblib"),
    "forest-randomstate-pickle2": (_forest_rs, "pickle2", ".pkl"),
    "xgboost-pickle": (_xgb, "pickle", ".pkl"),
    "lightgbm-joblib": (_lgbm, "joblib", ".joblib"),
    "catboost-pickle": (_catboost, "pickle", ".pkl"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_real_model_is_safe_and_converts_without_trust(case: str, tmp_path: Path) -> None:
    make, how, suffix = CASES[case]
    path = _save(make(), how, tmp_path / f"{case}{suffix}")
    art = inspect_model(path)
    assert art.safety is not None and art.safety.verdict == "safe", (case, art.safety)
    result = convert_model(path, tmp_path / f"{case}.onnx", ConvertOptions(generated_rows=40))
    assert result.report.passed, (case, result.report.summary())
    assert result.onnx_path.is_file()


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_a_hgb_with_categorical_columns_is_safe(how: str, tmp_path: Path) -> None:
    """Its partial(check_array, ...) is judged with the rest of the list: safe, no --trust."""
    path = _save(_hgb_categorical(), how, tmp_path / f"hgb.{how}")
    art = inspect_model(path)
    assert art.safety is not None and art.safety.verdict == "safe", art.safety
    assert "functools:partial" in art.safety.imports or "functools.partial" in art.safety.imports


def test_a_torch_module_saved_whole_is_safe(tmp_path: Path) -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "net.pt"
    torch.save(net, path)
    art = inspect_model(path)
    assert art.safety is not None and art.safety.verdict == "safe", art.safety
    result = convert_model(path, tmp_path / "net.onnx", ConvertOptions(input_shape=[1, 4]))
    assert result.report.passed, result.report.summary()
