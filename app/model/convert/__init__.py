"""Convert a model to ONNX and prove that the ONNX model predicts what the original does.

The model is loaded and converted in a subprocess (``worker/``) run by the Python the
user chose (``--python``; default: this one), because a pickle only loads reliably with
the library versions it was saved with. The worker also runs the *original* model on
sample rows; this process then runs the ONNX model with onnxruntime on the same rows
and compares: that comparison is the proof (:class:`ConversionReport`).

Modules: this one (:func:`convert_model`: the steps in order), ``report`` (options,
report, result), ``interpreter`` (which Python converts), ``runner`` (the worker
subprocess), ``proof`` (onnxruntime against the original, the files written, ONNX in,
quantization), ``isolation`` (the worker's sandbox) and ``worker/`` (the worker itself,
run by another Python).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.errors import UsageError
from app.model.convert.interpreter import _matching_python, _resolve_python
from app.model.convert.proof import _adopt_onnx, _quantize, parity_hint
from app.model.convert.report import ConversionReport, ConversionResult, ConvertOptions
from app.model.convert.runner import WORKER, _convert_in_worker, isolation_here
from app.model.intake import ModelArtifact, inspect_model
from app.model.picklescan import require_trust
from app.nextstep import input_shape, say, set_setting
from app.progress import CancelToken, NullProgress, Progress

__all__ = [
    "WORKER",
    "ConversionReport",
    "ConversionResult",
    "ConvertOptions",
    "convert_model",
    "isolation_here",
    "parity_hint",
]


def convert_model(
    model_path: str | Path,
    out_path: str | Path | None,
    options: ConvertOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    artifact: ModelArtifact | None = None,
) -> ConversionResult:
    """Convert ``model_path`` to ONNX at ``out_path`` and prove it; see module docstring.
    ``artifact``: what a deploy's intake already read of ``model_path`` (not read again)."""
    options = options or ConvertOptions()
    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    progress.step("Inspecting the model")
    art = artifact if artifact is not None else inspect_model(model_path)
    # the decision, before any process loads the file
    require_trust(Path(art.path).name, art.safety, options.trust)
    out = Path(out_path) if out_path else art.source.with_suffix(".onnx")
    if out.resolve() == Path(art.path).resolve():
        out = out.with_name(out.stem + ".converted.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    if options.sample_csv is not None and not Path(options.sample_csv).is_file():
        raise UsageError(
            f"The sample CSV {options.sample_csv} does not exist.",
            say(
                "Check the path in ", set_setting("sample_csv", "Sample rows", flag="--sample"), "."
            ),
        )
    if art.kind == "pytorch" and options.sample_csv and Path(options.sample_csv).suffix == ".npy":
        options = replace(
            options, input_shape=options.input_shape or _npy_shape(options.sample_csv)
        )
    elif art.kind == "pytorch" and options.sample_csv:
        raise UsageError(
            "A PyTorch model takes a sample as a NumPy .npy file (batch first), not a CSV.",
            say(
                "Save sample inputs with numpy.save('sample.npy', x), or ", input_shape("use"), "."
            ),
        )
    if art.kind == "pytorch" and not options.input_shape and not options.sample_csv:
        shape = _logged_shape(art)
        if shape:
            options = replace(options, input_shape=shape)
    if art.kind == "pytorch" and not options.input_shape:
        raise UsageError(
            f"{art.path.name} is a PyTorch model, which needs an input shape to be converted.",
            say(input_shape("Give one with", "1,3,32,32"), " (batch first)."),
        )
    python = _resolve_python(options.python, art.kind, options.match_env)
    matched: str | None = None
    if python == sys.executable:
        python, matched = _matching_python(art, options, progress, cancel)
    cancel.raise_if_cancelled()

    if art.kind == "onnx":
        result = _adopt_onnx(art, out, options, progress)
        if options.quantize:
            result.quantized = _quantize(result, options, progress, None, {}, None)
    else:
        result = _convert_in_worker(art, out, options, python, progress, cancel)
    if matched:
        result.report.warnings.insert(
            0,
            f"Converted in a matching environment with {matched} (the versions the file "
            "was saved with).",
        )
    result.artifact = art
    return result


def _logged_shape(art: ModelArtifact) -> list[int] | None:
    """An MLflow model's input shape (batch first, batch 1), from its signature or example."""
    mm = art.mlflow
    if mm is None:
        return None
    if mm.tensor and len(mm.tensor["shape"]) >= 2 and all(d > 0 for d in mm.tensor["shape"][1:]):
        return [1, *[int(d) for d in mm.tensor["shape"][1:]]]
    if mm.example and mm.example.get("array"):
        arr = np.asarray(mm.example["array"])
        if arr.ndim >= 2:
            return [1, *[int(d) for d in arr.shape[1:]]]
    return None


def _npy_shape(path: Path) -> list[int]:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:
        raise UsageError(
            f"The sample {Path(path).name} is not a readable NumPy array file.",
            "Save sample inputs with numpy.save('sample.npy', x) (batch first).",
        ) from None
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise UsageError(
            f"The sample {Path(path).name} has shape {list(arr.shape)}; it needs a batch "
            "dimension first and at least one sample.",
            "Save e.g. an array of shape (N, 3, 32, 32).",
        )
    return [1, *[int(d) for d in arr.shape[1:]]]
