"""Prometheus text exposition, written by hand (no prometheus_client in the image).

Counters are per worker process; each series carries a ``worker`` label (the pid) so
that a scraper that reaches different workers still sees monotonic series.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import defaultdict
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cum = [], 0
        sep = "," if labels else ""
        for bound, c in zip(self.buckets, self.counts, strict=False):
            cum += c
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {cum}')
        cum += self.counts[-1]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {cum}')
        out.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    def __init__(self, model: str) -> None:
        self.model = model
        self.worker = str(os.getpid())
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batch = Histogram(BATCH_BUCKETS)
        self.rows = 0
        self.in_flight = 0
        self.started = time.time()
        self.load_seconds = 0.0
        self.capture: Any = None  # app/serving/capture.Capture when capture is on

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        h = self.latency.get(route)
        if h is None:
            h = self.latency[route] = Histogram(LATENCY_BUCKETS)
        h.observe(seconds)

    def observe_batch(self, rows: int) -> None:
        # called from the run thread; a lost increment under a race is harmless here
        self.batch.observe(rows)
        self.rows += rows

    def render(self) -> bytes:
        base = f'model="{_esc(self.model)}",worker="{self.worker}"'
        out = [
            "# HELP modelship_requests_total HTTP requests answered, by route and status code.",
            "# TYPE modelship_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            out.append(
                f'modelship_requests_total{{{base},route="{_esc(route)}",code="{status}"}} {n}'
            )
        out += [
            "# HELP modelship_errors_total Requests answered with a 4xx or 5xx status.",
            "# TYPE modelship_errors_total counter",
        ]
        errs: dict[str, int] = defaultdict(int)
        for (_route, status), n in self.requests.items():
            if status >= 400:
                errs["client" if status < 500 else "server"] += n
        for kind in ("client", "server"):
            out.append(f'modelship_errors_total{{{base},kind="{kind}"}} {errs[kind]}')
        out += [
            "# HELP modelship_request_duration_seconds Time from request to response.",
            "# TYPE modelship_request_duration_seconds histogram",
        ]
        for route, h in sorted(self.latency.items()):
            out += h.lines("modelship_request_duration_seconds", f'{base},route="{_esc(route)}"')
        out += [
            "# HELP modelship_batch_rows Rows per model run (micro-batches included).",
            "# TYPE modelship_batch_rows histogram",
            *self.batch.lines("modelship_batch_rows", base),
            "# HELP modelship_rows_total Rows predicted.",
            "# TYPE modelship_rows_total counter",
            f"modelship_rows_total{{{base}}} {self.rows}",
            "# HELP modelship_requests_in_flight Requests being answered now.",
            "# TYPE modelship_requests_in_flight gauge",
            f"modelship_requests_in_flight{{{base}}} {self.in_flight}",
            "# HELP modelship_model_load_seconds Time to load and warm up the model.",
            "# TYPE modelship_model_load_seconds gauge",
            f"modelship_model_load_seconds{{{base}}} {self.load_seconds:.6f}",
            "# HELP modelship_start_time_seconds When this worker started (Unix time).",
            "# TYPE modelship_start_time_seconds gauge",
            f"modelship_start_time_seconds{{{base}}} {self.started:.3f}",
        ]
        if self.capture is not None:
            out += [
                "# HELP modelship_capture_records_total Captured requests written to disk.",
                "# TYPE modelship_capture_records_total counter",
                f"modelship_capture_records_total{{{base}}} {self.capture.records}",
                "# HELP modelship_capture_dropped_total Sampled requests not written "
                "(queue full, line too large, disk error).",
                "# TYPE modelship_capture_dropped_total counter",
                f"modelship_capture_dropped_total{{{base}}} {self.capture.dropped}",
            ]
        return ("\n".join(out) + "\n").encode("utf-8")


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
