"""MLflow model folders (and runs:/ or models:/ URIs, downloaded first): the model
file inside, read by its own format, with the MLflow signature's column names."""

from __future__ import annotations

from pathlib import Path

from app.model.intake.artifact import ModelArtifact
from app.model.intake.identify import _inspect_file
from app.model.mlflowmodel import read_model_dir
from app.model.modelfacts import unnamed
from app.nextstep import input_shape, say

_FLAVOR_DISTS = {
    "sklearn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "catboost": ("catboost",),
    "pytorch": ("torch",),
    "onnx": ("onnx",),
}


def _inspect_mlflow(folder: Path, uri: str | None = None) -> ModelArtifact:
    """An MLflow model folder: the model file it holds, read like any other, plus what
    MLmodel records (signature, input example, requirements)."""
    mm = read_model_dir(folder, uri)
    art = _inspect_file(mm.model_file)
    art.size_bytes = mm.model_file.stat().st_size
    art.mlflow = mm
    want_kind = "sklearn" if mm.flavor == "sklearn" else mm.flavor
    if mm.flavor in ("xgboost", "lightgbm", "catboost") and art.kind == "sklearn":
        want_kind = "sklearn"  # e.g. an XGBClassifier inside a Pipeline, logged by the flavor
    if art.kind != want_kind and not (mm.flavor == "sklearn" and art.kind != "pytorch"):
        art.warnings.append(
            f"MLmodel says the flavor is {mm.flavor}, but the file holds a {art.kind} model."
        )
    # the recorded requirements, as recorded library versions (the file's own record of
    # a version, e.g. scikit-learn's in a pickle, wins)
    for req in (*_FLAVOR_DISTS.get(mm.flavor, ()), "scikit-learn"):
        version = mm.requirements.get(req)
        dist = "xgboost" if req == "xgboost-cpu" else req  # one library, two wheels
        recorded = art.libraries.get(dist, "")
        # (LightGBM's text files record their format, "v4", not the library's version)
        if version and not recorded[:1].isdigit():
            art.libraries[dist] = version
    if art.format == "skops" and mm.requirements.get("skops"):
        art.libraries["skops"] = mm.requirements["skops"]
    # the signature: the names (and types) the model was logged with
    if (
        mm.columns
        and (not art.inputs or _unnamed(art.inputs))
        and (not art.inputs or len(art.inputs) == len(mm.columns))
    ):
        art.inputs = [{"name": c["name"], "dtype": c["dtype"]} for c in mm.columns]
    elif mm.tensor is not None and not art.inputs:
        art.inputs = [
            {
                "name": mm.tensor["name"],
                "dtype": mm.tensor["dtype"],
                "shape": [d if d >= 0 else None for d in mm.tensor["shape"]],
            }
        ]
    art.warnings = [w for w in art.warnings if not w.startswith("PyTorch models need an input")]
    if art.kind == "pytorch" and mm.tensor is None and mm.example is None:
        art.warnings.append(
            say(
                "PyTorch models need an input shape to convert, ",
                input_shape("e.g.", "1,3,32,32"),
                ".",
            )
        )
    source = uri or str(folder)
    art.warnings.append(
        f"MLflow model ({mm.flavor} flavor, MLflow {mm.mlflow_version or 'version unknown'}) "
        f"from {source}"
        + (
            f"; its input example ({len(mm.example.get('rows', mm.example.get('array', [])))} "
            "rows) is used in the proof."
            if mm.example
            else "."
        )
    )
    return art


def _unnamed(inputs: list[dict]) -> bool:
    return all(c.get("name") == unnamed(i) for i, c in enumerate(inputs))
