"""Conversion worker: loads the model, converts it to ONNX, runs the original on sample rows.

Runs as a separate process, started by ``app.convert`` with the interpreter the user
chose (``--python``), because a pickle loads reliably only with the library versions it
was saved with. It therefore imports nothing from ``app`` and needs only the model's own
library and its converter (skl2onnx, onnxmltools or torch) in that environment; it is
run as a plain file path (``python worker.py JOB_DIR``), also from a frozen app.

Protocol (files in JOB_DIR): reads ``job.json``; writes ``model.onnx`` (path given in
the job), ``rows.json`` (tabular sample rows), ``original.npz`` (what the original model
predicted, and tensor inputs) and ``result.json`` (``{"ok": true, ...}`` or ``{"ok":
false, "error": KIND, "message": ..., "hint": ..., "details": ...}``). Progress goes to
stdout as lines ``MODELSHIP-PROGRESS {"fraction": f, "message": m}``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # first of all: only installed packages may be imported (no script folder, no working
    # directory, no ''; Python before 3.11 ignores PYTHONSAFEPATH). See isolation.py.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [
        p for p in sys.path if p not in ("", ".") and os.path.abspath(p) not in (_HERE, os.getcwd())
    ]

import copy
import csv
import json
import math
import time
import traceback
import warnings
from importlib import metadata

PROGRESS = "MODELSHIP-PROGRESS "
ONNX_OPSET = 17  # skl2onnx (also with registered XGBoost/LightGBM converters) and torch
ONNXMLTOOLS_OPSET = 15  # onnxmltools' own converters stop at 15
ML_OPSET = 3


class WorkerError(Exception):
    def __init__(self, kind: str, message: str, hint: str = "", details: str = ""):
        super().__init__(message)
        self.kind, self.message, self.hint, self.details = kind, message, hint, details


def progress(fraction: float | None, message: str) -> None:
    print(PROGRESS + json.dumps({"fraction": fraction, "message": message}), flush=True)


# ---------------------------------------------------------------------------
# environment checks
# ---------------------------------------------------------------------------
def installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_versions(expected: dict) -> dict:
    found = {}
    for dist, want in expected.items():
        have = installed(dist)
        found[dist] = have
        if have is None:
            raise WorkerError(
                "missing_library",
                f"The model needs {dist}, which is not installed in {sys.executable}.",
                install_hint(dist, want),
            )
        if want and have != want:
            raise WorkerError(
                "version_mismatch",
                f"The model was saved with {dist} {want}, but {sys.executable} has {dist} {have}.",
                f"Convert with --python pointing at a Python that has {dist} {want} "
                f"(e.g. the environment the model was trained in), or install it there: "
                f"pip install {dist}=={want}",
            )
    return found


def install_hint(dist: str, version: str = "") -> str:
    """How to get ``dist`` where this worker runs: the packaged app has no pip, so it
    is a matching environment there; elsewhere pip in this very Python."""
    if getattr(sys, "frozen", False):
        return (
            f"Run again with --match-env (ModelShip makes an environment with {dist}), or "
            "give --python with the environment the model was trained in."
        )
    pin = f"=={version}" if version else ""
    return (
        f"Run again with --match-env (ModelShip makes an environment with {dist}), or "
        f"install it here: {sys.executable} -m pip install {dist}{pin}"
    )


def need(module: str, dist: str) -> object:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise WorkerError(
            "missing_converter",
            f"The converter {dist} is not installed in {sys.executable}.",
            install_hint(dist),
            details=str(exc),
        ) from None


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------
def _py3_name(module: str, name: str) -> tuple[str, str]:
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def fix_tree_missing_flags() -> None:
    """skl2onnx (1.20 and earlier) passes a HistGradientBoosting leaf's "missing goes
    left" flag as a Python bool into an INTS attribute, which onnx 1.23's protobuf
    refuses ("Expected an int, got a boolean"), so no HistGradientBoosting* model would
    convert. The flag is 0 or 1 either way: hand it over as an int. Conversion-time only;
    a skl2onnx without that helper (or already fixed) is left as it is."""
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:
        return
    original = getattr(tree_ensemble, "add_node", None)
    if original is None or getattr(original, "_modelship_int_flags", False):
        return

    def add_node(*args: object, **kwargs: object) -> object:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if isinstance(flag, bool) or type(flag).__name__ == "bool_":
            kwargs["nodes_missing_value_tracks_true"] = int(flag)  # type: ignore[call-overload]
        return original(*args, **kwargs)

    add_node._modelship_int_flags = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def guard(allowed: list[str]) -> object:
    """A ``find_class`` that admits only the globals the parent scanned and approved.

    The parent refuses dangerous or unknown files before starting this process (unless
    the user trusts them); this is the second lock: whatever the file says now, it
    can import nothing that was not on the list the decision was made on.
    """
    # exact (module, name) pairs, as app.picklescan.ref_of writes them ("mod.name", or
    # "mod:a.b" for a dotted name): ("sklearn.base", "np.f2py.subprocess.Popen") is not
    # ("sklearn.base.np.f2py.subprocess", "Popen"), and a listed prefix admits nothing
    ok: set[tuple[str, str]] = set()
    for ref in allowed:
        if ":" in ref:
            mod, _, nm = ref.partition(":")
        else:
            mod, _, nm = ref.rpartition(".")
        ok.add((mod, nm))
        ok.add(_py3_name(mod, nm))

    def check(module: str, name: str) -> None:
        if (module, name) in ok or _py3_name(module, name) in ok:
            return
        raise WorkerError(
            "refused_global",
            f"The model file wants to import {module}.{name}, which was not in it when it "
            "was checked; nothing was loaded.",
            "Inspect the file again (modelship inspect MODEL); do not use it if it changed.",
        )

    return check


def _guarded_pickle(check: object) -> object:
    """A stand-in for the pickle module whose Unpickler and load are guarded."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            check(module, name)
            return super().find_class(module, name)

    class Module:
        def __getattr__(self, attr: str) -> object:
            return getattr(pickle, attr)

    mod = Module()
    mod.Unpickler = Unpickler  # type: ignore[attr-defined]
    mod.load = lambda fh, **kw: Unpickler(fh, **kw).load()  # type: ignore[attr-defined]
    mod.loads = lambda data, **kw: Unpickler(__import__("io").BytesIO(data), **kw).load()  # type: ignore[attr-defined]
    return mod


