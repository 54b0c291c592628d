"""Model intake: tell what a model file is, without running it.

Loading a pickle runs code chosen by whoever wrote the file, so nothing here ever
unpickles with the standard machinery. Files are identified by their bytes (magic
numbers, zip structure, protobuf, text headers); pickles are read twice without
executing them:

1. :func:`app.picklescan.scan_stream` walks the opcodes (protocols 0 to 5, memo and
   ``STACK_GLOBAL`` resolved) and lists every global the file would import, and tells
   a truncated file from a complete one; :func:`app.picklescan.judge` turns the list
   into the safety verdict (``ModelArtifact.safety``) that conversion acts on.
2. A restricted unpickler rebuilds the object tree with *stand-ins* for every class:
   only numpy's array constructors (and joblib's array wrapper) are real. That gives
   the estimator type, the scikit-learn version recorded in the file, the fitted
   column names and categories, and value ranges for generating sample rows, while no
   module of the model's libraries is ever imported.

Conversion (which does load the model, in a subprocess) lives in :mod:`app.convert`.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from app.errors import ModelError, UnsupportedModelError
from app.files import MappedReader, mapped_model, max_model_bytes, missing_file
from app.mlflowmodel import MlflowModel, download, is_model_dir, is_uri, read_model_dir
from app.picklescan import SAFE, Verdict, judge, py3_name, ref_of, scan_stream

SUPPORTED_TEXT = (
    "ModelShip converts scikit-learn estimators and pipelines (pickle, joblib or skops), "
    "XGBoost (.json/.ubj or pickled XGBClassifier/XGBRegressor), LightGBM (.txt or pickled "
    "LGBMClassifier/LGBMRegressor), CatBoost (.cbm or pickled), PyTorch (TorchScript, a "
    "whole module saved with torch.save, or torch.export .pt2), ONNX files, and MLflow "
    "model folders of those flavors."
)

# The library a pickled class comes from (top-level module -> kind, distribution name).
_LIBRARIES = {
    "sklearn": ("sklearn", "scikit-learn"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "torch": ("pytorch", "torch"),
    "catboost": ("catboost", "catboost"),
}
# XGBoost JSON is parsed whole (Python objects take ~10x the file): larger ones as .ubj
_JSON_LIMIT = 1 << 30
# File names that say joblib although the bytes are a plain pickle (joblib writes a
# plain pickle when the model holds no numpy arrays, e.g. an XGBClassifier).
_JOBLIB_SUFFIXES = {".joblib", ".jbl", ".jl"}


@dataclass
class ModelArtifact:
    """What a model file is, found without executing it."""

    path: Path
    kind: str  # "sklearn" | "xgboost" | "lightgbm" | "catboost" | "pytorch" | "onnx"
    # "pickle" | "joblib" | "skops" | "onnx" | "xgboost-json" | "xgboost-ubj" |
    # "lightgbm-txt" | "catboost-cbm" | "torchscript" | "torch-module" | "torch-export"
    format: str
    estimator: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    inputs: list[dict] = field(default_factory=list)
    pickle_imports: list[str] = field(default_factory=list)
    runs_code_on_load: bool = False
    warnings: list[str] = field(default_factory=list)
    task: str | None = None  # "classification" | "regression" | None (unknown)
    classes: list[Any] | None = None
    size_bytes: int = 0
    # what loading it would import, judged (None: not a pickle, loading runs no Python)
    safety: Verdict | None = None
    # an MLflow model folder: path is the model file inside it, this is the rest of what
    # MLmodel says (flavor, signature, input example, requirements; app.mlflowmodel)
    mlflow: MlflowModel | None = None

    @property
    def name(self) -> str:
        """What to call the model: the MLflow folder's name, else the file's stem."""
        if self.mlflow is not None:
            return self.mlflow.folder.name
        return Path(self.path).stem

    @property
    def source(self) -> Path:
        """What the user gave: the MLflow folder, else the model file."""
        return self.mlflow.folder if self.mlflow is not None else Path(self.path)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["safety"] = self.safety.to_dict() if self.safety else None
        d["mlflow"] = self.mlflow.to_dict() if self.mlflow else None
        return d


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------
def inspect_model(path: str | Path) -> ModelArtifact:
    """Identify a model file (or MLflow model folder) by its content. Never executes a pickle."""
    if is_uri(path):
        return _inspect_mlflow(download(str(path)), uri=str(path))
    p = Path(path)
    if not p.exists():
        raise missing_file(p)
    if p.is_dir():
        if is_model_dir(p):
            return _inspect_mlflow(p)
        raise ModelError(
            f"{p} is a folder, but not an MLflow model (it has no MLmodel file).",
            "Give the model file itself (e.g. model.joblib, model.onnx, model.pt), or an "
            "MLflow model folder (the one with the MLmodel file).",
        )
    return _inspect_file(p)


def _inspect_file(p: Path) -> ModelArtifact:
    # regular files only, up to the size limit, mapped rather than read (app/files.py):
    # formats read in parts touch only the pages they need
    with mapped_model(p) as data:
        if not data:
            raise ModelError(f"{p.name} is empty (0 bytes).", "Save the model again and retry.")
        art = _identify(p, data)
        art.size_bytes = len(data)
    return art


def _identify(p: Path, data: bytes) -> ModelArtifact:
    head = data[:16]
    if head.startswith(b"CBM1"):
        return _inspect_catboost(p, bytes(data))
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _inspect_zip(p, data)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return _inspect_pickle(p, bytes(data), "pickle")
    if _is_old_pickle(data):  # protocols 0 and 1 have no header
        return _inspect_pickle(p, bytes(data), "pickle")
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            return _inspect_pickle(p, _decompress(p, data, name), "joblib")
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return _inspect_lightgbm(p, data)
    if head.startswith(b"{L") or head.startswith(b"{i") or head.startswith(b"{U"):
        return _inspect_xgboost(p, data, "xgboost-ubj")
    stripped = data[:4096].lstrip()[:1]
    if stripped == b"{":
        return _inspect_xgboost(p, data, "xgboost-json")
    onnx_art = _try_onnx(p, data)
    if onnx_art is not None:
        return onnx_art
    raise ModelError(
        f"{p.name} is not a model file ({_describe_other(data[:4096])}).", _NOT_MODEL_HINT
    )


_NOT_MODEL_HINT = (
    "Give a trained model file: " + SUPPORTED_TEXT[len("ModelShip converts ") :].rstrip(".") + "."
)

_COMPRESSED = [
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
]


def _decompress(p: Path, data: bytes, name: str) -> bytes:
    import bz2
    import gzip
    import lzma
    import zlib

    try:
        if name == "zlib":
            d = zlib.decompressobj()
            limit = max_model_bytes()
            out = d.decompress(data, limit + 1)
            if len(out) > limit:
                raise ModelError(
                    f"{p.name} unpacks to more than {limit >> 20} MiB, more than ModelShip "
                    "reads as a model; it was not read.",
                    "Check that this is the model file. If it is, raise the limit, e.g. "
                    "MODELSHIP_MAX_MODEL_GB=16 modelship inspect MODEL.",
                )
            if not d.eof:
                raise EOFError
            return out
        if name == "gzip":
            return gzip.decompress(data)
        if name == "bz2":
            return bz2.decompress(data)
        if name in ("xz", "lzma"):
            return lzma.decompress(data)
    except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError):
        raise ModelError(
            f"{p.name} is a {name}-compressed file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    raise UnsupportedModelError(
        f"{p.name} is compressed with {name}, which ModelShip cannot read.",
        "Save it with joblib.dump(model, path) using compress=3 (zlib) or no compression.",
    )


def _is_old_pickle(data: bytes) -> bool:
    """A protocol 0/1 pickle: parses to STOP, imports something, nothing but space after."""
    if data[:1] not in (b"c", b"(", b"]", b"}", b"\x80"):
        return False
    if len(data) > 1 << 16:  # a large text file may start so too: its head decides first
        try:
            for _ in pickletools.genops(io.BytesIO(data[: 1 << 16])):
                pass
        except ValueError as exc:
            if "unknown" in str(exc):
                return False
        except Exception:
            pass
        data = bytes(data)
    scan = scan_stream(data, multiple=False)
    if not scan.complete or not scan.imports:
        return False
    # where the first STOP ended: re-walk cheaply with pickletools
    try:
        end = max(pos for _, _, pos in pickletools.genops(data)) + 1
    except Exception:
        return False
    return not data[end:].strip()


def _describe_other(data: bytes) -> str:
    if data.startswith(b"\x89PNG") or data.startswith(b"\xff\xd8\xff"):
        return "it is an image"
    if data.startswith(b"%PDF"):
        return "it is a PDF document"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "its content is not a format ModelShip knows"
    lines = [ln for ln in text.splitlines()[:5] if ln.strip()]
    if len(lines) >= 2 and any(
        lines[0].count(sep) >= 1 and lines[0].count(sep) == lines[1].count(sep) for sep in ",;\t"
    ):
        return "it looks like a CSV table, i.e. data rather than a trained model"
    return "it is a text file"


# ---------------------------------------------------------------------------
# pickles
# ---------------------------------------------------------------------------
_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}


def scan_pickle(data: bytes) -> tuple[list[str], bool]:
    """List the module.name references in a pickle stream, in order, without loading it.

    Returns (imports, complete). ``complete`` is False when the stream ends before
    STOP (truncated). joblib interleaves raw array bytes with the pickle opcodes; the
    walk stops at the first such block, and the restricted unpickler covers the rest.
    """
    scan = scan_stream(data)
    return scan.imports, scan.complete


class _Stub:
    """Stand-in for any class a pickle names: keeps constructor args and state."""

    _ms_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_ms_args"] = args
        self.__dict__.setdefault("_ms_state", None)
        self.__dict__.setdefault("_ms_items", {})

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_ms_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_ms_items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("_ms_list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("_ms_list", []).extend(values)

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _make_stub(self._ms_name)(*args)

    @property
    def state(self) -> dict:
        s = self.__dict__.get("_ms_state")
        if isinstance(s, tuple) and len(s) == 2 and isinstance(s[1], dict):  # (state, slots)
            s = {**(s[0] or {}), **s[1]}
        return s if isinstance(s, dict) else {}


_STUBS: dict[str, type] = {}


def _make_stub(name: str) -> type:
    if name not in _STUBS:
        _STUBS[name] = type(name.rsplit(".", 1)[-1], (_Stub,), {"_ms_name": name})
    return _STUBS[name]


def stub_name(obj: Any) -> str | None:
    return obj._ms_name if isinstance(obj, _Stub) else None


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, _Stub):
        return cls()
    return _Stub()


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if isinstance(obj, str):
        return obj.encode(encoding, errors)
    raise pickle.UnpicklingError("unexpected _codecs.encode argument")


def _allowed() -> dict[tuple[str, str], Any]:
    import collections

    import numpy as np

    out: dict[tuple[str, str], Any] = {
        ("copyreg", "_reconstructor"): _reconstructor,
        ("_codecs", "encode"): _codecs_encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "object"): object,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    from numpy._core import multiarray

    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = multiarray._reconstruct
        out[(mod, "scalar")] = multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        out[(mod, "_frombuffer")] = np._core.numeric._frombuffer
    return out


class _SafeMixin:
    """find_class that returns stand-ins for everything outside a tiny allowlist."""

    found: list[str]

    def find_class(self, module: str, name: str) -> Any:
        module, name = py3_name(module, name)  # Python 2 names, as pickle.Unpickler maps them
        full = ref_of(module, name)
        if full not in self.found:
            self.found.append(full)
        allowed = _ALLOWED_CACHE.get("v")
        if allowed is None:
            allowed = _ALLOWED_CACHE["v"] = _allowed()
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "joblib.numpy_pickle" and name == "NumpyArrayWrapper":
            return _safe_array_wrapper()
        return _make_stub(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:  # torch storages
        return None


_ALLOWED_CACHE: dict[str, Any] = {}


class _SafeUnpickler(_SafeMixin, pickle.Unpickler):
    def __init__(self, fh: Any) -> None:
        super().__init__(fh)
        self.found = []


def _safe_array_wrapper() -> type:
    """joblib's array wrapper, except that object arrays load through the safe unpickler."""
    if "wrapper" in _ALLOWED_CACHE:
        return _ALLOWED_CACHE["wrapper"]
    from joblib.numpy_pickle import NumpyArrayWrapper

    class SafeWrapper(NumpyArrayWrapper):
        def read(self, unpickler: Any, *args: Any, **kwargs: Any) -> Any:
            if self.dtype.hasobject:
                inner = _SafeUnpickler(unpickler.file_handle)
                arr = inner.load()
                unpickler.found.extend(x for x in inner.found if x not in unpickler.found)
                return arr
            return super().read(unpickler, *args, **kwargs)

    _ALLOWED_CACHE["wrapper"] = SafeWrapper
    return SafeWrapper


