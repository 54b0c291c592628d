"""Describing a tabular model: its columns, layout, task, value ranges and tree thresholds."""

from __future__ import annotations

import json
import math

from ...modelfacts import (
    LIGHTGBM_CLASSIFICATION,
    XGBOOST_CLASSIFICATION_PREFIXES,
    catboost_classifies,
    catboost_loss,
    catboost_names,
    column_names,
    lightgbm_names,
    unnamed,
)
from .common import WorkerError


def final_estimator(model: object) -> object:
    steps = getattr(model, "steps", None)
    if steps:
        for _, est in reversed(steps):
            if est not in ("passthrough", None):
                return final_estimator(est)
    return model


def walk(model: object, depth: int = 0):
    """Every estimator inside pipelines and column transformers."""
    if depth > 20:
        return
    yield model
    for _, est in getattr(model, "steps", None) or []:
        yield from walk(est, depth + 1)
    for entry in getattr(model, "transformers_", None) or []:
        yield from walk(entry[1], depth + 1)


def is_booster(model: object) -> str | None:
    mod = type(model).__module__
    name = type(model).__name__
    if name == "Booster" and mod.startswith("xgboost"):
        return "xgboost"
    if name == "Booster" and mod.startswith("lightgbm"):
        return "lightgbm"
    if mod.startswith("catboost"):
        return "catboost"
    return None


def _booster(names: list[str], task: str, classes: list | None, objective: str) -> dict:
    """A native booster's description: named float columns in one array."""
    return dict(
        names=names,
        str_cols={},
        frame=False,
        per_column=False,
        task=task,
        classes=classes,
        objective=objective,
    )


def describe(model: object, kind: str) -> dict:
    """Columns, layout and task of a tabular model."""
    booster = is_booster(model)
    if booster == "catboost":
        names = catboost_names(list(model.feature_names_ or []))
        if model.get_cat_feature_indices():
            raise WorkerError(
                "unsupported",
                "The CatBoost model has categorical features, which CatBoost's ONNX export "
                "does not support.",
                "Encode those columns as numbers before training (e.g. one-hot), or train "
                "without cat_features.",
            )
        loss = catboost_loss(model.get_all_params())
        task = "classification" if catboost_classifies(loss) else "regression"
        classes = None
        if task == "classification":
            classes = [c.item() if hasattr(c, "item") else c for c in list(model.classes_)]
        return _booster(names, task, classes, loss)
    if booster == "xgboost":
        n = int(model.num_features())
        given = list(model.feature_names or [])
        names = column_names(given, n)
        cfg = json.loads(model.save_config())
        obj = cfg["learner"]["objective"]["name"]
        nclass = int(cfg["learner"]["learner_model_param"].get("num_class", "0") or 0)
        task = "classification" if obj.startswith(XGBOOST_CLASSIFICATION_PREFIXES) else "regression"
        classes = list(range(max(nclass, 2))) if task == "classification" else None
        return _booster(names, task, classes, obj)
    if booster == "lightgbm":
        n = int(model.num_feature())
        given = lightgbm_names(list(model.feature_name() or []))
        names = column_names(given, n)
        obj = str(model.params.get("objective", "") or model.dump_model().get("objective", ""))
        obj = obj.split()[0] if obj else ""
        task = "classification" if obj in LIGHTGBM_CLASSIFICATION else "regression"
        k = int(model.dump_model().get("num_class", 1))
        classes = list(range(max(k, 2))) if task == "classification" else None
        return _booster(names, task, classes, obj)
    first = model.steps[0][1] if getattr(model, "steps", None) else model
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = getattr(first, "feature_names_in_", None)
    frame = names is not None
    if names is None:
        n = getattr(model, "n_features_in_", None) or getattr(first, "n_features_in_", None)
        if n is None:
            raise WorkerError(
                "unsupported",
                f"{type(model).__name__} does not say how many input features it takes "
                "(is it fitted?).",
                "Save the fitted estimator.",
            )
        names = [unnamed(i) for i in range(int(n))]
    names = [str(c) for c in list(names)]
    str_cols: dict[str, list] = {}
    has_ct = False
    for est in walk(model):
        if type(est).__name__ == "ColumnTransformer":
            has_ct = True
            for _, trans, cols in est.transformers_:
                enc = None
                for sub in walk(trans):
                    if hasattr(sub, "categories_"):
                        enc = sub
                        break
                if enc is None or isinstance(cols, str) or not hasattr(cols, "__iter__"):
                    continue
                cols = [names[c] if isinstance(c, int) else str(c) for c in cols]
                for col, cats in zip(cols, enc.categories_, strict=False):
                    values = [c.item() if hasattr(c, "item") else c for c in list(cats)]
                    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
                    if any(isinstance(v, str) for v in values):
                        str_cols[col] = [str(v) for v in values]
    final = final_estimator(model)
    classes = getattr(final, "classes_", None)
    task = "classification" if classes is not None else "regression"
    if classes is not None:
        classes = [c.item() if hasattr(c, "item") else c for c in list(classes)]
    return dict(
        names=names,
        str_cols=str_cols,
        frame=frame,
        per_column=bool(str_cols) or (frame and has_ct),
        task=task,
        classes=classes,
        objective=None,
    )


