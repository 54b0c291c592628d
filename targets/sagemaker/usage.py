"""A SageMaker endpoint's last hour, per minute, from Amazon CloudWatch.

Only ``/invocations`` and ``/ping`` reach the container on SageMaker, so the server's
``/metrics`` cannot be read. SageMaker publishes its own per-minute metrics instead, in
namespace ``AWS/SageMaker`` with dimensions ``EndpointName`` and ``VariantName``:
``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (Sum) and
``ModelLatency`` (microseconds: the container's answer as SageMaker sees it, percentiles
``p50``/``p95``/``p99``). One ``GetMetricData`` call asks for all six; its answer is
turned into the dashboard's series (see ``app.endpoint.metrics_history.History.series``:
start of the minute, value). CloudWatch counts no rows, so that series stays empty.

GetMetricData costs $0.01 per 1,000 metrics requested (:data:`CLOUDWATCH_USD_PER_1000_METRICS`):
an answer is kept for :data:`REFRESH_S` seconds (the metrics are per minute), so an
open dashboard asks for 6 metrics a minute, about $0.0036 per hour.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from typing import Any

NAMESPACE = "AWS/SageMaker"
HOUR = 3600
PERIOD = 60
REFRESH_S = 60.0
CLOUDWATCH_USD_PER_1000_METRICS = 0.01

#: (query id, series key, metric name, statistic)
QUERIES: tuple[tuple[str, str, str, str], ...] = (
    ("requests", "requests", "Invocations", "Sum"),
    ("client", "client", "Invocation4XXErrors", "Sum"),
    ("server", "server", "Invocation5XXErrors", "Sum"),
    ("p50", "p50", "ModelLatency", "p50"),
    ("p95", "p95", "ModelLatency", "p95"),
    ("p99", "p99", "ModelLatency", "p99"),
)
SERIES = ("requests", "rows", "client", "server", "p50", "p95", "p99")
COUNTS = {"requests", "client", "server"}
NOTE = (
    "From Amazon CloudWatch (SageMaker's per-minute metrics; response time is its "
    "ModelLatency). CloudWatch counts no rows, so rows per minute are not shown."
)

_cache: dict[tuple[str, str, str, str], tuple[float, dict[str, list[tuple[float, float | None]]]]]
_cache = {}
_lock = threading.Lock()


def metric_queries(endpoint_name: str, variant: str) -> list[dict[str, Any]]:
    """GetMetricData's ``MetricDataQueries`` for one endpoint variant, per minute."""
    dims = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": variant},
    ]
    return [
        {
            "Id": qid,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims},
                "Period": PERIOD,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for qid, _, metric, stat in QUERIES
    ]


def window(now: float) -> tuple[dt.datetime, dt.datetime]:
    """The last hour in whole minutes: from the minute an hour ago to the next minute."""
    end = (math.floor(now / PERIOD) + 1) * PERIOD
    return (
        dt.datetime.fromtimestamp(end - HOUR - PERIOD, dt.UTC),
        dt.datetime.fromtimestamp(end, dt.UTC),
    )


def _when(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    return float(value)


def series_from_metric_data(
    results: list[dict[str, Any]],
) -> dict[str, list[tuple[float, float | None]]]:
    """GetMetricData's ``MetricDataResults`` (of :func:`metric_queries`) as the
    dashboard's series: (start of the minute, value) per line, oldest first. Counts are
    that minute's sums (0 where CloudWatch has no point in a minute that had requests);
    latency is in seconds (CloudWatch's microseconds / 1e6), None for a minute without
    it. ``rows`` is empty: CloudWatch does not count rows."""
    key_of = {qid: key for qid, key, _, _ in QUERIES}
    points: dict[str, dict[float, float]] = {key: {} for key in SERIES}
    for result in results:
        key = key_of.get(str(result.get("Id", "")))
        if key is None:
            continue
        for when, value in zip(
            result.get("Timestamps") or [], result.get("Values") or [], strict=False
        ):
            if value is None or not math.isfinite(float(value)):
                continue
            minute = math.floor(_when(when) / PERIOD) * PERIOD
            v = float(value)
            if key in COUNTS:
                points[key][minute] = points[key].get(minute, 0.0) + v
            else:
                points[key][minute] = v / 1e6
    minutes = sorted({m for key in SERIES for m in points[key]})
    out: dict[str, list[tuple[float, float | None]]] = {key: [] for key in SERIES}
    for m in minutes:
        for key in ("requests", "client", "server"):
            out[key].append((m, points[key].get(m, 0.0)))
        for key in ("p50", "p95", "p99"):
            out[key].append((m, points[key].get(m)))
    return out


def read_series(
    cloudwatch: Any, endpoint_name: str, variant: str, now: float
) -> dict[str, list[tuple[float, float | None]]]:
    """Ask CloudWatch (a boto3 ``cloudwatch`` client) for the last hour, every page."""
    start, end = window(now)
    queries = metric_queries(endpoint_name, variant)
    merged: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            kwargs["NextToken"] = token
        answer = cloudwatch.get_metric_data(**kwargs)
        for r in answer.get("MetricDataResults") or []:
            qid = str(r.get("Id"))
            into = merged.setdefault(qid, {"Id": qid, "Timestamps": [], "Values": []})
            into["Timestamps"] += list(r.get("Timestamps") or [])
            into["Values"] += list(r.get("Values") or [])
        token = answer.get("NextToken")
        if not token:
            break
    return series_from_metric_data(list(merged.values()))


def cached_series(
    key: tuple[str, str, str, str],
    read: Any,
    now: float | None = None,
    max_age_s: float = REFRESH_S,
) -> dict[str, list[tuple[float, float | None]]]:
    """``read()``'s answer, asked again only when the kept one is older than
    ``max_age_s`` (each GetMetricData is billed)."""
    now = time.time() if now is None else now
    with _lock:
        kept = _cache.get(key)
    if kept is not None and now - kept[0] < max_age_s:
        return kept[1]
    series = read()
    with _lock:
        _cache[key] = (now, series)
    return series


__all__ = [
    "CLOUDWATCH_USD_PER_1000_METRICS",
    "NOTE",
    "QUERIES",
    "cached_series",
    "metric_queries",
    "read_series",
    "series_from_metric_data",
    "window",
]
