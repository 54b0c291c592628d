"""Model intake: tell what a model file is, without running it.

Loading a pickle runs code chosen by whoever wrote the file, so nothing here ever
unpickles with the standard machinery. Files are identified by their bytes (magic
numbers, zip structure, protobuf, text headers); pickles are read twice without
executing them:

1. :func:`app.model.picklescan.scan_stream` walks the opcodes (protocols 0 to 5, memo and
   ``STACK_GLOBAL`` resolved) and lists every global the file would import, and tells
   a truncated file from a complete one; :func:`app.model.picklescan.judge` turns the list
   into the safety verdict (``ModelArtifact.safety``) that conversion acts on.
2. A restricted unpickler rebuilds the object tree with *stand-ins* for every class:
   only numpy's array constructors (and joblib's array wrapper) are real. That gives
   the estimator type, the scikit-learn version recorded in the file, the fitted
   column names and categories, and value ranges for generating sample rows, while no
   module of the model's libraries is ever imported.

Conversion (which does load the model, in a subprocess) lives in :mod:`app.model.convert`;
the facts both read the same way (column names, tasks, old pickle names) are in
:mod:`app.model.modelfacts`.

Modules: ``identify`` (which format, by the bytes), ``artifact`` (what intake hands
on), ``unpickler`` (the stand-ins), ``pickles`` and ``describe`` (pickled models),
``boosters`` and ``ubjson`` (XGBoost, LightGBM, CatBoost), ``torchfiles``,
``skopsfile``, ``onnxfile`` and ``mlflowdir`` (the other formats).
"""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelError
from app.model.files import missing_file
from app.model.intake.artifact import ModelArtifact
from app.model.intake.identify import _inspect_file
from app.model.intake.mlflowdir import _inspect_mlflow
from app.model.intake.unpickler import scan_pickle
from app.model.mlflowmodel import download, is_model_dir, is_uri

__all__ = ["ModelArtifact", "inspect_model", "scan_pickle"]


def inspect_model(path: str | Path) -> ModelArtifact:
    """Identify a model file (or MLflow model folder) by its content. Never executes a pickle."""
    if is_uri(path):
        return _inspect_mlflow(download(str(path)), uri=str(path))
    p = Path(path)
    if not p.exists():
        raise missing_file(p)
    if p.is_dir():
        if is_model_dir(p):
            return _inspect_mlflow(p)
        raise ModelError(
            f"{p} is a folder, but not an MLflow model (it has no MLmodel file).",
            "Give the model file itself (e.g. model.joblib, model.onnx, model.pt), or an "
            "MLflow model folder (the one with the MLmodel file).",
        )
    return _inspect_file(p)
