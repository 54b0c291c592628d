"""What the wizard's dashboard shows about one deployment, gathered in one call.

Qt-free and slow (it asks the target and the endpoint over the network): the wizard
runs :func:`snapshot` on a worker thread every few seconds. Each part fails on its own:
an endpoint without ``/metrics`` (SageMaker's runtime) still shows its status and logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.endpoint.metrics_read import MetricsBook, Summary, summarize

LOG_LINES = 40


@dataclass
class VersionRow:
    version: int
    created: str
    target: str
    current: bool
    model: str


@dataclass
class Snapshot:
    name: str
    target: str
    title: str  # the target's title, in words
    url: str | None
    state: str  # "answering", "running, not answering", "stopped", "removed"
    answering: bool
    running: bool
    stopped: bool  # stopped by the owner (Stop), not crashed
    removed: bool
    detail: str
    can_stop: bool
    billing: bool = False  # the platform bills while it exists
    metrics: Summary | None = None
    metrics_note: str = ""  # why there are no figures
    logs: str = ""
    cost: str = ""
    versions: list[VersionRow] = field(default_factory=list)
    taken: float = field(default_factory=time.time)
    # the last hour, per chart line: (Unix time, value per minute or seconds or None);
    # empty without a MetricsBook (see metrics_history.History.series)
    history: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    quiet: bool = True  # no request in the last hour
    # where ``history`` comes from when the platform keeps it (SageMaker: CloudWatch)
    # and what it leaves out; "" when it is the server's /metrics
    history_note: str = ""

    def uptime(self) -> float | None:
        if self.metrics is None or not self.answering:
            return None
        return self.metrics.uptime(self.taken)


def detail_words(detail: str) -> str:
    """The target's status line in a person's words: "process 23981 on port 8080 since
    2026-11-29 01:55" is "answers on port 8080, started 2026-11-29 01:55" (a process id
    means nothing to the person, and the CLI's status keeps it)."""
    import re

    text = str(detail or "")
    m = re.fullmatch(r"process \S+ on port (\d+)(?: since (.+))?", text)
    if m:
        return f"port {m.group(1)}" + (f", started {m.group(2)}" if m.group(2) else "")
    if re.fullmatch(r"process \S+ is not running", text):
        return "its server is not running"
    if text == "no server process recorded":
        return "no server was started"
    return re.sub(r"\b(?:server )?process \d+\b ?", "", text).strip()


def cost_words(kind: str, billing: bool, status_cost: str, stopped: bool = False) -> str:
    """The running cost, in words, for every kind: the status's own figure (cloud: from
    the target's prices), else the kind's cost model (``Kind.running_cost``)."""
    from targets.catalog import CATALOG

    known = CATALOG.get(kind)
    if known is None:
        return status_cost or ("See your provider's bill." if billing else "")
    return known.running_cost(status_cost, stopped=stopped)


def versions(record: Any) -> list[VersionRow]:
    from pathlib import Path

    rows = [
        VersionRow(
            v.version,
            v.created,
            v.target or record.target,
            v.version == record.current_version,
            Path(v.source_model).name,
        )
        for v in record.version_objects()
    ]
    return sorted(rows, key=lambda r: -r.version)


def snapshot(name: str, *, log_lines: int = LOG_LINES, book: MetricsBook | None = None) -> Snapshot:
    """Live status, /metrics figures, log tail, versions and cost of ``name``.

    With a ``book`` (kept by the caller from one snapshot to the next) the figures add
    up every worker seen so far, not only the one this scrape reached. A removed
    (torn-down) deployment gives its history only.
    """
    from app.errors import ModelShipError
    from app.run.status import deployment_status
    from app.store.records import find_record, find_removed, load_record
    from targets.catalog import get_kind

    record = find_record(name)
    if record is None and (gone := find_removed(name)) is not None:
        kind = get_kind(gone.target)
        return Snapshot(
            name, gone.target, kind.title, None, "removed", False, False, False, True,
            f"Removed {gone.removed_at}", False, versions=versions(gone),
            metrics_note="It was removed.",
        )  # fmt: skip
    record = record or load_record(name)
    kind = get_kind(record.target)
    d = deployment_status(record)
    snap = Snapshot(
        name=name,
        target=record.target,
        title=kind.title,
        url=record.url,
        state=d["state"],
        answering=bool(d["answering"]),
        running=bool(d["running"]),
        stopped=record.state == "stopped",
        removed=False,
        detail=detail_words(d["detail"]),
        can_stop=kind.can_stop,
        billing=kind.billing,
        versions=versions(record),
    )
    snap.cost = cost_words(record.target, kind.billing, d.get("cost") or "", snap.stopped)
    if not _platform_history(record, snap):  # else the platform's own metrics (CloudWatch)
        if snap.answering:
            snap.metrics, snap.metrics_note = _metrics(record, book)
        if book is not None:  # a copy, taken in the worker: the UI thread only reads it
            snap.history, snap.quiet = book.history.series(), book.history.is_quiet()
        else:
            snap.metrics_note = "It does not answer right now."
    try:
        from targets import get_target

        snap.logs = get_target(record.target).logs(record, log_lines)
    except ModelShipError as exc:
        snap.logs = f"(The log cannot be read: {exc.message})"
    except Exception as exc:  # a platform's own error: shown, not fatal
        snap.logs = f"(The log cannot be read: {exc})"
    return snap


def _platform_history(record: Any, snap: Snapshot) -> bool:
    """The last hour as the platform keeps it (``Target.usage_history``), into ``snap``;
    False when the target has none (the dashboard reads ``/metrics``)."""
    from app.errors import ModelShipError
    from targets import get_target

    try:
        target = get_target(record.target)
    except Exception:  # the /metrics path says what is wrong with it
        return False
    try:
        usage = target.usage_history(record)
    except ModelShipError as exc:
        snap.history_note = snap.metrics_note = f"The charts cannot be read: {exc.message}"
        return True
    except Exception as exc:  # an SDK's own error: the rest of the dashboard still shows
        snap.history_note = snap.metrics_note = (
            f"The charts cannot be read right now ({type(exc).__name__})."
        )
        return True
    if usage is None:
        return False
    snap.history, snap.quiet = usage.series, usage.quiet
    snap.history_note = usage.note
    total = sum(v or 0.0 for _, v in usage.series.get("requests", []))
    snap.metrics_note = f"{total:g} in the last hour ({usage.note})"
    return True


def _metrics(record: Any, book: MetricsBook | None = None) -> tuple[Summary | None, str]:
    from app.endpoint.client import EndpointError, EndpointUnreachable
    from app.errors import ModelShipError
    from app.store.profile import Profile
    from targets import get_target

    endpoint = record.endpoint_obj()
    try:
        client = get_target(endpoint.target).client(
            endpoint, Profile.model_validate(record.profile)
        )
        if book is None:
            return summarize(client.metrics()), ""
        for _ in range(3):  # a new connection may reach another worker
            known = len(book.workers)
            total = book.add(client.metrics())
            if len(book.workers) == known:
                break
        return total, ""
    except (EndpointError, EndpointUnreachable, ModelShipError, ValueError, AttributeError):
        return None, "This platform does not pass on the server's request counts."
    except Exception as exc:  # an SDK's own error: the rest of the dashboard still shows
        return None, f"The request counts cannot be read right now ({type(exc).__name__})."


__all__ = ["Snapshot", "VersionRow", "cost_words", "detail_words", "snapshot", "versions"]