def value_ranges(model: object, names: list[str]) -> dict[str, tuple[float, float]]:
    """Plausible value ranges per column, read from what the fitted model knows."""
    out: dict[str, tuple[float, float]] = {}

    def from_scaler(est: object, cols: list[str]) -> None:
        import numpy as np

        if hasattr(est, "mean_") and hasattr(est, "scale_") and est.mean_ is not None:
            scale = np.where(np.asarray(est.scale_) > 0, est.scale_, 1.0)
            for c, m, s in zip(cols, est.mean_, scale, strict=False):
                out.setdefault(c, (float(m - 2 * s), float(m + 2 * s)))
        elif hasattr(est, "data_min_"):
            for c, lo, hi in zip(cols, est.data_min_, est.data_max_, strict=False):
                out.setdefault(c, (float(lo), float(hi)))
        elif hasattr(est, "center_") and hasattr(est, "scale_"):
            for c, m, s in zip(cols, est.center_, est.scale_, strict=False):
                out.setdefault(c, (float(m - 2 * s), float(m + 2 * s)))

    def visit(est: object, cols: list[str]) -> None:
        for sub in walk(est):
            from_scaler(sub, cols)

    for est in walk(model):
        if type(est).__name__ == "ColumnTransformer":
            for _, trans, cols in est.transformers_:
                if isinstance(cols, str) or not hasattr(cols, "__iter__"):
                    continue
                visit(trans, [names[c] if isinstance(c, int) else str(c) for c in cols])
    steps = getattr(model, "steps", None)
    if steps:
        from_scaler(steps[0][1], names)
    # tree thresholds when the trees see the raw columns
    direct = model if not steps else (steps[0][1] if len(steps) == 1 else None)
    if direct is not None:
        for i, (lo, hi) in tree_thresholds(direct, len(names)).items():
            if names[i] not in out:
                pad = max((hi - lo) * 0.2, 1.0 if hi == lo else 0.0)
                out[names[i]] = (lo - pad, hi + pad)
    return out


def tree_thresholds(model: object, n: int) -> dict[int, tuple[float, float]]:
    found: dict[int, list[float]] = {}

    def add(i: int, t: float) -> None:
        if 0 <= i < n and math.isfinite(t):
            found.setdefault(i, []).append(float(t))

    try:
        booster = is_booster(model)
        if booster is None and hasattr(model, "get_booster"):
            model, booster = model.get_booster(), "xgboost"
        elif booster is None and hasattr(model, "booster_"):
            model, booster = model.booster_, "lightgbm"
        if booster == "xgboost":
            b = model.copy()
            b.feature_names = None
            for tree in b.get_dump(dump_format="json"):
                stack = [json.loads(tree)]
                while stack:
                    node = stack.pop()
                    if "split" in node:
                        add(int(str(node["split"]).lstrip("f")), node["split_condition"])
                    stack.extend(node.get("children", []))
        elif booster == "catboost":
            for i, borders in (model.get_borders() or {}).items():
                for t in borders:
                    add(int(i), float(t))
        elif booster == "lightgbm":
            for info in model.dump_model()["tree_info"]:
                stack = [info["tree_structure"]]
                while stack:
                    node = stack.pop()
                    if "split_feature" in node and isinstance(node.get("threshold"), int | float):
                        add(int(node["split_feature"]), node["threshold"])
                    stack.extend(node[k] for k in ("left_child", "right_child") if k in node)
        else:
            trees = []
            if hasattr(model, "tree_"):
                trees = [model.tree_]
            for est in getattr(model, "estimators_", []) or []:
                for e in est if hasattr(est, "__iter__") else [est]:
                    if hasattr(e, "tree_"):
                        trees.append(e.tree_)
            for t in trees:
                for f, thr in zip(t.feature, t.threshold, strict=False):
                    if f >= 0:
                        add(int(f), float(thr))
    except Exception:
        return {}
    return {i: (min(v), max(v)) for i, v in found.items()}
