"""The loaded model and the strict translation between HTTP payloads and its tensors.

Over 600 lines on purpose: the runtime stands alone inside the image, and each
payload check stays next to the signature it checks.

Everything a caller sends is checked against the signature *before* onnxruntime sees
it, so that a caller's mistake becomes a 4xx with a sentence saying what was wrong
and what is expected, never a 500 from deep inside the runtime.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.serving.signature import ColumnSpec, Signature, TensorSpec

log = logging.getLogger("modelship.serving")


class RequestError(Exception):
    """A caller's mistake: becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ModelLoadError(Exception):
    """The model cannot be served (missing file, bad ONNX, failed warm-up)."""


# numpy dtype name -> Open Inference Protocol v2 datatype
V2_TYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "str": "BYTES",
}
V2_TO_NUMPY = {v: k for k, v in V2_TYPES.items()}
_FLOAT = {"float16", "float32", "float64"}
_INT = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


def _np_dtype(name: str) -> Any:
    return object if name == "str" else np.dtype(name)


def _describe(value: Any) -> str:
    if isinstance(value, list | dict):  # never serialise a (possibly deep) container
        text = "[...]" if isinstance(value, list) else "{...}"
    else:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return f"{text} ({kind})"


def _expected(dtype: str) -> str:
    if dtype in _FLOAT:
        return "a number"
    if dtype in _INT:
        return "a whole number"
    if dtype == "bool":
        return "true or false"
    return "text"


