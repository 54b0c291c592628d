"""Content hashes of files: model identity in signatures, labels, records and manifests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from app.model.files import check_regular, max_model_bytes, open_regular


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (models can be large).

    A folder (an MLflow model directory) hashes every file under it, with its relative
    path, in a fixed order: changing, adding or removing any file changes the hash.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            rel = f.relative_to(p).as_posix().encode("utf-8")
            h.update(len(rel).to_bytes(4, "big") + rel)
            h.update(bytes.fromhex(sha256_file(f)))
        return h.hexdigest()
    # regular files only (a FIFO would block, a device never ends), no larger than a model
    # may be (app/model/files.py): nothing is hashed that would then be refused anyway
    p.stat()  # a missing or unreadable file: OSError, as callers expect
    check_regular(p, max_model_bytes())
    with os.fdopen(open_regular(p), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
