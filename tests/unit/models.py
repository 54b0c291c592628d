"""Small models trained on synthetic data, for the intake and conversion tests.

Everything is tiny (a few trees, a few hundred rows) so that the tests stay fast; no
downloads. Each helper writes a file and returns its path.
"""

from __future__ import annotations

import pickle
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

CITIES = ["Ulm", "Bonn", "Kiel"]


def tabular_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Mixed numeric and string columns; the label depends on both."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50.0, 12.0, n).round(2),
            "city": rng.choice(CITIES, n),
        }
    )
    score = (df["age"] - 45) / 10 + (df["income"] - 50) / 12 + (df["city"] == "Ulm") * 1.5
    y = pd.Series(np.where(score + rng.normal(0, 0.5, n) > 0, "yes", "no"), name="label")
    return df, y


def numeric_data(
    n: int = 300, d: int = 4, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, a 3-class label and a regression target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y_cls = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3).astype(int)
    y_reg = 3 * X[:, 0] - 2 * X[:, 1] + 0.5 * X[:, 2] + rng.normal(0, 0.1, n)
    return X, y_cls, y_reg


def sklearn_pipeline_frame(path: Path, fmt: str = "joblib") -> Path:
    """ColumnTransformer (scaled numbers + one-hot strings) + LogisticRegression on a DataFrame."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df, y = tabular_frame()
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(df, y)
    _save(model, path, fmt)
    return path


def sklearn_forest_regressor(path: Path, fmt: str = "pickle") -> Path:
    """A random forest fitted on a plain numpy array (no column names)."""
    from sklearn.ensemble import RandomForestRegressor

    X, _, y = numeric_data()
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    _save(model, path, fmt)
    return path


def xgboost_classifier_frame(path: Path) -> Path:
    """XGBClassifier fitted on a DataFrame: its booster carries real feature names."""
    from xgboost import XGBClassifier

    X, y, _ = numeric_data()
    df = pd.DataFrame(X, columns=["alpha", "beta", "gamma", "delta"])
    model = XGBClassifier(n_estimators=5, max_depth=3, random_state=0).fit(df, y)
    _save(model, path, "pickle")
    return path


def xgboost_in_pipeline(path: Path) -> Path:
    """StandardScaler + XGBRegressor: XGBoost inside a scikit-learn pipeline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBRegressor

    X, _, y = numeric_data()
    model = make_pipeline(StandardScaler(), XGBRegressor(n_estimators=5, max_depth=3))
    _save(model.fit(X, y), path, "joblib")
    return path


def xgboost_native(path: Path) -> Path:
    """A native XGBoost regressor booster (.json or .ubj by the suffix)."""
    import xgboost as xgb

    X, _, y = numeric_data()
    booster = xgb.train(
        {"max_depth": 3, "objective": "reg:squarederror"}, xgb.DMatrix(X, label=y), 5
    )
    booster.save_model(str(path))
    return path


def lightgbm_classifier(path: Path, in_pipeline: bool = False) -> Path:
    from lightgbm import LGBMClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _ = numeric_data()
    clf = LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1, random_state=0)
    model = make_pipeline(StandardScaler(), clf) if in_pipeline else clf
    model.fit(X, y)
    _save(model, path, "joblib")
    return path


def lightgbm_native(path: Path) -> Path:
    """A native LightGBM binary classifier in text format."""
    import lightgbm as lgb

    X, y, _ = numeric_data()
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1},
        lgb.Dataset(X, label=(y > 0).astype(int)),
        num_boost_round=5,
    )
    booster.save_model(str(path))
    return path


TORCH_MODULE = textwrap.dedent(
    """
    import torch


    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean((2, 3)))
    """
)


def torch_models(folder: Path) -> tuple[Path, Path]:
    """(TorchScript file, whole-module torch.save file) of the same tiny CNN.

    The module's class lives in ``tinynet.py`` next to the files, the way a user keeps
    their model code: the converter finds it there.
    """
    import importlib

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tinynet.py").write_text(TORCH_MODULE, encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        mod = importlib.import_module("tinynet")
        torch.manual_seed(0)
        net = mod.TinyNet().eval()
        script = folder / "tiny.torchscript.pt"
        with warnings.catch_warnings():  # torch 2.13 deprecates jit.script; files still load
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.script(net).save(str(script))
        whole = folder / "tiny.module.pt"
        torch.save(net, str(whole))
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("tinynet", None)
    return script, whole


def _save(model: object, path: Path, fmt: str) -> None:
    if fmt == "joblib":
        import joblib

        joblib.dump(model, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(model, fh)
