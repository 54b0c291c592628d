"""Which format a model file holds, by its bytes (magic numbers, zip structure,
protobuf, text headers), and the reader for that format."""

from __future__ import annotations

import io
import pickletools
from pathlib import Path

from app.errors import ModelError, UnsupportedModelError
from app.model.files import mapped_model, max_model_bytes
from app.model.intake.artifact import _NOT_MODEL_HINT, ModelArtifact
from app.model.intake.boosters import _inspect_catboost, _inspect_lightgbm, _inspect_xgboost
from app.model.intake.onnxfile import _try_onnx
from app.model.intake.pickles import _inspect_pickle
from app.model.intake.torchfiles import _inspect_zip
from app.model.picklescan import scan_stream
from app.nextstep import raise_size_limit, say


def _inspect_file(p: Path) -> ModelArtifact:
    # regular files only, up to the size limit, mapped rather than read (app/model/files.py):
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
                    say(
                        "Check that this is the model file. If it is, raise the limit, e.g. ",
                        raise_size_limit(),
                        ".",
                    ),
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