def _guarded_joblib_load(path: str, check: object) -> object:
    """joblib.load, with every global (also inside object arrays) through ``check``."""
    import joblib
    from joblib import numpy_pickle

    base = numpy_pickle.NumpyUnpickler

    class Guarded(base):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> object:
            check(module, name)
            return super().find_class(module, name)

    numpy_pickle.NumpyUnpickler = Guarded
    # joblib before 1.5 reads object arrays with a bare pickle.load: guard that too
    numpy_pickle.pickle = _guarded_pickle(check)
    try:
        return joblib.load(path)
    finally:
        numpy_pickle.NumpyUnpickler = base


def load_model(job: dict) -> object:
    # nothing is added to sys.path: code beside the model (a planted xgboost.py) never runs
    path, fmt = job["model_path"], job["format"]
    allowed = job.get("allowed_globals")
    check = guard(allowed) if allowed is not None else None
    try:
        if fmt in ("pickle", "joblib"):
            if check is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    "Convert it through ModelShip (modelship convert), which checks it first.",
                )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if fmt == "joblib":
                    model = _guarded_joblib_load(path, check)
                else:
                    with open(path, "rb") as fh:
                        model = _guarded_pickle(check).Unpickler(fh).load()
            for w in caught:
                if type(w.message).__name__ == "InconsistentVersionWarning":
                    m = w.message
                    raise WorkerError(
                        "version_mismatch",
                        f"The model was saved with scikit-learn {m.original_sklearn_version}, "
                        f"but {sys.executable} has scikit-learn {m.current_sklearn_version}.",
                        f"Convert with --python pointing at a Python that has scikit-learn "
                        f"{m.original_sklearn_version}.",
                    )
            return model
        if fmt == "skops":
            sio = need("skops.io", "skops")
            if allowed is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    "Convert it through ModelShip (modelship convert), which checks it first.",
                )
            try:
                # skops' own defaults plus the approved types: without --trust only those
                # on ModelShip's exact list (app.picklescan.approved_globals); skops
                # refuses any other type it finds
                return sio.load(path, trusted=[r for r in allowed if ":" not in r])
            except Exception as exc:
                if type(exc).__name__ == "UntrustedTypesFoundException":
                    raise WorkerError(
                        "refused_global",
                        f"The skops file names types that were not in it when it was checked "
                        f"({first_line(exc)}); nothing was loaded.",
                        "Inspect the file again (modelship inspect MODEL); do not use it if it "
                        "changed.",
                    ) from None
                raise
        if fmt == "catboost-cbm":
            return load_catboost(path)
        if fmt == "torch-export":
            torch = need("torch", "torch")
            return torch.export.load(path)
        if fmt in ("xgboost-json", "xgboost-ubj"):
            xgb = need("xgboost", "xgboost")
            booster = xgb.Booster()
            booster.load_model(path)
            return booster
        if fmt == "lightgbm-txt":
            lgb = need("lightgbm", "lightgbm")
            return lgb.Booster(model_file=path)
        if fmt in ("torchscript", "torch-module"):
            torch = need("torch", "torch")
            if fmt == "torchscript":
                return torch.jit.load(path, map_location="cpu").eval()
            if check is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    "Convert it through ModelShip (modelship convert), which checks it first.",
                )
            model = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_guarded_pickle(check)
            )
            if not isinstance(model, torch.nn.Module):
                raise WorkerError(
                    "unsupported",
                    f"The file holds a {type(model).__name__}, not a torch.nn.Module.",
                    "Save the whole module with torch.save(model, path).",
                )
            return model.eval()
    except WorkerError:
        raise
    except (ModuleNotFoundError, AttributeError) as exc:
        raise WorkerError(
            "missing_class",
            f"The model refers to code that {sys.executable} cannot import ({exc}).",
            "Use --python with the Python of the environment the model was trained in, where "
            "the module that defines its class is installed (pip install it there).",
            details=traceback.format_exc(),
        ) from None
    except Exception as exc:
        raise WorkerError(
            "load_failed",
            f"The model could not be loaded ({type(exc).__name__}: {exc}).",
            "Check that the file is complete, or use --python with the environment the model "
            "was made in.",
            details=traceback.format_exc(),
        ) from None
    raise WorkerError("unsupported", f"Unknown model format {fmt}.", "")


