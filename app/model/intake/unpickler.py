"""The restricted unpickler: every global a pickle names becomes an inert stand-in
(:class:`_Stub`) that keeps its arguments and state, so a pickled model can be described
without running any of its code. :mod:`app.model.picklescan` decides what may run later."""

from __future__ import annotations

import io
import pickle
from typing import Any

from app.model.modelfacts import py3_name
from app.model.picklescan import ref_of, scan_stream


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
