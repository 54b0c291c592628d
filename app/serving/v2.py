"""Open Inference Protocol v2 (KServe / Triton) request and response bodies.

JSON tensors and the binary-data extension (``Inference-Header-Content-Length``) that
tritonclient uses by default, so a stock client works without special options.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson

from app.serving.model import V2_TYPES, ModelRuntime, RequestError

_NUMERIC_KINDS = {"f": "a number", "i": "a whole number", "u": "a whole number", "b": "true/false"}


def metadata(rt: ModelRuntime) -> dict[str, Any]:
    def spec(t: Any) -> dict[str, Any]:
        return {
            "name": t.name,
            "datatype": V2_TYPES.get(t.dtype, t.dtype),
            "shape": [-1 if d is None else d for d in t.shape],
        }

    return {
        "name": rt.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [spec(t) for t in rt.signature.inputs],
        "outputs": [spec(t) for t in rt.signature.outputs],
    }


def parse_request(
    rt: ModelRuntime, body: bytes, header_length: str | None, max_rows: int
) -> tuple[dict[str, np.ndarray], int, list[str] | None, bool, set[str], Any]:
    """-> feeds, batch rows, requested outputs, binary-by-default, binary outputs, request id."""
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise RequestError(400, "Inference-Header-Content-Length is not a number.") from None
        if not 0 < n <= len(body):
            raise RequestError(
                400, f"Inference-Header-Content-Length {n} does not fit a {len(body)}-byte body."
            )
        body, binary = body[:n], body[n:]
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(req, dict):
        raise RequestError(400, 'Expected a JSON object {"inputs": [...]}.')
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, 'Expected "inputs": a non-empty list of named tensors.')
    specs = {t.name: t for t in rt.signature.inputs}
    feeds: dict[str, np.ndarray] = {}
    offset = 0
    for item in inputs:
        if not isinstance(item, dict):
            raise RequestError(400, "Each input must be an object with name, shape, datatype.")
        name = item.get("name")
        if not isinstance(name, str) or name not in specs:
            raise RequestError(
                400,
                f"Unknown input {name!r}; this model takes {sorted(specs)}.",
            )
        if name in feeds:
            raise RequestError(400, f"Input {name!r} is given twice.")
        spec = specs[name]
        want = V2_TYPES.get(spec.dtype, spec.dtype)
        datatype = item.get("datatype")
        if datatype != want:
            raise RequestError(
                400, f"Input {name!r} has datatype {datatype!r}; this model expects {want!r}."
            )
        shape = item.get("shape")
        if (
            not isinstance(shape, list)
            or not all(type(d) is int and d >= 0 for d in shape)
            or len(shape) != len(spec.shape)
        ):
            raise RequestError(
                400,
                f"Input {name!r} needs a shape of {len(spec.shape)} non-negative whole numbers "
                f"like {[-1 if d is None else d for d in spec.shape]}; got {shape!r}.",
            )
        for i, (got, need) in enumerate(zip(shape, spec.shape, strict=True)):
            if need is not None and got != need:
                raise RequestError(
                    400,
                    f"Input {name!r} has {got} in dimension {i}; this model needs {need} "
                    f"(shape {[-1 if d is None else d for d in spec.shape]}).",
                )
        count = math.prod(shape)
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise RequestError(400, f"Input {name!r}: parameters must be an object.")
        size = params.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise RequestError(
                    400, f"Input {name!r}: binary_data_size does not match the binary data sent."
                )
            chunk = binary[offset : offset + size]
            offset += size
            arr = _from_binary(name, chunk, spec.dtype, count)
        else:
            if "data" not in item:
                raise RequestError(400, f"Input {name!r} has no data.")
            arr = _from_json(name, item["data"], spec.dtype, count)
        feeds[name] = arr.reshape(shape)
    missing = [n for n in specs if n not in feeds]
    if missing:
        raise RequestError(400, f"Missing input(s) {missing}; this model takes {sorted(specs)}.")
    rt.check_missing(feeds)  # NaN (binary data) where a column must not be missing: 422
    rows = {a.shape[0] for a in feeds.values() if a.ndim}
    if len(rows) > 1:
        raise RequestError(400, f"The inputs disagree on the batch size: {sorted(rows)}.")
    n = rows.pop() if rows else 1
    if n == 0:
        raise RequestError(400, "The batch is empty: send at least one row.")
    if n > max_rows:
        raise RequestError(413, f"A batch of {n} is more than the {max_rows} allowed per request.")

    wanted = None
    binary_out: set[str] = set()
    req_params = req.get("parameters") or {}
    default_binary = isinstance(req_params, dict) and req_params.get("binary_data_output") is True
    outs = req.get("outputs")
    if outs is not None:
        if not isinstance(outs, list):
            raise RequestError(400, '"outputs" must be a list of {"name": ...}.')
        wanted = []
        for o in outs:
            oname = o.get("name") if isinstance(o, dict) else None
            if oname not in rt.output_names:
                raise RequestError(
                    400, f"Unknown output {oname!r}; this model gives {rt.output_names}."
                )
            wanted.append(oname)
            op = o.get("parameters") or {}
            if (isinstance(op, dict) and op.get("binary_data") is True) or (
                default_binary and not (isinstance(op, dict) and op.get("binary_data") is False)
            ):
                binary_out.add(oname)
    elif default_binary:
        binary_out = set(rt.output_names)
    return feeds, n, wanted, default_binary, binary_out, req.get("id")


def _from_json(name: str, data: Any, dtype: str, count: int) -> np.ndarray:
    flat = _flatten(data)
    if len(flat) != count:
        raise RequestError(400, f"Input {name!r} has {len(flat)} values; its shape needs {count}.")
    if dtype == "str":
        if not all(type(v) is str for v in flat):
            raise RequestError(400, f"Input {name!r} is BYTES: every value must be text.")
        return np.array(flat, dtype=object)
    try:
        arr = np.array(flat)
    except (ValueError, TypeError):
        arr = np.array([], dtype=object)
    kind = np.dtype(dtype).kind
    ok = (
        (kind == "b" and arr.dtype.kind == "b")
        or (kind in "iu" and arr.dtype.kind in "iu")
        or (kind == "f" and arr.dtype.kind in "fiu")
        or (count == 0)
    )
    if not ok:
        raise RequestError(
            400,
            f"Input {name!r} must hold {_NUMERIC_KINDS.get(kind, dtype)} values "
            f"({V2_TYPES.get(dtype, dtype)}).",
        )
    try:
        return arr.astype(np.dtype(dtype), casting="unsafe" if kind == "f" else "same_kind")
    except (OverflowError, TypeError) as exc:
        raise RequestError(400, f"Input {name!r}: {exc}.") from None


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        if any(isinstance(x, list) for x in data):
            raise RequestError(400, "Tensor data is ragged (lists of different depths).")
        return data
    out: list[Any] = []
    for x in data:
        if not isinstance(x, list):
            raise RequestError(400, "Tensor data is ragged (lists of different depths).")
        out.extend(_flatten(x))
    return out


def _from_binary(name: str, chunk: bytes, dtype: str, count: int) -> np.ndarray:
    if dtype == "str":
        vals, pos = [], 0
        while pos < len(chunk):
            if pos + 4 > len(chunk):
                raise RequestError(400, f"Input {name!r}: truncated BYTES element.")
            (ln,) = struct.unpack_from("<I", chunk, pos)
            pos += 4
            if pos + ln > len(chunk):
                raise RequestError(400, f"Input {name!r}: truncated BYTES element.")
            try:
                vals.append(chunk[pos : pos + ln].decode("utf-8"))
            except UnicodeDecodeError:
                raise RequestError(400, f"Input {name!r}: BYTES must be UTF-8 text.") from None
            pos += ln
        if len(vals) != count:
            raise RequestError(400, f"Input {name!r} has {len(vals)} values; shape needs {count}.")
        return np.array(vals, dtype=object)
    dt = np.dtype(dtype).newbyteorder("<")
    if len(chunk) != count * dt.itemsize:
        raise RequestError(
            400,
            f"Input {name!r} has {len(chunk)} bytes of binary data; its shape and datatype "
            f"need {count * dt.itemsize}.",
        )
    return np.frombuffer(chunk, dtype=dt).astype(np.dtype(dtype))


def _v2_dtype(arr: np.ndarray) -> str:
    if arr.dtype == object or arr.dtype.kind in "US":
        return "BYTES"
    return V2_TYPES.get(arr.dtype.name, arr.dtype.name.upper())


def build_response(
    rt: ModelRuntime,
    outputs: list[Any],
    wanted: list[str] | None,
    binary_out: set[str],
    request_id: Any,
) -> tuple[bytes, int | None]:
    """-> body, JSON header length (None when there is no binary part)."""
    names = wanted or rt.output_names
    items = []
    blobs: list[bytes] = []
    for name in names:
        value = outputs[rt.output_names.index(name)]
        if not isinstance(value, np.ndarray):  # e.g. a ZipMap's list of dicts
            items.append(
                {
                    "name": name,
                    "datatype": "BYTES",
                    "shape": [len(value)],
                    "data": [
                        orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode() for v in value
                    ],
                }
            )
            continue
        dtype = _v2_dtype(value)
        item: dict[str, Any] = {"name": name, "datatype": dtype, "shape": list(value.shape)}
        if name in binary_out:
            if dtype == "BYTES":
                raw = b"".join(
                    struct.pack("<I", len(b)) + b
                    for b in (str(v).encode("utf-8") for v in value.ravel())
                )
            else:
                raw = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            flat = value.ravel()
            item["data"] = flat.tolist() if dtype == "BYTES" else flat
        items.append(item)
    doc: dict[str, Any] = {"model_name": rt.name, "model_version": "1", "outputs": items}
    if request_id is not None:
        doc["id"] = request_id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
