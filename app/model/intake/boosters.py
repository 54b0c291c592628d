"""Native booster files: XGBoost JSON and UBJSON, LightGBM text, CatBoost .cbm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.errors import ModelError, UnsupportedModelError
from app.model.intake.artifact import _JSON_LIMIT, _NOT_MODEL_HINT, ModelArtifact
from app.model.intake.describe import _plain
from app.model.intake.ubjson import ubjson_decode
from app.model.modelfacts import (
    catboost_classifies,
    catboost_names,
    column_names,
    lightgbm_names,
    objective_task,
)
from app.nextstep import say, use_python


def _inspect_xgboost(p: Path, data: bytes, fmt: str) -> ModelArtifact:
    cfg: dict[str, Any] | None = None
    if fmt == "xgboost-json":
        if len(data) > _JSON_LIMIT:
            raise UnsupportedModelError(
                f"{p.name} is an XGBoost JSON model of {len(data) >> 20} MiB, too large to read "
                "as JSON here.",
                "Save it in XGBoost's binary format instead: booster.save_model('model.ubj').",
            )
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"{p.name} is a JSON file that is truncated or corrupt ({exc.__class__.__name__}).",
                "Copy or save the model again; the file did not arrive whole.",
            ) from None
        if not isinstance(doc, dict) or "learner" not in doc:
            raise ModelError(
                f"{p.name} is a JSON file, but not a saved XGBoost model.", _NOT_MODEL_HINT
            )
        cfg = doc
    else:
        cfg = _ubj_header(p, data)
    learner = cfg.get("learner", {}) if isinstance(cfg, dict) else {}
    version = cfg.get("version") if isinstance(cfg, dict) else None
    art = ModelArtifact(path=p, kind="xgboost", format=fmt, estimator="xgboost.Booster")
    art.libraries["xgboost"] = ".".join(str(v) for v in version) if version else ""
    params = learner.get("learner_model_param", {})
    n = params.get("num_feature")
    names = learner.get("feature_names") or []
    try:
        count = int(n) if n is not None else len(names)
    except (TypeError, ValueError):
        count = len(names)
    art.inputs = [{"name": name, "dtype": "float"} for name in column_names(names, count)]
    obj = learner.get("objective", {}).get("name", "")
    art.task = objective_task(obj)
    nclass = params.get("num_class")
    if art.task == "classification":
        k = int(nclass) if nclass and int(nclass) > 1 else 2
        art.classes = list(range(k))
    return art


def _ubj_header(p: Path, data: bytes) -> dict:
    """XGBoost's UBJSON model, decoded as plain data (no xgboost needed, no code runs)."""
    try:
        doc = ubjson_decode(data)
    except Exception:
        raise ModelError(
            f"{p.name} looks like an XGBoost .ubj model but is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    if not isinstance(doc, dict) or "learner" not in doc:
        raise ModelError(f"{p.name} is UBJSON, but not a saved XGBoost model.", _NOT_MODEL_HINT)
    return doc


def _inspect_lightgbm(p: Path, data: bytes) -> ModelArtifact:
    # the header ends where the first tree starts; the trees themselves are not read here
    end = data.find(b"\nTree=")
    text = data[: end if end >= 0 else 1 << 20].decode("utf-8", "replace")
    header: dict[str, str] = {}
    for line in text.splitlines()[:40]:
        if "=" in line:
            k, _, v = line.partition("=")
            header.setdefault(k.strip(), v.strip())
        elif line.startswith("Tree="):
            break
    if "max_feature_idx" not in header:
        raise ModelError(
            f"{p.name} starts like a LightGBM model but its header is incomplete.",
            "Copy or save the model again; the file did not arrive whole.",
        )
    if data.find(b"end of trees") < 0:
        raise ModelError(
            f"{p.name} is a truncated LightGBM model (its trees end early).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    n = int(header["max_feature_idx"]) + 1
    names = lightgbm_names(header.get("feature_names", "").split())
    art = ModelArtifact(
        path=p, kind="lightgbm", format="lightgbm-txt", estimator="lightgbm.Booster"
    )
    art.libraries["lightgbm"] = header.get("version", "")
    art.inputs = [{"name": name, "dtype": "float"} for name in column_names(names, n)]
    obj = header.get("objective", "").split()[0] if header.get("objective") else ""
    art.task = objective_task(obj)
    if art.task == "classification":
        k = int(header.get("num_class", "1"))
        art.classes = list(range(max(k, 2)))
    return art


def _inspect_catboost(p: Path, data: bytes) -> ModelArtifact:
    """CatBoost's own binary format: data only, loading it runs no Python."""
    art = ModelArtifact(
        path=p, kind="catboost", format="catboost-cbm", estimator="catboost.CatBoost"
    )
    art.libraries["catboost"] = ""
    desc = _describe_catboost_blob(data)
    if desc.get("error"):
        raise ModelError(
            f"{p.name} starts like a CatBoost model but cannot be read ({desc['error']}).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    if not desc:
        art.warnings.append(
            say(
                "CatBoost is not installed here, so its columns are read when converting "
                "(pip install catboost, or ",
                use_python("convert with", "pointing at", "a Python that has it"),
                ").",
            )
        )
    art.inputs = desc.get("columns", [])
    art.task = desc.get("task")
    art.classes = desc.get("classes")
    return art


def _describe_catboost_blob(blob: bytes) -> dict[str, Any]:
    """Columns, task and classes of a CatBoost model (its .cbm bytes), read by CatBoost.

    A .cbm file is data (no pickle), so reading it with CatBoost runs no code from the
    file. Returns {} when CatBoost is not installed: the worker describes it then.
    """
    try:
        from catboost import CatBoost
    except ImportError:
        return {}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelship-cbm-") as tmp:
        f = Path(tmp) / "model.cbm"
        f.write_bytes(bytes(blob))
        try:
            model = CatBoost()
            model.load_model(str(f), format="cbm")
        except Exception as exc:
            return {"error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}
    names = catboost_names(list(model.feature_names_ or []))
    cat = set(model.get_cat_feature_indices() or [])
    columns = [{"name": n, "dtype": "str" if i in cat else "float"} for i, n in enumerate(names)]
    loss = str(model.get_all_params().get("loss_function", ""))
    out: dict[str, Any] = {"columns": columns}
    if catboost_classifies(loss):
        out["task"] = "classification"
        classes = getattr(model, "classes_", None)
        out["classes"] = [_plain(c) for c in list(classes)] if classes is not None else None
    else:
        out["task"] = "regression"
    return out
