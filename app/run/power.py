"""Stop and Start a deployment without removing it (kinds with ``stop_start``).

Stop: nothing answers any more, but everything it needs to start again is kept (the
local process's command, the container, the VM). The record says "stopped" with the
time, so ``status`` and the wizard tell it apart from a crash. Start: the target starts
it again, and the deployment counts as running only once it answers ``/ping``.
"""

from __future__ import annotations

from app.domain import DeploymentRecord, now_iso
from app.errors import UsageError
from app.nextstep import run_command, say
from app.progress import CancelToken, NullProgress, Progress
from app.run.lock import deployment_lock
from app.store.records import load_record, save_record
from targets.catalog import get_kind, get_target

START_TIMEOUT = 120.0


def can_stop(record: DeploymentRecord) -> bool:
    """Whether the deployment's target can stop and start it again."""
    try:
        return get_kind(record.target).can_stop
    except UsageError:
        return False


def _stoppable(name: str) -> DeploymentRecord:
    record = load_record(name)
    if not can_stop(record):
        kind = get_kind(record.target)
        billing = " It is billed while it exists." if kind.billing else ""
        raise UsageError(
            f"{kind.title} cannot stop a deployment and start it again.{billing}",
            say("Tear it down to stop it: ", run_command("teardown", name, quote="")),
        )
    if record.endpoint is None:
        raise UsageError(f"{name!r} has no live endpoint.", "Deploy it again.")
    return record


def stop_deployment(name: str, progress: Progress | None = None) -> DeploymentRecord:
    """Stop ``name``; its record says "stopped". Stopping a stopped one is harmless."""
    progress = progress or NullProgress()
    with deployment_lock(name):
        record = _stoppable(name)
        progress.update(None, f"Stopping {name!r}")
        get_target(record.target).stop(record, progress)
        record.state = "stopped"
        record.stopped_at = now_iso()
        record.message = f"Stopped at {record.stopped_at}."
        save_record(record)
        return record


def start_deployment(
    name: str, progress: Progress | None = None, cancel: CancelToken | None = None
) -> DeploymentRecord:
    """Start a stopped ``name`` again and wait until it answers."""
    from app.store.profile import Profile

    progress = progress or NullProgress()
    with deployment_lock(name):
        record = _stoppable(name)
        target = get_target(record.target)
        progress.update(None, f"Starting {name!r}")
        endpoint = target.start(record, progress)
        if endpoint is not None:
            record.endpoint = endpoint.to_dict()
            save_record(record)  # a new pid is written down before anything else
        live = record.endpoint_obj()
        assert live is not None
        client = target.client(live, Profile.model_validate(record.profile))
        client.wait_healthy(timeout=START_TIMEOUT, cancel=cancel, progress=progress)
        record.state = "running"
        record.stopped_at = None
        record.message = f"Started again at {now_iso()}."
        save_record(record)
        return record


__all__ = ["can_stop", "start_deployment", "stop_deployment"]
