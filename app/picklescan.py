"""Pickle safety: every global a pickle would import, and whether loading it is safe.

Loading a pickle calls whatever functions the file names, so ModelShip decides before
anything loads it. Modelled on picklescan, modelscan and skops:

* :func:`scan_stream` walks the opcodes with :mod:`pickletools` (protocols 0 to 5) and
  simulates the unpickler's stack and memo, so that ``STACK_GLOBAL`` (protocol 4+),
  names fetched back from the memo (``BINGET`` after ``MEMOIZE``/``PUT``) and several
  pickles concatenated in one file are all resolved. A ``STACK_GLOBAL`` whose names are
  computed at load time, or a copyreg extension code (``EXT1/2/4``), cannot be resolved
  and counts as dangerous: an honest file never needs either.
* joblib interleaves raw array bytes with the opcodes; there the opcode walk stops at
  the first array and ``app.intake``'s restricted unpickler (which returns inert
  stand-ins for every global, see ``_SafeMixin``) lists the rest: it runs none of the
  code the file names, so it is part of the scan, not a load.
* :func:`classify` puts each global in one of three classes: ``safe`` (an explicit
  allowlist of the classes and numpy/scipy/pandas/joblib/torch reconstructors that
  scikit-learn, XGBoost, LightGBM, CatBoost and PyTorch models use), ``dangerous`` (modules and
  callables that run commands, evaluate code, open files or sockets, or reach any
  attribute: os, subprocess, builtins.eval, operator.attrgetter, ...) or ``unknown``.

The decision (:func:`require_trust`) refuses dangerous and unknown files unless the
user said they trust the file (``--trust``, or the wizard's confirmation). The
conversion worker then loads with an unpickler that admits exactly the globals that
were scanned and approved, so a file swapped after the scan, or a global the scan
missed, still cannot import anything else.
"""

from __future__ import annotations

import io
import pickletools
import re
from dataclasses import dataclass, field
from typing import Any

from app.errors import ModelError

SAFE, UNKNOWN, DANGEROUS = "safe", "unknown", "dangerous"

# ---------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------
# Whole modules (and their submodules) whose every callable is dangerous.
_DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "socket", "_socket",
    "shutil", "pty", "importlib", "imp", "runpy", "webbrowser", "code", "codeop", "pdb",
    "bdb", "pickle", "_pickle", "marshal", "ctypes", "_ctypes", "multiprocessing",
    "asyncio", "signal", "_thread", "threading", "ssl", "http", "urllib", "urllib2",
    "httplib", "ftplib", "smtplib", "telnetlib", "xmlrpc", "requests", "aiohttp",
    "pydoc", "timeit", "profile", "cProfile", "trace", "doctest", "venv", "ensurepip",
    "pip", "setuptools", "distutils", "commands", "popen2", "platform", "tempfile",
    "glob", "io", "_io", "pathlib", "fileinput", "zipimport", "pkgutil", "site",
    "sysconfig", "inspect", "ast", "types", "gc", "mmap", "fcntl", "resource",
    "logging", "builtins.__import__", "__main__.__builtins__", "dill", "cloudpickle",
    "joblib.numpy_pickle_compat", "numpy.f2py", "numpy.distutils", "numpy.testing",
    "numpy.ctypeslib", "torch.hub", "torch.utils.cpp_extension", "torch._inductor",
    "torch._dynamo", "torch.fx", "torch.serialization", "torch.jit",
    "torch.utils.collect_env", "torch.utils.bottleneck", "torch.utils._config_module",
    "torch.utils.data.datapipes", "sklearn.datasets", "sklearn.utils._testing",
    "sklearn.externals", "idlelib", "lib2to3", "operator._operator",
}  # fmt: skip

