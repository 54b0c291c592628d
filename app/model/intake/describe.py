"""What a pickled scikit-learn model expects, read from its stand-ins: columns,
categories, task and classes."""

from __future__ import annotations

from typing import Any

from app.model.intake.ubjson import ubjson_decode
from app.model.intake.unpickler import _Stub, stub_name
from app.model.modelfacts import column_names, lightgbm_names, objective_task, unnamed


def _plain(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _final(obj: Any) -> Any:
    if stub_name(obj) == "sklearn.pipeline.Pipeline":
        steps = obj.state.get("steps") or []
        for _, est in reversed(steps):
            if est not in ("passthrough", None):
                return _final(est)
    return obj


def describe_estimator(root: Any) -> dict:
    """Columns (names, dtypes, categories), task and classes of a stand-in tree."""
    st = root.state if isinstance(root, _Stub) else {}
    final = _final(root)
    fst = final.state if isinstance(final, _Stub) else {}
    out: dict[str, Any] = {}
    classes = fst.get("classes_")
    if classes is not None:
        out["task"] = "classification"
        out["classes"] = _plain(classes)
    elif isinstance(final, _Stub) and (
        "Regressor" in final._ms_name or "Regression" in final._ms_name
    ):
        out["task"] = "regression"
    names = st.get("feature_names_in_")
    if names is None:
        # a Pipeline keeps them on its first step
        steps = st.get("steps") or []
        if steps and isinstance(steps[0][1], _Stub):
            names = steps[0][1].state.get("feature_names_in_")
    n = st.get("n_features_in_") or fst.get("n_features_in_")
    if n is None and isinstance(root, _Stub) and root._ms_name.startswith("xgboost"):
        n = st.get("n_features_in_")
    cats = _categories(root)
    if names is None and n is None and isinstance(final, _Stub):
        boosted = _booster_columns(final)
        if boosted:
            names = boosted
        if out.get("task") is None:
            obj = str(fst.get("_objective") or fst.get("objective") or "")
            out["task"] = objective_task(obj) or (
                "classification" if "Classifier" in final._ms_name else "regression"
            )
        if out["task"] == "classification" and "classes" not in out:
            k = fst.get("n_classes_") or fst.get("_n_classes")
            c = fst.get("_classes")
            out["classes"] = _plain(c) if c is not None else list(range(int(k or 2)))
    if names is not None:
        out["columns"] = [
            {
                "name": str(c),
                "dtype": "str" if str(c) in cats and _is_str(cats[str(c)]) else "float",
                **({"categories": cats[str(c)]} if str(c) in cats else {}),
            }
            for c in _plain(names)
        ]
    elif isinstance(n, int):
        out["columns"] = [{"name": unnamed(i), "dtype": "float"} for i in range(n)]
    return out


def _booster_columns(est: _Stub) -> list[str] | None:
    """Feature names from the booster inside a pickled XGBoost/LightGBM sklearn model."""
    booster = est.state.get("_Booster")
    if not isinstance(booster, _Stub):
        return None
    bst = booster.state
    raw = bst.get("handle")
    if isinstance(raw, bytes | bytearray):  # XGBoost: the booster's own (UBJSON) bytes
        try:
            doc = ubjson_decode(bytes(raw))
        except Exception:
            return None
        if isinstance(doc, dict) and "Model" in doc:
            doc = doc["Model"]
        learner = doc.get("learner", {}) if isinstance(doc, dict) else {}
        n = int(learner.get("learner_model_param", {}).get("num_feature", 0))
        given = learner.get("feature_names") or []
        return column_names(given, n)
    text = bst.get("_handle")
    if isinstance(text, str):  # LightGBM: the model in its text format
        header = dict(line.split("=", 1) for line in text.splitlines()[:40] if "=" in line)
        n = int(header.get("max_feature_idx", "-1")) + 1
        given = lightgbm_names(header.get("feature_names", "").split())
        if not est.state.get("_fitted_with_feature_names"):
            given = []
        return column_names(given, n)
    return None


def _is_str(values: list) -> bool:
    return any(isinstance(v, str) for v in values)


def _categories(root: Any) -> dict[str, list]:
    """column name -> categories known to a fitted encoder inside a ColumnTransformer."""
    out: dict[str, list] = {}
    stack = [root]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if not isinstance(obj, _Stub) or id(obj) in seen:
            continue
        seen.add(id(obj))
        st = obj.state
        if obj._ms_name == "sklearn.compose._column_transformer.ColumnTransformer":
            for entry in st.get("transformers_") or []:
                _, trans, cols = entry
                enc = _encoder_in(trans)
                if enc is not None and isinstance(cols, list | tuple):
                    for col, cat in zip(cols, enc.state.get("categories_") or [], strict=False):
                        out[str(col)] = _plain(cat)
        for v in st.values():
            if isinstance(v, _Stub):
                stack.append(v)
            elif isinstance(v, list | tuple):
                for x in v:
                    if isinstance(x, _Stub):
                        stack.append(x)
                    elif isinstance(x, tuple):
                        stack.extend(y for y in x if isinstance(y, _Stub))
    return out


def _encoder_in(trans: Any) -> Any:
    if not isinstance(trans, _Stub):
        return None
    if trans.state.get("categories_") is not None:
        return trans
    for _, step in trans.state.get("steps") or []:
        if isinstance(step, _Stub) and step.state.get("categories_") is not None:
            return step
    return None
