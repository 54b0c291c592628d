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
  the first array and ``app.model.intake``'s restricted unpickler (which returns inert
  stand-ins for every global, see ``_SafeMixin``) lists the rest: it runs none of the
  code the file names, so it is part of the scan, not a load.
* Each global is recorded with its module and name kept apart (:func:`ref_of`):
  ``module.name``, or ``module:a.b`` for a dotted name, which protocol 4 resolves
  attribute by attribute (``sklearn.base:np.f2py.subprocess.Popen`` is a route out of
  ``sklearn.base``, not a name in it).
* :func:`classify` puts each global in one of three classes: ``safe`` only when that
  exact ``module:qualname`` (after the Python 2 name mapping) is on the list ModelShip
  ships as data (``safety_allowlist.json``: the classes and reconstructors that real
  fitted scikit-learn, XGBoost, LightGBM, CatBoost and PyTorch models and their
  numpy/scipy/pandas data pickle, collected by ``tests/security/allowlist_gen.py`` and
  reviewed by hand; no package prefix or naming rule); ``dangerous`` (modules and
  callables that run commands, evaluate code, open files or sockets, or reach any
  attribute: os, subprocess, builtins.eval, operator.attrgetter, pandas' expression
  engine, ..., and any dotted name not on the list); or ``unknown``.

The decision (:func:`require_trust`) refuses dangerous and unknown files unless the
user said they trust the file (``--trust``, or the wizard's confirmation). The
conversion worker then loads with an unpickler that admits exactly the (module, name)
pairs that were scanned and approved (:func:`approved_globals`), so a file swapped
after the scan, a global the scan missed, or a dotted name spelling a listed one, still
cannot import anything else; skops gets its own defaults plus the approved types.
"""

from __future__ import annotations

import io
import json
import pickletools
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from app.errors import ModelError
from app.model.modelfacts import py3_name
from app.nextstep import say, trust_model

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
    # pandas' expression engine evaluates while its objects are built (Expr, eval,
    # query), and pandas.io reads files and URLs
    "pandas.core.computation", "pandas.eval", "pandas.io",
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

# Known-safe: an exact list of ``module:qualname`` entries, shipped as data next to this
# module (safety_allowlist.json, generated from the supported libraries' own pickles by
# tests/security/allowlist_gen.py and reviewed by hand). No prefix and no naming rule:
# a name is safe only if it is listed exactly.
ALLOWLIST_FILE = "safety_allowlist.json"


def ref_of(module: str, name: str) -> str:
    """The reference string for a global: ``module.name``, or ``module:a.b`` when the
    name is dotted (protocol 4 walks a dotted name attribute by attribute, so
    ``sklearn.base:np.f2py`` is not ``sklearn.base.np:f2py``: the colon keeps the split)."""
    return f"{module}:{name}" if "." in name else f"{module}.{name}"


def split_ref(ref: str) -> tuple[str, str]:
    """(module, name) of a reference made by :func:`ref_of`."""
    if ":" in ref:
        module, _, name = ref.partition(":")
        return module, name
    module, _, name = ref.rpartition(".")
    return module, name


@cache
def allowlist() -> dict[tuple[str, str], str]:
    """(module, qualname) -> the source group it was listed under."""
    text = resources.files("app.model").joinpath(ALLOWLIST_FILE).read_text(encoding="utf-8")
    out: dict[tuple[str, str], str] = {}
    for group in json.loads(text)["groups"]:
        names = group["names"]
        for entry in names:  # a list, or {alias: canonical} for legacy module paths
            module, _, qualname = entry.partition(":")
            out[(module, qualname)] = group["source"]
    return out


def classify(ref: str) -> tuple[str, str]:
    """(verdict, reason) for one reference (:func:`ref_of`) a pickle imports."""
    if ref.startswith("?"):
        return DANGEROUS, "an import whose name is computed while loading (hides what it calls)"
    module, name = split_ref(ref)
    if module:
        module, name = py3_name(module, name)
    full = f"{module}.{name}" if module else name
    if full in _DANGEROUS_NAMES:
        return DANGEROUS, _DANGEROUS_NAMES[full]
    parts = full.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in _DANGEROUS_MODULES:
            return DANGEROUS, f"module {'.'.join(parts[:i])} runs commands, code or I/O"
    listed = (module, name) in allowlist()
    dunder = any(p.startswith("__") and p.endswith("__") and p != "__main__" for p in parts[1:])
    if dunder and not listed:
        return DANGEROUS, "reaches a dunder attribute (a common sandbox escape)"
    if listed:
        return SAFE, ""
    if "." in name:
        return DANGEROUS, (
            f"reaches {name} through the attributes of module {module} (a model file names "
            "each class by its own module)"
        )
    return UNKNOWN, "not on ModelShip's list of classes the supported libraries pickle"


def approved_globals(verdict: Verdict | None, trust: bool) -> list[str] | None:
    """The globals a loader may import: all scanned ones when the user trusts the file,
    otherwise only the listed safe ones (after :func:`require_trust`, that is all)."""
    if verdict is None:
        return None
    return [i for i in verdict.imports if trust or classify(i)[0] == SAFE]


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
            mod, _, qual = str(arg).partition(" ")
            ref = ref_of(mod, qual)
            seen.setdefault(ref, None)
            if name == "INST":
                _pop_mark(stack)
            stack.append(_Global(ref))
            continue
        if name == "STACK_GLOBAL":
            qual = stack.pop() if stack else _UNK
            mod = stack.pop() if stack else _UNK
            if isinstance(mod, str) and isinstance(qual, str):
                ref = ref_of(mod, qual)
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
            say(
                "Do not use this file unless you made it yourself; if you did and trust it, ",
                trust_model("run again with", form="hint"),
                ".",
            ),
            verdict,
        )
    raise UntrustedModelError(
        f"{name} is not loaded: it refers to code ModelShip does not know "
        f"({_names(verdict.unknown)}), and loading a pickle runs that code.",
        say(
            "If you made this file or trust where it came from, ",
            trust_model("run again with", form="hint"),
            ".",
        ),
        verdict,
    )
