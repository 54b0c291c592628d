"""The Target protocol: what every deployment target (local, docker, cloud...) implements.

A target is a small class registered by name in :data:`targets.REGISTRY`. The pipeline
(:mod:`app.pipeline`) drives it; the wizard reads its ``title``, ``summary`` and
``Settings`` to draw its page. Neither the CLI nor the wizard holds deployment logic.

Lifecycle, and who does what:

* ``check(profile)`` -- preflight. Returns the problems that would make the deploy fail
  (a missing tool, a port in use, a missing credential) each with the fix, so the user
  learns them before anything is created. ``[]`` means ready.
* ``plan(profile)`` -- what will be created, in words, shown before deploying.
* ``deploy(ctx)`` -- create what is needed and return the :class:`Endpoint`. Every
  external resource is written to ``ctx.journal`` **before** it is created
  (``ctx.journal.record(resource)``), and updated once its id is known
  (``ctx.journal.update(resource)``), so that a failure, a cancel or a crash can be
  rolled back and ``teardown`` finds it later. Check ``ctx.cancel`` between units of
  work.
* ``destroy(resource)`` -- remove one journaled resource; idempotent (already gone is
  fine). The pipeline calls it in reverse order to roll back.
* ``status(record)`` / ``teardown(record)`` -- later commands, from the saved record.
* Replacing a deployment in place (same name): when the target cannot run the new one
  next to the old (``side_by_side = False``, e.g. both want the same port), the
  pipeline calls ``suspend(old)`` before ``deploy`` and, if the new one fails,
  ``destroy`` on the new resources and ``resume(old)``. After the new one passed its
  smoke test it calls ``retire(old)``: remove what the old one ran but keep what a
  rollback needs (e.g. its image).

Secrets never go into settings: a :data:`SecretRef` field holds the *name* of a keyring
entry (see :mod:`app.secrets`); the value is read at deploy time and never logged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import pydantic
from pydantic import ConfigDict, Field

from app.progress import CancelToken, NullProgress, Progress

if TYPE_CHECKING:  # pragma: no cover - import cycles only matter for type checkers
    from app.journal import Journal
    from app.profile import Profile
    from app.records import DeploymentRecord

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


class TargetSettings(pydantic.BaseModel):
    """Base of every target's settings (``[target.settings]`` in a profile).

    ``extra="forbid"``: a misspelt setting is an error, not silently ignored. Field
    ``title``/``description`` drive the wizard's settings form.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class Problem:
    """A preflight finding: what is wrong and how to fix it, in plain words."""

    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