# Single callables that are dangerous although their module is not.
_DANGEROUS_NAMES = {
    **{
        f"{m}.{n}": "runs or reaches arbitrary code"
        for m in ("builtins", "__builtin__", "__builtins__")
        for n in (
            "eval",
            "exec",
            "execfile",
            "compile",
            "open",
            "file",
            "getattr",
            "setattr",
            "delattr",
            "__import__",
            "globals",
            "locals",
            "vars",
            "input",
            "breakpoint",
            "help",
            "apply",
            "reload",
            "memoryview",
            "type",
            "super",
            "classmethod",
            "staticmethod",
            "property",
            "dir",
            "exit",
            "quit",
            "print",
        )
    },
    "operator.attrgetter": "reaches any attribute (e.g. os.system) by name",
    "operator.methodcaller": "calls any method by name",
    "operator.itemgetter": "used with attrgetter chains to reach any attribute",
    "operator.call": "calls anything",
    "functools.partial": "binds arguments to any function (e.g. os.system)",
    "functools.reduce": "calls any function repeatedly",
    "_codecs.decode": "decodes hidden payloads (codecs-based tricks)",
    "codecs.decode": "decodes hidden payloads (codecs-based tricks)",
    "codecs.open": "opens files",
    "codecs.getdecoder": "decodes hidden payloads (codecs-based tricks)",
    "codecs.lookup": "decodes hidden payloads (codecs-based tricks)",
    "copyreg._reconstructor.__call__": "calls anything",
    "numpy.load": "loads another (possibly pickled) file",
    "numpy.lib.npyio.load": "loads another (possibly pickled) file",
    "numpy.fromfile": "reads any file",
    "numpy.core._ufunc_reconstruct": "imports any function the file names",
    "numpy._core._ufunc_reconstruct": "imports any function the file names",
    "pandas.read_pickle": "loads another pickle",
    "joblib.load": "loads another pickle",
    "torch.load": "loads another pickle",
    "torch.storage._load_from_bytes": "loads another pickle",
}

# Known-safe: data containers and the reconstructors the supported libraries pickle.
_SAFE_NAMES = {
    "builtins.set", "builtins.frozenset", "builtins.slice", "builtins.complex",
    "builtins.bytearray", "builtins.bytes", "builtins.object", "builtins.list",
    "builtins.dict", "builtins.tuple", "builtins.int", "builtins.float", "builtins.bool",
    "builtins.str", "builtins.range", "__builtin__.set", "__builtin__.frozenset",
    "__builtin__.slice", "__builtin__.complex", "__builtin__.object",
    "__builtin__.long", "__builtin__.unicode", "__builtin__.bytearray",
    "copy_reg._reconstructor", "copyreg._reconstructor", "copyreg.__newobj__",
    "copyreg.__newobj_ex__", "_codecs.encode", "collections.OrderedDict",
    "collections.defaultdict", "collections.Counter", "collections.deque",
    "datetime.datetime", "datetime.date", "datetime.timedelta", "decimal.Decimal",
    "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer", "numpy.ma.core._mareconstruct",
    "numpy.random.__RandomState_ctor", "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64",
    "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator",
    # A Generator (HistGradientBoosting* keep one; so does any model given
    # np.random.default_rng) pickles its bit generator's SeedSequence with Cython's
    # reconstructor: __pyx_unpickle_SeedSequence(cls, checksum, state) checks the
    # checksum, calls SeedSequence.__new__(cls) (a TypeError for any other class) and
    # assigns the typed fields (entropy, spawn key, pool): construction only, it calls
    # nothing the file names. The other bit generators numpy ships rebuild from their
    # state dict the same way as MT19937 and PCG64.
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.random.bit_generator.SeedSequence", "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64",
    "joblib.numpy_pickle.NumpyArrayWrapper", "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csc.csc_matrix", "scipy.sparse._coo.coo_matrix",
    "scipy.sparse._csr.csr_array", "scipy.sparse._csc.csc_array",
    "scipy.sparse._coo.coo_array", "scipy.sparse.csr.csr_matrix",
    "scipy.sparse.csc.csc_matrix", "scipy.sparse.coo.coo_matrix",
    "scipy.sparse._dia.dia_matrix", "scipy.sparse._lil.lil_matrix",
    "scipy.sparse._dok.dok_matrix", "scipy.sparse._bsr.bsr_matrix",
    "pandas.core.indexes.base._new_Index", "pandas._libs.internals._unpickle_block",
    "pandas.core.internals.blocks.new_block", "pandas._libs.tslibs.timestamps._unpickle_timestamp",
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle", "pandas._libs.internals.BlockPlacement",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._tensor._rebuild_from_type_v2", "torch.storage.UntypedStorage",
    "torch.device", "torch.Size", "torch.nn.parameter.Parameter",
    "torch.nn.parameter.Buffer", "torch.return_types.max",
}  # fmt: skip
_NUMPY_SCALARS = {
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "str_",
    "bytes_", "object_", "datetime64", "timedelta64", "intc", "uintc", "longlong",
    "ulonglong", "half", "single", "double", "void",
}  # fmt: skip
_TORCH_DTYPES = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
    "uint8", "bool", "complex64", "complex128", "float", "double", "half", "long", "int",
}  # fmt: skip
# Classes (CamelCase names) of these packages are safe to rebuild: their pickled state
# is data, and their modules hold no command/file helpers (the few that do are listed
# in _DANGEROUS_MODULES, which wins).
_SAFE_CLASS_PACKAGES = (
    "sklearn.", "xgboost.", "lightgbm.", "torch.nn.modules.", "pandas.core.", "pandas._libs.",
    "numpy.dtypes.", "scipy.sparse.", "imblearn.", "catboost.",
)  # fmt: skip
_CLASS_NAME = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
_TORCH_STORAGE = re.compile(r"^torch\.[A-Za-z0-9]*Storage$")


