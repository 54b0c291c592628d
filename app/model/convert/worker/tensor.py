"""A PyTorch model end to end: export to ONNX and run the original on sample inputs."""

from __future__ import annotations

import os
import time
import traceback
import warnings

from .common import ONNX_OPSET, WorkerError, act, need, progress, short_error


def run_tensor(job: dict, model: object, result: dict) -> None:
    import numpy as np
    import torch

    shape = job.get("input_shape")
    if not shape:
        raise WorkerError(
            "input_shape",
            "A PyTorch model needs an input shape to be converted.",
            [act("input_shape", verb="Give one with", example="1,3,32,32"), " (batch first)."],
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
            [
                act("input_shape", verb="Give the shape the model was trained on with"),
                ", batch first.",
            ],
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
