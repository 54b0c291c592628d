"""Convert a model to ONNX and prove that the ONNX model predicts what the original does.

The model is loaded and converted in a subprocess (``worker/``) run by the Python the
user chose (``--python``; default: this one), because a pickle only loads reliably with
the library versions it was saved with. The worker also runs the *original* model on
sample rows; this process then runs the ONNX model with onnxruntime on the same rows
and compares: that comparison is the proof (:class:`ConversionReport`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.convert import isolation
from app.errors import (
    ConversionError,
    EnvironmentMismatchError,
    ModelError,
    ParityError,
    UnsupportedModelError,
    UsageError,
)
from app.hashing import sha256_file
from app.intake import ModelArtifact, inspect_model
from app.picklescan import approved_globals, require_trust
from app.plain import at_most, plain_number
from app.progress import CancelToken, NullProgress, Progress
from app.runtime import is_frozen, script_command
from app.serving.signature import ColumnSpec, Signature

WORKER = Path(__file__).with_name("worker") / "__main__.py"
ISOLATION = Path(__file__).with_name("isolation.py")
PROGRESS_PREFIX = "MODELSHIP-PROGRESS "
DEFAULT_TIMEOUT_S = 600.0
QUANTIZED_TOLERANCE = 0.05
PROOF_ROWS = 20


@dataclass
class ConvertOptions:
    python: str | None = None
    sample_csv: Path | None = None
    input_shape: list[int] | None = None
    tolerance: float = 1e-4
    allow_mismatch: bool = False
    quantize: bool = False
    generated_rows: int = 200
    quantize_tolerance: float = QUANTIZED_TOLERANCE
    timeout_s: float = DEFAULT_TIMEOUT_S
    seed: int = 0
    # The user said they trust this file (CLI --trust, the wizard's "I trust this file"):
    # load a pickle even when it names dangerous or unknown code. Without it, such a
    # file is refused before anything loads it (app.picklescan.require_trust).
    trust: bool = False
    # When the file records library versions other than ModelShip's own (a pickle from
    # a newer or older scikit-learn, ...), convert in a cached environment with exactly
    # those versions (app/envs.py), made from the package index the first time.
    match_env: bool = False


@dataclass
class ConversionReport:
    """The proof: how closely the ONNX model follows the original on sample rows."""

    rows: int
    labels_agreeing: int | None
    label_agreement: float | None
    max_abs_diff: float
    max_abs_diff_probabilities: float | None
    tolerance: float
    passed: bool
    original_ms: float
    onnx_ms: float
    onnx_size_bytes: int
    rows_from: str = "generated"  # "generated" | "csv" | "npy" (the user's own rows/inputs)
    rows_over_tolerance: int = 0
    task: str = "other"
    model: str = ""
    quantized: bool = False
    size_saved_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)
    # how the process that loaded the model was isolated (app/convert/isolation.py):
    # one sentence, and what applied ("network", "read_only", ... and why not)
    isolation: str = ""
    isolation_applied: dict[str, Any] = field(default_factory=dict)
    # the dtype of the model's numeric inputs: float32, or float64 where float32 would
    # decide a tree's split differently from the original (app/convert/worker/)
    precision: str = "float32"
    # rows whose probabilities differ by more than the tolerance (labels counted apart)
    rows_probabilities_over: int | None = None
    # rows where the original's probabilities tie between two labels and the converted
    # model picks the other one (counted apart from labels_agreeing; not a failure)
    labels_tied: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def labels_differing(self) -> int:
        if self.labels_agreeing is None:
            return 0
        return self.rows - self.labels_agreeing - self.labels_tied

    def summary(self, brief: bool = False) -> str:
        """The proof in plain words: labels and probabilities (or values) apart; ``brief``
        leaves out the timings and the file size (a failure's message)."""
        if self.rows == 0:
            return (
                "The model is already ONNX: it was checked and described, but there is no "
                f"original to compare it with. ONNX file {_size(self.onnx_size_bytes)}."
            )
        what = "quantized model" if self.quantized else "converted model"
        src = {
            "csv": "your sample CSV",
            "npy": "your sample",
            "example": "the model's input example, then generated ones",
        }.get(self.rows_from, "generated sample")
        tol = f"the tolerance of {self.tolerance:g}"
        if self.labels_agreeing is not None:
            text = (
                f"The {what} gives the same label on {self.labels_agreeing} of {self.rows} "
                f"rows ({src})"
            )
            if self.labels_tied:
                text += (
                    f", and on {self.labels_tied} more the original's probabilities tie "
                    "between two labels, which the converted model breaks the other way"
                )
            if self.labels_differing:
                text += f", a different label on {self.labels_differing}"
            diff = self.max_abs_diff_probabilities
            if diff is not None:
                over = self.rows_probabilities_over
                if over is None:  # a report from before the count existed
                    over = self.rows_over_tolerance - self.labels_differing
                if over > 0:
                    text += (
                        f"; probabilities differ by up to {plain_number(diff)}, more than {tol} on "
                        f"{_rows(over)}."
                    )
                else:
                    text += f"; probabilities {at_most(diff)}, within {tol}."
            else:
                text += "." if self.labels_differing else f": within {tol}."
        else:
            unit = "inputs" if self.task == "other" else "rows"
            text = f"The {what} was compared with the original on {self.rows} " + (
                f"{unit} ({src})" if self.rows_from == "example" else f"{src} {unit}"
            )
            values = "outputs" if self.task == "other" else "values"
            if self.rows_over_tolerance:
                text += (
                    f"; {values} differ by up to {plain_number(self.max_abs_diff)}, more than "
                    f"{tol} on {_rows(self.rows_over_tolerance, unit)}."
                )
            else:
                text += f"; {values} {at_most(self.max_abs_diff)}, within {tol}."
        if self.precision == "float64":
            text += (
                " Inputs are taken in double precision (float64): the preprocessing computes "
                "as in the original, so each tree gets the very values it splits on there."
            )
        elif self.precision:
            text += f" Inputs are taken in single precision ({self.precision})."
        if brief:
            return text
        text += (
            f" Original: {self.original_ms:.1f} ms, ONNX: {self.onnx_ms:.1f} ms for all rows; "
            f"ONNX file {_size(self.onnx_size_bytes)}"
        )
        if self.size_saved_bytes is not None:
            if self.size_saved_bytes >= 0:
                text += f" ({_size(self.size_saved_bytes)} smaller than unquantized)"
            else:
                text += (
                    f" ({_size(-self.size_saved_bytes)} LARGER than unquantized: this model has "
                    "few weights to quantize)"
                )
        return text + "."

    def meaning(self) -> str:
        """What a failed proof means for whoever calls the endpoint ("" when it passed)."""
        if self.passed:
            return ""
        if self.labels_differing:
            return (
                "Served like this, it would give some callers a different answer than your "
                "model does."
            )
        if self.labels_agreeing is not None:
            return (
                "Served like this, it would give the same labels as your model but different "
                "probabilities for some inputs."
            )
        return (
            "Served like this, it would predict different values than your model for some inputs."
        )

    def suggested_tolerance(self) -> float | None:
        """A tolerance that the proof would pass, when raising it is a fair way on: only
        when every label agrees (a different label is not a rounding matter)."""
        if self.passed or self.labels_differing:
            return None
        diff = (
            self.max_abs_diff_probabilities
            if self.labels_agreeing is not None
            else self.max_abs_diff
        )
        if diff is None or not diff > 0 or diff != diff:
            return None
        exp = math.floor(math.log10(diff))
        value = float(f"{math.ceil(round(diff / 10**exp, 9))}e{exp}")
        return value if value <= 1 else None


def _rows(n: int, unit: str = "rows") -> str:
    return f"{n} {unit[:-1] if n == 1 else unit}"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@dataclass
class ConversionResult:
    onnx_path: Path
    signature_path: Path
    proof_path: Path
    signature: Signature
    report: ConversionReport
    quantized: ConversionResult | None = None
    artifact: ModelArtifact | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx_path": str(self.onnx_path),
            "signature_path": str(self.signature_path),
            "proof_path": str(self.proof_path),
            "signature": self.signature.to_dict(),
            "report": self.report.to_dict(),
            "quantized": self.quantized.to_dict() if self.quantized else None,
            "model": self.artifact.to_dict() if self.artifact else None,
        }


