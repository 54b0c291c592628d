"""ONNX files: already converted, read for their inputs and opsets."""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelError
from app.model.intake.artifact import ModelArtifact


def _try_onnx(p: Path, data: bytes) -> ModelArtifact | None:
    # ONNX is a protobuf; field 1 (ir_version, varint) normally comes first.
    if data[:1] != b"\x08" and p.suffix.lower() != ".onnx":
        return None
    try:
        import onnx

        model = onnx.load_model_from_string(bytes(data))
    except Exception:
        if p.suffix.lower() == ".onnx":
            raise ModelError(
                f"{p.name} is named .onnx but is truncated or corrupt.",
                "Export or copy the model again; the file did not arrive whole.",
            ) from None
        return None
    if not model.graph.node:
        if p.suffix.lower() == ".onnx":
            raise ModelError(
                f"{p.name} is an ONNX file with an empty graph (truncated or corrupt).",
                "Export or copy the model again.",
            )
        return None
    from app.serving.signature import ONNX_TO_NUMPY

    inits = {i.name for i in model.graph.initializer}
    inputs = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        inputs.append(
            {
                "name": i.name,
                "dtype": ONNX_TO_NUMPY.get(tt.elem_type, str(tt.elem_type)),
                "shape": shape,
            }
        )
    art = ModelArtifact(path=p, kind="onnx", format="onnx", estimator="onnx.ModelProto")
    art.libraries["onnx opset"] = ", ".join(
        f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import
    )
    if model.producer_name:
        art.libraries["produced by"] = f"{model.producer_name} {model.producer_version}".strip()
    art.inputs = inputs
    return art
