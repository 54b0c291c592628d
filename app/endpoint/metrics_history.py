"""The last hour of a deployment's ``/metrics``, for the dashboard's charts.

Each scrape reaches one worker (see :mod:`app.endpoint.metrics_read`). A
:class:`History` keeps each worker's latest counters, and every scrape adds one
:class:`Interval`: how much the scraped worker's counters grew since its previous
scrape (requests, rows, errors by kind, latency histogram buckets), over the time
since the previous scrape of any worker. Summed over intervals the deltas are exact;
their placement in time is as fine as the scrapes.

Counter resets (a worker restarted under the same label) are handled as Prometheus'
``increase()`` does: a counter that went down counts its new value from zero. The
first scrape of a worker only sets its baseline (a new series has no increase yet);
a series that appears on a known worker (a route's first request) counts from zero.

Latency quantiles come from the interval's bucket deltas, interpolated linearly
inside the bucket as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from app.endpoint.exposition import QUIET_ROUTES, Sample, parse

HOUR = 3600.0
_COUNTERS = {
    "modelship_requests_total",
    "modelship_rows_total",
    "modelship_errors_total",
    "modelship_request_duration_seconds_bucket",
}


def _key(s: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "worker"))


@dataclass(frozen=True)
class Interval:
    end: float  # Unix time of the scrape that closed it
    seconds: float  # since the previous scrape
    requests: float
    rows: float
    errors: dict[str, float]  # "client"/"server" -> count
    buckets: tuple[tuple[float, float], ...] = field(default=())  # (le, cumulative delta)

    def per_minute(self, value: float) -> float:
        return value * 60.0 / self.seconds if self.seconds > 0 else 0.0

    @property
    def requests_per_minute(self) -> float:
        return self.per_minute(self.requests)

    @property
    def rows_per_minute(self) -> float:
        return self.per_minute(self.rows)

    def errors_per_minute(self, kind: str) -> float:
        return self.per_minute(self.errors.get(kind, 0.0))

    def latency(self, q: float) -> float | None:
        """Seconds under which a fraction ``q`` of this interval's requests were
        answered; None when there were none."""
        return histogram_quantile(q, list(self.buckets))


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    b = next((i for i, (_, c) in enumerate(buckets[:-1]) if c >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    end, count = buckets[b]
    start = 0.0
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count) if count > 0 else end


class History:
    """Intervals of the last ``keep`` seconds (at most ``max_points`` of them)."""

    def __init__(self, keep: float = HOUR, max_points: int = 3600) -> None:
        self.keep = keep
        self.intervals: deque[Interval] = deque(maxlen=max_points)
        self.workers: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        self.last: float | None = None

    def add(self, text: str, now: float) -> list[Interval]:
        """Record one scrape taken at ``now``; returns the intervals it added."""
        groups: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for s in parse(text):
            if s.name in _COUNTERS and math.isfinite(s.value):
                groups.setdefault(s.labels.get("worker", ""), {})[_key(s)] = s.value
        requests = rows = 0.0
        errors: dict[str, float] = {"client": 0.0, "server": 0.0}
        buckets: dict[float, float] = {}
        for worker, series in groups.items():
            before = self.workers.get(worker)
            self.workers[worker] = series
            if before is None:
                continue
            for key, value in series.items():
                old = before.get(key, 0.0)
                delta = value - old if value >= old else value
                name, labels = key
                lab = dict(labels)
                if name == "modelship_rows_total":
                    rows += delta
                elif lab.get("route") in QUIET_ROUTES:
                    continue
                elif name == "modelship_requests_total":
                    requests += delta
                elif name == "modelship_errors_total":
                    kind = lab.get("kind", "")
                    errors[kind] = errors.get(kind, 0.0) + delta
                elif name == "modelship_request_duration_seconds_bucket":
                    try:
                        le = float(lab.get("le", ""))
                    except ValueError:
                        continue
                    buckets[le] = buckets.get(le, 0.0) + delta
        added: list[Interval] = []
        if self.last is not None and now > self.last:
            interval = Interval(
                now, now - self.last, requests, rows, errors, tuple(sorted(buckets.items()))
            )
            self.intervals.append(interval)
            added.append(interval)
        self.last = now if self.last is None else max(self.last, now)
        while self.intervals and self.intervals[0].end < now - self.keep:
            self.intervals.popleft()
        return added

    def is_quiet(self) -> bool:
        """No request in the kept hour."""
        return not any(i.requests for i in self.intervals)

    def minutes(self) -> list[Interval]:
        """The intervals added up by wall-clock minute (one per minute that had a
        scrape): its counts are that minute's, so per minute is the count itself."""
        bins: dict[int, list[Interval]] = {}
        for i in self.intervals:
            bins.setdefault(int(i.end // 60), []).append(i)
        out = []
        for minute, parts in sorted(bins.items()):
            errors: dict[str, float] = {}
            buckets: dict[float, float] = {}
            for p in parts:
                for k, v in p.errors.items():
                    errors[k] = errors.get(k, 0.0) + v
                for le, v in p.buckets:
                    buckets[le] = buckets.get(le, 0.0) + v
            out.append(
                Interval(
                    minute * 60.0,
                    60.0,
                    sum(p.requests for p in parts),
                    sum(p.rows for p in parts),
                    errors,
                    tuple(sorted(buckets.items())),
                )
            )
        return out

    def series(self) -> dict[str, list[tuple[float, float | None]]]:
        """(start of the minute, value) per chart line: requests, rows and errors in
        that minute; latency quantiles (seconds) of its requests, None without any."""
        out: dict[str, list[tuple[float, float | None]]] = {
            k: [] for k in ("requests", "rows", "client", "server", "p50", "p95", "p99")
        }
        for i in self.minutes():
            out["requests"].append((i.end, i.requests))
            out["rows"].append((i.end, i.rows))
            out["client"].append((i.end, i.errors.get("client", 0.0)))
            out["server"].append((i.end, i.errors.get("server", 0.0)))
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                out[name].append((i.end, i.latency(q)))
        return out


__all__ = ["HOUR", "History", "Interval", "histogram_quantile"]
