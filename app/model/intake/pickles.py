"""Pickle and joblib files: scanned, judged, read with the restricted unpickler and
described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.errors import ModelError, UnsupportedModelError
from app.model.intake.artifact import (
    _JOBLIB_SUFFIXES,
    _LIBRARIES,
    SUPPORTED_TEXT,
    ModelArtifact,
    installed_versions,
)
from app.model.intake.boosters import _describe_catboost_blob
from app.model.intake.describe import describe_estimator
from app.model.intake.unpickler import _Stub, safe_load, scan_pickle, stub_name
from app.model.picklescan import SAFE, Verdict, judge
from app.nextstep import match_env, say, use_python


def _inspect_pickle(p: Path, data: bytes, fmt: str) -> ModelArtifact:
    imports, complete = scan_pickle(data)
    joblib_stream = any(i.startswith("joblib.numpy_pickle") for i in imports)
    if joblib_stream or p.suffix.lower() in _JOBLIB_SUFFIXES:
        fmt = "joblib"
    if not complete and not joblib_stream:
        if judge(imports).verdict != SAFE:
            _refuse_non_model(p, judge(imports))
        raise ModelError(
            f"{p.name} is a truncated or corrupt pickle (it ends before its last instruction).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    try:
        # the restricted unpickler: every global becomes an inert stand-in (see _SafeMixin),
        # so this lists the globals past joblib's array blocks without running any of them
        root, found = safe_load(data, fmt)
    except Exception as exc:
        if judge(imports).verdict != SAFE:
            _refuse_non_model(p, judge(imports))
        raise ModelError(
            f"{p.name} is a truncated or corrupt {fmt} file ({type(exc).__name__}).",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    for f in found:
        if f not in imports:
            imports.append(f)
    verdict = judge(imports)
    try:
        art = _describe_pickled(p, fmt, root, imports)
    except ModelError:
        if verdict.verdict != SAFE:
            _refuse_non_model(p, verdict)
        raise
    art.safety = verdict
    if verdict.verdict != SAFE:
        art.warnings.insert(0, verdict.summary())
    return art


def _refuse_non_model(p: Path, verdict: Verdict) -> None:
    """Not a usable model and not safe: say what it would run, never load it."""
    from app.model.picklescan import UntrustedModelError

    what = list(verdict.dangerous) or verdict.unknown
    raise UntrustedModelError(
        f"{p.name} is not a model ModelShip can use, and loading it would call "
        f"{', '.join(what[:6])}.",
        "Do not load this file; ask whoever sent it for the trained model itself.",
        verdict,
    )


def _describe_pickled(p: Path, fmt: str, root: Any, imports: list[str]) -> ModelArtifact:
    estimator = stub_name(root)
    if estimator is None:
        raise ModelError(
            f"{p.name} is a {fmt} file, but it holds a {type(root).__name__}, not a trained model.",
            "Pickle the fitted estimator itself (e.g. joblib.dump(model, 'model.joblib')).",
        )
    top = estimator.split(".")[0]
    if top not in ("sklearn", "xgboost", "lightgbm", "catboost"):
        raise UnsupportedModelError(
            f"{p.name} holds a {estimator}, which ModelShip cannot convert.", SUPPORTED_TEXT
        )
    kind = _LIBRARIES[top][0]
    art = ModelArtifact(
        path=p,
        kind=kind,
        format=fmt,
        estimator=estimator,
        pickle_imports=imports,
        runs_code_on_load=True,
    )
    art.warnings.append(
        "Loading this file runs code (it is a pickle): convert it only if you trust "
        "where it came from."
    )
    # library versions recorded in the file
    versions = {v for v in _walk_values(root, "_sklearn_version") if isinstance(v, str)}
    libs_used = {i.split(".")[0] for i in imports}
    for top_mod, (_, dist) in _LIBRARIES.items():
        if top_mod in libs_used:
            art.libraries[dist] = ""
    if versions:
        art.libraries["scikit-learn"] = sorted(versions)[-1]
        if len(versions) > 1:
            art.warnings.append(
                f"Parts were saved with scikit-learn {', '.join(sorted(versions))}."
            )
    installed = installed_versions(art.libraries)
    need = art.libraries.get("scikit-learn")
    if need and installed.get("scikit-learn") and installed["scikit-learn"] != need:
        art.warnings.append(
            say(
                f"It was saved with scikit-learn {need}; this Python has "
                f"{installed['scikit-learn']}. ",
                match_env("Convert with", "a matching environment, made once"),
                ", or ",
                use_python("", "pointing at", f"a Python that has scikit-learn {need}"),
                ".",
            )
        )
    if top == "catboost":
        blob = root.state.get("__model") if isinstance(root, _Stub) else None
        desc = _describe_catboost_blob(blob) if isinstance(blob, bytes | bytearray) else {}
        if not desc:
            desc = {"task": "classification" if "Classifier" in estimator else "regression"}
        art.inputs = desc.get("columns", [])
        art.task = desc.get("task")
        art.classes = desc.get("classes")
        return art
    try:
        desc = describe_estimator(root)
    except Exception:  # description is best effort; never block intake on it
        desc = {}
    art.inputs = desc.get("columns", [])
    art.task = desc.get("task")
    art.classes = desc.get("classes")
    return art


def _walk_values(obj: Any, key: str, depth: int = 0, seen: set | None = None) -> list[Any]:
    seen = set() if seen is None else seen
    if depth > 40 or id(obj) in seen:
        return []
    seen.add(id(obj))
    out: list[Any] = []
    if isinstance(obj, _Stub):
        st = obj.state
        if key in st:
            out.append(st[key])
        for v in st.values():
            out.extend(_walk_values(v, key, depth + 1, seen))
        for v in obj.__dict__.get("_ms_args", ()):
            out.extend(_walk_values(v, key, depth + 1, seen))
    elif isinstance(obj, dict):
        for v in obj.values():
            out.extend(_walk_values(v, key, depth + 1, seen))
    elif isinstance(obj, list | tuple):
        for v in obj:
            out.extend(_walk_values(v, key, depth + 1, seen))
    return out
