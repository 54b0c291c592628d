"""Calling a deployment by name: its record and its own client, or why not now."""

from __future__ import annotations

from typing import Any

from app.domain import DeploymentRecord
from app.errors import TargetError
from app.nextstep import run_command, say
from app.store.profile import Profile
from app.store.records import load_record
from targets.catalog import get_target


def deployment_client(name: str) -> tuple[DeploymentRecord, Any]:
    """The deployment's record and the client its target hands out (bearer key from the
    keyring, pinned certificate, SageMaker's signed call). A stopped deployment says so
    and how to start it, instead of the "connection refused" a call would meet; a
    removed one says when it was removed."""
    record = load_record(name)
    if record.state == "stopped":
        since = record.stopped_at.replace("T", " ").rstrip("Z") if record.stopped_at else ""
        since = f" (since {since} UTC)" if since else ""
        raise TargetError(
            f"{name!r} is stopped{since}: nothing answers there now.",
            say(run_command("start", name, verb="Start it with"), ", then try again."),
        )
    endpoint = record.endpoint_obj()
    if endpoint is None:
        raise TargetError(
            f"{name!r} has no live address.",
            say("Deploy it again: ", run_command("deploy", name, quote="")),
        )
    client = get_target(endpoint.target).client(endpoint, Profile.model_validate(record.profile))
    return record, client


__all__ = ["deployment_client"]
