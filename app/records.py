"""Deployment records: what is deployed where, saved for status, teardown and rollback.

One JSON file per deployment name in ``app.paths.deployments_dir()``. The record types
(:class:`DeploymentRecord`, :class:`ModelVersion`) are plain data in ``app.domain``;
this module only reads and writes them. Only the pipeline (``app.run``) and the
commands use the store: targets get the records they need passed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.domain import RECORD_SCHEMA, DeploymentRecord, ModelVersion, now_iso
from app.errors import UsageError
from app.paths import deployments_dir


def record_path(name: str) -> Path:
    return deployments_dir() / f"{name}.json"


def save_record(record: DeploymentRecord) -> Path:
    """Write atomically (a crash never leaves half a record)."""
    record.updated = now_iso()
    path = record_path(record.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def find_record(name: str) -> DeploymentRecord | None:
    path = record_path(name)
    if not path.exists():
        return None
    try:
        return DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise UsageError(
            f"The record of deployment {name!r} is damaged ({exc}).",
            f"Remove {path} after checking what still runs.",
        ) from None


def load_record(name: str) -> DeploymentRecord:
    record = find_record(name)
    if record is None:
        names = [r.name for r in list_records()]
        known = f" Known: {', '.join(names)}." if names else " There are no deployments."
        raise UsageError(
            f"No deployment named {name!r}.{known}", "See `modelship status` for what runs."
        )
    return record


def list_records() -> list[DeploymentRecord]:
    out = []
    for path in sorted(deployments_dir().glob("*.json")):
        try:
            out.append(DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, TypeError, KeyError, OSError):
            continue
    return out


def delete_record(name: str) -> bool:
    path = record_path(name)
    if path.exists():
        path.unlink()
        return True
    return False


__all__ = [
    "RECORD_SCHEMA",
    "DeploymentRecord",
    "ModelVersion",
    "delete_record",
    "find_record",
    "list_records",
    "load_record",
    "now_iso",
    "record_path",
    "save_record",
]