def py3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a protocol 0-2 reference (``copy_reg`` -> ``copyreg``), as
    :class:`pickle.Unpickler` maps it before importing."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def classify(ref: str) -> tuple[str, str]:
    """(verdict, reason) for one ``module.name`` a pickle imports."""
    if not ref.startswith("?"):
        mod, _, nm = ref.rpartition(".")
        ref = ".".join(p for p in py3_name(mod, nm) if p) if mod else ref
    if ref.startswith("?"):
        return DANGEROUS, "an import whose name is computed while loading (hides what it calls)"
    if ref in _DANGEROUS_NAMES:
        return DANGEROUS, _DANGEROUS_NAMES[ref]
    module, _, name = ref.rpartition(".")
    parts = ref.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in _DANGEROUS_MODULES:
            return DANGEROUS, f"module {'.'.join(parts[:i])} runs commands, code or I/O"
    dunder = any(p.startswith("__") and p.endswith("__") and p != "__main__" for p in parts[1:])
    if dunder and ref not in _SAFE_NAMES:
        return DANGEROUS, "reaches a dunder attribute (a common sandbox escape)"
    if ref in _SAFE_NAMES or _TORCH_STORAGE.match(ref):
        return SAFE, ""
    if (module == "torch" and name in _TORCH_DTYPES) or (
        module == "numpy" and name in _NUMPY_SCALARS
    ):
        return SAFE, ""
    in_package = bool(module) and (module + ".").startswith(_SAFE_CLASS_PACKAGES)
    if in_package and _CLASS_NAME.match(name) and not {"tests", "testing"} & set(parts):
        return SAFE, ""
    return UNKNOWN, "not a class ModelShip knows from the supported libraries"


# ---------------------------------------------------------------------------
# the opcode walk
# ---------------------------------------------------------------------------
_STRING_OPS = {
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
    "BINSTRING", "STRING",
}  # fmt: skip


class _Unknown:
    """A stack value the scan does not track (anything but a string)."""


class _Global:
    """A global pushed on the stack (so calls of it can be recognised)."""

    def __init__(self, ref: str) -> None:
        self.ref = ref


_UNK = _Unknown()
_MARK = object()
_ARRAY_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_WRAPPER_OBJ = object()  # an instance of joblib's array wrapper: raw array bytes follow it


@dataclass
class StreamScan:
    """What one pickle byte stream refers to."""

    imports: list[str] = field(default_factory=list)
    complete: bool = False  # reached STOP of at least the first pickle
    stopped_at: int | None = None  # byte offset where the walk had to stop (joblib arrays)
    streams: int = 0


def scan_stream(data: bytes, *, multiple: bool = True) -> StreamScan:
    """Every global the pickle(s) in ``data`` would import, in order, without loading them."""
    out = StreamScan()
    buf = io.BytesIO(data)
    seen: dict[str, None] = {}
    while True:
        start = buf.tell()
        if start >= len(data):
            break
        try:
            done = _walk_one(buf, seen)
        except _ArrayBytesFollow:
            out.stopped_at = buf.tell()
            break
        except Exception:
            done = False
        if not done:
            if out.stopped_at is None:
                out.stopped_at = buf.tell()
            break
        out.streams += 1
        out.complete = True
        if not multiple:
            break
        # another pickle may follow (picklescan does the same); padding/garbage ends it
        nxt = data[buf.tell() : buf.tell() + 1]
        if not nxt or nxt not in _START_BYTES:
            break
    out.imports = list(seen)
    return out


# bytes a pickle stream can begin with (protocol 2+ starts with PROTO; 0/1 with any op)
_START_BYTES = {b"\x80", b"c", b"(", b"]", b"}", b")", b"N", b"I", b"S", b"V", b"F", b"l", b"d"}


class _ArrayBytesFollow(Exception):
    """joblib writes an array's raw bytes right after its wrapper's BUILD."""


