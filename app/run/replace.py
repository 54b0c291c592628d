"""Replacing a running deployment of the same name: who steps aside, and when.

A target's ``replacement`` says how (``app.domain.Replacement``). Across targets (a
name moved from local to docker) the old one is stopped first when either side needs
that, e.g. both answer on the same port.
"""

from __future__ import annotations

from app.domain import DeploymentRecord, Endpoint
from app.progress import Progress
from app.records import save_record
from app.run.attempt import Attempt, short
from app.run.events import Event
from targets.base import Target
from targets.catalog import get_target


def stops_old_first(previous: DeploymentRecord, new: Target) -> bool:
    if previous.target == new.name:
        return new.replacement == "stop_old_first"
    old = get_target(previous.target)
    return "stop_old_first" in {new.replacement, old.replacement}


def suspend(previous: DeploymentRecord, progress: Progress) -> Target:
    old = get_target(previous.target)
    progress.update(None, f"Stopping the running {previous.name!r} to replace it")
    old.suspend(previous, progress)
    return old


def restore(attempt: Attempt, old: Target, previous: DeploymentRecord) -> str:
    """Bring the replaced deployment back after the new one failed."""
    progress = attempt.progress("rollback")
    try:
        endpoint: Endpoint | None = old.resume(previous, progress)
    except Exception as exc:
        attempt.emit(
            Event("rollback", "rollback", message=f"Could not restart the previous one: {exc}")
        )
        return f" The previous deployment could not be restarted ({short(exc)})."
    if endpoint is not None:
        previous.endpoint = endpoint.to_dict()
        save_record(previous)
    attempt.emit(Event("rollback", "rollback", message="The previous deployment runs again."))
    return f" The previous version ({previous.current_version}) runs again."


def retire(previous: DeploymentRecord, new: Target, progress: Progress) -> list[str]:
    """After the new one passed its smoke test: remove what the old one ran (keeping
    what a rollback needs). A platform that swapped by itself leaves nothing to do."""
    if previous.target == new.name and new.replacement == "platform":
        return []
    return get_target(previous.target).retire(previous, progress)
