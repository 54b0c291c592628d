"""What every part of the worker uses: its error, progress lines, library checks."""

from __future__ import annotations

import json
import sys
from importlib import metadata

PROGRESS = "MODELSHIP-PROGRESS "


ONNX_OPSET = 17  # skl2onnx (also with registered XGBoost/LightGBM converters) and torch


ONNXMLTOOLS_OPSET = 15  # onnxmltools' own converters stop at 15


ML_OPSET = 3


class WorkerError(Exception):
    def __init__(self, kind: str, message: str, hint: str | list = "", details: str = ""):
        super().__init__(message)
        self.kind, self.message, self.hint, self.details = kind, message, hint, details


def act(name: str, **params: object) -> dict:
    """A next step as data (the JSON of app.nextstep.Action): the parent says it as the
    command line's flag or the wizard's field. A hint with one is a list of words and
    actions."""
    return {"action": name, **{k: v for k, v in params.items() if v not in (None, "")}}


def progress(fraction: float | None, message: str) -> None:
    print(PROGRESS + json.dumps({"fraction": fraction, "message": message}), flush=True)


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
                [
                    act(
                        "use_python",
                        verb="Convert with",
                        link="pointing at",
                        who=f"a Python that has {dist} {want}",
                    ),
                    " (e.g. the environment the model was trained in), or install it there: "
                    f"pip install {dist}=={want}",
                ],
            )
    return found


def install_hint(dist: str, version: str = "") -> list:
    """How to get ``dist`` where this worker runs: the packaged app has no pip, so it
    is a matching environment there; elsewhere pip in this very Python."""
    if getattr(sys, "frozen", False):
        return [
            _match_env(dist),
            ", or ",
            act(
                "use_python",
                verb="give",
                link="with",
                who="the environment the model was trained in",
            ),
            ".",
        ]
    pin = f"=={version}" if version else ""
    return [
        _match_env(dist),
        f", or install it here: {sys.executable} -m pip install {dist}{pin}",
    ]


def _match_env(dist: str) -> dict:
    return act(
        "match_env", verb="Run again with", note=f"ModelShip makes an environment with {dist}"
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


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:300] if text else ""


def short_error(exc: BaseException) -> str:
    """One line for an exception whose text may span many (TorchScript's do)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return (lines[-1] if len(lines) > 1 else lines[0])[:300]
