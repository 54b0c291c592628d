"""Deployment status: each deployment with whether it runs and answers right now.

"Answers" is checked live through the target's own client (``GET /ping``, a pinned
certificate, SageMaker's signed call), not read from the record. A torn-down deployment
is history: its record says so, and nothing is asked live. ``modelship status`` renders
these rows (app/cli/commands/status.py); the dashboard and the wizard read them too.
"""

from __future__ import annotations

from typing import Any

from app.nextstep import run_command, say


def deployment_status(record: Any) -> dict[str, Any]:
    """A record plus its live state: is it running, does it answer /ping."""
    from app.endpoint.client import EndpointError, EndpointUnreachable
    from app.errors import ModelShipError
    from targets import get_target

    cost = ""
    try:
        target = get_target(record.target)
        ts = target.status(record)
        running, detail = ts.running, ts.detail
        cost = ts.cost.line() if ts.cost is not None else ""
    except ModelShipError as exc:
        running, detail = False, exc.message
    answering = False
    endpoint = record.endpoint_obj()
    if endpoint is not None:
        try:
            from app.store.profile import Profile

            profile = Profile.model_validate(record.profile)
            answering = target.client(endpoint, profile).ping(timeout=5.0)
        except (EndpointError, EndpointUnreachable, ModelShipError, ValueError):
            answering = False
    if answering:
        state = "answering"
    elif running:
        state = "running, not answering"
    elif record.state == "stopped":
        state = say(
            "stopped by you (start it again: ",
            run_command("start", record.name, quote=""),
            ")",
        )
    else:
        state = "stopped"
    if record.state == "failed":
        state += " (kept after a failed smoke test)"
    return {
        "name": record.name,
        "target": record.target,
        "url": record.url,
        "version": record.current_version,
        "versions": [v["version"] for v in record.versions],
        "answering": answering,
        "running": running,
        "state": state,
        "detail": detail,
        "smoke": (record.smoke or {}).get("summary"),
        "cost": cost,
        "created": record.created,
        "updated": record.updated,
        "message": record.message,
        "removed": False,
        "stopped_at": record.stopped_at,
    }


def removed_status(record: Any) -> dict[str, Any]:
    """A torn-down deployment, from its history record (nothing is asked live)."""
    return {
        "name": record.name,
        "target": record.target,
        "url": None,
        "version": record.current_version,
        "versions": [v["version"] for v in record.versions],
        "answering": False,
        "running": False,
        "state": "removed",
        "detail": f"removed {record.removed_at}",
        "smoke": None,
        "cost": "",
        "created": record.created,
        "updated": record.updated,
        "message": record.message,
        "removed": True,
        "removed_at": record.removed_at,
    }


def statuses(name: str | None = None, *, include_removed: bool = False) -> list[dict[str, Any]]:
    """The status rows of one deployment (a removed one's history when it was torn
    down), or of all (with ``include_removed`` the torn-down ones too)."""
    from app.store.records import find_record, find_removed, list_records, list_removed, load_record

    gone = find_removed(name) if name and find_record(name) is None else None
    if gone is not None:
        return [removed_status(gone)]
    records = [load_record(name)] if name else list_records()
    rows = [deployment_status(r) for r in records]
    if include_removed and not name:
        rows += [removed_status(r) for r in list_removed()]
    return rows


def interrupted(name: str | None = None) -> list[str]:
    """Deployments whose deploy was interrupted before it made a record (resources may
    be left behind: ``teardown`` removes them)."""
    from app.store.journal import open_journals
    from app.store.records import find_record

    return sorted({j.name for j in open_journals(name) if find_record(j.name) is None})


def removed_count() -> int:
    from app.store.records import list_removed

    return len(list_removed())