@dataclass
class PlanItem:
    """One line of a plan: ``create process modelship-iris on 127.0.0.1:8080``."""

    action: str  # "create" | "replace" | "reuse" | "remove"
    kind: str  # "process", "container", "image", "server", ...
    name: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.name}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class Resource:
    """An external thing a deployment created, as journaled and recorded.

    ``kind`` is the target's own word ("process", "container", "image", ...) except
    ``files``, which the pipeline owns (a folder of converted model files). ``data``
    holds what is needed to find and remove it again (pid, port, labels...): never a
    secret.
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

    def describe(self) -> str:
        """Plain words for messages: the name when it says what it is, else kind + id."""
        if self.name and self.name.split()[0].lower() in {self.kind, *self.kind.split("_")}:
            return self.name
        return f"{self.kind} {self.name or self.id}"


@dataclass
class Endpoint:
    """Where a deployment answers. ``headers`` are sent with every request (no secrets:
    an API key is added by the caller from the keyring)."""

    url: str
    target: str
    resources: list[Resource] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "target": self.target,
            "resources": [r.to_dict() for r in self.resources],
            "headers": dict(self.headers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Endpoint:
        return cls(
            url=d["url"],
            target=d["target"],
            resources=[Resource.from_dict(r) for r in d.get("resources", [])],
            headers=dict(d.get("headers") or {}),
        )


@dataclass
class TargetStatus:
    """What a target can tell about a deployment right now."""

    running: bool  # the process/container/server exists and runs
    detail: str = ""  # plain words: "process 1234 since 22:31", "container exited (1)"
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeployContext:
    """Everything ``Target.deploy`` gets.

    ``model_path`` is the converted ONNX file (its ``.signature.json`` and
    ``.proof.json`` sit next to it) in the deployment's version folder, kept until
    teardown. ``conversion`` is the :class:`app.convert.ConversionResult` when this run
    converted the model (None on a rollback, which reuses an earlier version).
    ``image`` is the built :class:`app.image.Image` for targets with ``needs_image``.
    ``previous`` is the record being replaced (same name), or None.
    """

    profile: Profile
    name: str
    model_path: Any  # pathlib.Path
    journal: Journal
    version: int = 1
    conversion: Any = None
    image: Any = None
    previous: DeploymentRecord | None = None
    progress: Progress = field(default_factory=NullProgress)
    cancel: CancelToken = field(default_factory=CancelToken)

    @property
    def settings(self) -> TargetSettings:
        return self.profile.target.settings


class Target(ABC):
    """Base class of every deployment target. Instances are cheap and stateless."""

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]  # one line: when to choose this target
    Settings: ClassVar[type[TargetSettings]]
    needs_image: ClassVar[bool] = False
    # False when a new deployment cannot run while the old one (same name) still runs.
    side_by_side: ClassVar[bool] = False

    @abstractmethod
    def check(self, profile: Profile) -> list[Problem]:
        """Preflight: what would make a deploy fail, each with its fix. [] = ready."""

    @abstractmethod
    def plan(self, profile: Profile) -> list[PlanItem]:
        """What a deploy would create, in words."""

    @abstractmethod
    def deploy(self, ctx: DeployContext) -> Endpoint:
        """Create the deployment (journal each resource first) and return its endpoint."""

    @abstractmethod
    def status(self, record: DeploymentRecord) -> TargetStatus:
        """Is it running? (Whether it *answers* is checked over HTTP by the caller.)"""

    @abstractmethod
    def destroy(self, resource: Resource, progress: Progress) -> None:
        """Remove one resource this target created. Already gone is not an error."""

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Remove everything of a deployment; returns what was removed, in words.

        Covers the running resources and every version's (e.g. images); the pipeline
        removes ``files`` resources itself.
        """
        removed = []
        for resource in reversed(record.all_resources()):
            if resource.kind == "files":
                continue  # the pipeline's own
            self.destroy(resource, progress)
            removed.append(resource.describe())
        return removed

    def secret_headers(self, profile: Profile) -> dict[str, str]:
        """Headers with credentials for calling the endpoint (smoke test, status).

        Read from the keyring when needed and never stored or logged. Default: a
        bearer token from an ``api_key`` setting, if the target's settings have one.
        """
        name = getattr(profile.target.settings, "api_key", None)
        if not name:
            return {}
        from app.secrets import get_secret

        return {"Authorization": f"Bearer {get_secret(name)}"}

    # ---- replacing in place (defaults: nothing to do) ---------------------------
    def suspend(self, record: DeploymentRecord, progress: Progress) -> None:  # noqa: B027
        """Make room for a replacement (stop the old one, keep it restorable)."""

    def resume(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Bring a suspended deployment back (the replacement failed).

        Returns the endpoint when its resources changed (e.g. a new pid), else None.
        """
        return None

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Remove what a replaced deployment ran, keeping what a rollback needs.

        Default: the running resources of the record (``record.resources()``), not the
        per-version ones (model files, images) that a rollback reuses; the pipeline
        prunes old versions itself.
        """
        removed = []
        for resource in reversed(record.resources()):
            if resource.kind == "files":
                continue
            self.destroy(resource, progress)
            removed.append(resource.describe())
        return removed
