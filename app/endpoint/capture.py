"""Reading a deployment's captured requests (issue 24; the server side is
app/serving/capture.py). Qt-free: the CLI, the drift report and the dashboard use it.

Where they come from depends on the target: the local server's folder; SageMaker's own
Data Capture (``targets.sagemaker.capture.pull_lines``); every other target's
``GET /capture`` route, through the client the target already uses to call the endpoint
(its key, the Kubernetes proxy, a pinned certificate).

The target modules are imported by name when a pull needs them: the drift report
(app.monitor, a layer below the targets) imports :class:`CaptureRecord` from here.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import TargetError

if TYPE_CHECKING:  # pragma: no cover
    from app.domain import DeploymentRecord


@dataclass
class CaptureRecord:
    """One captured request: its inputs (``columns``/``rows``, or ``shape`` for a tensor
    model) and the predictions the server answered, in row order."""

    t: float
    route: str
    n: int
    columns: list[str] | None
    rows: list[list[Any]] | None
    predictions: list[Any] | None
    shape: list[int] | None = None


def parse_lines(data: bytes) -> list[CaptureRecord]:
    """The records of JSON Lines ``data``; a broken line (e.g. a partly written last one,
    or one of a future format) is skipped."""
    out: list[CaptureRecord] = []
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        rec = _record(obj)
        if rec is not None:
            out.append(rec)
    return out


def _record(obj: Any) -> CaptureRecord | None:
    if not isinstance(obj, dict):
        return None
    t, route, n = obj.get("t"), obj.get("route"), obj.get("n")
    if not isinstance(t, int | float) or isinstance(t, bool) or not isinstance(route, str):
        return None
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    columns, rows = obj.get("columns"), obj.get("rows")
    preds, shape = obj.get("predictions"), obj.get("shape")
    if columns is not None and not (
        isinstance(columns, list) and all(isinstance(c, str) for c in columns)
    ):
        return None
    if rows is not None and not (
        isinstance(rows, list)
        and all(isinstance(r, list) and len(r) == len(columns or []) for r in rows)
    ):
        return None
    if preds is not None and not isinstance(preds, list):
        return None
    if shape is not None and not (
        isinstance(shape, list) and all(isinstance(d, int) for d in shape)
    ):
        return None
    return CaptureRecord(float(t), route, n, columns, rows, preds, shape)


def pull(record: DeploymentRecord, since: float | None = None) -> list[CaptureRecord]:
    """The deployment's captured requests (newest last), only those after ``since``."""
    return parse_lines(pull_bytes(record, since))


def pull_bytes(record: DeploymentRecord, since: float | None = None) -> bytes:
    """The captured JSON Lines as the target keeps them (see :func:`pull`)."""
    target = record.target
    if target == "local":
        from app.serving.capture import read_lines

        local = importlib.import_module("targets.local.target")
        return read_lines(local.capture_dir(record.name), since)
    if target == "sagemaker":
        try:
            module = importlib.import_module("targets.sagemaker.capture")
        except ImportError:
            module = None
        pull_lines = getattr(module, "pull_lines", None)
        if pull_lines is None:
            raise TargetError(
                "Captured requests cannot be read from SageMaker endpoints yet.",
                "Use another target to look at captured requests.",
            )
        return pull_lines(record, since)
    return _pull_route(record, since)


def _pull_route(record: DeploymentRecord, since: float | None) -> bytes:
    from app.endpoint.client import EndpointError, EndpointUnreachable
    from app.store.profile import Profile

    get_target = importlib.import_module("targets").get_target
    endpoint = record.endpoint_obj()
    if endpoint is None:
        raise TargetError(
            f"{record.name!r} has no live endpoint to read captured requests from.",
            "Deploy it again, or start it.",
        )
    client = get_target(endpoint.target).client(endpoint, Profile.model_validate(record.profile))
    path = "/capture" if since is None else f"/capture?since={since!r}"
    try:
        return client.request("GET", path, accept="application/x-ndjson", timeout=60).body
    except EndpointError as exc:
        if exc.status == 404:
            raise TargetError(
                f"Capture is off for {record.name!r}.",
                "Set capture_rate above 0 in its settings (e.g. 0.1) and deploy it again.",
            ) from None
        if exc.status == 403:
            raise TargetError(
                f"{record.name!r} has no API key, so its server does not hand out captured "
                "requests.",
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


__all__ = ["CaptureRecord", "parse_lines", "pull", "pull_bytes"]
