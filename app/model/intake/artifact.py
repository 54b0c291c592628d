"""What intake hands on: :class:`ModelArtifact`, and the libraries ModelShip converts from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from app.model.mlflowmodel import MlflowModel
from app.model.picklescan import Verdict

SUPPORTED_TEXT = (
    "ModelShip converts scikit-learn estimators and pipelines (pickle, joblib or skops), "
    "XGBoost (.json/.ubj or pickled XGBClassifier/XGBRegressor), LightGBM (.txt or pickled "
    "LGBMClassifier/LGBMRegressor), CatBoost (.cbm or pickled), PyTorch (TorchScript, a "
    "whole module saved with torch.save, or torch.export .pt2), ONNX files, and MLflow "
    "model folders of those flavors."
)


# The library a pickled class comes from (top-level module -> kind, distribution name).
_LIBRARIES = {
    "sklearn": ("sklearn", "scikit-learn"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "torch": ("pytorch", "torch"),
    "catboost": ("catboost", "catboost"),
}


# XGBoost JSON is parsed whole (Python objects take ~10x the file): larger ones as .ubj
_JSON_LIMIT = 1 << 30


# File names that say joblib although the bytes are a plain pickle (joblib writes a
# plain pickle when the model holds no numpy arrays, e.g. an XGBClassifier).
_JOBLIB_SUFFIXES = {".joblib", ".jbl", ".jl"}


@dataclass
class ModelArtifact:
    """What a model file is, found without executing it."""

    path: Path
    kind: str  # "sklearn" | "xgboost" | "lightgbm" | "catboost" | "pytorch" | "onnx"
    # "pickle" | "joblib" | "skops" | "onnx" | "xgboost-json" | "xgboost-ubj" |
    # "lightgbm-txt" | "catboost-cbm" | "torchscript" | "torch-module" | "torch-export"
    format: str
    estimator: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    inputs: list[dict] = field(default_factory=list)
    pickle_imports: list[str] = field(default_factory=list)
    runs_code_on_load: bool = False
    warnings: list[str] = field(default_factory=list)
    task: str | None = None  # "classification" | "regression" | None (unknown)
    classes: list[Any] | None = None
    size_bytes: int = 0
    # what loading it would import, judged (None: not a pickle, loading runs no Python)
    safety: Verdict | None = None
    # an MLflow model folder: path is the model file inside it, this is the rest of what
    # MLmodel says (flavor, signature, input example, requirements; app.model.mlflowmodel)
    mlflow: MlflowModel | None = None

    @property
    def name(self) -> str:
        """What to call the model: the MLflow folder's name, else the file's stem."""
        if self.mlflow is not None:
            return self.mlflow.folder.name
        return Path(self.path).stem

    @property
    def source(self) -> Path:
        """What the user gave: the MLflow folder, else the model file."""
        return self.mlflow.folder if self.mlflow is not None else Path(self.path)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["safety"] = self.safety.to_dict() if self.safety else None
        d["mlflow"] = self.mlflow.to_dict() if self.mlflow else None
        return d


_NOT_MODEL_HINT = (
    "Give a trained model file: " + SUPPORTED_TEXT[len("ModelShip converts ") :].rstrip(".") + "."
)


def installed_versions(libraries: dict[str, str]) -> dict[str, str]:
    out = {}
    for dist in libraries:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    return out
