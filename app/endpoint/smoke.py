"""The smoke test after every deploy: does the endpoint answer as the proof said it would?

1. Wait for health (``GET /ping``) with bounded retries: a fresh server refuses
   connections or answers 502/503 while it loads (after Truss's
   ``_wait_for_model_server``).
2. Send the conversion proof's sample rows to ``POST /predict`` and compare the
   predictions (and probabilities, within the proof's tolerance) with what the
   ORIGINAL model predicted when the model was converted.
3. Measure latency: one batch request and a few single-row requests.

It calls the endpoint through the :class:`app.endpoint.client.EndpointClient` the endpoint's
target hands out, so it works the same against every target (a local process, a
container, a VM behind a pinned certificate, SageMaker's signed InvokeEndpoint).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.endpoint.client import EndpointClient, EndpointError, EndpointUnreachable
from app.errors import SmokeTestError
from app.plain import TINY, plain_number
from app.progress import CancelToken, NullProgress, Progress
from app.waiting import WaitFailed, WaitTimeout

_V2 = {
    "float32": "FP32",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
    "str": "BYTES",
    "uint8": "UINT8",
    "int8": "INT8",
    "float16": "FP16",
}
LATENCY_SAMPLES = 10


@dataclass
class SmokeReport:
    url: str
    healthy: bool = False
    health_seconds: float = 0.0  # how long until /ping said 200
    health_attempts: int = 0
    rows: int = 0
    matching: int = 0
    max_abs_diff: float | None = None  # probabilities (classifiers) or values (regressors)
    tolerance: float = 1e-4
    batch_ms: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_max: float | None = None
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # first few
    errors: list[str] = field(default_factory=list)
    # False when the proof had no expected answers (the model came as ONNX): the smoke
    # test then only checks that generated rows get one answer each.
    compared: bool = True

    @property
    def passed(self) -> bool:
        return self.healthy and not self.errors and self.rows > 0 and self.matching == self.rows

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["summary"] = self.summary()
        return d

    def summary(self) -> str:
        """Plain words, e.g. 'The endpoint answered 20 of 20 sample rows as the proof said
        (largest difference 3e-07); 4.1 ms per request.'"""
        if not self.healthy:
            return (
                f"The endpoint never became healthy at {self.url}/ping "
                f"({self.health_attempts} attempts in {self.health_seconds:.0f} s)."
                + (f" {self.errors[-1]}" if self.errors else "")
            )
        if self.rows == 0:
            return "The endpoint is healthy but could not be checked: " + (
                self.errors[0] if self.errors else "the proof has no sample rows."
            )
        diff = (
            f" (largest difference {plain_number(self.max_abs_diff, TINY)})"
            if self.max_abs_diff
            else ""
        )
        speed = f"; {self.latency_ms_p50:.1f} ms per request" if self.latency_ms_p50 else ""
        if not self.compared:
            if self.passed:
                return (
                    f"The endpoint answers: {self.matching} of {self.rows} generated rows got "
                    f"a prediction (no expected answers to compare with: the model came as "
                    f"ONNX){speed}."
                )
            return "The endpoint did not answer generated rows: " + (
                self.errors[0] if self.errors else f"{self.matching} of {self.rows} answered."
            )
        if self.passed:
            return (
                f"The endpoint answered {self.matching} of {self.rows} sample rows "
                f"as the proof said{diff}{speed}."
            )
        text = (
            f"The endpoint answered only {self.matching} of {self.rows} sample rows "
            f"as the proof said{diff}."
        )
        if self.errors:
            text += f" {self.errors[0]}"
        elif self.mismatches:
            m = self.mismatches[0]
            text += f" Row {m['row']}: expected {m['expected']!r}, got {m['got']!r}."
        return text


def load_proof(path: str | Path) -> dict[str, Any]:
    try:
        proof = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SmokeTestError(
            f"Cannot read the conversion proof {path}: {exc}",
            "Convert the model again (the proof is written next to model.onnx).",
        ) from None
    if not isinstance(proof, dict) or proof.get("schema", 1) > 1:
        raise SmokeTestError(
            f"The conversion proof {path} has an unknown format.", "Update ModelShip."
        )
    return proof


