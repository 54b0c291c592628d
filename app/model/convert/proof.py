"""The proof: the ONNX model run with onnxruntime on the rows the original answered,
compared within the tolerance; the signature and proof files written beside it (or an
unproven model removed); ONNX models taken in as they are; int8 quantization with its
own proof."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConversionError, ModelError, ParityError
from app.hashing import sha256_file
from app.model.convert.report import (
    ConversionReport,
    ConversionResult,
    ConvertOptions,
    empty_proof,
    proof_path_for,
)
from app.model.intake import ModelArtifact
from app.monitor.baseline import summarize
from app.nextstep import accept_mismatch, no_quantize, say, set_tolerance
from app.progress import Progress
from app.serving.signature import ColumnSpec, Signature

PROOF_ROWS = 20


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=False)
    except Exception as exc:
        raise ConversionError(
            f"The converted model fails the ONNX checker ({str(exc).splitlines()[0]}).",
            "Report this with the model type; try a different opset or converter version.",
        ) from None


def _signature(onnx_path: Path, art: ModelArtifact, res: dict) -> Signature:
    sig = Signature.from_onnx(onnx_path)
    sig.framework = art.kind
    sig.model_name = art.name
    sig.model_sha256 = sha256_file(onnx_path)
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    sig.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    if res.get("tensor") is False:
        sig.columns = [
            ColumnSpec(c["name"], c["dtype"], c["input"], int(c["index"])) for c in res["columns"]
        ]
    elif res.get("tensor"):
        sig.columns = []
    task = res.get("task") or "other"
    sig.task = task
    floats = [o for o in sig.outputs if o.dtype in ("float32", "float64")]
    if task == "classification":
        sig.label_output = next(
            (o.name for o in sig.outputs if o.dtype in ("int64", "str", "int32")), None
        )
        sig.probability_output = next(
            (o.name for o in floats if len(o.shape) == 2 or "prob" in o.name), None
        )
        sig.class_labels = res.get("class_labels")
    elif floats:
        sig.label_output = floats[0].name
    return sig


def _mark_missing(
    onnx_path: Path, sig: Signature, res: dict, original: dict[str, np.ndarray], tolerance: float
) -> None:
    """Set ``ColumnSpec.missing`` where a missing value is proven safe to serve.

    The worker found the columns in which the original model takes NaN; a column is
    marked only if the ONNX model also answers that row as the original did (an
    imputer or a NaN-aware tree that the converter carried over). Everywhere else the
    server refuses missing values with a 422 naming the column.
    """
    probe = res.get("missing_probe") or {}
    cols, rows = probe.get("columns") or [], probe.get("rows") or []
    if not cols or not sig.columns:
        return
    names = [c["name"] for c in res.get("columns", [])]
    try:
        sess = _session(onnx_path)
        out_names = [o.name for o in sess.get_outputs()]
        got = dict(zip(out_names, sess.run(None, _feeds(sig, names, rows)), strict=True))
    except Exception:  # the ONNX model does not take NaN there: leave every column refused
        return
    ok = np.ones(len(rows), dtype=bool)
    if sig.task == "classification":
        want = original.get("missing__labels")
        labels = got.get(sig.label_output) if sig.label_output else None
        if want is None or labels is None:
            return
        pairs = zip(want.ravel(), np.ravel(labels), strict=True)
        ok &= np.asarray([str(a) == str(b) for a, b in pairs])
        want_p = original.get("missing__probabilities")
        got_p = got.get(sig.probability_output) if sig.probability_output else None
        if want_p is not None and got_p is not None:
            d = np.abs(np.asarray(got_p, dtype=np.float64).reshape(want_p.shape) - want_p)
            ok &= ~(d > tolerance).any(axis=1)
    else:
        want = original.get("missing__values")
        if want is None or sig.label_output not in got:
            return
        want = want.reshape(len(rows), -1)
        g = np.asarray(got[sig.label_output], dtype=np.float64).reshape(len(rows), -1)
        ok &= ~(np.abs(g - want) > tolerance * np.maximum(1.0, np.abs(want))).any(axis=1)
    proven = {c for c, good in zip(cols, ok, strict=True) if good}
    for c in sig.columns:
        c.missing = c.name in proven


def _feeds(sig: Signature, columns: list[str], rows: list[list]) -> dict[str, np.ndarray]:
    by_input: dict[str, list[ColumnSpec]] = {}
    for c in sig.columns:
        by_input.setdefault(c.input, []).append(c)
    pos = {name: i for i, name in enumerate(columns)}
    feeds = {}
    for t in sig.inputs:
        cols = sorted(by_input.get(t.name, []), key=lambda c: c.index)
        if t.dtype == "str":
            arr = np.array([[str(r[pos[c.name]]) for c in cols] for r in rows], dtype=object)
        else:
            arr = np.array([[r[pos[c.name]] for c in cols] for r in rows], dtype=np.float64)
            arr = arr.astype(t.dtype)
        feeds[t.name] = arr
    return feeds


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _prove(
    onnx_path: Path,
    sig: Signature,
    res: dict,
    original: dict[str, np.ndarray],
    rows_doc: dict | None,
    tolerance: float,
    quantized: bool = False,
) -> tuple[ConversionReport, dict]:
    sess = _session(onnx_path)
    out_names = [o.name for o in sess.get_outputs()]
    proof = empty_proof(tolerance)
    if res.get("tensor"):
        x = original["input__input"]
        t0 = time.perf_counter()
        got = sess.run(None, {sig.inputs[0].name: x})
        onnx_ms = (time.perf_counter() - t0) * 1000
        diffs = []
        over = 0
        for name, arr in zip(out_names, got, strict=False):
            want = original.get(f"output__{name}")
            if want is None:
                continue
            d = np.abs(arr.astype(np.float64) - want)
            bound = tolerance * np.maximum(1.0, np.abs(want))
            over += int((d > bound).reshape(len(x), -1).any(axis=1).sum())
            diffs.append(float(d.max()) if d.size else 0.0)
        max_diff = max(diffs) if diffs else 0.0
        k = _proof_count(x)
        proof["inputs"] = {sig.inputs[0].name: x[:k].tolist()}
        proof["outputs"] = {
            n: original[f"output__{n}"][:k].tolist()
            for n in out_names
            if f"output__{n}" in original
        }
        report = ConversionReport(
            rows=len(x),
            labels_agreeing=None,
            label_agreement=None,
            max_abs_diff=max_diff,
            max_abs_diff_probabilities=None,
            tolerance=tolerance,
            passed=over == 0,
            original_ms=float(res.get("original_ms", 0.0)),
            onnx_ms=onnx_ms,
            onnx_size_bytes=onnx_path.stat().st_size,
            rows_from=res.get("rows_from", "generated"),
            rows_over_tolerance=over,
            task="other",
            quantized=quantized,
            precision=_precision(sig),
        )
        return report, proof

    assert rows_doc is not None
    columns, rows = rows_doc["columns"], rows_doc["rows"]
    feeds = _feeds(sig, columns, rows)
    t0 = time.perf_counter()
    got = dict(zip(out_names, sess.run(None, feeds), strict=True))
    onnx_ms = (time.perf_counter() - t0) * 1000
    n = len(rows)
    labels_agreeing = label_agreement = prob_diff = rows_probabilities_over = None
    same: np.ndarray | None = None
    labels_tied = 0
    over_rows = np.zeros(n, dtype=bool)
    if sig.task == "classification":
        want_labels = original.get("labels")
        got_labels = got.get(sig.label_output) if sig.label_output else None
        if want_labels is not None and got_labels is not None:
            same = np.asarray(
                [
                    str(a) == str(b)
                    for a, b in zip(
                        want_labels.ravel(), np.asarray(got_labels).ravel(), strict=False
                    )
                ]
            )
            labels_agreeing = int(same.sum())
            label_agreement = labels_agreeing / n if n else 1.0
        want_p = original.get("probabilities")
        got_p = got.get(sig.probability_output) if sig.probability_output else None
        if want_p is not None and got_p is not None:
            got_p = np.asarray(got_p, dtype=np.float64).reshape(want_p.shape)
            d = np.abs(got_p - want_p)
            prob_diff = float(d.max()) if d.size else 0.0
            prob_over = (d > tolerance).any(axis=1)
            rows_probabilities_over = int(prob_over.sum())
            over_rows |= prob_over
            if same is not None and got_labels is not None:
                tied = _ties(want_labels, np.asarray(got_labels), want_p, sig, tolerance) & ~same
                labels_tied = int(tied.sum())
                same = same | tied
        if same is not None:
            over_rows |= ~same
        max_diff = prob_diff if prob_diff is not None else float((~over_rows).sum() != n)
    else:
        want = original["values"].reshape(n, -1)
        got_v = np.asarray(got[sig.label_output], dtype=np.float64).reshape(n, -1)
        d = np.abs(got_v - want)
        max_diff = float(d.max()) if d.size else 0.0
        over_rows |= (d > tolerance * np.maximum(1.0, np.abs(want))).any(axis=1)
    k = min(PROOF_ROWS, n)
    proof["columns"] = columns
    proof["rows"] = [dict(zip(columns, _jsonable(r), strict=True)) for r in rows[:k]]
    if sig.task == "classification":
        proof["predictions"] = _jsonable(original["labels"][:k].tolist())
        if "probabilities" in original:
            proof["probabilities"] = original["probabilities"][:k].tolist()
        proof["class_labels"] = sig.class_labels
    else:
        vals = original["values"][:k]
        proof["predictions"] = (
            vals.ravel() if vals.ndim > 1 and vals.shape[1] == 1 else vals
        ).tolist()
    # every row the proof ran on, summarized (bins and shares): the drift baseline
    all_predictions: list | None = None
    if sig.task == "classification" and "labels" in original:
        all_predictions = _jsonable(original["labels"].ravel().tolist())
    elif sig.task != "classification" and "values" in original:
        # a multi-output regression: its first output
        all_predictions = original["values"].reshape(n, -1)[:, 0].tolist()
    text = {c.name for c in sig.columns if c.dtype == "str"}
    proof["baseline"] = summarize(columns, rows, all_predictions, text)
    proof["baseline"]["rows_from"] = res.get("rows_from", "generated")
    report = ConversionReport(
        rows=n,
        labels_agreeing=labels_agreeing,
        label_agreement=label_agreement,
        max_abs_diff=max_diff,
        max_abs_diff_probabilities=prob_diff,
        tolerance=tolerance,
        passed=not bool(over_rows.any()),
        original_ms=float(res.get("original_ms", 0.0)),
        onnx_ms=onnx_ms,
        onnx_size_bytes=onnx_path.stat().st_size,
        rows_from=res.get("rows_from", "generated"),
        rows_over_tolerance=int(over_rows.sum()),
        task=sig.task,
        quantized=quantized,
        precision=_precision(sig),
        rows_probabilities_over=rows_probabilities_over,
        labels_tied=labels_tied,
    )
    return report, proof


def _ties(
    want: np.ndarray, got: np.ndarray, want_p: np.ndarray, sig: Signature, tolerance: float
) -> np.ndarray:
    """Rows where the original's own probabilities for its label and for the converted
    model's label are equal (within the tolerance): a tie, which the original breaks by
    class order and the converted model by the last bits of its sums. Either label is
    the model's answer there; a tie is not a conversion error."""
    labels = [str(c) for c in (sig.class_labels or [])]
    out = np.zeros(len(want_p), dtype=bool)
    if len(labels) != want_p.shape[1]:
        return out
    col = {c: j for j, c in enumerate(labels)}
    for i, (a, b) in enumerate(zip(want.ravel(), got.ravel(), strict=False)):
        ja, jb = col.get(str(a)), col.get(str(b))
        if ja is not None and jb is not None and i < len(want_p):
            out[i] = abs(want_p[i, ja] - want_p[i, jb]) <= tolerance
    return out