def safe_load(data: bytes, fmt: str) -> tuple[Any, list[str]]:
    """Rebuild a pickle's object tree with stand-ins; returns (root, references)."""
    if fmt == "joblib" and b"joblib.numpy_pickle" in data[:200000]:
        from joblib.numpy_pickle import NumpyUnpickler

        class _JoblibSafe(_SafeMixin, NumpyUnpickler):
            pass

        u = _JoblibSafe("", io.BytesIO(data), True)
        u.found = []
    else:
        u = _SafeUnpickler(io.BytesIO(data))
    root = u.load()
    return root, u.found


def _inspect_pickle(p: Path, data: bytes, fmt: str) -> ModelArtifact:
    imports, complete = scan_pickle(data)
    joblib_stream = any(i.startswith("joblib.numpy_pickle") for i in imports)
    if joblib_stream or p.suffix.lower() in _JOBLIB_SUFFIXES:
        fmt = "joblib"
    if not complete and not joblib_stream:
        if judge(imports).verdict != SAFE:
            _refuse_non_model(p, judge(imports))
        raise ModelError(
            f"{p.name} is a truncated or corrupt pickle (it ends before its last instruction).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    try:
        # the restricted unpickler: every global becomes an inert stand-in (see _SafeMixin),
        # so this lists the globals past joblib's array blocks without running any of them
        root, found = safe_load(data, fmt)
    except Exception as exc:
        if judge(imports).verdict != SAFE:
            _refuse_non_model(p, judge(imports))
        raise ModelError(
            f"{p.name} is a truncated or corrupt {fmt} file ({type(exc).__name__}).",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    for f in found:
        if f not in imports:
            imports.append(f)
    verdict = judge(imports)
    try:
        art = _describe_pickled(p, fmt, root, imports)
    except ModelError:
        if verdict.verdict != SAFE:
            _refuse_non_model(p, verdict)
        raise
    art.safety = verdict
    if verdict.verdict != SAFE:
        art.warnings.insert(0, verdict.summary())
    return art


def _refuse_non_model(p: Path, verdict: Verdict) -> None:
    """Not a usable model and not safe: say what it would run, never load it."""
    from app.picklescan import UntrustedModelError

    what = list(verdict.dangerous) or verdict.unknown
    raise UntrustedModelError(
        f"{p.name} is not a model ModelShip can use, and loading it would call "
        f"{', '.join(what[:6])}.",
        "Do not load this file; ask whoever sent it for the trained model itself.",
        verdict,
    )


def _describe_pickled(p: Path, fmt: str, root: Any, imports: list[str]) -> ModelArtifact:
    estimator = stub_name(root)
    if estimator is None:
        raise ModelError(
            f"{p.name} is a {fmt} file, but it holds a {type(root).__name__}, not a trained model.",
            "Pickle the fitted estimator itself (e.g. joblib.dump(model, 'model.joblib')).",
        )
    top = estimator.split(".")[0]
    if top not in ("sklearn", "xgboost", "lightgbm", "catboost"):
        raise UnsupportedModelError(
            f"{p.name} holds a {estimator}, which ModelShip cannot convert.", SUPPORTED_TEXT
        )
    kind = _LIBRARIES[top][0]
    art = ModelArtifact(
        path=p,
        kind=kind,
        format=fmt,
        estimator=estimator,
        pickle_imports=imports,
        runs_code_on_load=True,
    )
    art.warnings.append(
        "Loading this file runs code (it is a pickle): convert it only if you trust "
        "where it came from."
    )
    # library versions recorded in the file
    versions = {v for v in _walk_values(root, "_sklearn_version") if isinstance(v, str)}
    libs_used = {i.split(".")[0] for i in imports}
    for top_mod, (_, dist) in _LIBRARIES.items():
        if top_mod in libs_used:
            art.libraries[dist] = ""
    if versions:
        art.libraries["scikit-learn"] = sorted(versions)[-1]
        if len(versions) > 1:
            art.warnings.append(
                f"Parts were saved with scikit-learn {', '.join(sorted(versions))}."
            )
    installed = installed_versions(art.libraries)
    need = art.libraries.get("scikit-learn")
    if need and installed.get("scikit-learn") and installed["scikit-learn"] != need:
        art.warnings.append(
            f"It was saved with scikit-learn {need}; this Python has "
            f"{installed['scikit-learn']}. Convert with --match-env (a matching environment, "
            f"made once), or --python pointing at a Python that has scikit-learn {need}."
        )
    if top == "catboost":
        blob = root.state.get("__model") if isinstance(root, _Stub) else None
        desc = _describe_catboost_blob(blob) if isinstance(blob, bytes | bytearray) else {}
        if not desc:
            desc = {"task": "classification" if "Classifier" in estimator else "regression"}
        art.inputs = desc.get("columns", [])
        art.task = desc.get("task")
        art.classes = desc.get("classes")
        return art
    try:
        desc = describe_estimator(root)
    except Exception:  # description is best effort; never block intake on it
        desc = {}
    art.inputs = desc.get("columns", [])
    art.task = desc.get("task")
    art.classes = desc.get("classes")
    return art


def installed_versions(libraries: dict[str, str]) -> dict[str, str]:
    out = {}
    for dist in libraries:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    return out


def _walk_values(obj: Any, key: str, depth: int = 0, seen: set | None = None) -> list[Any]:
    seen = set() if seen is None else seen
    if depth > 40 or id(obj) in seen:
        return []
    seen.add(id(obj))
    out: list[Any] = []
    if isinstance(obj, _Stub):
        st = obj.state
        if key in st:
            out.append(st[key])
        for v in st.values():
            out.extend(_walk_values(v, key, depth + 1, seen))
        for v in obj.__dict__.get("_ms_args", ()):
            out.extend(_walk_values(v, key, depth + 1, seen))
    elif isinstance(obj, dict):
        for v in obj.values():
            out.extend(_walk_values(v, key, depth + 1, seen))
    elif isinstance(obj, list | tuple):
        for v in obj:
            out.extend(_walk_values(v, key, depth + 1, seen))
    return out


# ---------------------------------------------------------------------------
# what a pickled scikit-learn model expects (from stand-ins)
# ---------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _final(obj: Any) -> Any:
    if stub_name(obj) == "sklearn.pipeline.Pipeline":
        steps = obj.state.get("steps") or []
        for _, est in reversed(steps):
            if est not in ("passthrough", None):
                return _final(est)
    return obj


def describe_estimator(root: Any) -> dict:
    """Columns (names, dtypes, categories), task and classes of a stand-in tree."""
    st = root.state if isinstance(root, _Stub) else {}
    final = _final(root)
    fst = final.state if isinstance(final, _Stub) else {}
    out: dict[str, Any] = {}
    classes = fst.get("classes_")
    if classes is not None:
        out["task"] = "classification"
        out["classes"] = _plain(classes)
    elif isinstance(final, _Stub) and (
        "Regressor" in final._ms_name or "Regression" in final._ms_name
    ):
        out["task"] = "regression"
    names = st.get("feature_names_in_")
    if names is None:
        # a Pipeline keeps them on its first step
        steps = st.get("steps") or []
        if steps and isinstance(steps[0][1], _Stub):
            names = steps[0][1].state.get("feature_names_in_")
    n = st.get("n_features_in_") or fst.get("n_features_in_")
    if n is None and isinstance(root, _Stub) and root._ms_name.startswith("xgboost"):
        n = st.get("n_features_in_")
    cats = _categories(root)
    if names is None and n is None and isinstance(final, _Stub):
        boosted = _booster_columns(final)
        if boosted:
            names = boosted
        if out.get("task") is None:
            obj = str(fst.get("_objective") or fst.get("objective") or "")
            out["task"] = _task_for_objective(obj) or (
                "classification" if "Classifier" in final._ms_name else "regression"
            )
        if out["task"] == "classification" and "classes" not in out:
            k = fst.get("n_classes_") or fst.get("_n_classes")
            c = fst.get("_classes")
            out["classes"] = _plain(c) if c is not None else list(range(int(k or 2)))
    if names is not None:
        out["columns"] = [
            {
                "name": str(c),
                "dtype": "str" if str(c) in cats and _is_str(cats[str(c)]) else "float",
                **({"categories": cats[str(c)]} if str(c) in cats else {}),
            }
            for c in _plain(names)
        ]
    elif isinstance(n, int):
        out["columns"] = [{"name": f"f{i}", "dtype": "float"} for i in range(n)]
    return out


def _booster_columns(est: _Stub) -> list[str] | None:
    """Feature names from the booster inside a pickled XGBoost/LightGBM sklearn model."""
    booster = est.state.get("_Booster")
    if not isinstance(booster, _Stub):
        return None
    bst = booster.state
    raw = bst.get("handle")
    if isinstance(raw, bytes | bytearray):  # XGBoost: the booster's own (UBJSON) bytes
        try:
            doc = ubjson_decode(bytes(raw))
        except Exception:
            return None
        if isinstance(doc, dict) and "Model" in doc:
            doc = doc["Model"]
        learner = doc.get("learner", {}) if isinstance(doc, dict) else {}
        n = int(learner.get("learner_model_param", {}).get("num_feature", 0))
        given = learner.get("feature_names") or []
        return [given[i] if i < len(given) else f"f{i}" for i in range(n)]
    text = bst.get("_handle")
    if isinstance(text, str):  # LightGBM: the model in its text format
        header = dict(line.split("=", 1) for line in text.splitlines()[:40] if "=" in line)
        n = int(header.get("max_feature_idx", "-1")) + 1
        given = _lightgbm_names(header.get("feature_names", ""))
        if not est.state.get("_fitted_with_feature_names"):
            given = []
        return [given[i] if i < len(given) else f"f{i}" for i in range(n)]
    return None


def _is_str(values: list) -> bool:
    return any(isinstance(v, str) for v in values)


def _categories(root: Any) -> dict[str, list]:
    """column name -> categories known to a fitted encoder inside a ColumnTransformer."""
    out: dict[str, list] = {}
    stack = [root]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if not isinstance(obj, _Stub) or id(obj) in seen:
            continue
        seen.add(id(obj))
        st = obj.state
        if obj._ms_name == "sklearn.compose._column_transformer.ColumnTransformer":
            for entry in st.get("transformers_") or []:
                _, trans, cols = entry
                enc = _encoder_in(trans)
                if enc is not None and isinstance(cols, list | tuple):
                    for col, cat in zip(cols, enc.state.get("categories_") or [], strict=False):
                        out[str(col)] = _plain(cat)
        for v in st.values():
            if isinstance(v, _Stub):
                stack.append(v)
            elif isinstance(v, list | tuple):
                for x in v:
                    if isinstance(x, _Stub):
                        stack.append(x)
                    elif isinstance(x, tuple):
                        stack.extend(y for y in x if isinstance(y, _Stub))
    return out


def _encoder_in(trans: Any) -> Any:
    if not isinstance(trans, _Stub):
        return None
    if trans.state.get("categories_") is not None:
        return trans
    for _, step in trans.state.get("steps") or []:
        if isinstance(step, _Stub) and step.state.get("categories_") is not None:
            return step
    return None


# ---------------------------------------------------------------------------
# zip files: PyTorch
# ---------------------------------------------------------------------------
def _inspect_zip(p: Path, data: bytes) -> ModelArtifact:
    try:
        # a mapped file is read in place: only the directory and the members used
        zf = zipfile.ZipFile(MappedReader(data))
        names = zf.namelist()
    except zipfile.BadZipFile:
        raise ModelError(
            f"{p.name} is a zip file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    if "schema.json" in names:
        return _inspect_skops(p, zf)
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names) and not any(
        n.endswith("/data.pkl") for n in names
    ):
        return _inspect_torch_export(p, zf, names)
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl:
        raise ModelError(
            f"{p.name} is a zip archive, but not a saved model (no PyTorch data.pkl inside).",
            _NOT_MODEL_HINT,
        )
    is_script = any("/code/" in n or n.startswith("code/") for n in names)
    try:
        raw = zf.read(pkl[0])
        version = ""
        vfile = [n for n in names if n.endswith("/.data/version") or n.endswith("/version")]
        if vfile:
            version = zf.read(vfile[0]).decode("ascii", "replace").strip()
    except Exception:
        raise ModelError(
            f"{p.name} is a PyTorch file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    imports, complete = scan_pickle(raw)
    if not complete:
        raise ModelError(
            f"{p.name} is a PyTorch file that is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        )
    # every pickle in the archive counts, not only data.pkl (constants.pkl, extra files)
    all_imports = list(imports)
    for other in names:
        if other.endswith(".pkl") and other != pkl[0]:
            try:
                more = scan_stream(zf.read(other)).imports
            except Exception:
                more = ["?.unreadable_pickle_in_archive"]
            all_imports.extend(i for i in more if i not in all_imports)
    if is_script:
        # TorchScript's own (C++) unpickler resolves only TorchScript classes (__torch__.*),
        # its list builders (torch.jit._pickle.*) and tensor rebuilders, never Python
        # imports: those names are data here.
        verdict = judge(
            [i for i in all_imports if not i.startswith(("__torch__.", "torch.jit._pickle."))]
        )
    else:
        verdict = judge(all_imports)
    art = ModelArtifact(
        path=p,
        kind="pytorch",
        format="torchscript" if is_script else "torch-module",
        pickle_imports=imports,
        runs_code_on_load=not is_script,
        libraries={"torch": ""},
        safety=verdict,
    )
    if verdict.verdict != SAFE:
        art.warnings.append(verdict.summary())
    if is_script:
        art.estimator = imports[0] if imports else "TorchScript module"
        art.warnings.append(
            "A TorchScript file runs no Python code on load, but its graph runs when converting."
        )
    else:
        # the first reference is the class of the object saved at the top
        first = imports[0] if imports else None
        if first is None or first.startswith(("collections.", "builtins.", "torch._utils")):
            raise UnsupportedModelError(
                f"{p.name} is a PyTorch file holding only weights (a state_dict), not a model.",
                "Save the whole module with torch.save(model, path) or script it with "
                "torch.jit.script(model).save(path).",
            )
        art.estimator = first
        art.warnings.append(
            "Loading this file runs code (torch.save uses pickle): convert it only if you "
            "trust where it came from."
        )
        if not first.startswith("torch."):
            art.warnings.append(
                f"Its class {first} must be importable when converting: install its module "
                "in the Python given with --python (the environment it was trained in); "
                "code beside the model file is never imported."
            )
    if version:
        art.warnings.append(f"PyTorch archive format version {version}.")
    art.warnings.append(
        "PyTorch models need an input shape to convert, e.g. --input-shape 1,3,32,32."
    )
    return art


# ---------------------------------------------------------------------------
# native boosters and ONNX
# ---------------------------------------------------------------------------
def _inspect_xgboost(p: Path, data: bytes, fmt: str) -> ModelArtifact:
    cfg: dict[str, Any] | None = None
    if fmt == "xgboost-json":
        if len(data) > _JSON_LIMIT:
            raise UnsupportedModelError(
                f"{p.name} is an XGBoost JSON model of {len(data) >> 20} MiB, too large to read "
                "as JSON here.",
                "Save it in XGBoost's binary format instead: booster.save_model('model.ubj').",
            )
        try:
            doc = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"{p.name} is a JSON file that is truncated or corrupt ({exc.__class__.__name__}).",
                "Copy or save the model again; the file did not arrive whole.",
            ) from None
        if not isinstance(doc, dict) or "learner" not in doc:
            raise ModelError(
                f"{p.name} is a JSON file, but not a saved XGBoost model.", _NOT_MODEL_HINT
            )
        cfg = doc
    else:
        cfg = _ubj_header(p, data)
    learner = cfg.get("learner", {}) if isinstance(cfg, dict) else {}
    version = cfg.get("version") if isinstance(cfg, dict) else None
    art = ModelArtifact(path=p, kind="xgboost", format=fmt, estimator="xgboost.Booster")
    art.libraries["xgboost"] = ".".join(str(v) for v in version) if version else ""
    params = learner.get("learner_model_param", {})
    n = params.get("num_feature")
    names = learner.get("feature_names") or []
    try:
        count = int(n) if n is not None else len(names)
    except (TypeError, ValueError):
        count = len(names)
    art.inputs = [
        {"name": names[i] if i < len(names) else f"f{i}", "dtype": "float"} for i in range(count)
    ]
    obj = learner.get("objective", {}).get("name", "")
    art.task = _task_for_objective(obj)
    nclass = params.get("num_class")
    if art.task == "classification":
        k = int(nclass) if nclass and int(nclass) > 1 else 2
        art.classes = list(range(k))
    return art


def _ubj_header(p: Path, data: bytes) -> dict:
    """XGBoost's UBJSON model, decoded as plain data (no xgboost needed, no code runs)."""
    try:
        doc = ubjson_decode(data)
    except Exception:
        raise ModelError(
            f"{p.name} looks like an XGBoost .ubj model but is truncated or corrupt.",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    if not isinstance(doc, dict) or "learner" not in doc:
        raise ModelError(f"{p.name} is UBJSON, but not a saved XGBoost model.", _NOT_MODEL_HINT)
    return doc


_UBJ_NUM = {
    b"i": ">b",
    b"U": ">B",
    b"I": ">h",
    b"l": ">i",
    b"L": ">q",
    b"d": ">f",
    b"D": ">d",
}


def ubjson_decode(data: bytes) -> Any:
    """Minimal UBJSON reader for XGBoost model files (typed/counted containers included)."""
    import struct

    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("UBJSON ends early")
        out = data[pos : pos + n]
        pos += n
        return out

    def number(marker: bytes) -> Any:
        fmt = _UBJ_NUM[marker]
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    def length() -> int:
        return int(number(take(1)))

    def value(marker: bytes) -> Any:
        if marker in _UBJ_NUM:
            return number(marker)
        if marker in (b"S", b"H"):
            return take(length()).decode("utf-8")
        if marker == b"C":
            return take(1).decode("latin-1")
        if marker == b"T":
            return True
        if marker == b"F":
            return False
        if marker == b"Z":
            return None
        if marker in (b"[", b"{"):
            return container(marker)
        raise ValueError(f"unknown UBJSON marker {marker!r}")

    def container(open_: bytes) -> Any:
        nonlocal pos
        typ = None
        count = None
        if data[pos : pos + 1] == b"$":
            pos += 1
            typ = take(1)
        if data[pos : pos + 1] == b"#":
            pos += 1
            count = length()
        if open_ == b"[":
            items: list[Any] = []
            if typ in _UBJ_NUM and count is not None:
                import numpy as np

                size = struct.calcsize(_UBJ_NUM[typ])
                arr = np.frombuffer(take(size * count), dtype=_UBJ_NUM[typ])
                return arr.tolist() if count <= 64 else arr
            while count is None or len(items) < count:
                m = take(1)
                if count is None and m == b"]":
                    break
                items.append(value(typ or m) if typ else value(m))
            return items
        obj: dict[str, Any] = {}
        while count is None or len(obj) < count:
            if count is None and data[pos : pos + 1] == b"}":
                pos += 1
                break
            key = take(length()).decode("utf-8")
            obj[key] = value(typ) if typ else value(take(1))
        return obj

    first = take(1)
    return value(first)


def _task_for_objective(obj: str) -> str | None:
    if obj.startswith(("binary:", "multi:")) or obj in ("binary", "multiclass", "multiclassova"):
        return "classification"
    if obj.startswith(("reg:", "count:", "survival:")) or obj in (
        "regression",
        "regression_l1",
        "huber",
        "poisson",
        "quantile",
        "tweedie",
        "gamma",
        "fair",
        "mape",
    ):
        return "regression"
    return None


def _inspect_lightgbm(p: Path, data: bytes) -> ModelArtifact:
    # the header ends where the first tree starts; the trees themselves are not read here
    end = data.find(b"\nTree=")
    text = data[: end if end >= 0 else 1 << 20].decode("utf-8", "replace")
    header: dict[str, str] = {}
    for line in text.splitlines()[:40]:
        if "=" in line:
            k, _, v = line.partition("=")
            header.setdefault(k.strip(), v.strip())
        elif line.startswith("Tree="):
            break
    if "max_feature_idx" not in header:
        raise ModelError(
            f"{p.name} starts like a LightGBM model but its header is incomplete.",
            "Copy or save the model again; the file did not arrive whole.",
        )
    if data.find(b"end of trees") < 0:
        raise ModelError(
            f"{p.name} is a truncated LightGBM model (its trees end early).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    n = int(header["max_feature_idx"]) + 1
    names = _lightgbm_names(header.get("feature_names", ""))
    art = ModelArtifact(
        path=p, kind="lightgbm", format="lightgbm-txt", estimator="lightgbm.Booster"
    )
    art.libraries["lightgbm"] = header.get("version", "")
    art.inputs = [
        {"name": names[i] if i < len(names) else f"f{i}", "dtype": "float"} for i in range(n)
    ]
    obj = header.get("objective", "").split()[0] if header.get("objective") else ""
    art.task = _task_for_objective(obj)
    if art.task == "classification":
        k = int(header.get("num_class", "1"))
        art.classes = list(range(max(k, 2)))
    return art


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


def _lightgbm_names(text: str) -> list[str]:
    """LightGBM's feature names, or none when they are its defaults (Column_0, ...).

    A model trained on a DataFrame keeps the DataFrame's column names; one trained on
    an array gets Column_0, Column_1, ... which ModelShip calls f0, f1, ... as for
    every model fitted without names.
    """
    names = text.split()
    if names and all(n == f"Column_{i}" for i, n in enumerate(names)):
        return []
    return names


# ---------------------------------------------------------------------------
# CatBoost
# ---------------------------------------------------------------------------
_CATBOOST_CLASSIFICATION = {"Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll"}


def _inspect_catboost(p: Path, data: bytes) -> ModelArtifact:
    """CatBoost's own binary format: data only, loading it runs no Python."""
    art = ModelArtifact(
        path=p, kind="catboost", format="catboost-cbm", estimator="catboost.CatBoost"
    )
    art.libraries["catboost"] = ""
    desc = _describe_catboost_blob(data)
    if desc.get("error"):
        raise ModelError(
            f"{p.name} starts like a CatBoost model but cannot be read ({desc['error']}).",
            "Copy or save the model again; the file did not arrive whole.",
        )
    if not desc:
        art.warnings.append(
            "CatBoost is not installed here, so its columns are read when converting "
            "(pip install catboost, or convert with --python pointing at a Python that has it)."
        )
    art.inputs = desc.get("columns", [])
    art.task = desc.get("task")
    art.classes = desc.get("classes")
    return art


def _describe_catboost_blob(blob: bytes) -> dict[str, Any]:
    """Columns, task and classes of a CatBoost model (its .cbm bytes), read by CatBoost.

    A .cbm file is data (no pickle), so reading it with CatBoost runs no code from the
    file. Returns {} when CatBoost is not installed: the worker describes it then.
    """
    try:
        from catboost import CatBoost
    except ImportError:
        return {}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelship-cbm-") as tmp:
        f = Path(tmp) / "model.cbm"
        f.write_bytes(bytes(blob))
        try:
            model = CatBoost()
            model.load_model(str(f), format="cbm")
        except Exception as exc:
            return {"error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}
    names = [str(n) for n in (model.feature_names_ or [])]
    cat = set(model.get_cat_feature_indices() or [])
    columns = [
        {"name": n if n and not n.isdigit() else f"f{i}", "dtype": "str" if i in cat else "float"}
        for i, n in enumerate(names)
    ]
    loss = str(model.get_all_params().get("loss_function", ""))
    out: dict[str, Any] = {"columns": columns}
    if loss.split(":")[0] in _CATBOOST_CLASSIFICATION:
        out["task"] = "classification"
        classes = getattr(model, "classes_", None)
        out["classes"] = [_plain(c) for c in list(classes)] if classes is not None else None
    else:
        out["task"] = "regression"
    return out


# ---------------------------------------------------------------------------
# skops
# ---------------------------------------------------------------------------
def _inspect_skops(p: Path, zf: zipfile.ZipFile) -> ModelArtifact:
    """A skops file: skops' own check of the types it would build, then a stand-in tree.

    skops builds only types it trusts by default (scikit-learn's and numpy's own);
    everything else it names is listed by ``get_untrusted_types`` and judged here by the
    same rules as a pickle's imports: safe (on the exact allow-list), unknown (needs
    --trust), dangerous. The worker loads it with ``skops.io.load(trusted=...)`` given
    only the approved types (without --trust: those on the list), beside skops' defaults.
    """
    try:
        from skops.io import get_untrusted_types
    except ImportError:
        raise ModelError(
            f"{p.name} is a skops file, and reading one needs skops, which is not installed.",
            "Install it (pip install skops) and try again.",
        ) from None
    try:
        untrusted = list(get_untrusted_types(file=p))
        schema = json.loads(zf.read("schema.json").decode("utf-8"))
        root = _skops_tree(schema, zf, 0)
    except Exception as exc:
        raise ModelError(
            f"{p.name} is a skops file that is truncated or corrupt ({type(exc).__name__}).",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    verdict = judge(untrusted)
    imports = sorted({*untrusted, *_skops_classes(schema)})
    try:
        art = _describe_pickled(p, "skops", root, imports)
    except ModelError:
        if verdict.verdict != SAFE:
            _refuse_non_model(p, verdict)
        raise
    art.safety = verdict
    art.runs_code_on_load = verdict.verdict != SAFE
    art.libraries.setdefault("skops", str(schema.get("_skops_version") or ""))
    art.warnings = [w for w in art.warnings if "it is a pickle" not in w]
    if verdict.verdict != SAFE:
        art.warnings.insert(0, verdict.summary())
    return art


def _skops_classes(node: Any) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if n.get("__loader__") == "ObjectNode":
                out.add(f"{n.get('__module__')}.{n.get('__class__')}")
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return out


def _skops_tree(node: Any, zf: zipfile.ZipFile, depth: int) -> Any:
    """skops' schema as plain data, with a stand-in (never the real class) for objects."""
    if depth > 60 or not isinstance(node, dict):
        return None
    loader = node.get("__loader__")
    content = node.get("content")
    if loader == "JsonNode":
        return json.loads(content) if isinstance(content, str) else content
    if loader == "NdArrayNode":
        import numpy as np

        if node.get("type") == "numpy" and node.get("file"):
            return np.load(io.BytesIO(zf.read(node["file"])), allow_pickle=False)
        if isinstance(content, list):
            return np.array([_skops_tree(x, zf, depth + 1) for x in content], dtype=object)
        return None
    if loader in ("ListNode", "TupleNode", "SetNode"):
        items = [_skops_tree(x, zf, depth + 1) for x in (content or [])]
        return tuple(items) if loader == "TupleNode" else items
    if loader in ("DictNode", "DefaultDictNode", "OrderedDictNode"):
        if isinstance(content, dict) and "__loader__" not in content:
            return {k: _skops_tree(v, zf, depth + 1) for k, v in content.items()}
        return _skops_tree(content, zf, depth + 1) if isinstance(content, dict) else {}
    if loader in ("ObjectNode", "ReduceNode"):
        stub = _make_stub(f"{node.get('__module__')}.{node.get('__class__')}")()
        state = _skops_tree(content, zf, depth + 1) if isinstance(content, dict) else None
        if isinstance(state, dict) and "attrs" in state and loader == "ReduceNode":
            state = state["attrs"]
        stub.__setstate__(state if isinstance(state, dict) else {})
        return stub
    return None


# ---------------------------------------------------------------------------
# torch.export archives (.pt2)
# ---------------------------------------------------------------------------
def _inspect_torch_export(p: Path, zf: zipfile.ZipFile, names: list[str]) -> ModelArtifact:
    """A torch.export archive: a graph and raw weights, no pickled Python objects."""
    art = ModelArtifact(
        path=p,
        kind="pytorch",
        format="torch-export",
        estimator="torch.export.ExportedProgram",
        libraries={"torch": ""},
    )
    art.warnings.append(
        "A torch.export archive runs no Python code on load, but its graph runs when converting."
    )
    return art


# ---------------------------------------------------------------------------
# MLflow model folders
# ---------------------------------------------------------------------------
_FLAVOR_DISTS = {
    "sklearn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "catboost": ("catboost",),
    "pytorch": ("torch",),
    "onnx": ("onnx",),
}


def _inspect_mlflow(folder: Path, uri: str | None = None) -> ModelArtifact:
    """An MLflow model folder: the model file it holds, read like any other, plus what
    MLmodel records (signature, input example, requirements)."""
    mm = read_model_dir(folder, uri)
    art = _inspect_file(mm.model_file)
    art.size_bytes = mm.model_file.stat().st_size
    art.mlflow = mm
    want_kind = "sklearn" if mm.flavor == "sklearn" else mm.flavor
    if mm.flavor in ("xgboost", "lightgbm", "catboost") and art.kind == "sklearn":
        want_kind = "sklearn"  # e.g. an XGBClassifier inside a Pipeline, logged by the flavor
    if art.kind != want_kind and not (mm.flavor == "sklearn" and art.kind != "pytorch"):
        art.warnings.append(
            f"MLmodel says the flavor is {mm.flavor}, but the file holds a {art.kind} model."
        )
    # the recorded requirements, as recorded library versions (the file's own record of
    # a version, e.g. scikit-learn's in a pickle, wins)
    for req in (*_FLAVOR_DISTS.get(mm.flavor, ()), "scikit-learn"):
        version = mm.requirements.get(req)
        dist = "xgboost" if req == "xgboost-cpu" else req  # one library, two wheels
        recorded = art.libraries.get(dist, "")
        # (LightGBM's text files record their format, "v4", not the library's version)
        if version and not recorded[:1].isdigit():
            art.libraries[dist] = version
    if art.format == "skops" and mm.requirements.get("skops"):
        art.libraries["skops"] = mm.requirements["skops"]
    # the signature: the names (and types) the model was logged with
    if (
        mm.columns
        and (not art.inputs or _unnamed(art.inputs))
        and (not art.inputs or len(art.inputs) == len(mm.columns))
    ):
        art.inputs = [{"name": c["name"], "dtype": c["dtype"]} for c in mm.columns]
    elif mm.tensor is not None and not art.inputs:
        art.inputs = [
            {
                "name": mm.tensor["name"],
                "dtype": mm.tensor["dtype"],
                "shape": [d if d >= 0 else None for d in mm.tensor["shape"]],
            }
        ]
    art.warnings = [w for w in art.warnings if not w.startswith("PyTorch models need an input")]
    if art.kind == "pytorch" and mm.tensor is None and mm.example is None:
        art.warnings.append(
            "PyTorch models need an input shape to convert, e.g. --input-shape 1,3,32,32."
        )
    source = uri or str(folder)
    art.warnings.append(
        f"MLflow model ({mm.flavor} flavor, MLflow {mm.mlflow_version or 'version unknown'}) "
        f"from {source}"
        + (
            f"; its input example ({len(mm.example.get('rows', mm.example.get('array', [])))} "
            "rows) is used in the proof."
            if mm.example
            else "."
        )
    )
    return art


def _unnamed(inputs: list[dict]) -> bool:
    return all(c.get("name") == f"f{i}" for i, c in enumerate(inputs))