# ---------------------------------------------------------------------------
# describing a tabular model
# ---------------------------------------------------------------------------
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


CATBOOST_CLASSIFICATION = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


def load_catboost(path: str) -> object:
    """A .cbm file as CatBoostClassifier or CatBoostRegressor (by its loss function)."""
    cb = need("catboost", "catboost")
    model = cb.CatBoost()
    model.load_model(path, format="cbm")
    loss = str(model.get_all_params().get("loss_function", "")).split(":")[0]
    cls = cb.CatBoostClassifier if loss in CATBOOST_CLASSIFICATION else cb.CatBoostRegressor
    typed = cls()
    typed.load_model(path, format="cbm")
    return typed


def lightgbm_names(names: list[str]) -> list[str]:
    """LightGBM's defaults (Column_0, ...) mean the model was fitted without names."""
    if all(n == f"Column_{i}" for i, n in enumerate(names)):
        return [f"f{i}" for i in range(len(names))]
    return [str(n) for n in names]


def describe(model: object, kind: str) -> dict:
    """Columns, layout and task of a tabular model."""
    booster = is_booster(model)
    if booster == "catboost":
        names = [str(n) for n in (model.feature_names_ or [])]
        names = [n if n and not n.isdigit() else f"f{i}" for i, n in enumerate(names)]
        if model.get_cat_feature_indices():
            raise WorkerError(
                "unsupported",
                "The CatBoost model has categorical features, which CatBoost's ONNX export "
                "does not support.",
                "Encode those columns as numbers before training (e.g. one-hot), or train "
                "without cat_features.",
            )
        loss = str(model.get_all_params().get("loss_function", "")).split(":")[0]
        task = "classification" if loss in CATBOOST_CLASSIFICATION else "regression"
        classes = None
        if task == "classification":
            classes = [c.item() if hasattr(c, "item") else c for c in list(model.classes_)]
        return dict(
            names=names,
            str_cols={},
            frame=False,
            per_column=False,
            task=task,
            classes=classes,
            objective=loss,
        )
    if booster == "xgboost":
        n = int(model.num_features())
        given = list(model.feature_names or [])
        names = [str(given[i]) if i < len(given) else f"f{i}" for i in range(n)]
        cfg = json.loads(model.save_config())
        obj = cfg["learner"]["objective"]["name"]
        nclass = int(cfg["learner"]["learner_model_param"].get("num_class", "0") or 0)
        task = "classification" if obj.startswith(("binary:", "multi:")) else "regression"
        classes = list(range(max(nclass, 2))) if task == "classification" else None
        return dict(
            names=names,
            str_cols={},
            frame=False,
            per_column=False,
            task=task,
            classes=classes,
            objective=obj,
        )
    if booster == "lightgbm":
        n = int(model.num_feature())
        given = lightgbm_names(list(model.feature_name() or []))
        names = [given[i] if i < len(given) else f"f{i}" for i in range(n)]
        obj = str(model.params.get("objective", "") or model.dump_model().get("objective", ""))
        obj = obj.split()[0] if obj else ""
        task = (
            "classification" if obj in ("binary", "multiclass", "multiclassova") else "regression"
        )
        k = int(model.dump_model().get("num_class", 1))
        classes = list(range(max(k, 2))) if task == "classification" else None
        return dict(
            names=names,
            str_cols={},
            frame=False,
            per_column=False,
            task=task,
            classes=classes,
            objective=obj,
        )
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
        names = [f"f{i}" for i in range(int(n))]
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


# ---------------------------------------------------------------------------
# sample rows
# ---------------------------------------------------------------------------
def generate_rows(desc: dict, ranges: dict, n: int, seed: int) -> list[list]:
    import numpy as np

    rng = np.random.default_rng(seed)
    cols = []
    for name in desc["names"]:
        if name in desc["str_cols"]:
            cats = desc["str_cols"][name]
            cols.append([str(v) for v in rng.choice(cats, size=n)])
        else:
            lo, hi = ranges.get(name, (-2.0, 2.0))
            if hi <= lo:
                lo, hi = lo - 1.0, hi + 1.0
            vals = np.round(rng.uniform(lo, hi, size=n), 3)
            # exactly representable in float32: the original (float64) and the ONNX
            # model (float32) then see the very same numbers
            cols.append([float(np.float32(v)) for v in vals])
    return [list(r) for r in zip(*cols, strict=True)]


