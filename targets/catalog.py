"""The catalog of target kinds: what the wizard lists and profiles validate against.

Each entry names the kind's settings class (imported here: settings modules import no
SDK) and where its implementation lives (imported only when a target is used, so that
``modelship status`` of a local deployment never loads boto3). The order is the
wizard's order. Adding a target: a package ``targets/<kind>/`` with ``settings.py``
and ``target.py``, and one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.domain import Endpoint, Ships
from targets.calling import CallSnippets, CallStyle, call_snippets
from targets.docker.settings import DockerSettings
from targets.heroku.settings import HerokuSettings
from targets.local.settings import LocalSettings
from targets.openstack.settings import OpenStackSettings
from targets.sagemaker.settings import SageMakerSettings
from targets.settings import TargetSettings

if TYPE_CHECKING:
    from targets.base import Target


@dataclass(frozen=True)
class Kind:
    """One kind of target, as far as it can be known without loading it."""

    name: str
    title: str
    summary: str  # one line: when to choose it
    Settings: type[TargetSettings]
    implementation: str  # "package.module:Class", imported lazily
    ships: Ships = "files"
    billing: bool = False  # costs money while it runs: the plan states the cost
    remote: bool = False  # runs somewhere else than this computer
    capabilities: frozenset[str] = frozenset()  # "logs", "stop_start", "autoscaling", ...
    call: CallStyle = "http"  # how its endpoints are called: see targets.calling

    @property
    def can_stop(self) -> bool:
        """Stop and Start apart from Delete (the target implements ``stop``/``start``)."""
        return "stop_start" in self.capabilities

    def call_snippets(
        self,
        endpoint: Endpoint,
        settings: TargetSettings | None = None,
        rows: list[Any] | None = None,
    ) -> CallSnippets:
        """How to call ``endpoint`` (curl / AWS CLI, Python), naming only the endpoint's
        own key entry; no SDK is loaded and no secret read."""
        return call_snippets(self.call, endpoint, settings, rows)

    def load(self) -> type[Target]:
        module, _, cls = self.implementation.partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]

    @property
    def module(self) -> str:
        return self.implementation.partition(":")[0]


CATALOG: dict[str, Kind] = {
    "local": Kind(
        name="local",
        title="This computer",
        summary="Run the model as a background process on this computer (127.0.0.1); "
        "no Docker needed. Good for trying it out and for edge devices.",
        Settings=LocalSettings,
        implementation="targets.local.target:LocalTarget",
        ships="files",
        capabilities=frozenset({"logs", "stop_start"}),
    ),
    "docker": Kind(
        name="docker",
        title="Docker on this computer",
        summary="Build a serving image and run it as a container on this computer's Docker "
        "Engine; the same image can go to any server or cloud that runs containers.",
        Settings=DockerSettings,
        implementation="targets.docker.target:DockerTarget",
        ships="image",
        capabilities=frozenset({"logs", "stop_start"}),
    ),
    "openstack": Kind(
        name="openstack",
        title="A cloud VM (OpenStack, e.g. bwCloud)",
        summary="Start a small virtual machine in your OpenStack cloud (bwCloud and other "
        "university clouds) and serve the model there over HTTPS.",
        Settings=OpenStackSettings,
        implementation="targets.openstack.target:OpenStackTarget",
        ships="image",
        remote=True,
        capabilities=frozenset({"logs", "stop_start"}),
    ),
    "heroku": Kind(
        name="heroku",
        title="Heroku (a platform for web apps)",
        summary="Run the model as a Heroku app with its own web address; no servers to "
        "look after. Heroku bills the dyno while it runs.",
        Settings=HerokuSettings,
        implementation="targets.heroku.target:HerokuTarget",
        ships="image",
        billing=True,
        remote=True,
        capabilities=frozenset({"logs", "stop_start"}),
    ),
    "sagemaker": Kind(
        name="sagemaker",
        title="AWS SageMaker",
        summary="An AWS endpoint that scales past one machine (or serverless, billed per "
        "request). ModelShip states the cost before it creates anything.",
        Settings=SageMakerSettings,
        implementation="targets.sagemaker.target:SageMakerTarget",
        ships="image",
        billing=True,
        remote=True,
        capabilities=frozenset({"logs", "autoscaling"}),
        call="sigv4",
    ),
}


def get_kind(name: str) -> Kind:
    """The catalog entry ``name``; an unknown name is a UsageError naming the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        from app.errors import UsageError

        known = ", ".join(CATALOG)
        raise UsageError(
            f"Unknown target {name!r}.", f"Choose one of: {known} (--target NAME)."
        ) from None


def get_target(name: str) -> Target:
    """A ready target instance of kind ``name`` (its implementation imported now)."""
    return get_kind(name).load()()


__all__ = ["CATALOG", "Kind", "get_kind", "get_target"]
