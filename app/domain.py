"""The plain types that flow between the pipeline, the targets and the record store.

This module imports nothing else of the project, so that every layer can use it: the
targets' protocol (``targets.base``), the record store (``app.store.records``), the journal
and the pipeline (``app.run``) all speak these types, and none of them has to import
another to do so (the cycle ``targets.base`` <-> ``app.store.records`` is gone).

Nothing here holds a secret: a :data:`SecretRef` is the *name* of a keyring entry.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

# ---- secrets ---------------------------------------------------------------------------

# The name of a keyring entry (never the secret itself). The wizard shows such fields
# as "stored in your keyring" with a button to set the value.
SECRET_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$"
SecretRef = Annotated[
    str,
    Field(
        pattern=SECRET_REF_PATTERN,
        json_schema_extra={"secret_ref": True},
        description="Name of a keyring entry that holds the secret (not the secret itself).",
    ),
]

# ---- vocabulary ------------------------------------------------------------------------

Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
# What a target runs: the converted model files (served by a local process) or an image.
Ships = Literal["files", "image"]
# How a target replaces a running deployment of the same name:
# - stop_old_first: the new one needs what the old one holds (a port): stop the old one,
#   start the new one, and start the old one again if the new one fails;
# - side_by_side: start the new one next to the old one, then retire the old one;
# - platform: the platform swaps (SageMaker UpdateEndpoint, a Heroku release).
Replacement = Literal["stop_old_first", "side_by_side", "platform"]
# How an endpoint is called: no credentials, a bearer key, or AWS SigV4.
EndpointAuth = Literal["none", "bearer", "sigv4"]
RecordState = Literal["running", "failed", "stopped", "removed"]
JournalOutcome = Literal["deployed", "rolled_back", "kept", "torn_down"]

# Resource kinds the pipeline owns itself (every other kind belongs to the target that
# journaled it): the converted model files, a locally built image, a pushed image.
PIPELINE_KINDS = frozenset({"files", "image", "pushed_image"})


# ---- resources and endpoints -----------------------------------------------------------


@dataclass
class Resource:
    """An external thing a deployment created, as journaled and recorded.

    ``kind`` is the target's own word ("process", "container", "server", ...) or one of
    :data:`PIPELINE_KINDS`. ``data`` holds what is needed to find and remove it again
    (pid, port, labels, cloud ids...): never a secret.
    """

    kind: str
    id: str
    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Resource:
        return cls(
            kind=d["kind"], id=d["id"], name=d.get("name", ""), data=dict(d.get("data") or {})
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.id)

    def describe(self) -> str:
        """Plain words for messages: the name when it says what it is, else kind + id."""
        kind_words = {self.kind, *self.kind.split("_"), self.kind.replace("_", " ")}
        if self.name and self.name.split()[0].lower() in kind_words:
            return self.name
        return f"{self.kind.replace('_', ' ')} {self.name or self.id}"


@dataclass
class Endpoint:
    """Where a deployment answers, and how to call it.

    ``headers`` are sent with every request and never hold a secret (an API key is
    added by the target's client from the keyring). ``tls_sha256`` pins the server's
    certificate (a VM's self-made one) by its SHA-256 fingerprint. ``data`` carries what
    a target's client needs beyond the URL (a SageMaker endpoint name and region).
    """

    url: str
    target: str
    resources: list[Resource] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    auth: EndpointAuth = "none"
    tls_sha256: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "target": self.target,
            "resources": [r.to_dict() for r in self.resources],
            "headers": dict(self.headers),
            "auth": self.auth,
            "tls_sha256": self.tls_sha256,
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Endpoint:
        return cls(
            url=d["url"],
            target=d["target"],
            resources=[Resource.from_dict(r) for r in d.get("resources", [])],
            headers=dict(d.get("headers") or {}),
            auth=d.get("auth") or "none",
            tls_sha256=d.get("tls_sha256"),
            data=dict(d.get("data") or {}),
        )


# ---- what the pipeline makes -----------------------------------------------------------


@dataclass
class ConvertedModel:
    """A converted, proven model on disk: ``model.onnx`` with its signature and proof.

    One shape for a fresh conversion, a reused one and a rollback's: the signature and
    proof files sit next to the ONNX file. ``summary`` is the proof in words;
    ``conversion_key`` says what produced it (same key, same files).
    """

    onnx_path: Path
    summary: str = ""
    conversion_key: str | None = None
    quantized: bool = False

    def __post_init__(self) -> None:
        self.onnx_path = Path(self.onnx_path)

    @property
    def signature_path(self) -> Path:
        return self.onnx_path.with_name(self.onnx_path.stem + ".signature.json")

    @property
    def proof_path(self) -> Path:
        return self.onnx_path.with_name(self.onnx_path.stem + ".proof.json")

    def files(self) -> list[Path]:
        return [self.onnx_path, self.signature_path, self.proof_path]

    def complete(self) -> bool:
        return all(p.is_file() for p in self.files())


@dataclass
class BuiltImage:
    """An image built on the local Engine: what later steps need to run, push or remove it."""

    tag: str
    id: str
    size: int  # bytes, as the Engine reports it
    labels: dict[str, str] = field(default_factory=dict)
    platform: Platform = "linux/amd64"
    base_size: int | None = None  # the base image's size, when known
    cached_steps: int = 0  # build steps served from the layer cache
    total_steps: int = 0

    @property
    def size_over_base(self) -> int | None:
        return None if self.base_size is None else self.size - self.base_size

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuiltImage:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "id": self.id,
            "size": self.size,
            "platform": self.platform,
            "base_size": self.base_size,
            "size_over_base": self.size_over_base,
            "labels": self.labels,
            "cached_steps": self.cached_steps,
            "total_steps": self.total_steps,
        }


@dataclass
class PushedImage:
    """An image in a registry, addressed by digest (what a remote platform runs).

    ``digest`` is the manifest digest; ``config_digest`` the image's config (Heroku
    releases by it). ``bytes_pushed`` counts the layer bytes this push uploaded.
    """

    repository: str  # registry host + path, e.g. 127.0.0.1:5000/modelship/iris
    tag: str
    digest: str
    platform: Platform = "linux/amd64"
    config_digest: str | None = None
    bytes_pushed: int | None = None

    @property
    def ref(self) -> str:
        """``repository@digest``: immutable, what platforms should run."""
        return f"{self.repository}@{self.digest}"

    @property
    def tagged(self) -> str:
        return f"{self.repository}:{self.tag}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PushedImage:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


# ---- deployment records (the store itself is app.store.records) -------------------------------

RECORD_SCHEMA = 2  # 2: every version says which target ran it and with which profile


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ModelVersion:
    """One deployed version: the converted model (and image) a rollback can go back to.

    ``target`` and ``profile`` say where and how this version ran, so a rollback across
    targets (local -> docker -> back) deploys it where it ran. ``resources`` are
    per-version things (the model files folder, an image, a pushed image) that stay
    until the version is pruned or the deployment torn down.
    """

    version: int
    model_path: str  # the converted model.onnx (signature and proof next to it)
    source_model: str  # the file the user gave
    target: str | None = None  # None only in records written before schema 2
    profile: dict[str, Any] | None = None  # the profile this version was deployed with
    model_sha256: str | None = None
    image: dict[str, Any] | None = None  # BuiltImage.to_dict() (image targets)
    pushed: dict[str, Any] | None = None  # PushedImage.to_dict() (targets with a registry)
    resources: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=now_iso)
    conversion: str = ""  # the conversion report's summary, in words
    # Hash of the source model, sample CSV, conversion options and ModelShip version:
    # a redeploy with the same key reuses this version's converted files and proof.
    conversion_key: str | None = None
    smoke: dict[str, Any] | None = None

    @property
    def proof_path(self) -> Path:
        return self.converted().proof_path

    def converted(self) -> ConvertedModel:
        return ConvertedModel(
            Path(self.model_path), summary=self.conversion, conversion_key=self.conversion_key
        )

    def image_obj(self) -> BuiltImage | None:
        return BuiltImage.from_dict(self.image) if self.image else None

    def pushed_obj(self) -> PushedImage | None:
        return PushedImage.from_dict(self.pushed) if self.pushed else None

    def resource_objects(self) -> list[Resource]:
        return [Resource.from_dict(r) for r in self.resources]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class DeploymentRecord:
    """What is deployed under one name: the live endpoint and the kept versions.

    ``target`` is where the *current* version runs; each version names its own. No
    secrets: the endpoint's headers never hold an API key.
    """

    name: str
    target: str
    profile: dict[str, Any]  # the current version's profile (Profile.to_dict())
    profile_path: str | None = None
    endpoint: dict[str, Any] | None = None  # Endpoint.to_dict() of the live deployment
    versions: list[dict[str, Any]] = field(default_factory=list)  # ModelVersion dicts
    current_version: int = 0
    state: RecordState = "running"
    smoke: dict[str, Any] | None = None  # last SmokeReport.to_dict()
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    message: str = ""  # last thing that happened, in words
    schema: int = RECORD_SCHEMA
    # Set when the deployment was torn down: the record is then history (kept apart
    # from live records by ``app.store.records``), its versions and their dates kept.
    removed_at: str | None = None
    stopped_at: str | None = None  # set while the owner has stopped it (Stop/Start)

    # ---- views ------------------------------------------------------------------------
    @property
    def url(self) -> str | None:
        return self.endpoint.get("url") if self.endpoint else None

    def endpoint_obj(self) -> Endpoint | None:
        return Endpoint.from_dict(self.endpoint) if self.endpoint else None

    def resources(self) -> list[Resource]:
        """The live deployment's resources (process, container, server...)."""
        ep = self.endpoint_obj()
        return list(ep.resources) if ep else []

    def version_objects(self) -> list[ModelVersion]:
        out = [ModelVersion.from_dict(v) for v in self.versions]
        for v in out:  # schema 1: every version ran on the record's target
            v.target = v.target or self.target
        return out

    def version(self, number: int | None = None) -> ModelVersion | None:
        number = self.current_version if number is None else number
        for v in self.version_objects():
            if v.version == number:
                return v
        return None

    def all_resources(self, target: str | None = None) -> list[Resource]:
        """Live resources and every kept version's, without repeats; with ``target``,
        only those of versions that ran there (the live ones belong to ``self.target``)."""
        seen: set[tuple[str, str]] = set()
        out = []
        live = self.resources() if target in (None, self.target) else []
        versions = [v for v in self.version_objects() if target in (None, v.target)]
        for r in [*live, *(r for v in versions for r in v.resource_objects())]:
            if r.key not in seen:
                seen.add(r.key)
                out.append(r)
        return out

    def targets_used(self) -> list[str]:
        """Every target this deployment has resources on (current first)."""
        out = [self.target]
        for v in self.version_objects():
            if v.target and v.target not in out:
                out.append(v.target)
        return out

    def previous_version(self) -> ModelVersion | None:
        """The version before the current one (what ``rollback`` goes back to)."""
        older = [v for v in self.version_objects() if v.version < self.current_version]
        return max(older, key=lambda v: v.version) if older else None

    def next_version_number(self) -> int:
        return max((v.version for v in self.version_objects()), default=0) + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeploymentRecord:
        known = set(cls.__dataclass_fields__)
        record = cls(**{k: v for k, v in d.items() if k in known})
        record.schema = RECORD_SCHEMA
        return record


__all__ = [
    "PIPELINE_KINDS",
    "PLATFORMS",
    "RECORD_SCHEMA",
    "SECRET_REF_PATTERN",
    "BuiltImage",
    "ConvertedModel",
    "DeploymentRecord",
    "Endpoint",
    "EndpointAuth",
    "JournalOutcome",
    "ModelVersion",
    "Platform",
    "PushedImage",
    "RecordState",
    "Replacement",
    "Resource",
    "SecretRef",
    "Ships",
    "now_iso",
]
