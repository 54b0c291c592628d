"""A deployment's drift report: its record, the proof of its current version, the
captured requests pulled from wherever it runs, and :func:`app.monitor.drift.drift_report`.

``modelship monitor`` (app/cli/commands/monitor.py) prints it; the dashboard's "Data
drift" tab shows it. What stops a report is said in words with the next step: capture is
off (:class:`CaptureOff`), nothing captured yet (:class:`NothingCaptured`), the proof is
gone.
"""

from __future__ import annotations

import json
import time
from typing import Any

from app.domain import DeploymentRecord
from app.endpoint.capture import CaptureRecord, parse_lines
from app.errors import UsageError
from app.monitor.drift import DriftReport, drift_report

TURN_ON = (
    "set capture_rate above 0 (0.1 keeps one request in ten) under [target.settings] in "
    "its profile, or the “Capture share” setting in the wizard's settings for its target, "
    "and deploy it again."
)


class CaptureOff(UsageError):
    """The deployment keeps no requests (its capture_rate is 0)."""


class NothingCaptured(UsageError):
    """Capture is on but nothing has been captured (in the time asked) yet."""


def capture_rate(record: DeploymentRecord) -> float:
    """The share of requests the deployment keeps (0: capture is off)."""
    settings = ((record.profile or {}).get("target") or {}).get("settings") or {}
    try:
        return float(settings.get("capture_rate") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def load_proof(record: DeploymentRecord) -> dict[str, Any]:
    from app.model.convert.report import proof_path_for

    version = record.version()
    if version is None:
        raise UsageError(
            f"{record.name!r} has no current version to compare with.",
            "Deploy it again.",
        )
    path = proof_path_for(version.model_path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UsageError(
            f"The proof of {record.name!r} (what its model was checked on) cannot be read "
            f"at {path}.",
            "Deploy it again to convert and prove the model anew.",
        ) from None


def pull(record: DeploymentRecord, since: float | None = None) -> list[CaptureRecord]:
    """The deployment's captured requests (oldest first), only those after ``since``,
    from wherever its target keeps them (:meth:`targets.base.Target.captured`)."""
    from app.store.profile import Profile
    from targets import get_target

    target = get_target(record.target)
    endpoint = record.endpoint_obj()
    client = None
    if endpoint is not None and record.state != "stopped":
        client = target.client(endpoint, Profile.model_validate(record.profile))
    return parse_lines(target.captured(record, since, client))


def deployment_drift(record: DeploymentRecord, since_minutes: float | None = None) -> DriftReport:
    """The drift report of a deployment's captured requests (the last ``since_minutes``,
    or all it keeps)."""
    rate = capture_rate(record)
    if rate <= 0:
        raise CaptureOff(
            f"Capture is off for {record.name!r}: it keeps no requests.",
            "To turn it on, "
            + TURN_ON
            + (f" Its profile: {record.profile_path}" if record.profile_path else ""),
        )
    proof = load_proof(record)
    since = time.time() - since_minutes * 60 if since_minutes else None
    records = pull(record, since)
    if not records:
        window = f" in the last {since_minutes:g} minutes" if since_minutes else " yet"
        raise NothingCaptured(
            f"Nothing captured from {record.name!r}{window} (it keeps "
            f"{round(rate * 100, 1):g}% of requests).",
            "Send it some predictions and look again.",
        )
    return drift_report(proof, records)
