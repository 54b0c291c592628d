"""The worker's entry: read the job, isolate this process, run it, write the result."""

from __future__ import annotations

import json
import os
import sys
import traceback

from .common import WorkerError, act, check_versions, first_line, need, progress
from .loading import load_model
from .tabular import run_tabular
from .tensor import run_tensor


def isolate(job_dir: str, job: dict) -> dict:
    """Apply isolation.py (app/model/convert/isolation.py, found through this package as its
    other modules are: see ``__main__.py``) to this process; returns what applied, for
    the report."""
    try:
        from .. import isolation as mod
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
            "hint": [
                "Run again and read ",
                act("see_details"),
                "; report them if the model is supported.",
            ],
            "details": traceback.format_exc(),
        }
    result["isolation"] = isolation
    with open(os.path.join(job_dir, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, default=str)
    return 0 if result.get("ok") else 3
