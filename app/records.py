"""Deployment records: what is deployed where, saved for status, teardown and rollback.

One JSON file per deployment name in ``app.paths.deployments_dir()``. A record keeps
the profile it was made from, the live endpoint and its resources, and the history of
versions (converted model files, image) so ``rollback`` can go back one. No secrets:
the endpoint's headers never hold an API key.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.errors import UsageError
from app.paths import deployments_dir
from targets.base import Endpoint, Resource

RECORD_SCHEMA = 1


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ModelVersion:
    """One deployed version: the converted model (and image) a rollback can go back to.

    ``resources`` are per-version things (the model files folder, an image) that stay
    until the version is pruned or the deployment torn down.
    """

    version: int
    model_path: str  # the converted model.onnx (signature and proof next to it)
    source_model: str  # the file the user gave
    model_sha256: str | None = None
    image: dict[str, Any] | None = None  # tag, id, size, labels (targets with images)
    resources: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=now_iso)
    conversion: str = ""  # the conversion report's summary, in words
    # Hash of the source model, sample CSV, conversion options and ModelShip version:
    # a redeploy with the same key reuses this version's converted files and proof.
    conversion_key: str | None = None
    smoke: dict[str, Any] | None = None

    @property
    def proof_path(self) -> Path:
        p = Path(self.model_path)
        return p.with_name(p.stem + ".proof.json")

    def resource_objects(self) -> list[Resource]:
        return [Resource.from_dict(r) for r in self.resources]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class DeploymentRecord:
    name: str
    target: str
    profile: dict[str, Any]  # the profile as saved (Profile.to_dict())
    profile_path: str | None = None
    endpoint: dict[str, Any] | None = None  # Endpoint.to_dict() of the live deployment
    versions: list[dict[str, Any]] = field(default_factory=list)  # ModelVersion dicts
    current_version: int = 0
    state: str = "running"  # running | failed | stopped
    smoke: dict[str, Any] | None = None  # last SmokeReport.to_dict()
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    message: str = ""  # last thing that happened, in words
    schema: int = RECORD_SCHEMA

    # ---- views ------------------------------------------------------------------------
    @property
    def url(self) -> str | None:
        return self.endpoint.get("url") if self.endpoint else None

    def endpoint_obj(self) -> Endpoint | None:
        return Endpoint.from_dict(self.endpoint) if self.endpoint else None

    def resources(self) -> list[Resource]:
        """The live deployment's resources (process, container...)."""
        ep = self.endpoint_obj()
        return list(ep.resources) if ep else []

    def version_objects(self) -> list[ModelVersion]:
        return [ModelVersion.from_dict(v) for v in self.versions]

    def version(self, number: int | None = None) -> ModelVersion | None:
        number = self.current_version if number is None else number
        for v in self.version_objects():
            if v.version == number:
                return v
        return None

    def all_resources(self) -> list[Resource]:
        """Live resources and every kept version's (files, images), without repeats."""
        seen: set[tuple[str, str]] = set()
        out = []
        for r in [
            *self.resources(),
            *(r for v in self.version_objects() for r in v.resource_objects()),
        ]:
            if (r.kind, r.id) not in seen:
                seen.add((r.kind, r.id))
                out.append(r)
        return out

    def previous_version(self) -> ModelVersion | None:
        """The version before the current one (what ``rollback`` goes back to)."""
        older = [v for v in self.version_objects() if v.version < self.current_version]
        return max(older, key=lambda v: v.version) if older else None

    def next_version_number(self) -> int:
        return max((v.version for v in self.version_objects()), default=0) + 1

    # ---- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeploymentRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


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
