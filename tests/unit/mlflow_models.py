"""MLflow model folders, CatBoost and skops files, trained inside the tests.

Real MLflow folders, written by MLflow itself (mlflow-skinny, in the test extra), one per
flavor ModelShip converts. ``pip_requirements`` is given so that MLflow records known
versions without inferring them (inference imports the model in a subprocess: slow).
"""

from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["age", "income", "score"]


def frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            # not rounded: a tree threshold between two rounded values (48.525) is not a
            # float32 number, and the generated rows (float32, 3 decimals) could sit on it
            "income": rng.normal(50.0, 12.0, n),
            "score": rng.normal(0.0, 1.0, n),
        }
    )
    y = np.where((X["age"] - 45) / 10 + X["score"] > 0, "yes", "no")
    return X, y


def _version(dist: str) -> str:
    return metadata.version(dist).split("+", 1)[0]


def _signature(X: pd.DataFrame, y: np.ndarray) -> object:
    from mlflow.models import infer_signature

    return infer_signature(X, y)


def mlflow_sklearn(folder: Path, serialization_format: str = "skops") -> Path:
    """A scaled LogisticRegression pipeline fitted on a DataFrame."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = frame()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    reqs = [f"scikit-learn=={_version('scikit-learn')}", f"skops=={_version('skops')}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=_signature(X, model.predict(X)),
            input_example=X.head(5),
            serialization_format=serialization_format,
            pip_requirements=reqs,
        )
    return folder


def mlflow_sklearn_numpy(folder: Path) -> Path:
    """A regressor fitted on an array (no names in it), logged with named columns."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestRegressor

    X, _ = frame()
    y = 2 * X["score"].to_numpy() + X["age"].to_numpy() / 10
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0)
    model.fit(X.to_numpy(), y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(
            model,
            str(folder),
            signature=infer_signature(X, y),
            serialization_format="cloudpickle",
            pip_requirements=[f"scikit-learn=={_version('scikit-learn')}"],
        )
    return folder


def mlflow_xgboost(folder: Path) -> Path:
    import mlflow.xgboost
    import xgboost as xgb

    X, y = frame()
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, (y == "yes").astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.xgboost.save_model(
            model,
            str(folder),
            signature=_signature(X, model.predict(X)),
            input_example=X.head(5),
            pip_requirements=[f"xgboost=={_version('xgboost-cpu')}"],
        )
    return folder


def mlflow_lightgbm(folder: Path, booster: bool = False) -> Path:
    """LGBMClassifier (MLflow saves it with skops) or a plain Booster (LightGBM's text)."""
    import lightgbm as lgb
    import mlflow.lightgbm

    X, y = frame()
    target = (y == "yes").astype(int)
    if booster:
        model = lgb.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 7},
            lgb.Dataset(X, target),
            num_boost_round=8,
        )
    else:
        model = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(X, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.lightgbm.save_model(
            model,
            str(folder),
            signature=_signature(X, target),
            input_example=X.head(5),
            pip_requirements=[f"lightgbm=={_version('lightgbm')}"],
        )
    return folder


def mlflow_catboost(folder: Path) -> Path:
    import mlflow.catboost
    from catboost import CatBoostClassifier

    X, y = frame()
    model = CatBoostClassifier(
        iterations=20, depth=3, verbose=0, random_seed=0, allow_writing_files=False
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.catboost.save_model(
            model,
            str(folder),
            signature=_signature(X, y),
            input_example=X.head(5),
            pip_requirements=[f"catboost=={_version('catboost')}"],
        )
    return folder


def mlflow_pytorch(folder: Path, serialization_format: str = "pt2") -> Path:
    """A small MLP, saved as MLflow 3 does by default (torch.export, .pt2) or pickled
    (torch.save of the whole module, as MLflow 2 did)."""
    import mlflow.pytorch
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    X, _ = frame()
    example = X.head(5).to_numpy().astype(np.float32) / 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pytorch.save_model(
            net,
            str(folder),
            input_example=example,
            serialization_format=serialization_format,
            pip_requirements=[f"torch=={_version('torch')}"],
        )
    return folder


def mlflow_onnx(folder: Path) -> Path:
    import mlflow.onnx
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X, _ = frame()
    Xf = X.to_numpy().astype(np.float32)
    model = LinearRegression().fit(Xf, Xf[:, 0] * 2 + 1)
    onx = to_onnx(model, Xf[:1], target_opset=17)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.onnx.save_model(onx, str(folder), pip_requirements=["onnx"])
    return folder


def pyfunc_only(folder: Path) -> Path:
    """What a custom mlflow.pyfunc model's MLmodel looks like: no flavor to convert."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(
        "flavors:\n"
        "  python_function:\n"
        "    cloudpickle_version: 3.1.0\n"
        "    loader_module: mlflow.pyfunc.model\n"
        "    python_model: python_model.pkl\n"
        "    python_version: 3.11.7\n"
        "mlflow_version: 3.1.0\n",
        encoding="utf-8",
    )
    (folder / "python_model.pkl").write_bytes(b"\x80\x04N.")
    return folder


def catboost_files(folder: Path) -> dict[str, Path]:
    """A classifier with text labels (.cbm and pickled) and a regressor (.cbm)."""
    import pickle

    from catboost import CatBoostClassifier, CatBoostRegressor

    folder.mkdir(parents=True, exist_ok=True)
    X, y = frame()
    clf = CatBoostClassifier(
        iterations=20, depth=3, verbose=0, random_seed=0, allow_writing_files=False
    ).fit(X, y)
    reg = CatBoostRegressor(
        iterations=20, depth=3, verbose=0, random_seed=0, allow_writing_files=False
    )
    reg.fit(X, X["score"] * 2 + X["age"] / 10)
    clf.save_model(str(folder / "churn.cbm"))
    reg.save_model(str(folder / "spend.cbm"))
    with open(folder / "churn-cb.pkl", "wb") as fh:
        pickle.dump(clf, fh)
    return {
        "cbm": folder / "churn.cbm",
        "cbm_reg": folder / "spend.cbm",
        "pickle": folder / "churn-cb.pkl",
    }


def double(x: np.ndarray) -> np.ndarray:
    """A function of the tests' own: skops does not know it (an untrusted type)."""
    return x * 2


def skops_files(folder: Path) -> dict[str, Path]:
    """A skops file of known classes, and one that names a function of our own."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    folder.mkdir(parents=True, exist_ok=True)
    X, y = frame()
    plain = LogisticRegression(max_iter=500).fit(X, y)
    custom = make_pipeline(FunctionTransformer(double), LogisticRegression(max_iter=500))
    custom.fit(X, y)
    sio.dump(plain, folder / "plain.skops")
    sio.dump(custom, folder / "custom.skops")
    return {"plain": folder / "plain.skops", "custom": folder / "custom.skops"}


def named_boosters(folder: Path) -> dict[str, Path]:
    """Native LightGBM/XGBoost files trained on a DataFrame (their names are in the
    file), one LightGBM text file trained on an array (default names), and an
    XGBClassifier saved with joblib (a plain pickle inside: no numpy arrays)."""
    import joblib
    import lightgbm as lgb
    import xgboost as xgb

    folder.mkdir(parents=True, exist_ok=True)
    X, y = frame()
    target = (y == "yes").astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7}
    lgb.train(params, lgb.Dataset(X, target), num_boost_round=5).save_model(
        str(folder / "named.txt")
    )
    lgb.train(params, lgb.Dataset(X.to_numpy(), target), num_boost_round=5).save_model(
        str(folder / "unnamed.txt")
    )
    booster = xgb.train(
        {"max_depth": 3, "objective": "binary:logistic"}, xgb.DMatrix(X, label=target), 5
    )
    booster.save_model(str(folder / "named.json"))
    booster.save_model(str(folder / "named.ubj"))
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X.to_numpy(), target)
    joblib.dump(clf, folder / "xgb.joblib")
    return {
        "lgbm_txt": folder / "named.txt",
        "lgbm_txt_unnamed": folder / "unnamed.txt",
        "xgb_json": folder / "named.json",
        "xgb_ubj": folder / "named.ubj",
        "xgb_joblib": folder / "xgb.joblib",
    }
