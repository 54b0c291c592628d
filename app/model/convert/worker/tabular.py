"""A tabular model end to end: describe, sample rows, convert, and run the original on
the rows (the parent compares the ONNX model's answers with these)."""

from __future__ import annotations

import json
import os
import time
import warnings

from ...modelfacts import unnamed
from .common import progress
from .converting import check_supported, convert_tabular
from .describing import describe, is_booster, value_ranges
from .rows import example_rows, generate_rows, read_csv_rows


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
        and desc["names"] == [unnamed(i) for i in range(len(given))]
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
