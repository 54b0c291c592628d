"""The model signature: what a converted model takes and gives, in one JSON file.

``modelship convert`` writes ``MODEL.signature.json`` next to ``MODEL.onnx``; the
server, the smoke test and the wizard read it. When it is missing the server derives
a plain one from the ONNX graph (:func:`Signature.from_onnx`).

Tabular models are described twice: as ONNX tensors (``inputs``) and as the columns an
analyst knows (``columns``). Each column says which input tensor it feeds and at
which position of that tensor's last dimension. Two layouts occur:

* one 2-D numeric input ``[batch, n_features]``: every column maps to that input,
  ``index`` 0..n-1 (most scikit-learn, XGBoost and LightGBM models);
* one input per column ``[batch, 1]`` (a ColumnTransformer with string categories):
  each column maps to its own input with ``index`` 0.

``columns`` is empty for tensor models (e.g. a CNN); those accept tensors only.

``ColumnSpec.missing`` says whether a column may be missing (JSON ``null``, an empty
CSV cell, NaN). ``modelship convert`` sets it only where it tried: the original model
took a missing value in that column *and* the ONNX model answered the same. Everywhere
else (older signatures, bare ONNX files) it is False and the server refuses missing
values with a 422 naming the column, rather than let a model that never saw one
return a confident wrong answer.
Standard library only: this file ships in every image.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# ONNX TensorProto element types -> numpy dtype names (the ones that occur in models)
ONNX_TO_NUMPY = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "str",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}


@dataclass
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: float32, float64, int64, str, bool, ...
    shape: list[int | None]  # None = dynamic (the batch dimension is shape[0])


@dataclass
class ColumnSpec:
    name: str  # the column name an analyst uses (DataFrame column / feature name)
    dtype: str  # float32, float64, int64, str, bool
    input: str  # the ONNX input tensor it feeds
    index: int = 0  # position in that tensor's last dimension
    missing: bool = False  # may be missing (null / empty / NaN): the model was shown to cope


@dataclass
class Signature:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    columns: list[ColumnSpec] = field(default_factory=list)
    task: str = "other"  # "classification" | "regression" | "other"
    label_output: str | None = None  # output holding predicted labels / values
    probability_output: str | None = None  # output holding class probabilities [batch, k]
    class_labels: list[Any] | None = None  # probability column j is class_labels[j]
    framework: str | None = None  # sklearn, xgboost, lightgbm, pytorch, onnx
    model_name: str = "model"
    opset: int | None = None
    model_sha256: str | None = None
    schema: int = SCHEMA_VERSION

    # ---- persistence --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        data = dict(data)
        schema = data.get("schema", SCHEMA_VERSION)
        if schema > SCHEMA_VERSION:
            raise ValueError(
                f"signature schema {schema} is newer than this ModelShip understands "
                f"({SCHEMA_VERSION}); update ModelShip"
            )
        data["inputs"] = [TensorSpec(**t) for t in data.get("inputs", [])]
        data["outputs"] = [TensorSpec(**t) for t in data.get("outputs", [])]
        data["columns"] = [ColumnSpec(**c) for c in data.get("columns", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Signature:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @staticmethod
    def path_for(model_path: str | Path) -> Path:
        """Where the signature of ``model.onnx`` lives: ``model.signature.json``."""
        p = Path(model_path)
        return p.with_name(p.stem + ".signature.json")

    # ---- derived ------------------------------------------------------------
    @property
    def is_tabular(self) -> bool:
        return bool(self.columns)

    @property
    def has_dynamic_batch(self) -> bool:
        return all(t.shape and t.shape[0] is None for t in self.inputs)

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(name)

    @classmethod
    def from_onnx(cls, model_path: str | Path) -> Signature:
        """A plain signature read from the graph (no column names beyond f0..fn).

        Uses onnxruntime (always present where models are served) rather than the
        heavier ``onnx`` package.
        """
        import onnxruntime as ort

        sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])

        def spec(arg: Any) -> TensorSpec:
            dtype = _ORT_TYPE.get(arg.type, arg.type)
            shape = [d if isinstance(d, int) else None for d in (arg.shape or [])]
            return TensorSpec(arg.name, dtype, shape)

        inputs = [spec(a) for a in sess.get_inputs()]
        outputs = [spec(a) for a in sess.get_outputs()]
        columns: list[ColumnSpec] = []
        if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1]:
            t = inputs[0]
            columns = [ColumnSpec(f"f{i}", t.dtype, t.name, i) for i in range(t.shape[1])]
        elif inputs and all(len(t.shape) == 2 and t.shape[1] == 1 for t in inputs):
            columns = [ColumnSpec(t.name, t.dtype, t.name, 0) for t in inputs]
        meta = sess.get_modelmeta()
        return cls(
            inputs=inputs,
            outputs=outputs,
            columns=columns,
            model_name=Path(model_path).stem,
            framework=meta.producer_name or "onnx",
        )


_ORT_TYPE = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
    "tensor(float16)": "float16",
}