def example_rows(example: dict, desc: dict) -> list[list]:
    """An MLflow input example ({"columns", "rows"}) in the model's column order."""
    columns = [str(c) for c in example.get("columns") or []]
    names = desc["names"]
    if set(names) <= set(columns):
        pos = [columns.index(c) for c in names]
    elif len(columns) == len(names):
        pos = list(range(len(names)))
    else:
        raise WorkerError(
            "csv_columns",
            "The model's input example has the columns " + ", ".join(columns[:10]) + ", but "
            "the model takes " + ", ".join(names[:10]) + ".",
            "Log the model again with an input example of its own columns, or give sample "
            "rows with --sample.",
        )
    out = []
    for raw in example.get("rows") or []:
        row = []
        for c, i in zip(names, pos, strict=True):
            v = raw[i] if i < len(raw) else None
            if c in desc["str_cols"]:
                row.append("" if v is None else str(v))
            else:
                row.append(float("nan") if v is None else float(v))
        out.append(row)
    return out


def read_csv_rows(path: str, desc: dict, limit: int = 5000) -> tuple[list[list], list[str]]:
    notes: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            names = desc["names"]
            if header and names[0] == "f0" and not set(names) & set(header):
                # model fitted without column names: take the CSV's columns in order
                if len(header) < len(names):
                    raise WorkerError(
                        "csv_columns",
                        f"The sample CSV has {len(header)} columns; the model takes "
                        f"{len(names)} features.",
                        "Give a CSV with one column per feature, in the model's order.",
                    )
                mapping = dict(zip(names, header, strict=False))
            else:
                missing = [c for c in names if c not in header]
                if missing:
                    raise WorkerError(
                        "csv_columns",
                        "The sample CSV lacks the model's column(s) "
                        + ", ".join(missing[:10])
                        + f" (it has: {', '.join(header[:10]) or 'no header'}).",
                        "Give a CSV whose header names the columns: " + ", ".join(names[:20]),
                    )
                mapping = {c: c for c in names}
                extra = [h for h in header if h not in names]
                if extra:
                    notes.append(
                        "Ignored CSV column(s) the model does not use: " + ", ".join(extra)
                    )
            rows = []
            for i, rec in enumerate(reader):
                if i >= limit:
                    notes.append(f"Used the first {limit} rows of the CSV.")
                    break
                rec = {(k or "").strip(): v for k, v in rec.items()}
                row = []
                for c in names:
                    raw = (rec.get(mapping[c]) or "").strip()
                    if c in desc["str_cols"]:
                        row.append(raw)
                    else:
                        try:
                            row.append(float(raw) if raw else float("nan"))
                        except ValueError:
                            raise WorkerError(
                                "csv_columns",
                                f"The sample CSV's column {c} holds text ({raw!r} in row "
                                f"{i + 2}), but the model expects numbers there.",
                                "Fix that column or give a different CSV.",
                            ) from None
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WorkerError(
            "csv_columns",
            f"The sample CSV could not be read ({exc}).",
            "Give a UTF-8 CSV file with a header row.",
        ) from None
    if not rows:
        raise WorkerError("csv_columns", "The sample CSV has no data rows.", "Add rows to it.")
    return rows, notes