def _precision(sig: Signature) -> str:
    """The precision the model computes in: the widest float dtype among its inputs."""
    floats = {t.dtype for t in sig.inputs if t.dtype in ("float16", "float32", "float64")}
    for dtype in ("float64", "float32", "float16"):
        if dtype in floats:
            return dtype
    return ""


def _proof_count(x: np.ndarray) -> int:
    per = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    return max(1, min(PROOF_ROWS, 100_000 // max(per, 1)))


def _jsonable(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _finish(
    out: Path, sig: Signature, report: ConversionReport, proof: dict, allow_mismatch: bool
) -> ConversionResult:
    sig_path = Signature.path_for(out)
    sig.save(sig_path)
    proof_path = proof_path_for(out)
    proof_path.write_text(json.dumps(proof, default=_json_default) + "\n", encoding="utf-8")
    result = ConversionResult(out, sig_path, proof_path, sig, report)
    if not report.passed and not allow_mismatch:
        # an unproven model must not look like a usable one: remove what was written
        for p in (out, sig_path, proof_path):
            p.unlink(missing_ok=True)
        err = ParityError(
            f"The proof failed. {report.summary(brief=True)} {report.meaning()}",
            parity_hint(report),
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    return result


def parity_hint(report: ConversionReport) -> str:
    """One next step after a failed proof, in the command line's words (the flags exist
    on every command that converts: convert, deploy and build)."""
    tol = report.suggested_tolerance()
    if tol is not None:
        return say(
            f"If differences of up to {tol:g} are fine for how you use the model, ",
            set_tolerance(tol, report.quantized),
            ".",
        )
    return say(
        "Check that the sample rows are the kind of data the model was made for; to keep "
        "the converted model anyway, ",
        accept_mismatch(),
        ".",
    )


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _adopt_onnx(
    art: ModelArtifact, out: Path, options: ConvertOptions, progress: Progress
) -> ConversionResult:
    """An ONNX file needs no conversion: check it, copy it, describe it."""
    progress.step("Checking the ONNX model")
    _check_onnx(art.path)
    if Path(art.path).resolve() != out.resolve():
        shutil.copyfile(art.path, out)
    try:
        sig = Signature.from_onnx(out)
    except Exception as exc:
        raise ModelError(
            f"onnxruntime cannot load {art.path.name} ({str(exc).splitlines()[0][:200]}).",
            "Export it again with an opset this onnxruntime supports.",
        ) from None
    sig.framework, sig.model_sha256 = "onnx", sha256_file(out)
    sig.model_name = art.name
    report = ConversionReport(
        rows=0,
        labels_agreeing=None,
        label_agreement=None,
        max_abs_diff=0.0,
        max_abs_diff_probabilities=None,
        tolerance=options.tolerance,
        passed=True,
        original_ms=0.0,
        onnx_ms=0.0,
        onnx_size_bytes=out.stat().st_size,
        model=art.source.name,
        warnings=["The model is already ONNX: there is no original to compare it with."],
    )
    proof = empty_proof(options.tolerance)
    return _finish(out, sig, report, proof, True)


def _quantize(
    base: ConversionResult,
    options: ConvertOptions,
    progress: Progress,
    res: dict | None,
    original: dict[str, np.ndarray],
    rows_doc: dict | None,
) -> ConversionResult:
    """Dynamic int8 quantization, with its own proof against the original's predictions."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    progress.step("Quantizing (dynamic int8)")
    q_path = base.onnx_path.with_name(base.onnx_path.stem + ".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs advice on the root logger
    try:
        quantize_dynamic(str(base.onnx_path), str(q_path), weight_type=QuantType.QInt8)
    except Exception as exc:
        q_path.unlink(missing_ok=True)
        raise ConversionError(
            f"Quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).",
            say(no_quantize(), "."),
        ) from None
    finally:
        root.setLevel(level)
    sig = Signature.from_dict(base.signature.to_dict())
    sig.model_sha256 = sha256_file(q_path)
    tol = options.quantize_tolerance
    if res is None:  # ONNX in: nothing to compare with
        report = replace(base.report, onnx_size_bytes=q_path.stat().st_size, quantized=True)
        proof = json.loads(base.proof_path.read_text(encoding="utf-8"))
    else:
        progress.step("Proving the quantized model")
        report, proof = _prove(q_path, sig, res, original, rows_doc, tol, quantized=True)
        report.model = base.report.model
        report.warnings.append(
            say(
                f"Quantized models are checked with their own tolerance ({tol:g}, ",
                set_tolerance(tol, quantized=True, verb="set with"),
                "): int8 weights trade a little accuracy for size.",
            )
        )
    report.isolation = base.report.isolation
    report.isolation_applied = base.report.isolation_applied
    report.size_saved_bytes = base.report.onnx_size_bytes - report.onnx_size_bytes
    return _finish(q_path, sig, report, proof, options.allow_mismatch)
