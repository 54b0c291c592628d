"""A corpus of hostile model files, built here (never committed): each, if loaded, makes
a directory at ``marker``. The tests prove that nothing loads them without trust.

Built the way an attacker would: a real scikit-learn model with a payload hidden
inside (a Pipeline step's function, a ColumnTransformer's transformer, an object
array), every pickle protocol, joblib with and without compression, a torch.save
archive, and hand-written opcode streams for the tricks a pickler never emits on its
own (getattr chains, names fetched back from the memo, names computed at load time).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np


class Payload:
    """Unpickling this calls os.mkdir(marker): the stand-in for any command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    return x, (x[:, 0] > 0).astype(int)


def pipeline_with_payload(marker: str) -> object:
    """A fitted Pipeline whose FunctionTransformer's function is the payload."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = _data()
    model = Pipeline([("f", FunctionTransformer()), ("lr", LogisticRegression())]).fit(x, y)
    model.steps[0][1].func = Payload(marker)
    return model


def column_transformer_with_payload(marker: str) -> object:
    """A ColumnTransformer-in-Pipeline with the payload deep in a fitted transformer."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _data()
    ct = ColumnTransformer([("num", StandardScaler(), [0, 1, 2])])
    model = Pipeline([("prep", ct), ("lr", LogisticRegression())]).fit(x, y)
    model.steps[0][1].transformers_[0][1].hidden = {"deep": [Payload(marker)]}
    return model


def object_array_with_payload(marker: str) -> object:
    """The payload inside an object array (joblib pickles those in a nested stream)."""
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    model = LogisticRegression().fit(x, y)
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = "a", Payload(marker)
    model.extra_ = arr
    return model


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw  # BINUNICODE


def _su(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def getattr_chain(marker: str) -> bytes:
    """getattr(__import__('os'), 'mkdir')(marker), written as opcodes."""
    return (
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n("
        + _u("os")
        + b"tR"
        + _u("mkdir")
        + b"tR("
        + _u(marker)
        + b"tR."
    )


def memo_stack_global(marker: str) -> bytes:
    """STACK_GLOBAL whose names come back from the memo, after a decoy memo entry."""
    return (
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"  # FRAME (length unchecked by the VM)
        + _su("numpy")
        + b"\x94"  # memo 0 = "numpy" (a decoy)
        + _su("posix")
        + b"q\x00"  # BINPUT 0: memo 0 is now "posix"
        + _su("mkdir")
        + b"\x94"  # memo 1 = "mkdir"
        + b"00"  # POP, POP: nothing left on the stack that names them
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL -> posix.mkdir
        + _su(marker)
        + b"\x85R."  # TUPLE1, REDUCE, STOP
    )


def computed_stack_global(marker: str) -> bytes:
    """STACK_GLOBAL whose module name is computed at load time (str('posix'))."""
    return (
        b"\x80\x04cbuiltins\nstr\n("
        + _su("posix")
        + b"tR"
        + _su("mkdir")
        + b"\x93"
        + _su(marker)
        + b"\x85R."
    )


def attrgetter_chain(marker: str) -> bytes:
    """operator.attrgetter('mkdir')(posix-module-from-__import__)(marker)."""
    return (
        b"\x80\x02coperator\nattrgetter\n("
        + _u("mkdir")
        + b"tR(cbuiltins\n__import__\n("
        + _u("os")
        + b"tRtR("
        + _u(marker)
        + b"tR."
    )


def partial_payload(marker: str) -> bytes:
    """functools.partial(os.mkdir, marker)() via REDUCE on the partial."""
    return pickle.dumps(_PartialCall(marker), protocol=2)


class _PartialCall:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        import functools

        return (functools.partial(os.mkdir, self.marker), ())


def torch_module_with_payload(marker: str, path: Path) -> Path:
    """torch.save of a real module carrying the payload as an attribute."""
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    net.hidden = Payload(marker)
    torch.save(net, path)
    return path


def build(directory: Path, marker: Path) -> dict[str, Path]:
    """Every hostile file, by case name."""
    import joblib

    m = str(marker)
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = directory / name
        out[name].write_bytes(data)

    put("top-level.pkl", pickle.dumps(Payload(m), protocol=4))
    for proto in range(6):
        put(f"pipeline-p{proto}.pkl", pickle.dumps(pipeline_with_payload(m), protocol=proto))
    put("column-transformer.pkl", pickle.dumps(column_transformer_with_payload(m), protocol=4))
    for name, make in (
        ("pipeline", pipeline_with_payload),
        ("column-transformer", column_transformer_with_payload),
        ("object-array", object_array_with_payload),
    ):
        for compress in (0, 3):
            path = directory / f"{name}-z{compress}.joblib"
            joblib.dump(make(m), path, compress=compress)
            out[path.name] = path
    makers: dict[str, Callable[[str], bytes]] = {
        "getattr-chain.pkl": getattr_chain,
        "memo-stack-global.pkl": memo_stack_global,
        "computed-stack-global.pkl": computed_stack_global,
        "attrgetter-chain.pkl": attrgetter_chain,
        "partial.pkl": partial_payload,
    }
    for name, make in makers.items():
        put(name, make(m))
    out["torch-module.pt"] = torch_module_with_payload(m, directory / "torch-module.pt")
    return out