# ---------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------
def register_boosters() -> None:
    """Let skl2onnx convert XGBoost/LightGBM estimators, also inside pipelines."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    opts = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=opts,
        )
        update_registered_converter(
            XGBRegressor,
            "XGBoostXGBRegressor",
            calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )
    except ImportError:
        pass
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=opts,
        )
        update_registered_converter(
            LGBMRegressor,
            "LightGbmLGBMRegressor",
            calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )
    except ImportError:
        pass


SUPPORTED_HINT = (
    "Supported: scikit-learn estimators that skl2onnx knows (linear models, trees, forests, "
    "boosting, SVM, k-NN, naive Bayes, MLP, pipelines, ColumnTransformer, common "
    "preprocessing), XGBoost, LightGBM, PyTorch. Retrain with one of those, or export to "
    "ONNX yourself and give ModelShip the .onnx file."
)


def check_supported(model: object) -> None:
    """Name every estimator in the model that skl2onnx has no converter for."""
    need("skl2onnx", "skl2onnx")
    if uses_boosters(model):
        register_boosters()
    from skl2onnx._supported_operators import sklearn_operator_name_map

    missing = sorted(
        {
            f"{type(e).__module__.split('.')[0]} {type(e).__name__}"
            for e in walk(model)
            if not isinstance(e, str) and e is not None and type(e) not in sklearn_operator_name_map
        }
    )
    if missing:
        raise WorkerError(
            "unsupported",
            f"The model contains {', '.join(missing)}, which cannot be converted to ONNX.",
            SUPPORTED_HINT,
        )
    final = final_estimator(model)
    if not hasattr(final, "predict"):
        raise WorkerError(
            "unsupported",
            f"{type(final).__name__} only transforms data; it is not a model that predicts.",
            "Save the whole fitted pipeline that ends in a classifier or regressor.",
        )


def strip_xgb_feature_names(model: object) -> object:
    """onnxmltools only understands XGBoost feature names f0, f1, ...: drop real ones."""
    if not any(hasattr(e, "get_booster") for e in walk(model)):
        return model
    model = copy.deepcopy(model)
    for est in walk(model):
        if hasattr(est, "get_booster"):
            est.get_booster().feature_names = None
            est.get_booster().feature_types = None
    return model


def uses_boosters(model: object) -> bool:
    return any(type(e).__module__.split(".")[0] in ("xgboost", "lightgbm") for e in walk(model))


def is_tree_model(est: object) -> bool:
    """Decision trees and their ensembles (scikit-learn's, XGBoost's, LightGBM's)."""
    mod = type(est).__module__
    return mod.split(".")[0] in ("xgboost", "lightgbm") or mod.startswith(
        ("sklearn.tree", "sklearn.ensemble")
    )


def trees_after_transform(model: object) -> bool:
    """A tree model fed by a transform that computes in floating point (a scaler, an
    imputer, a ColumnTransformer, ...): the case where float32 is not exact.

    A tree compares a value with a threshold, so rounding the value to float32 in a
    different place than the original does can put it on the other side of a split,
    and that row gets another leaf: a different answer, not a close one. On the raw
    input float32 is exact (scikit-learn's and XGBoost's trees cast their input to
    float32 themselves), and so it is for models without splits (linear models).
    """
    if not getattr(model, "steps", None):
        return False
    final = final_estimator(model)
    if not is_tree_model(final):
        return False
    return any(
        e is not model
        and e is not final
        and not isinstance(e, str)
        and e is not None
        and not getattr(e, "steps", None)
        for e in walk(model)
    )


def cast_before_final(model: object) -> object:
    """A copy of the pipeline with a cast to float32 right before its final estimator.

    skl2onnx's documented way to convert "a transform, then trees" exactly
    (https://onnx.ai/sklearn-onnx/auto_tutorial/plot_ebegin_float_double.html): the
    graph takes doubles, computes the transform in double as scikit-learn does, then
    casts to float32 where the original's trees do (scikit-learn and XGBoost trees
    cast their input to float32; skl2onnx's float thresholds are chosen so that
    ``(float)x <= threshold`` decides each split as the original).
    """
    import numpy as np
    from skl2onnx.sklapi import CastTransformer

    model = copy.deepcopy(model)
    pipe = model
    for _ in range(20):
        steps = pipe.steps
        i = max(j for j, (_, e) in enumerate(steps) if not isinstance(e, str) and e is not None)
        last = steps[i][1]
        if getattr(last, "steps", None):
            pipe = last
            continue
        steps.insert(i, ("modelship_float32", CastTransformer(dtype=np.float32)))
        break
    return model


def convert_tabular(model: object, desc: dict) -> object:
    """The ONNX graph of a tabular model; sets ``desc["precision"]`` to the dtype of
    its numeric inputs (float32, or float64 where float32 would change answers)."""
    booster = is_booster(model)
    n = len(desc["names"])
    desc["precision"] = "float32"
    if booster in ("xgboost", "lightgbm"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat
    if booster == "catboost":
        return convert_catboost(model, desc)
    if booster == "xgboost":
        b = model.copy()
        b.feature_names = None
        b.feature_types = None
        return onnxmltools.convert_xgboost(
            b, initial_types=[("input", MLFloat([None, n]))], target_opset=ONNXMLTOOLS_OPSET
        )
    if booster == "lightgbm":
        return onnxmltools.convert_lightgbm(
            model,
            initial_types=[("input", MLFloat([None, n]))],
            target_opset=ONNXMLTOOLS_OPSET,
            zipmap=False,
        )
    need("skl2onnx", "skl2onnx")
    if uses_boosters(model):
        register_boosters()
    fix_tree_missing_flags()
    if trees_after_transform(model):
        try:
            onx = convert_sklearn_as(model, desc, "float64")
            desc["precision"] = "float64"
            return onx
        except WorkerError:
            raise
        except Exception as exc:  # a transform without a double converter: float32 then
            desc["precision_note"] = (
                "The model was converted in float32 (single precision): its transform cannot "
                f"be converted in double precision ({first_line(exc)[:200]}), so a value "
                "very close to a tree's split may land on the other side."
            )
    return convert_sklearn_as(model, desc, "float32")


def convert_sklearn_as(model: object, desc: dict, precision: str) -> object:
    """skl2onnx's conversion with numeric inputs of ``precision`` (float32 or float64,
    the latter with a cast to float32 before the trees: see cast_before_final)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    n = len(desc["names"])
    num = DoubleTensorType if precision == "float64" else FloatTensorType
    if desc["per_column"]:
        types = [
            (c, StringTensorType([None, 1]) if c in desc["str_cols"] else num([None, 1]))
            for c in desc["names"]
        ]
    else:
        types = [("input", num([None, n]))]
    final = final_estimator(model)
    conv_model = strip_xgb_feature_names(model)
    if precision == "float64":
        conv_model = cast_before_final(conv_model)
    conv_final = final_estimator(conv_model)
    options = {id(conv_final): {"zipmap": False}} if hasattr(final, "classes_") else None
    try:
        return convert_sklearn(
            conv_model,
            initial_types=types,
            options=options,
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        )
    except Exception as exc:
        text = str(exc)
        if "shape calculator" in text or ("converter" in text.lower() and "not" in text):
            names = sorted({f"{type(e).__module__}.{type(e).__name__}" for e in walk(model)})
            raise WorkerError(
                "unsupported",
                f"skl2onnx cannot convert this model ({', '.join(names)}): {text.splitlines()[0]}",
                SUPPORTED_HINT,
                details=traceback.format_exc(),
            ) from None
        raise


def convert_catboost(model: object, desc: dict) -> object:
    """CatBoost's own ONNX export, with its class probabilities as a plain tensor.

    CatBoost ends a classifier's graph in a ZipMap (a list of {label: probability}
    maps); the serving runtime and the proof take the tensor that feeds it, so the
    ZipMap is cut off and that tensor becomes the ``probabilities`` output.
    """
    import tempfile

    onnx = need("onnx", "onnx")
    with tempfile.TemporaryDirectory(prefix="modelship-catboost-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        model.save_model(path, format="onnx")
        onx = onnx.load(path)
    graph = onx.graph
    # one float input, named as every tabular model's is here ("input", not "features")
    for inp in graph.input:
        if inp.name != "input":
            old = inp.name
            inp.name = "input"
            for node in graph.node:
                for j, name in enumerate(node.input):
                    if name == old:
                        node.input[j] = "input"
    zipmaps = [n for n in graph.node if n.op_type == "ZipMap"]
    for zm in zipmaps:
        src, dst = zm.input[0], zm.output[0]
        graph.node.remove(zm)
        for i, out in enumerate(list(graph.output)):
            if out.name == dst:
                k = len(desc["classes"] or []) or None
                graph.output.remove(out)
                graph.output.insert(
                    i,
                    onnx.helper.make_tensor_value_info(
                        "probabilities", onnx.TensorProto.FLOAT, ["N", k]
                    ),
                )
                # the tensor keeps its place in the graph under the output's name
                for node in graph.node:
                    for j, name in enumerate(node.output):
                        if name == src:
                            node.output[j] = "probabilities"
                    for j, name in enumerate(node.input):
                        if name == src:
                            node.input[j] = "probabilities"
    return onx


def frame_or_array(desc: dict, rows: list[list]) -> object:
    import numpy as np

    if desc["frame"]:
        import pandas as pd

        df = pd.DataFrame(rows, columns=desc["names"])
        for c in desc["names"]:
            if c not in desc["str_cols"]:
                df[c] = df[c].astype("float64")
        return df
    return np.asarray(rows, dtype=np.float64)


def predict_original(model: object, desc: dict, rows: list[list]) -> dict:
    import numpy as np

    booster = is_booster(model)
    X = frame_or_array(desc, rows)
    out: dict = {}
    if booster == "xgboost":
        import xgboost as xgb

        names = desc["names"] if model.feature_names else None
        t0 = time.perf_counter()
        raw = model.predict(xgb.DMatrix(np.asarray(X, dtype=np.float64), feature_names=names))
        ms = (time.perf_counter() - t0) * 1000
    elif booster == "lightgbm":
        t0 = time.perf_counter()
        raw = model.predict(np.asarray(X, dtype=np.float64))
        ms = (time.perf_counter() - t0) * 1000
    elif booster == "catboost":
        X = np.asarray(X, dtype=np.float32)  # what the ONNX model sees
        t0 = time.perf_counter()
        if desc["task"] == "classification":
            probs = np.asarray(model.predict_proba(X), dtype=np.float64)
            ms = (time.perf_counter() - t0) * 1000
            classes = np.asarray(desc["classes"])
            out["probabilities"] = probs
            out["labels"] = classes[probs.argmax(axis=1)]
            if out["labels"].dtype == object:
                out["labels"] = out["labels"].astype(str)
        else:
            out["values"] = np.asarray(model.predict(X), dtype=np.float64)
            ms = (time.perf_counter() - t0) * 1000
        return {"arrays": out, "ms": ms}
    else:
        t0 = time.perf_counter()
        labels = model.predict(X)
        probs = (
            model.predict_proba(X)
            if desc["task"] == "classification" and hasattr(model, "predict_proba")
            else None
        )
        ms = (time.perf_counter() - t0) * 1000
        if desc["task"] == "classification":
            out["labels"] = np.asarray(labels)
            if out["labels"].dtype == object:  # npz without pickle: store text labels as str
                out["labels"] = out["labels"].astype(str)
            if probs is not None:
                out["probabilities"] = np.asarray(probs, dtype=np.float64)
        else:
            out["values"] = np.asarray(labels, dtype=np.float64)
        return {"arrays": out, "ms": ms}
    raw = np.asarray(raw, dtype=np.float64)
    if desc["task"] == "classification":
        if raw.ndim == 1:
            raw = np.stack([1 - raw, raw], axis=1)
        out["probabilities"] = raw
        out["labels"] = raw.argmax(axis=1).astype(np.int64)
    else:
        out["values"] = raw
    return {"arrays": out, "ms": ms}


MAX_MISSING_PROBES = 256


def probe_missing(model: object, desc: dict, row: list) -> tuple[list[str], list[list], dict]:
    """Numeric columns in which the original model takes a missing value (NaN), by trying.

    A model without an imputer (or a NaN-aware tree) raises on NaN; one that copes
    answers. Returns the columns that were taken, one probe row per column (the first
    sample row with that column missing) and the original's predictions on those rows,
    so the parent can check that the ONNX model answers the same before the signature
    says the column may be missing.
    """
    columns: list[str] = []
    rows: list[list] = []
    numeric = [c for c in desc["names"] if c not in desc["str_cols"]][:MAX_MISSING_PROBES]
    for name in numeric:
        probe = list(row)
        probe[desc["names"].index(name)] = float("nan")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predict_original(model, desc, [probe])
        except Exception:
            continue
        columns.append(name)
        rows.append(probe)
    arrays: dict = {}
    if rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arrays = predict_original(model, desc, rows)["arrays"]
    return columns, rows, arrays


def run_tabular(job: dict, model: object, result: dict) -> None:
    import numpy as np

    progress(0.2, "Reading what the model expects")
    if not is_booster(model):
        check_supported(model)
    desc = describe(model, job["kind"])
    given = job.get("column_names") or []
    if (
        given
        and len(given) == len(desc["names"])
        and desc["names"] == [f"f{i}" for i in range(len(given))]
        and not desc["frame"]
    ):
        # fitted without names (an array), but logged with them (the MLflow signature):
        # the endpoint takes the names the model was logged with
        desc["names"] = [str(c) for c in given]
    ranges = value_ranges(model, desc["names"])
    progress(0.35, "Converting to ONNX")
    onx = convert_tabular(model, desc)
    with open(job["onnx_path"], "wb") as fh:
        fh.write(onx.SerializeToString())
    progress(0.7, "Running the original model on sample rows")
    if job.get("sample_csv"):
        rows, notes = read_csv_rows(job["sample_csv"], desc)
        result["warnings"].extend(notes)
        result["rows_from"] = "csv"
    else:
        rows = generate_rows(desc, ranges, int(job.get("rows", 200)), int(job.get("seed", 0)))
        result["rows_from"] = "generated"
        example = job.get("example") or {}
        if example.get("rows"):
            # the model's own input example first, then generated rows
            rows = [*example_rows(example, desc), *rows]
            result["rows_from"] = "example"
    pred = predict_original(model, desc, rows)
    progress(0.85, "Trying the original model with missing values")
    m_cols, m_rows, m_arrays = probe_missing(model, desc, rows[0])
    result["missing_probe"] = {"columns": m_cols, "rows": m_rows}
    np.savez(
        os.path.join(job["job_dir"], "original.npz"),
        **pred["arrays"],
        **{f"missing__{k}": v for k, v in m_arrays.items()},
    )
    with open(os.path.join(job["job_dir"], "rows.json"), "w", encoding="utf-8") as fh:
        json.dump({"columns": desc["names"], "rows": rows}, fh)
    columns = []
    for i, name in enumerate(desc["names"]):
        dtype = "str" if name in desc["str_cols"] else desc.get("precision", "float32")
        if desc["per_column"]:
            columns.append({"name": name, "dtype": dtype, "input": name, "index": 0})
        else:
            columns.append({"name": name, "dtype": dtype, "input": "input", "index": i})
        if name in desc["str_cols"]:
            columns[-1]["categories"] = desc["str_cols"][name]
    if desc.get("precision_note"):
        result["warnings"].append(desc["precision_note"])
    result.update(
        tensor=False,
        precision=desc.get("precision", "float32"),
        task=desc["task"],
        class_labels=desc["classes"],
        columns=columns,
        original_ms=pred["ms"],
        n_rows=len(rows),
        estimator=f"{type(model).__module__}.{type(model).__name__}",
    )


def run_tensor(job: dict, model: object, result: dict) -> None:
    import numpy as np
    import torch

    shape = job.get("input_shape")
    if not shape:
        raise WorkerError(
            "input_shape",
            "A PyTorch model needs an input shape to be converted.",
            "Give one with --input-shape, e.g. --input-shape 1,3,32,32 (batch first).",
        )
    progress(0.3, "Converting to ONNX (torch.onnx.export)")
    exported = None
    if job.get("format") == "torch-export":  # a torch.export archive: export its program
        exported, model = model, model.module()
    # torch.export specialises sizes 0 and 1: a batch of 2 keeps the batch dimension free
    example = torch.zeros(*[2 if exported is not None else 1, *shape[1:]], dtype=torch.float32)
    try:
        with torch.no_grad():
            outs = model(example)
    except Exception as exc:
        raise WorkerError(
            "input_shape",
            f"The model does not accept an input of shape {list(shape)} ({short_error(exc)}).",
            "Give the shape the model was trained on with --input-shape, batch first.",
            details=traceback.format_exc(),
        ) from None
    n_out = len(outs) if isinstance(outs, tuple | list) else 1
    out_names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
    axes = {"input": {0: "batch"}, **{o: {0: "batch"} for o in out_names}}
    kwargs = dict(
        input_names=["input"], output_names=out_names, dynamic_axes=axes, opset_version=ONNX_OPSET
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exported is not None:
            need("onnxscript", "onnxscript")
            kwargs.pop("dynamic_axes")
            kwargs["opset_version"] = max(ONNX_OPSET, 18)  # the dynamo exporter's minimum
            prog = torch.onnx.export(exported, (example,), dynamo=True, **kwargs)
            prog.save(job["onnx_path"])
        else:
            try:
                torch.onnx.export(model, (example,), job["onnx_path"], dynamo=False, **kwargs)
            except TypeError:  # torch without the dynamo switch: the legacy exporter's default
                torch.onnx.export(model, (example,), job["onnx_path"], **kwargs)
    progress(0.7, "Running the original model on sample inputs")
    n = int(job.get("rows", 200))
    rng = np.random.default_rng(int(job.get("seed", 0)))
    sample = job.get("sample_csv")
    if sample and sample.endswith(".npy"):  # the user's own inputs
        x = np.load(sample, allow_pickle=False).astype(np.float32)
        result["rows_from"] = "npy"
    else:
        x = rng.standard_normal(size=(n, *shape[1:])).astype(np.float32)
        result["rows_from"] = "generated"
        example = (job.get("example") or {}).get("array")
        if example:
            ex = np.asarray(example, dtype=np.float32)
            if ex.shape[1:] == x.shape[1:]:  # the model's own input example first
                x = np.concatenate([ex, x])
                result["rows_from"] = "example"
    with torch.no_grad():
        t0 = time.perf_counter()
        y = model(torch.from_numpy(x))
        ms = (time.perf_counter() - t0) * 1000
    ys = list(y) if isinstance(y, tuple | list) else [y]
    arrays = {"input__input": x}
    for name, t in zip(out_names, ys, strict=True):
        arrays[f"output__{name}"] = t.detach().cpu().numpy().astype(np.float64)
    np.savez(os.path.join(job["job_dir"], "original.npz"), **arrays)
    result.update(
        tensor=True,
        task="other",
        class_labels=None,
        columns=[],
        original_ms=ms,
        n_rows=len(x),
        estimator=f"{type(model).__module__}.{type(model).__name__}",
    )


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else ""


def short_error(exc: BaseException) -> str:
    """One line for an exception whose text may span many (TorchScript's do)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if len(lines) > 1 else lines[0])[:300]


def isolate(job_dir: str, job: dict) -> dict:
    """Apply isolation.py (loaded by its path: this folder is not on sys.path) to this
    process; returns what applied, for the report."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        spec = importlib.util.spec_from_file_location(
            "modelship_isolation", os.path.join(here, "isolation.py")
        )
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    except Exception as exc:
        why = f"isolation.py could not be loaded ({exc})"
        return {"network": False, "read_only": False, "network_why": why, "read_only_why": why}
    # an empty tmpfs over /run would hide what the conversion itself reads from there
    used = [job.get("model_path"), job.get("sample_csv"), job_dir, sys.prefix, *sys.path]
    keep_run = any(os.path.realpath(p).startswith(("/run/", "/var/run/")) for p in used if p)
    return mod.apply(job_dir, keep_run=keep_run)


def main(argv: list[str]) -> int:
    job_dir = argv[1]
    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    job["job_dir"] = job_dir
    # before any library is imported (a new user namespace needs a single thread)
    isolation = isolate(job_dir, job)
    result: dict = {"ok": True, "warnings": [], "python": sys.executable}
    try:
        progress(0.05, f"Checking libraries in {sys.executable}")
        result["versions"] = check_versions(job.get("expected_versions", {}))
        if job["kind"] in ("sklearn", "xgboost", "lightgbm"):
            if job["format"] in ("pickle", "joblib"):
                need("skl2onnx", "skl2onnx")
            if job["kind"] in ("xgboost", "lightgbm"):
                need("onnxmltools", "onnxmltools")
        if job["kind"] == "catboost":
            need("catboost", "catboost")
            need("onnx", "onnx")
        if job["kind"] == "pytorch":
            need("torch", "torch")
            need("onnx", "onnx")
        progress(0.1, "Loading the model")
        model = load_model(job)
        if job["kind"] == "pytorch":
            run_tensor(job, model, result)
        else:
            run_tabular(job, model, result)
        progress(1.0, "Done")
    except WorkerError as exc:
        result = {
            "ok": False,
            "error": exc.kind,
            "message": exc.message,
            "hint": exc.hint,
            "details": exc.details,
        }
    except Exception as exc:
        result = {
            "ok": False,
            "error": "convert_failed",
            "message": f"Conversion failed ({type(exc).__name__}: {first_line(exc)}).",
            "hint": "Run again with --debug for the details; report them if the model is "
            "supported.",
            "details": traceback.format_exc(),
        }
    result["isolation"] = isolation
    with open(os.path.join(job_dir, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, default=str)
    return 0 if result.get("ok") else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
