"""The emulator's state: apps, releases, formation, dynos, log lines; JSON as in the schema.

Shapes follow heroku/platform-api ``schema.json`` (definitions app, release, formation,
dyno, log-session, account, team-app). Everything here is touched only from the
emulator's event loop thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REGIONS = {
    "us": "59accabd-516d-4f0e-83e6-6e3757701145",
    "eu": "ed30241c-ed8c-4bb6-9714-61953675d0b4",
}
STACKS = {
    "container": "69bee368-352b-4bd0-9b7c-819d860a2588",
    "heroku-24": "5c7a4b6f-3d33-4ff6-9ef5-ac1e1f7e2b9b",
    "heroku-22": "ee582d3c-717d-4a57-ba5a-df0d1f0a8d1a",
}
DYNO_SIZES = ["Eco", "Basic", "Standard-1X", "Standard-2X", "Performance-M", "Performance-L"]
DYNO_SIZE_IDS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in DYNO_SIZES}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_timestamp() -> str:
    """Logplex's timestamp: microseconds and a numeric offset."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Account:
    key: str
    email: str
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)

    def json(self) -> dict[str, Any]:
        return {
            "allow_tracking": True,
            "beta": False,
            "created_at": self.created_at,
            "email": self.email,
            "federated": False,
            "id": self.id,
            "identity_provider": None,
            "last_login": self.created_at,
            "name": self.email.split("@")[0],
            "sms_number": None,
            "suspended_at": None,
            "delinquent_at": None,
            "two_factor_authentication": False,
            "updated_at": self.created_at,
            "verified": True,
            "country_of_residence": None,
            "default_organization": None,
            "default_team": None,
        }


# How an image release names its image (``HerokuEmulator(release_shape=...)``):
# "artifacts": ``artifacts`` lists the image id (what this emulator always did);
# "description": ``artifacts`` is empty and the description names the image id's first
# 12 hex digits, as Heroku documents Cedar container releases ("Deployed web
# (142013fe2b5c)"); "generic": ``artifacts`` is empty and the description names nothing.
RELEASE_SHAPES = ("artifacts", "description", "generic")


@dataclass
class Release:
    app: App
    version: int
    description: str
    image: str | None  # the image's config digest ("docker_image")
    env: dict[str, str]
    status: str = "pending"
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    output: list[str] = field(default_factory=list)
    manifest: str | None = None  # registry reference the image was pulled by

    def finish(self, status: str) -> None:
        self.status = status
        self.updated_at = now()

    def json(self, api_url: str, shape: str = "artifacts") -> dict[str, Any]:
        """The Platform API's release; ``shape`` (see ``RELEASE_SHAPES``) picks how an
        image release names its image."""
        artifacts = [{"type": "oci-image", "id": self.image}] if self.image else []
        description = self.description
        if shape != "artifacts":
            artifacts = []
        if shape == "generic" and self.image:
            description = "Deployed"
        return {
            "addon_plan_names": [],
            "artifacts": artifacts,
            "app": {"name": self.app.name, "id": self.app.id},
            "created_at": self.created_at,
            "description": description,
            "id": self.id,
            "updated_at": self.updated_at,
            "slug": None,
            "status": self.status,
            "user": {"id": self.app.owner.id, "email": self.app.owner.email},
            "version": self.version,
            "current": self.app.current is self,
            "output_stream_url": f"{api_url}/__emulator__/release-output/{self.id}",
            "eligible_for_rollback": self.image is not None and self.status == "succeeded",
        }


@dataclass
class Formation:
    app: App
    type: str
    quantity: int = 1
    size: str = "Basic"
    command: str | None = None
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    def json(self) -> dict[str, Any]:
        return {
            "app": {"name": self.app.name, "id": self.app.id},
            "command": self.command,
            "created_at": self.created_at,
            "dyno_size": {"id": DYNO_SIZE_IDS[self.size], "name": self.size},
            "id": self.id,
            "quantity": self.quantity,
            "size": self.size,
            "type": self.type,
            "updated_at": self.updated_at,
        }


@dataclass
class Dyno:
    app: App
    release: Release
    container_id: str
    port: int  # $PORT inside the container
    host_port: int  # published on 127.0.0.1
    command: str
    name: str = "web.1"
    state: str = "starting"
    size: str = "Basic"
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.app.log("heroku", self.name, f"State changed from {self.state} to {state}")
            self.state = state
            self.updated_at = now()

    def json(self) -> dict[str, Any]:
        return {
            "attach_url": None,
            "command": self.command,
            "created_at": self.created_at,
            "id": self.id,
            "name": self.name,
            "release": {"id": self.release.id, "version": self.release.version},
            "app": {"name": self.app.name, "id": self.app.id},
            "size": self.size,
            "state": self.state,
            "type": self.name.split(".")[0],
            "updated_at": self.updated_at,
        }


@dataclass
class LogLine:
    timestamp: str
    source: str  # "heroku" or "app"
    dyno: str  # "router", "web.1", "api"
    text: str

    def format(self) -> str:
        return f"{self.timestamp} {self.source}[{self.dyno}]: {self.text}"


@dataclass
class App:
    name: str
    owner: Account
    region: str
    stack: str
    router_port: int
    team: str | None = None
    id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    released_at: str | None = None
    config_vars: dict[str, str] = field(default_factory=dict)
    releases: list[Release] = field(default_factory=list)
    formation: dict[str, Formation] = field(default_factory=dict)
    dyno: Dyno | None = None
    # web.2 ... web.N when the web formation's quantity is above 1 (same release as dyno)
    extra: list[Dyno] = field(default_factory=list)
    current: Release | None = None
    logs: list[LogLine] = field(default_factory=list)
    pulled: set[str] = field(default_factory=set)  # image references pulled into the Engine

    def web_dynos(self) -> list[Dyno]:
        """web.1 and, with a quantity above 1, web.2 ..."""
        return [self.dyno, *self.extra] if self.dyno is not None else list(self.extra)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}/"

    def log(self, source: str, dyno: str, text: str) -> LogLine:
        line = LogLine(log_timestamp(), source, dyno, text)
        self.logs.append(line)
        return line

    def json(self) -> dict[str, Any]:
        stack = {"id": STACKS[self.stack], "name": self.stack}
        team = (
            {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.team)), "name": self.team}
            if self.team
            else None
        )
        return {
            "acm": False,
            "archived_at": None,
            "buildpack_provided_description": None,
            "build_stack": stack,
            "created_at": self.created_at,
            "generation": {"id": "7c1b2f52-6e57-4b04-a7a2-6b5d2a6e6cf1", "name": "cedar"},
            "git_url": f"https://git.heroku.com/{self.name}.git",
            "id": self.id,
            "internal_routing": None,
            "maintenance": False,
            "name": self.name,
            "owner": {"email": self.owner.email, "id": self.owner.id},
            "organization": team,
            "team": team,
            "region": {"id": REGIONS[self.region], "name": self.region},
            "released_at": self.released_at,
            "repo_size": None,
            "slug_size": None,
            "space": None,
            "stack": stack,
            "updated_at": self.updated_at,
            "web_url": self.web_url,
        }
