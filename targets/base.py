"""The Target protocol (v2): what every deployment target implements.

A target is a package ``targets/<kind>/`` (settings, a thin client layer over its SDK or
HTTP API, and the target class) listed in :mod:`targets.catalog`. The pipeline
(:mod:`app.run`) drives it; the wizard reads the catalog to draw its pages. Neither the
CLI nor the wizard holds deployment logic. This module imports ``app.domain`` and small
core helpers, never the record store or the pipeline: targets get what they need
(the previous deployment's record) passed in.

What a target declares, and what the pipeline derives from it:

* ``ships``: ``"files"`` (the converted model, served by a local process) or
  ``"image"``; :meth:`Target.platforms` the image platform(s) it needs. The pipeline
  builds the image for that platform (wheelhouse included) and journals it.
* :meth:`Target.registry`: None (the local Engine is enough) or a :class:`Registry`
  that can log in, push and remove what it pushed. The pipeline adds a journaled push
  step; rollback and teardown remove pushed tags.
* ``replacement``: how a running deployment of the same name is replaced
  (:data:`app.domain.Replacement`).

Lifecycle:

* ``check(profile, previous)`` -- preflight: the problems that would make the deploy
  fail, each with its fix, before anything is created. ``[]`` means ready.
* ``plan(profile, previous)`` -- what will be created, in words, with the cost for
  billing targets.
* ``deploy(ctx)`` -- create what is needed and return the :class:`Endpoint`. Every
  external resource is written to ``ctx.journal`` **before** it is created
  (``ctx.journal.record(resource)``) and updated once its id is known, so a failure, a
  cancel or a crash can be rolled back and ``teardown`` finds it later. Check
  ``ctx.cancel`` between units of work; wait with :func:`app.waiting.wait_until`.
* ``destroy(resource, progress) -> bool`` -- remove one resource it created; True if
  something was removed, False if it was already gone. Idempotent.
* ``client(endpoint, profile)`` -- how the smoke test, ``status`` and the wizard's
  Try-it call the endpoint (HTTP + bearer key by default); ``call_snippets`` -- how a
  person calls it (the kind's :meth:`targets.catalog.Kind.call_snippets`).
* ``status`` / ``logs`` / ``teardown`` -- later commands, given the record.
* Replacing in place: see ``suspend``/``resume``/``retire`` below.

Secrets never go into settings: a :data:`SecretRef` field holds the *name* of a keyring
entry (see :mod:`app.store.secrets`); the value is read at deploy time and never logged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from app.domain import (
    PIPELINE_KINDS,
    BuiltImage,
    ConvertedModel,
    DeploymentRecord,
    Endpoint,
    Platform,
    PushedImage,
    Replacement,
    Resource,
    SecretRef,
    Ships,
)
from app.errors import TargetError
from app.progress import CancelToken, NullProgress, Progress
from targets.calling import CallSnippets
from targets.cost import Cost
from targets.settings import SECRET_REF_PATTERN, TargetSettings

if TYPE_CHECKING:  # pragma: no cover
    from app.endpoint.client import EndpointClient, Response
    from app.nextstep import Action
    from app.store.journal import Journal
    from app.store.profile import Profile
    from targets.kind import Kind

ProblemKind = Literal["credential", "setting", "environment", "quota", "other"]


@dataclass
class Problem:
    """A preflight finding: what is wrong and how to fix it, in plain words.

    ``kind`` lets the CLI pick the exit code (a missing credential is 6) and the wizard
    offer the right fix; ``setting`` names the profile key to change, if any.
    """

    message: str
    fix: str  # may be app.nextstep.Words: the command line's text with its actions
    kind: ProblemKind = "other"
    setting: str | None = None

    @property
    def actions(self) -> tuple[Action, ...]:
        """The fix's next steps as data; a ``setting`` the fix names no action for is
        one more (change that setting)."""
        from app.nextstep import actions_of, set_setting

        found = actions_of(self.message) + actions_of(self.fix)
        if self.setting and not any(a.get("field") == self.setting for a in found):
            found += (set_setting(self.setting),)
        return found

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


@dataclass
class PlanItem:
    """One line of a plan: ``create process modelship-iris on 127.0.0.1:8080``.

    ``cost`` is what it costs while it runs (a :class:`targets.cost.Cost`, formatted
    in one place), for billing targets; None otherwise.
    """

    action: str  # "create" | "replace" | "reuse" | "remove" | "build" | "push" | ...
    kind: str  # "process", "container", "image", "server", ...
    name: str
    detail: str = ""
    cost: Cost | None = None

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.name}"
        if self.detail:
            text += f" ({self.detail})"
        if self.cost is not None:
            text += f" [{self.cost.line()}]"
        return text


@dataclass
class UsageHistory:
    """The last hour of a deployment, per minute, kept by its platform rather than read
    from the server's ``/metrics``: the dashboard's chart series (the keys and shape of
    ``app.endpoint.metrics_history.History.series``: "requests", "rows", "client",
    "server", "p50", "p95", "p99" -> (start of the minute, value), latency in seconds)."""

    series: dict[str, list[tuple[float, float | None]]]
    note: str = ""  # where the figures come from and what they leave out, in words

    @property
    def quiet(self) -> bool:
        """No request in the hour."""
        return not any(v for _, v in self.series.get("requests", []))


@dataclass
class TargetStatus:
    """What a target can tell about a deployment right now."""

    running: bool  # the process/container/server exists and runs
    detail: str = ""  # plain words: "process 1234 since 22:31", "container exited (1)"
    data: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None  # billing targets: what it costs per hour, and has cost so far

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cost"] = self.cost.line() if self.cost is not None else ""
        return d


@dataclass
class DeployContext:
    """Everything ``Target.deploy`` gets.

    ``model`` is the converted model in the deployment's version folder (kept until
    teardown). ``image`` is the built image and ``pushed`` where the pipeline pushed it
    (targets with ``ships = "image"`` / a registry). ``previous`` is the record being
    replaced (same name), or None.
    """

    profile: Profile
    name: str
    model: ConvertedModel
    journal: Journal
    version: int = 1
    image: BuiltImage | None = None
    pushed: PushedImage | None = None
    previous: DeploymentRecord | None = None
    progress: Progress = field(default_factory=NullProgress)
    cancel: CancelToken = field(default_factory=CancelToken)

    @property
    def settings(self) -> Any:
        return self.profile.target.settings

    @property
    def model_path(self) -> Any:  # pathlib.Path of model.onnx
        return self.model.onnx_path


class Registry(ABC):
    """Where a target's platform pulls images from (ECR, Heroku's registry, ...).

    The pipeline calls :meth:`push` in a journaled step and :meth:`remove` on rollback
    and teardown. ``describe`` names it in plain words for plans and messages.
    """

    repository: str  # host[:port]/path, without a tag

    @abstractmethod
    def describe(self) -> str:
        """Plain words: "Heroku's registry for app iris", "ECR repository modelship/iris"."""

    @abstractmethod
    def push(
        self, image: BuiltImage, tag: str, progress: Progress, cancel: CancelToken
    ) -> PushedImage:
        """Log in and push ``image`` as ``repository:tag``; the pushed manifest must be
        Docker manifest v2 schema 2 for ``image.platform``."""

    @abstractmethod
    def remove(self, pushed: PushedImage, progress: Progress, keep: Collection[str] = ()) -> bool:
        """Remove what :meth:`push` put there; False when it was already gone, or kept
        because one of the tags in ``keep`` (versions still in use) shares its digest."""


class Target(ABC):
    """Base class of every deployment target. Instances are cheap and stateless.

    A subclass declares its kind (``kind = KIND`` from ``targets/<kind>/kind.py``);
    ``name``, ``Settings`` and ``ships`` are the kind's, set here, declared nowhere else.
    """

    kind: ClassVar[Kind]
    name: ClassVar[str]  # = kind.name
    Settings: ClassVar[type[TargetSettings]]  # = kind.Settings
    ships: ClassVar[Ships] = "files"  # = kind.ships
    replacement: ClassVar[Replacement] = "stop_old_first"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            cls.name = kind.name
            cls.Settings = kind.Settings
            cls.ships = kind.ships

    # ---- what the catalog says -----------------------------------------------------
    @property
    def title(self) -> str:
        return self.kind.title

    @property
    def summary(self) -> str:
        return self.kind.summary

    # ---- what the pipeline derives its steps from ------------------------------------
    def platforms(self, profile: Profile) -> tuple[Platform, ...]:
        """Image platforms the target runs (the first is built). Only for images."""
        return ("linux/amd64",)

    def registry(self, profile: Profile) -> Registry | None:
        """The registry to push to, or None when the local Engine is enough."""
        return None

    def prepare(self, ctx: DeployContext) -> None:  # noqa: B027
        """Before the push: create what the registry needs to accept the image (Heroku's
        registry takes pushes only to an existing app). Journal first, as in ``deploy``.

        Called in the push step (deploy and rollback), only for targets with a registry;
        ``ctx.pushed`` is None then. Default: nothing.
        """

    # ---- before --------------------------------------------------------------------
    @abstractmethod
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        """Preflight: what would make a deploy fail, each with its fix. [] = ready."""

    @abstractmethod
    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        """What a deploy would create, in words (with the cost for billing targets)."""

    def warnings(self, profile: Profile) -> list[str]:
        """Choices that work but deserve a second look (shown by the CLI and wizard)."""
        return []

    def manifests(self, profile: Profile, previous: DeploymentRecord | None) -> str | None:
        """The exact objects a deploy would create, as one document (YAML, secrets redacted),
        for `modelship deploy PROFILE --dry-run`, the wizard's Review page and
        `modelship export NAME --kubernetes DIR`; None where a target has no such document."""
        return None

    # ---- deploy --------------------------------------------------------------------
    @abstractmethod
    def deploy(self, ctx: DeployContext) -> Endpoint:
        """Create the deployment (journal each resource first) and return its endpoint."""

    @abstractmethod
    def destroy(self, resource: Resource, progress: Progress) -> bool:
        """Remove one resource this target created: True if removed, False if it was
        already gone. Never raises for "not found"."""

    def client(self, endpoint: Endpoint, profile: Profile | None = None) -> EndpointClient:
        """How to call the endpoint: HTTP with ``Authorization: Bearer`` from the
        ``api_key`` setting (read from the keyring now, never stored), and the pinned
        certificate if the endpoint has one."""
        from app.endpoint.client import EndpointClient

        headers = dict(endpoint.headers)
        headers.update(self.secret_headers(profile) if profile is not None else {})
        return EndpointClient(endpoint.url, headers=headers, tls_sha256=endpoint.tls_sha256)

    def call_snippets(
        self,
        endpoint: Endpoint,
        settings: TargetSettings | None = None,
        rows: list[Any] | None = None,
    ) -> CallSnippets:
        """Ready-to-paste ways for a person to call the endpoint (what the CLI prints and
        the wizard shows): the kind's own description, see :mod:`targets.calling`."""
        return self.kind.call_snippets(endpoint, settings, rows)

    def secret_headers(self, profile: Profile) -> dict[str, str]:
        """Credential headers for calling the endpoint (default: a bearer token from the
        endpoint's key, :meth:`TargetSettings.endpoint_key`, if the settings name one)."""
        name = profile.target.settings.endpoint_key()
        if not name:
            return {}
        from app.store.secrets import get_secret

        return {"Authorization": f"Bearer {get_secret(name)}"}

    def captured(
        self,
        record: DeploymentRecord,
        since: float | None = None,
        client: EndpointClient | None = None,
    ) -> bytes:
        """The deployment's captured requests (``capture_rate``), as the server writes
        them: JSON Lines, oldest first, only those after ``since`` (a Unix time).

        Default: ``GET /capture`` through ``client``, the endpoint's own client from
        :meth:`client` (the same address, key and certificate as predictions). A target
        that keeps them elsewhere (a local folder, a cloud's own capture) overrides this."""
        return capture_answer(record, since, client).body

    # ---- later ---------------------------------------------------------------------
    @abstractmethod
    def status(self, record: DeploymentRecord) -> TargetStatus:
        """Is it running? (Whether it *answers* is checked through ``client``.)"""

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        """The deployment's last log lines ("" when the target keeps none)."""
        return ""

    def usage_history(self, record: DeploymentRecord) -> UsageHistory | None:
        """The last hour's requests, errors and response times as the platform keeps
        them (a cloud's own metrics), for the dashboard's charts. None (the default):
        the dashboard reads the server's ``/metrics`` itself."""
        return None

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Remove everything of a deployment on this target; returns what was removed.

        Covers the live resources and every version's that ran here; the pipeline
        removes its own kinds (files, images, pushed images) itself.
        """
        removed = []
        for resource in reversed(record.all_resources(self.name)):
            if resource.kind in PIPELINE_KINDS:
                continue
            if self.destroy(resource, progress):
                removed.append(resource.describe())
        return removed

    # ---- stop and start (optional: kinds with "stop_start" in their capabilities) ----
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """Stop the live deployment without removing it (nothing answers; what it needs
        to start again is kept). Only kinds that declare ``stop_start``."""
        from app.errors import UsageError

        raise UsageError(
            f"{self.title} deployments cannot be stopped and started again.",
            "Tear it down to stop it (and its cost); deploy it again later.",
        )

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Start a stopped deployment again. Returns the endpoint when its resources
        changed (e.g. a new pid), else None. The caller waits until it answers."""
        from app.errors import UsageError

        raise UsageError(
            f"{self.title} deployments cannot be stopped and started again.",
            "Deploy it again instead.",
        )

    # ---- replacing in place (defaults: nothing to do) -------------------------------
    def suspend(self, record: DeploymentRecord, progress: Progress) -> None:  # noqa: B027
        """``stop_old_first``: make room for a replacement (stop the old one, keep it
        restorable)."""

    def resume(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Bring a suspended deployment back (the replacement failed).

        Returns the endpoint when its resources changed (e.g. a new pid), else None.
        """
        return None

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Remove what a replaced deployment ran, keeping what a rollback needs.

        Default: the live resources of the record, not the per-version ones (model
        files, images) that a rollback reuses; the pipeline prunes old versions itself.
        """
        removed = []
        for resource in reversed(record.resources()):
            if resource.kind in PIPELINE_KINDS:
                continue
            if self.destroy(resource, progress):
                removed.append(resource.describe())
        return removed


def capture_answer(
    record: DeploymentRecord, since: float | None, client: EndpointClient | None
) -> Response:
    """One ``GET /capture`` through the endpoint's client: the answer (its body the JSON
    Lines, its ``x-modelship-instance`` header the server instance that answered), or a
    TargetError in plain words (capture off, no API key, no answer)."""
    from app.endpoint.client import EndpointError, EndpointUnreachable

    if client is None:
        raise TargetError(
            f"{record.name!r} has no live endpoint to read captured requests from.",
            "Deploy it again, or start it.",
        )
    path = "/capture" if since is None else f"/capture?since={since!r}"
    try:
        return client.request("GET", path, accept="application/x-ndjson", timeout=60)
    except EndpointError as exc:
        if exc.status == 404:
            raise TargetError(
                f"Capture is off for {record.name!r}.",
                "Set capture_rate above 0 in its settings (e.g. 0.1) and deploy it again.",
            ) from None
        if exc.status == 403:
            raise TargetError(
                f"{record.name!r} has no API key, so its server does not hand out "
                "captured requests.",
                "Set an API key in its settings and deploy it again.",
            ) from None
        raise TargetError(
            f"The captured requests of {record.name!r} cannot be read (HTTP {exc.status}).",
            "Check the deployment's status and log.",
        ) from None
    except EndpointUnreachable as exc:
        raise TargetError(
            f"{record.name!r} did not answer ({exc}).", "Check that it is running."
        ) from None


__all__ = [
    "SECRET_REF_PATTERN",
    "CallSnippets",
    "DeployContext",
    "Endpoint",
    "PlanItem",
    "Problem",
    "Registry",
    "Resource",
    "SecretRef",
    "Target",
    "TargetSettings",
    "TargetStatus",
    "UsageHistory",
]