def _walk_one(buf: io.BytesIO, seen: dict[str, None]) -> bool:
    """Simulate one pickle's stack and memo up to STOP; True when STOP was reached.

    Raises _ArrayBytesFollow at a joblib array wrapper's BUILD: what follows is array
    data, not opcodes, and only joblib's reader knows its length.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    for op, arg, _pos in pickletools.genops(buf):
        name = op.name
        if name in _STRING_OPS:
            stack.append(str(arg))
            continue
        if name in ("GLOBAL", "INST"):
            ref = str(arg).replace(" ", ".")
            seen.setdefault(ref, None)
            if name == "INST":
                _pop_mark(stack)
            stack.append(_Global(ref))
            continue
        if name == "STACK_GLOBAL":
            qual = stack.pop() if stack else _UNK
            mod = stack.pop() if stack else _UNK
            if isinstance(mod, str) and isinstance(qual, str):
                ref = f"{mod}.{qual}"
            else:
                ref = "?.computed_at_load_time"
            seen.setdefault(ref, None)
            stack.append(_Global(ref))
            continue
        if name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX"):
            for _ in range(2 if name != "NEWOBJ_EX" else 3):
                callee = stack.pop() if stack else _UNK
            made = isinstance(callee, _Global) and callee.ref == _ARRAY_WRAPPER
            stack.append(_WRAPPER_OBJ if made else _UNK)
            continue
        if name == "BUILD":
            if stack:
                stack.pop()
            if stack and stack[-1] is _WRAPPER_OBJ:
                raise _ArrayBytesFollow
            continue
        if name in ("EXT1", "EXT2", "EXT4"):
            seen.setdefault(f"?.copyreg_extension_{arg}", None)
            stack.append(_UNK)
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else _UNK
            continue
        if name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1] if stack else _UNK
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(int(arg), _UNK))
            continue
        if name == "MARK":
            stack.append(_MARK)
            continue
        if name == "STOP":
            return True
        if name in ("PROTO", "FRAME"):
            continue
        if name == "DUP":
            stack.append(stack[-1] if stack else _UNK)
            continue
        # generic: pop what the opcode consumes (to the mark, if it uses one), push results
        before = op.stack_before
        if pickletools.markobject in before:
            idx = before.index(pickletools.markobject)
            _pop_mark(stack)
            for _ in range(idx):
                if stack:
                    stack.pop()
        else:
            for _ in range(len(before)):
                if stack:
                    stack.pop()
        for _ in op.stack_after:
            stack.append(_UNK)
    return False


def _pop_mark(stack: list[Any]) -> None:
    while stack:
        if stack.pop() is _MARK:
            return


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------
@dataclass
class Verdict:
    """The safety decision for one model file."""

    verdict: str  # "safe" | "unknown" | "dangerous"
    dangerous: dict[str, str] = field(default_factory=dict)  # ref -> why
    unknown: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "dangerous": dict(self.dangerous),
            "unknown": list(self.unknown),
        }

    def summary(self) -> str:
        """One line in plain words."""
        if self.verdict == DANGEROUS:
            return "DANGEROUS: loading it would call " + _names(list(self.dangerous)) + "."
        if self.verdict == UNKNOWN:
            return (
                "Unknown code: loading it would import " + _names(self.unknown) + ", which "
                "ModelShip does not know to be safe."
            )
        return "Safe to load: it refers only to known model classes and data."


def _names(refs: list[str], limit: int = 6) -> str:
    shown = ", ".join(refs[:limit])
    return shown + (f" (+{len(refs) - limit} more)" if len(refs) > limit else "")


def judge(imports: list[str]) -> Verdict:
    """Classify every reference; the worst class is the file's verdict."""
    dangerous: dict[str, str] = {}
    unknown: list[str] = []
    for ref in imports:
        kind, why = classify(ref)
        if kind == DANGEROUS:
            dangerous[ref] = why
        elif kind == UNKNOWN:
            unknown.append(ref)
    verdict = DANGEROUS if dangerous else UNKNOWN if unknown else SAFE
    return Verdict(verdict, dangerous, unknown, list(imports))


class UntrustedModelError(ModelError):
    """A pickle names dangerous or unknown code and the user has not said they trust it.

    Exit code 3 (a model that cannot be loaded), like every ModelError.
    """

    def __init__(self, message: str, hint: str, verdict: Verdict) -> None:
        super().__init__(message, hint)
        self.verdict = verdict


def require_trust(name: str, verdict: Verdict | None, trust: bool) -> None:
    """Refuse to load a file whose verdict is not ``safe`` unless ``trust`` is given."""
    if verdict is None or verdict.verdict == SAFE or trust:
        return
    if verdict.verdict == DANGEROUS:
        raise UntrustedModelError(
            f"{name} is not loaded: loading it would call {_names(list(verdict.dangerous))}, "
            "which can run commands on this computer.",
            "Do not use this file unless you made it yourself; if you did and trust it, run "
            "again with --trust (in the wizard: tick 'I trust this file').",
            verdict,
        )
    raise UntrustedModelError(
        f"{name} is not loaded: it refers to code ModelShip does not know "
        f"({_names(verdict.unknown)}), and loading a pickle runs that code.",
        "If you made this file or trust where it came from, run again with --trust "
        "(in the wizard: tick 'I trust this file').",
        verdict,
    )
