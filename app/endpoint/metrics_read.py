"""Reading a deployment's ``/metrics`` (Prometheus text format) for the dashboard.

A small parser for the text exposition format (no prometheus_client: the core keeps
its dependencies few), and a summary that adds up the serving workers: each worker
process reports its own counters with a ``worker`` label, and the dashboard shows the
deployment's totals and how long its oldest worker has run.

One scrape reaches one worker of a server with several (they share the port), so a
:class:`MetricsBook` keeps each worker's latest figures across scrapes and adds them
up; workers of an earlier start (before a Stop/Start or a restart) are dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from app.endpoint.exposition import QUIET_ROUTES, Sample, parse
from app.endpoint.metrics_history import History


@dataclass(frozen=True)
class Summary:
    requests: int  # predictions answered (every route but /ping and /metrics)
    errors: int  # of those, answered 4xx/5xx
    rows: int  # rows predicted
    started: float | None  # Unix time the oldest worker started
    workers: int

    def uptime(self, now: float | None = None) -> float | None:
        if self.started is None:
            return None
        return max(0.0, (now if now is not None else time.time()) - self.started)


def per_worker(text: str) -> dict[str, Summary]:
    """Each worker's figures (series without a ``worker`` label count as one worker)."""
    groups: dict[str, list[Sample]] = {}
    for s in parse(text):
        groups.setdefault(s.labels.get("worker", ""), []).append(s)
    return {w: _sum(samples) for w, samples in groups.items()}


def summarize(text: str) -> Summary:
    """Totals over all workers: requests and errors (health and metrics calls left
    out, they are not anyone's predictions), rows, the oldest worker's start."""
    return _sum(parse(text))


def _merge(parts: list[Summary]) -> Summary:
    starts = [p.started for p in parts if p.started is not None]
    return Summary(
        sum(p.requests for p in parts),
        sum(p.errors for p in parts),
        sum(p.rows for p in parts),
        min(starts) if starts else None,
        sum(p.workers for p in parts),
    )


class MetricsBook:
    """Each worker's latest figures across scrapes, added up (see the module text)."""

    SAME_START = 60.0  # workers of one server start within this many seconds

    def __init__(self) -> None:
        self.workers: dict[str, Summary] = {}
        self.history = History()  # the last hour, for the dashboard's charts

    def add(self, text: str, now: float | None = None) -> Summary:
        self.history.add(text, time.time() if now is None else now)
        self.workers.update(per_worker(text))
        newest = max((w.started for w in self.workers.values() if w.started), default=None)
        if newest is not None:
            self.workers = {
                k: w
                for k, w in self.workers.items()
                if w.started is None or w.started >= newest - self.SAME_START
            }
        return self.total()

    def total(self) -> Summary:
        return _merge(list(self.workers.values()))


def _sum(samples: list[Sample]) -> Summary:
    requests = errors = rows = 0
    starts: list[float] = []
    workers: set[str] = set()
    for s in samples:
        if not math.isfinite(s.value):
            continue  # NaN/Inf: no count to add
        if "worker" in s.labels:
            workers.add(s.labels["worker"])
        if s.name == "modelship_requests_total":
            if s.labels.get("route") in QUIET_ROUTES:
                continue
            n = int(s.value)
            requests += n
            code = s.labels.get("code", "")
            if code.isdigit() and int(code) >= 400:
                errors += n
        elif s.name == "modelship_rows_total":
            rows += int(s.value)
        elif (
            s.name in {"modelship_start_time_seconds", "process_start_time_seconds"} and s.value > 0
        ):
            starts.append(s.value)
    return Summary(requests, errors, rows, min(starts) if starts else None, len(workers) or 1)


def duration_words(seconds: float | None) -> str:
    """12 s, 5 min, 3 h 20 min, 2 days 4 h."""
    if seconds is None:
        return "unknown"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(s // 3600, 24)
    return f"{d} day{'s' if d != 1 else ''} {h} h" if h else f"{d} day{'s' if d != 1 else ''}"


__all__ = [
    "MetricsBook",
    "Sample",
    "Summary",
    "duration_words",
    "parse",
    "per_worker",
    "summarize",
]
