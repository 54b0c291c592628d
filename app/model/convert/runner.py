"""The worker subprocess: the job it is given, how it is started (isolated, see
isolation.py) and watched (progress, cancel, timeout), and what its result means."""

from __future__ import annotations

import functools
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import (
    ConversionError,
    EnvironmentMismatchError,
    ModelError,
    UnsupportedModelError,
    UsageError,
)
from app.model.convert import isolation
from app.model.convert.proof import (
    _check_onnx,
    _finish,
    _mark_missing,
    _prove,
    _quantize,
    _signature,
)
from app.model.convert.report import ConversionResult, ConvertOptions
from app.model.intake import ModelArtifact
from app.model.picklescan import approved_globals
from app.nextstep import Words, raise_timeout, say, see_details, use_python
from app.progress import CancelToken, Progress
from app.runtime import is_frozen, script_command

WORKER = Path(__file__).with_name("worker") / "__main__.py"


ISOLATION = Path(__file__).with_name("isolation.py")


PROGRESS_PREFIX = "MODELSHIP-PROGRESS "


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
                say("Run again and read ", see_details(), " to see its output."),
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
                say("Give the full path to a working python ", use_python("with"), "."),
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
                say("Try a smaller model or fewer sample rows", raise_timeout(), "."),
            )


def _raise_worker_error(res: dict, art: ModelArtifact) -> None:
    kind, hint = res.get("error"), res.get("hint") or None
    if isinstance(hint, list):  # words and actions (app.nextstep), said here as the CLI's
        hint = Words.from_json(hint)
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