def check_json_depth(body: bytes, limit: int) -> None:
    """400 when a JSON body nests deeper than ``limit`` (before it is parsed).

    orjson parses up to 1024 levels, but ~1000 levels then break anything recursive
    (RecursionError, a 500). Counting brackets outside strings needs no parse and no
    recursion: escapes are dropped first, so every remaining quote opens or closes a
    string, and numpy does the counting (a 6 MB body takes milliseconds).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    import re

    clean = re.sub(rb"\\.", b"", body, flags=re.DOTALL) if b"\\" in body else body
    a = np.frombuffer(clean, dtype=np.uint8)
    outside = (np.cumsum(a == 34, dtype=np.int64) & 1) == 0
    step = ((a == 91) | (a == 123)).astype(np.int32) - ((a == 93) | (a == 125)).astype(np.int32)
    step[~outside] = 0
    depth = int(np.cumsum(step).max(initial=0))
    if depth > limit:
        raise RequestError(
            400,
            f"The JSON is nested {depth} levels deep; the limit is {limit} "
            "(MODELSHIP_MAX_JSON_DEPTH). Send rows as lists or records of plain values.",
        )


class ModelRuntime:
    """One onnxruntime session plus its signature, ready to take requests."""

    def __init__(self, model_path: str | Path, *, threads: int = 1) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelLoadError(
                f"There is no model file at {path}. Give the path of a .onnx file "
                "(or set MODELSHIP_MODEL)."
            )
        started = time.perf_counter()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a model onnxruntime can load: {exc}") from exc
        sig_path = Signature.path_for(path)
        if sig_path.is_file():
            try:
                self.signature = Signature.load(sig_path)
            except (ValueError, TypeError, KeyError) as exc:
                raise ModelLoadError(f"The signature file {sig_path} is invalid: {exc}") from exc
        else:
            self.signature = Signature.from_onnx(path)
            _guess_classifier(self.signature)
        self.path = path
        self.name = self.signature.model_name or path.stem
        self._check_signature_matches_session()
        self.output_names = [o.name for o in self.session.get_outputs()]
        sig = self.signature
        self.columns: list[ColumnSpec] = list(sig.columns)
        self.column_names = [c.name for c in self.columns]
        self._column_set = set(self.column_names)
        single = len(sig.inputs) == 1 and len(sig.inputs[0].shape) == 2
        self._fast_input: TensorSpec | None = None
        if single and self.columns and sig.inputs[0].dtype in _FLOAT | _INT:
            t = sig.inputs[0]
            if [c.index for c in self.columns] == list(range(len(self.columns))) and all(
                c.input == t.name and c.dtype in _FLOAT | _INT for c in self.columns
            ):
                self._fast_input = t
        # columns that must not be missing, per input tensor (checked on v2 tensors too)
        self.no_missing: dict[str, list[ColumnSpec]] = {}
        for c in self.columns:
            if not c.missing and c.dtype in _FLOAT:
                self.no_missing.setdefault(c.input, []).append(c)
        self.batchable = sig.has_dynamic_batch and all(
            o.shape and o.shape[0] is None for o in sig.outputs
        )
        self.load_seconds = time.perf_counter() - started
        self.proof_rows = self._proof_rows()

    # ---- loading -------------------------------------------------------------
    def _check_signature_matches_session(self) -> None:
        have = {a.name for a in self.session.get_inputs()}
        want = {t.name for t in self.signature.inputs}
        if have != want:
            raise ModelLoadError(
                f"The signature next to {self.path.name} names inputs {sorted(want)} but the "
                f"model has {sorted(have)}. Convert the model again so both match."
            )
        for c in self.signature.columns:
            if c.input not in want:
                raise ModelLoadError(
                    f"Column {c.name!r} of the signature feeds an input {c.input!r} that the "
                    "model does not have. Convert the model again."
                )

    def _proof_rows(self) -> list[Any] | None:
        proof = self.path.with_name(self.path.stem + ".proof.json")
        try:
            data = json.loads(proof.read_text(encoding="utf-8"))
            rows = data.get("rows")
            return rows[:1] if rows and self.columns else None
        except (OSError, ValueError, AttributeError):
            return None

    def warm_up(self) -> None:
        """Run the model once, so the first caller does not pay for lazy initialisation."""
        if self.proof_rows:
            try:
                feeds, _ = self.feeds_from_rows(self.proof_rows)
                self.session.run(None, feeds)
            except RequestError as exc:
                raise ModelLoadError(
                    f"The first sample row of the conversion proof does not fit the model's "
                    f"signature ({exc.message}). Convert the model again."
                ) from None
            except Exception as exc:
                raise ModelLoadError(
                    f"The model fails on the first sample row of its conversion proof: {exc}"
                ) from None
            return
        feeds = {}
        for t in self.signature.inputs:
            shape = [1 if d is None else d for d in t.shape]
            if t.dtype == "str":
                feeds[t.name] = np.full(shape, "", dtype=object)
            else:
                feeds[t.name] = np.zeros(shape, dtype=np.dtype(t.dtype))
        try:
            self.session.run(None, feeds)
        except Exception as exc:  # made-up input may be outside the model's domain
            log.warning("warm-up on made-up input failed (%s); serving anyway", exc)

    def run(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        return self.session.run(None, feeds)

    # ---- rows / records / CSV -> feeds --------------------------------------
    def _need_columns(self) -> None:
        if not self.columns:
            raise RequestError(
                422,
                f"This model takes tensors, not rows of columns. Send them to "
                f"POST /v2/models/{self.name}/infer (see GET /openapi.json).",
            )

    def feeds_from_json(self, payload: Any, max_rows: int) -> tuple[dict[str, np.ndarray], int]:
        """A JSON body of rows, records, or ``{"rows": [...]}`` -> input tensors."""
        self._need_columns()
        if isinstance(payload, dict):
            extra = set(payload) - {"rows"}
            if "rows" not in payload or extra:
                raise RequestError(
                    422,
                    'Expected a JSON list of rows, or an object {"rows": [...]}; '
                    f"got an object with keys {sorted(payload)[:10]}.",
                )
            payload = payload["rows"]
        if not isinstance(payload, list):
            raise RequestError(
                422,
                f"Expected a JSON list of rows (lists in the order {self._cols_hint()}) or of "
                f"records keyed by column name; got {_describe(payload)}.",
            )
        if not payload:
            raise RequestError(422, "The list of rows is empty: send at least one row.")
        if len(payload) > max_rows:
            raise RequestError(
                413, f"{len(payload)} rows is more than the {max_rows} one request may carry."
            )
        return self.feeds_from_rows(payload)

    def _cols_hint(self) -> str:
        names = self.column_names
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f"[{shown}]"

    def feeds_from_rows(self, rows: list[Any]) -> tuple[dict[str, np.ndarray], int]:
        first = rows[0]
        if isinstance(first, dict):
            rows = self._records_to_rows(rows)
        elif isinstance(first, list):
            n = len(self.columns)
            for i, row in enumerate(rows):
                if not isinstance(row, list):
                    raise RequestError(
                        422,
                        f"Row {i + 1} is {_describe(row)}; every row must be a list like row 1 "
                        f"(or send every row as a record).",
                    )
                if len(row) != n:
                    raise RequestError(
                        422,
                        f"Row {i + 1} has {len(row)} values; this model expects {n}: "
                        f"{self._cols_hint()}.",
                    )
        else:
            raise RequestError(
                422,
                f"Row 1 is {_describe(first)}; each row must be a list of values in the order "
                f"{self._cols_hint()} or a record keyed by column name.",
            )
        return self._rows_to_feeds(rows), len(rows)

    def _records_to_rows(self, records: list[Any]) -> list[list[Any]]:
        names = self.column_names
        n = len(names)
        out = []
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise RequestError(
                    422,
                    f"Row {i + 1} is {_describe(rec)}; every row must be a record like row 1.",
                )
            try:
                values = [rec[name] for name in names]
            except KeyError:
                values = None
            if values is None or len(rec) != n:
                missing = [c for c in names if c not in rec]
                extra = [k for k in rec if k not in self._column_set]
                parts = []
                if missing:
                    parts.append(f"is missing {', '.join(map(repr, missing[:10]))}")
                if extra:
                    parts.append(f"has unknown {', '.join(map(repr, extra[:10]))}")
                raise RequestError(
                    422,
                    f"Record {i + 1} {' and '.join(parts)}. Expected exactly the columns "
                    f"{self._cols_hint()}.",
                )
            out.append(values)
        return out

    def _rows_to_feeds(self, rows: list[list[Any]]) -> dict[str, np.ndarray]:
        t = self._fast_input
        if t is not None:
            try:
                arr = np.array(rows)
            except (ValueError, TypeError):
                arr = None
            if (
                arr is not None
                and arr.dtype.kind in "fiu"
                # numpy turns true/false into 1/0 silently: refuse them like any non-number
                and bool not in set(map(type, itertools.chain.from_iterable(rows)))
                and arr.ndim == 2
                and arr.shape[1] == len(self.columns)
            ):
                if t.dtype in _INT and arr.dtype.kind == "f" and not np.all(arr == np.floor(arr)):
                    raise RequestError(422, "This model expects whole numbers; got fractions.")
                feeds = {t.name: arr.astype(t.dtype, copy=False)}
                self.check_missing(feeds)
                return feeds
        # general, column by column (also finds the exact bad cell for the message)
        cols = [
            self._convert_column(c, [row[j] for row in rows]) for j, c in enumerate(self.columns)
        ]
        return self._assemble(cols, len(rows))

    def _assemble(self, cols: list[np.ndarray], n: int) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        for t in self.signature.inputs:
            mine = [
                (c.index, arr)
                for c, arr in zip(self.columns, cols, strict=True)
                if c.input == t.name
            ]
            if not mine:
                continue
            width = max(i for i, _ in mine) + 1
            if len(t.shape) == 2 and t.shape[1]:
                width = t.shape[1]
            arr = np.empty((n, width), dtype=_np_dtype(t.dtype))
            for i, col in mine:
                arr[:, i] = col
            if len(t.shape) == 1:
                arr = arr[:, 0]
            feeds[t.name] = arr
        missing = [t.name for t in self.signature.inputs if t.name not in feeds]
        if missing:  # a signature that does not cover every input: the model cannot run
            raise RequestError(
                422,
                f"The model's inputs {missing} are not fed by any column; send tensors to "
                f"POST /v2/models/{self.name}/infer.",
            )
        return feeds

    def _convert_column(self, col: ColumnSpec, values: list[Any]) -> np.ndarray:
        dtype = col.dtype
        if dtype == "str":
            for i, v in enumerate(values):
                if type(v) is not str:
                    raise self._cell_error(i, col, v)
            return np.array(values, dtype=object)
        if dtype == "bool":
            for i, v in enumerate(values):
                if type(v) is not bool:
                    raise self._cell_error(i, col, v)
            return np.array(values, dtype=bool)
        is_float = dtype in _FLOAT
        out = []
        for i, v in enumerate(values):
            tv = type(v)
            if tv is float or tv is int:
                if not is_float and tv is float:
                    if not v.is_integer():
                        raise self._cell_error(i, col, v)
                    v = int(v)
                out.append(v)
            elif v is None and is_float and col.missing:
                out.append(math.nan)  # missing value: the model was shown to handle it
            elif v is None:
                raise self._missing_error(f"Row {i + 1}", col, "null")
            else:
                raise self._cell_error(i, col, v)
        try:
            return np.array(out, dtype=np.dtype(dtype))
        except OverflowError:
            raise RequestError(
                422, f"A value in column {col.name!r} is too large for {dtype}."
            ) from None

    @staticmethod
    def _missing_error(where: str, col: ColumnSpec, what: str) -> RequestError:
        return RequestError(
            422,
            f"{where}, column {col.name!r}: the value is missing ({what}), and this model "
            "cannot take missing values there. Send a value for every column.",
        )

    def check_missing(self, feeds: dict[str, np.ndarray]) -> None:
        """422 naming the column when a NaN reaches a column that must not be missing."""
        for name, cols in self.no_missing.items():
            arr = feeds.get(name)
            if arr is None or arr.dtype.kind != "f" or arr.ndim != 2:
                continue
            bad = np.isnan(arr)
            if not bad.any():
                continue
            for c in cols:
                if c.index < arr.shape[1] and bad[:, c.index].any():
                    row = int(np.argmax(bad[:, c.index]))
                    raise self._missing_error(f"Row {row + 1}", c, "NaN")

    @staticmethod
    def _cell_error(i: int, col: ColumnSpec, v: Any) -> RequestError:
        extra = ""
        if col.dtype in _FLOAT and col.missing:
            extra = " (null means a missing value)"
        return RequestError(
            422,
            f"Row {i + 1}, column {col.name!r}: expected {_expected(col.dtype)}{extra}, "
            f"got {_describe(v)}.",
        )

    def feeds_from_csv(self, body: bytes, max_rows: int) -> tuple[dict[str, np.ndarray], int, bool]:
        """CSV (header with column names optional) -> tensors, row count, had-header."""
        self._need_columns()
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RequestError(400, "The CSV is not UTF-8 text.") from None
        try:
            table = [r for r in csv.reader(io.StringIO(text)) if r]
        except csv.Error as exc:
            raise RequestError(400, f"The CSV cannot be read: {exc}.") from None
        if not table:
            raise RequestError(422, "The CSV has no rows.")
        header = any(cell.strip() in self._column_set for cell in table[0]) and not all(
            _looks_numeric(cell) for cell in table[0]
        )
        names = self.column_names
        if header:
            head = [c.strip() for c in table[0]]
            missing = [c for c in names if c not in head]
            extra = [c for c in head if c not in self._column_set]
            dupes = len(set(head)) != len(head)
            if missing or extra or dupes:
                parts = []
                if missing:
                    parts.append(f"lacks {', '.join(map(repr, missing[:10]))}")
                if extra:
                    parts.append(f"has unknown {', '.join(map(repr, extra[:10]))}")
                if dupes:
                    parts.append("repeats a column")
                raise RequestError(
                    422,
                    f"The CSV header {' and '.join(parts)}. Expected the columns "
                    f"{self._cols_hint()}.",
                )
            order = [head.index(c) for c in names]
            data = table[1:]
        else:
            order = list(range(len(names)))
            data = table
        if not data:
            raise RequestError(422, "The CSV has a header but no data rows.")
        if len(data) > max_rows:
            raise RequestError(
                413, f"{len(data)} rows is more than the {max_rows} one request may carry."
            )
        width = len(table[0])
        if not header and width != len(names):
            raise RequestError(
                422,
                f"CSV row 1 has {width} values; this model expects {len(names)}: "
                f"{self._cols_hint()} (or start with a header row of column names).",
            )
        for i, r in enumerate(data):
            if len(r) != width:
                raise RequestError(
                    422, f"CSV data row {i + 1} has {len(r)} values; the first row has {width}."
                )
        cols = []
        for j, col in enumerate(self.columns):
            src = order[j]
            cols.append(self._csv_column(col, [r[src] for r in data]))
        return self._assemble(cols, len(data)), len(data), header

    def _csv_column(self, col: ColumnSpec, cells: list[str]) -> np.ndarray:
        if col.dtype == "str":
            if not col.missing:
                for i, c in enumerate(cells):
                    if not c.strip():
                        raise self._missing_error(f"CSV data row {i + 1}", col, "an empty cell")
            return np.array(cells, dtype=object)
        if col.dtype == "bool":
            table = {"true": True, "1": True, "false": False, "0": False}
            out = []
            for i, c in enumerate(cells):
                b = table.get(c.strip().lower())
                if b is None:
                    raise self._cell_error(i, col, c)
                out.append(b)
            return np.array(out, dtype=bool)
        vals: list[float | int] = []
        for i, c in enumerate(cells):
            s = c.strip()
            if not s and not col.missing:
                raise self._missing_error(f"CSV data row {i + 1}", col, "an empty cell")
            try:
                if col.dtype in _FLOAT:
                    v = float(s) if s else math.nan
                    if v != v and not col.missing:  # "nan" spelt out
                        raise self._missing_error(f"CSV data row {i + 1}", col, "NaN")
                    vals.append(v)
                else:
                    vals.append(int(s))
            except ValueError:
                raise self._cell_error(i, col, c) from None
        return np.array(vals, dtype=np.dtype(col.dtype))

    # ---- outputs -> answers --------------------------------------------------
    def _output(self, outputs: list[Any], name: str | None) -> Any:
        if name and name in self.output_names:
            return outputs[self.output_names.index(name)]
        return None

    def predictions(self, outputs: list[Any]) -> tuple[Any, Any, list[str] | None]:
        """(predictions, probabilities [n, k] or None, class label strings or None)."""
        sig = self.signature
        pred = self._output(outputs, sig.label_output)
        if pred is None:
            pred = outputs[0]
        probs = self._output(outputs, sig.probability_output)
        if isinstance(pred, np.ndarray) and pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        labels = None
        if isinstance(probs, np.ndarray) and probs.ndim == 2:
            if sig.class_labels and len(sig.class_labels) == probs.shape[1]:
                labels = [str(x) for x in sig.class_labels]
            else:
                labels = [str(i) for i in range(probs.shape[1])]
        else:
            probs = None
        return pred, probs, labels

    def answer_json(self, outputs: list[Any]) -> dict[str, Any]:
        pred, probs, labels = self.predictions(outputs)
        if isinstance(pred, np.ndarray) and pred.dtype == object:
            pred = pred.tolist()
        body: dict[str, Any] = {"model": self.name, "predictions": pred}
        if probs is not None and labels is not None:
            body["probabilities"] = [dict(zip(labels, row, strict=True)) for row in probs]
        return body

    def answer_csv(self, outputs: list[Any], header: bool) -> bytes:
        pred, probs, labels = self.predictions(outputs)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if header:
            head = ["prediction"]
            if labels:
                head += [f"probability_{lab}" for lab in labels]
            w.writerow(head)
        # numpy scalars print in their own precision ("0.9", not "0.8999999761581421")
        if probs is not None:
            for p, row in zip(pred, probs, strict=True):
                w.writerow([_csv_value(p), *(_csv_value(x) for x in row)])
        else:
            for p in pred:
                if isinstance(p, np.ndarray | list):
                    w.writerow([_csv_value(x) for x in p])
                else:
                    w.writerow([_csv_value(p)])
        return buf.getvalue().encode("utf-8")


def _guess_classifier(sig: Signature) -> None:
    """No signature file: a (labels [N], probabilities [N, k] float) pair is a classifier.

    Converters name them differently (label/probabilities, output_label/output_probability);
    the shapes are what they share. Class names are then unknown: columns are 0..k-1.
    """
    outs = sig.outputs
    if (
        sig.label_output is None
        and len(outs) == 2
        and len(outs[0].shape) in (1, 2)
        and outs[1].dtype in _FLOAT
        and len(outs[1].shape) == 2
    ):
        sig.label_output = outs[0].name
        sig.probability_output = outs[1].name
        sig.task = "classification"


def _csv_value(v: Any) -> str:
    if isinstance(v, float | np.floating) and v != v:
        return ""
    return str(v)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False