# ---------------------------------------------------------------------------
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
            f"The sample CSV {options.sample_csv} does not exist.", "Check the path to --sample."
        )
    if art.kind == "pytorch" and options.sample_csv and Path(options.sample_csv).suffix == ".npy":
        options = replace(
            options, input_shape=options.input_shape or _npy_shape(options.sample_csv)
        )
    elif art.kind == "pytorch" and options.sample_csv:
        raise UsageError(
            "A PyTorch model takes a sample as a NumPy .npy file (batch first), not a CSV.",
            "Save sample inputs with numpy.save('sample.npy', x), or use --input-shape.",
        )
    if art.kind == "pytorch" and not options.input_shape and not options.sample_csv:
        shape = _logged_shape(art)
        if shape:
            options = replace(options, input_shape=shape)
    if art.kind == "pytorch" and not options.input_shape:
        raise UsageError(
            f"{art.path.name} is a PyTorch model, which needs an input shape to be converted.",
            "Give one with --input-shape, e.g. --input-shape 1,3,32,32 (batch first).",
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


@functools.lru_cache(maxsize=1)
def isolation_here() -> dict[str, Any]:
    """What isolation a conversion gets on this machine: isolation.py applied and tested
    in a throwaway process (the kernel's answer does not depend on which Python asks).
    ``summary`` is the sentence that inspect and the report show."""
    with tempfile.TemporaryDirectory(prefix="modelship-probe-") as tmp:
        outside = Path(tmp) / "outside"
        job = Path(tmp) / "job"
        job.mkdir()
        try:
            done = subprocess.run(
                script_command(ISOLATION, "--probe", str(job), "", str(outside)),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                env=isolation.worker_env(str(job), frozen=is_frozen()),
                cwd=str(job),
                timeout=60,
                check=False,
            )
            rec = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
            why = f"the check could not run ({type(exc).__name__})"
            rec = {"network": False, "read_only": False, "network_why": why, "read_only_why": why}
        if rec.get("read_only") and outside.exists():  # the record claimed more than it did
            rec.update(read_only=False, read_only_why="a test write outside its folder worked")
    rec["summary"] = isolation.describe(rec)
    return rec


def empty_proof(tolerance: float) -> dict[str, Any]:
    """The proof file's fields (see the contract in README/DESIGN), all still empty."""
    return {
        "schema": 1,
        "columns": None,
        "rows": None,
        "inputs": None,
        "predictions": None,
        "probabilities": None,
        "class_labels": None,
        "outputs": None,
        "tolerance": tolerance,
    }


def _resolve_python(python: str | None, kind: str, match_env: bool = False) -> str:
    """The interpreter that runs the worker: --python, $MODELSHIP_PYTHON, else our own.

    The packaged app runs the worker with its own bundled libraries (it re-invokes
    itself, see app/runtime.py), except for PyTorch and CatBoost, which are too big to
    bundle: there a matching environment (``match_env``) or the user's own Python
    converts.
    """
    from app import envs

    python = python or os.environ.get("MODELSHIP_PYTHON")
    if not python:
        if kind in ("catboost", "pytorch") and is_frozen() and not match_env:
            lib = {"catboost": "CatBoost", "pytorch": "PyTorch"}[kind]
            dist = {"catboost": "catboost", "pytorch": "torch"}[kind]
            raise envs.NeedsMatchingEnvironment(
                f"The packaged ModelShip converts {lib} models in a separate Python "
                f"environment that has {dist}.",
                "Run again with --match-env: ModelShip makes one (a download, once) and "
                "converts there. Or give --python with the environment the model was trained "
                "in (MODELSHIP_PYTHON works too).",
                mismatch=envs.Mismatch(
                    wanted={dist: envs.NEWEST_SUPPORTED[dist]},
                    differing={dist: ""},
                    picked={dist: envs.NEWEST_SUPPORTED[dist]},
                ),
            )
        return sys.executable
    found = shutil.which(python) or (python if Path(python).is_file() else None)
    if not found:
        raise UsageError(
            f"The Python interpreter {python} was not found.",
            "Give the full path to python in the environment the model was made in, "
            "e.g. --python ~/envs/train/bin/python.",
        )
    return str(Path(found).absolute())


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


def _matching_python(
    art: ModelArtifact, options: ConvertOptions, progress: Progress, cancel: CancelToken
) -> tuple[str, str | None]:
    """The Python to convert with when the user named none, and the versions it matches.

    ModelShip's own, unless the file records library versions that differ in a way
    that matters (app.envs.mismatch): then the cached matching environment with
    ``match_env``, else a refusal that says how to get one.
    """
    from app import envs

    found = envs.mismatch(
        art.kind, art.format, envs.recorded_versions(art.path, art.format, art.libraries)
    )
    if found is None:
        return sys.executable, None
    if options.match_env:
        spec = envs.spec_for(found)
        return envs.ensure_env(spec, progress, cancel), spec.words()
    what = "those versions" if not found.picked else "them"
    raise envs.NeedsMatchingEnvironment(
        found.words(art.path.name),
        f"Add --match-env: ModelShip then makes an environment with {what} and the "
        f"converters (downloads about {envs.EnvSpec.of(found.wanted, '').download_mb()}"
        " MB, once) and converts there. Or give --python pointing at the environment the "
        "model was trained in.",
        mismatch=found,
    )


# ---------------------------------------------------------------------------
# the worker subprocess
# ---------------------------------------------------------------------------
def _convert_in_worker(
    art: ModelArtifact,
    out: Path,
    options: ConvertOptions,
    python: str,
    progress: Progress,
    cancel: CancelToken,
) -> ConversionResult:
    progress.step(f"Converting {art.path.name} to ONNX")
    with tempfile.TemporaryDirectory(prefix="modelship-convert-") as tmp:
        job_dir = Path(tmp)
        onnx_tmp = job_dir / "model.onnx"
        expected = {k: v for k, v in art.libraries.items() if k == "scikit-learn" and v}
        job = {
            "model_path": str(Path(art.path).absolute()),
            "kind": art.kind,
            "format": art.format,
            "onnx_path": str(onnx_tmp),
            "input_shape": options.input_shape,
            "sample_csv": str(Path(options.sample_csv).absolute()) if options.sample_csv else None,
            "rows": max(int(options.generated_rows), 1),
            "seed": options.seed,
            "expected_versions": expected,
            # the globals that were scanned and approved: the worker's unpickler admits
            # these and nothing else (a file changed after the scan cannot slip through)
            "allowed_globals": approved_globals(art.safety, options.trust),
            # an MLflow model: the column names it was logged with, and its input
            # example as the first sample rows (unless the user gave their own)
            "column_names": [c["name"] for c in art.mlflow.columns] if art.mlflow else [],
            "example": art.mlflow.example if art.mlflow and not options.sample_csv else None,
        }
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        _run_worker(python, job_dir, options.timeout_s, progress, cancel)
        result_file = job_dir / "result.json"
        if not result_file.exists():
            raise ConversionError(
                "The conversion process stopped without a result.",
                "Run again with --debug to see its output.",
                details=(job_dir / "stderr.txt").read_text(errors="replace")[-4000:]
                if (job_dir / "stderr.txt").exists()
                else None,
            )
        res = json.loads(result_file.read_text(encoding="utf-8"))
        if not res.get("ok"):
            _raise_worker_error(res, art)
        cancel.raise_if_cancelled()
        progress.step("Checking the ONNX model")
        _check_onnx(onnx_tmp)
        shutil.copyfile(onnx_tmp, out)
        original = dict(np.load(job_dir / "original.npz", allow_pickle=False))
        rows_doc = (
            json.loads((job_dir / "rows.json").read_text(encoding="utf-8"))
            if (job_dir / "rows.json").exists()
            else None
        )
    signature = _signature(out, art, res)
    _mark_missing(out, signature, res, original, options.tolerance)
    progress.step("Proving the conversion")
    report, proof = _prove(out, signature, res, original, rows_doc, options.tolerance)
    report.model = art.source.name
    report.warnings.extend(res.get("warnings", []))
    report.isolation_applied = res.get("isolation") or {}
    report.isolation = isolation.describe(report.isolation_applied)
    result = _finish(out, signature, report, proof, options.allow_mismatch)
    if options.quantize:
        cancel.raise_if_cancelled()
        result.quantized = _quantize(result, options, progress, res, original, rows_doc)
    return result


def _run_worker(
    python: str, job_dir: Path, timeout_s: float, progress: Progress, cancel: CancelToken
) -> None:
    # an explicit environment: nothing of ours (PYTHONPATH, MODELSHIP_*, credentials)
    env = isolation.worker_env(str(job_dir), frozen=is_frozen() and python == sys.executable)
    stderr_path = job_dir / "stderr.txt"
    with open(stderr_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                script_command(
                    WORKER, str(job_dir), python=None if python == sys.executable else python
                ),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(job_dir),
            )
        except OSError as exc:
            raise UsageError(
                f"Could not start {python} ({exc.strerror or exc}).",
                "Give the full path to a working python with --python.",
            ) from None
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)

        reader = threading.Thread(target=pump, name="convert-worker-output", daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout_s
        try:
            done = False
            while not done:
                try:
                    line = lines.get(timeout=0.1)
                except queue.Empty:
                    line = ""
                if line is None:
                    done = True
                elif line.startswith(PROGRESS_PREFIX):
                    try:
                        msg = json.loads(line[len(PROGRESS_PREFIX) :])
                        progress.update(msg.get("fraction"), msg.get("message"))
                    except ValueError:
                        progress.log(line)
                elif line:
                    progress.log(line)
                if cancel.cancelled:
                    raise_after = "cancel"
                    break
                if time.monotonic() > deadline:
                    raise_after = "timeout"
                    break
            else:
                raise_after = None
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(timeout=5)
        if raise_after == "cancel":
            cancel.raise_if_cancelled()
        if raise_after == "timeout":
            raise ConversionError(
                f"The conversion took longer than {timeout_s:.0f} s and was stopped.",
                "Try a smaller model or fewer sample rows, or raise the limit with --timeout.",
            )


def _raise_worker_error(res: dict, art: ModelArtifact) -> None:
    kind, hint = res.get("error"), res.get("hint") or None
    message = " ".join(str(res.get("message", "")).split())  # always one line
    details = res.get("details") or None
    cls: type = ConversionError
    if kind == "version_mismatch":
        cls = EnvironmentMismatchError
    elif kind == "unsupported":
        cls = UnsupportedModelError
    elif kind in ("missing_library", "missing_converter"):
        cls = EnvironmentMismatchError
    elif kind in ("missing_class", "load_failed", "refused_global"):
        cls = ModelError
    elif kind in ("csv_columns", "input_shape"):
        cls = UsageError
    raise cls(message, hint, details=details)


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=False)
    except Exception as exc:
        raise ConversionError(
            f"The converted model fails the ONNX checker ({str(exc).splitlines()[0]}).",
            "Report this with the model type; try a different opset or converter version.",
        ) from None


# ---------------------------------------------------------------------------
# signature and proof
# ---------------------------------------------------------------------------
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


def proof_path_for(onnx_path: str | Path) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.stem + ".proof.json")


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
    flag = "--quantize-tolerance" if report.quantized else "--tolerance"
    tol = report.suggested_tolerance()
    if tol is not None:
        return (
            f"If differences of up to {tol:g} are fine for how you use the model, run again "
            f"with {flag} {tol:g}."
        )
    return (
        "Check that the sample rows are the kind of data the model was made for; to keep "
        "the converted model anyway, run again with --accept-mismatch."
    )


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


# ---------------------------------------------------------------------------
# ONNX in, and quantization
# ---------------------------------------------------------------------------
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
            "Convert without --quantize.",
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
            f"Quantized models are checked with their own tolerance ({tol:g}, set with "
            "--quantize-tolerance): int8 weights trade a little accuracy for size."
        )
    report.isolation = base.report.isolation
    report.isolation_applied = base.report.isolation_applied
    report.size_saved_bytes = base.report.onnx_size_bytes - report.onnx_size_bytes
    return _finish(q_path, sig, report, proof, options.allow_mismatch)
