"""What a conversion is asked (:class:`ConvertOptions`) and what it hands back: the
:class:`ConversionReport` (the proof, in figures and words) and the :class:`ConversionResult`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.model.intake import ModelArtifact
from app.plain import at_most, plain_number
from app.serving.signature import Signature

DEFAULT_TIMEOUT_S = 600.0


QUANTIZED_TOLERANCE = 0.05


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
    # file is refused before anything loads it (app.model.picklescan.require_trust).
    trust: bool = False
    # When the file records library versions other than ModelShip's own (a pickle from
    # a newer or older scikit-learn, ...), convert in a cached environment with exactly
    # those versions (app/model/envs.py), made from the package index the first time.
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
    # how the process that loaded the model was isolated (app/model/convert/isolation.py):
    # one sentence, and what applied ("network", "read_only", ... and why not)
    isolation: str = ""
    isolation_applied: dict[str, Any] = field(default_factory=dict)
    # the dtype of the model's numeric inputs: float32, or float64 where float32 would
    # decide a tree's split differently from the original (app/model/convert/worker/)
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


def proof_path_for(onnx_path: str | Path) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.stem + ".proof.json")