def _num(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def _flat(x: Any) -> list[Any]:
    if isinstance(x, list):
        return [y for item in x for y in _flat(item)]
    return [x]


def _same_label(expected: Any, got: Any) -> bool:
    if expected == got:
        return True
    a, b = _num(expected), _num(got)
    if a is not None and b is not None:
        return a == b
    return str(expected) == str(got)


def _compare_rows(proof: dict[str, Any], answer: dict[str, Any], report: SmokeReport) -> None:
    expected = proof.get("predictions") or []
    got = answer.get("predictions")
    if not isinstance(got, list) or len(got) != len(expected):
        n = len(got) if isinstance(got, list) else "no"
        report.errors.append(f"Expected {len(expected)} predictions, got {n}.")
        return
    tol = float(proof.get("tolerance") or report.tolerance)
    report.tolerance = tol
    classifier = bool(proof.get("class_labels")) or proof.get("probabilities") is not None
    exp_probs = proof.get("probabilities")
    got_probs = answer.get("probabilities")
    labels = proof.get("class_labels")
    max_diff = 0.0
    matching = 0
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        ok = True
        if classifier:
            ok = _same_label(_flat(e)[0] if isinstance(e, list) else e,
                             _flat(g)[0] if isinstance(g, list) else g)  # fmt: skip
            if not ok and exp_probs is not None and i < len(exp_probs):
                ok = _tie(exp_probs[i], labels, e, g, tol)
        else:
            for a, b in zip(_flat(e), _flat(g), strict=False):
                fa, fb = _num(a), _num(b)
                if fa is None or fb is None:
                    ok = ok and _same_label(a, b)
                    continue
                d = abs(fa - fb)
                if math.isnan(d):
                    ok = False
                    continue
                max_diff = max(max_diff, d)
                ok = ok and d <= tol * max(1.0, abs(fa))
        if ok and exp_probs is not None and got_probs is not None and i < len(exp_probs):
            ok, d = _compare_probabilities(exp_probs[i], got_probs[i], labels, tol)
            max_diff = max(max_diff, d)
        if ok:
            matching += 1
        elif len(report.mismatches) < 5:
            report.mismatches.append({"row": i, "expected": e, "got": g})
    report.matching = matching
    report.max_abs_diff = max_diff


def _tie(expected: Any, labels: list[Any] | None, want: Any, got: Any, tol: float) -> bool:
    """The original's probabilities for both labels are equal (within the tolerance): a
    tie, which either label answers (app.model.convert counts it the same way in the proof)."""
    if not labels or not isinstance(expected, list) or len(expected) != len(labels):
        return False
    names = [str(x) for x in labels]
    a = _flat(want)[0] if isinstance(want, list) else want
    b = _flat(got)[0] if isinstance(got, list) else got
    if str(a) not in names or str(b) not in names:
        return False
    pa, pb = _num(expected[names.index(str(a))]), _num(expected[names.index(str(b))])
    return pa is not None and pb is not None and abs(pa - pb) <= tol


def _compare_probabilities(
    expected: Any, got: Any, labels: list[Any] | None, tol: float
) -> tuple[bool, float]:
    """Proof rows are lists aligned with class_labels; answers are {label: p} dicts."""
    if isinstance(got, dict):
        if labels is None:
            labels = list(got)
        values = [got.get(str(label), got.get(label)) for label in labels]  # type: ignore[call-overload]
    else:
        values = list(got) if isinstance(got, list) else []
    exp = list(expected) if isinstance(expected, list) else []
    if len(values) != len(exp) or any(v is None for v in values):
        return False, math.inf
    diff = max((abs(float(a) - float(b)) for a, b in zip(exp, values, strict=True)), default=0.0)
    return diff <= tol, diff


def _tensor_check(client: EndpointClient, proof: dict[str, Any], report: SmokeReport) -> None:
    """Tensor models: the v2 infer route with the proof's inputs, outputs compared."""
    sig_path = proof.get("_signature_path")
    from app.serving.signature import Signature

    signature = Signature.load(sig_path) if sig_path and Path(sig_path).exists() else None
    model = signature.model_name if signature else "model"
    dtypes = {t.name: t.dtype for t in signature.inputs} if signature else {}
    inputs = []
    for name, value in (proof.get("inputs") or {}).items():
        shape = _shape(value)
        inputs.append(
            {
                "name": name,
                "shape": shape,
                "datatype": _V2.get(dtypes.get(name, "float32"), "FP32"),
                "data": _flat(value),
            }
        )
    t0 = time.perf_counter()
    answer = client.infer(inputs, model)
    report.batch_ms = (time.perf_counter() - t0) * 1000
    outs = {o["name"]: o.get("data") for o in answer.get("outputs", [])}
    tol = float(proof.get("tolerance") or report.tolerance)
    expected_outputs = proof.get("outputs") or {}
    first_input = next(iter((proof.get("inputs") or {}).values()), [])
    samples = len(first_input) if isinstance(first_input, list) else 1
    report.rows = samples
    max_diff = 0.0
    bad: set[int] = set()
    for name, value in expected_outputs.items():
        exp = [_num(v) for v in _flat(value)]
        got = [_num(v) for v in _flat(outs.get(name, []))]
        if len(exp) != len(got) or None in got or samples == 0:
            report.errors.append(f"Output {name!r}: expected {len(exp)} values, got {len(got)}.")
            bad.update(range(samples))
            continue
        per = len(exp) // samples  # values per sample
        for k, (a, b) in enumerate(zip(exp, got, strict=True)):
            if a is None or b is None:
                continue
            d = abs(a - b)
            max_diff = max(max_diff, d)
            # the same bound as the conversion proof: relative for large values
            if not d <= tol * max(1.0, abs(a)):
                row = k // per if per else 0
                if row not in bad and len(report.mismatches) < 5:
                    report.mismatches.append({"row": row, "expected": a, "got": b})
                bad.add(row)
    matching = samples - len(bad)
    report.matching = matching
    report.max_abs_diff = max_diff


_ZERO = {"str": "", "bool": False}


def _answer_check(client: EndpointClient, proof: dict[str, Any], report: SmokeReport) -> None:
    """No expected answers (an ONNX input): send generated rows, expect one answer each."""
    from app.serving.signature import Signature

    sig_path = proof.get("_signature_path")
    if not sig_path or not Path(sig_path).exists():
        report.errors.append("The model has no signature file to generate sample input from.")
        return
    sig = Signature.load(sig_path)
    n = 2
    t0 = time.perf_counter()
    if sig.columns:
        rows = [{c.name: _ZERO.get(c.dtype, 0.0) for c in sig.columns} for _ in range(n)]
        got = client.predict(rows).get("predictions") or []
    else:
        inputs = []
        for t in sig.inputs:
            shape = [n if i == 0 else (d or 1) for i, d in enumerate(t.shape)] or [n]
            size = 1
            for d in shape:
                size *= d
            dtype = _V2.get(t.dtype, "FP32")
            value = "" if dtype == "BYTES" else (False if dtype == "BOOL" else 0)
            inputs.append(
                {"name": t.name, "shape": shape, "datatype": dtype, "data": [value] * size}
            )
        outputs = client.infer(inputs, sig.model_name).get("outputs") or []
        got = [None] * (outputs[0]["shape"][0] if outputs and outputs[0].get("shape") else 0)
    report.batch_ms = (time.perf_counter() - t0) * 1000
    report.rows = n
    report.matching = min(len(got), n) if len(got) == n else 0
    if len(got) != n:
        report.errors.append(f"Sent {n} generated rows, got {len(got)} answers.")


def _shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def run_smoke_test(
    client: EndpointClient,
    proof_path: str | Path,
    *,
    timeout: float = 60.0,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SmokeReport:
    """Check a deployed endpoint against the conversion proof. Never raises for a
    failing endpoint: the report says what failed (``passed`` False); raises
    SmokeTestError only when the proof itself is unreadable, Cancelled on cancel."""
    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    url = client.url
    proof = load_proof(proof_path)
    p = Path(proof_path)
    if p.name.endswith(".proof.json"):
        proof["_signature_path"] = str(
            p.with_name(p.name[: -len(".proof.json")] + ".signature.json")
        )
    report = SmokeReport(url=url, tolerance=float(proof.get("tolerance") or 1e-4))

    progress.update(None, f"Waiting for {url} to answer")
    start = time.monotonic()
    try:
        attempts, seconds = client.wait_healthy(timeout=timeout, cancel=cancel, progress=progress)
        report.healthy, report.health_attempts, report.health_seconds = True, attempts, seconds
    except (WaitTimeout, WaitFailed) as exc:
        report.health_seconds = time.monotonic() - start
        report.errors.append(exc.message)
        return report
    cancel.raise_if_cancelled()

    try:
        if proof.get("rows"):
            rows = proof["rows"]
            report.rows = len(rows)
            progress.update(None, f"Sending {len(rows)} sample rows to {url}")
            t0 = time.perf_counter()
            answer = client.predict(rows)
            report.batch_ms = (time.perf_counter() - t0) * 1000
            _compare_rows(proof, answer, report)
            cancel.raise_if_cancelled()
            times = []
            for row in rows[:LATENCY_SAMPLES]:
                times += client.latency_ms([row], samples=1)
                cancel.raise_if_cancelled()
            if times:
                report.latency_ms_p50 = statistics.median(times)
                report.latency_ms_max = max(times)
        elif proof.get("inputs"):
            progress.update(None, "Sending the proof's input tensors to the v2 infer route")
            _tensor_check(client, proof, report)
            if report.batch_ms is not None:
                report.latency_ms_p50 = report.latency_ms_max = report.batch_ms
        else:
            report.compared = False
            _answer_check(client, proof, report)
            report.latency_ms_p50 = report.latency_ms_max = report.batch_ms
    except EndpointError as exc:
        report.errors.append(f"The endpoint answered {exc.status}: {exc.body[:200]}")
    except EndpointUnreachable as exc:
        report.errors.append(f"The endpoint stopped answering: {exc}")
    except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        report.errors.append(f"The endpoint's answer was not what the proof expects: {exc}")
    return report
