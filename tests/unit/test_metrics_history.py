"""History of /metrics scrapes: per-minute rates, counter resets, latency quantiles."""

from __future__ import annotations

import pytest

from app.endpoint.metrics_history import History, histogram_quantile


def expo(
    worker: str, req: int, rows: int, client: int, server: int, b: tuple[int, int, int, int]
) -> str:
    """One worker's exposition; b = cumulative counts for le=0.1, 0.5, 1, +Inf."""
    base = f'model="m",worker="{worker}"'
    lat = "modelship_request_duration_seconds_bucket"
    return "\n".join(
        [
            "# TYPE modelship_requests_total counter",
            f'modelship_requests_total{{{base},route="/predict",code="200"}} {req}',
            f'modelship_requests_total{{{base},route="/ping",code="200"}} {req * 7}',
            f'modelship_errors_total{{{base},kind="client"}} {client}',
            f'modelship_errors_total{{{base},kind="server"}} {server}',
            "# TYPE modelship_request_duration_seconds histogram",
            f'{lat}{{{base},route="/predict",le="0.1"}} {b[0]}',
            f'{lat}{{{base},route="/predict",le="0.5"}} {b[1]}',
            f'{lat}{{{base},route="/predict",le="1"}} {b[2]}',
            f'{lat}{{{base},route="/predict",le="+Inf"}} {b[3]}',
            f'{lat}{{{base},route="/ping",le="0.1"}} 99',
            f'{lat}{{{base},route="/ping",le="+Inf"}} 99',
            f"modelship_rows_total{{{base}}} {rows}",
            f"modelship_start_time_seconds{{{base}}} 1000.0",
        ]
    )


def test_rates_from_one_worker() -> None:
    h = History()
    assert h.add(expo("1", 10, 100, 1, 0, (5, 8, 10, 10)), 0.0) == []
    (i,) = h.add(expo("1", 40, 400, 3, 1, (15, 28, 38, 40)), 30.0)
    assert i.seconds == 30.0
    assert i.requests_per_minute == 60.0  # 30 requests in 30 s
    assert i.rows_per_minute == 600.0
    assert i.errors_per_minute("client") == 4.0
    assert i.errors_per_minute("server") == 2.0
    # bucket deltas: 10 <=0.1, 20 <=0.5, 28 <=1, 30 in all (/ping left out)
    assert i.buckets == ((0.1, 10.0), (0.5, 20.0), (1.0, 28.0), (float("inf"), 30.0))
    assert i.latency(0.5) == pytest.approx(0.1 + 0.4 * (15 - 10) / 10)  # 0.3
    assert i.latency(0.9) == pytest.approx(0.5 + 0.5 * (27 - 20) / 8)  # 0.9375
    assert i.latency(0.95) == 1.0  # rank 28.5 falls in +Inf: the highest finite bound
    assert not h.is_quiet()


def test_two_workers_each_scrape_reaches_one() -> None:
    h = History()
    h.add(expo("1", 10, 10, 0, 0, (10, 10, 10, 10)), 0.0)
    h.add(expo("2", 20, 20, 0, 0, (0, 20, 20, 20)), 10.0)  # baseline of worker 2
    (a,) = h.add(expo("1", 16, 16, 0, 0, (16, 16, 16, 16)), 20.0)
    (b,) = h.add(expo("2", 32, 32, 1, 0, (0, 32, 32, 32)), 30.0)
    assert (a.requests, a.seconds, a.requests_per_minute) == (6.0, 10.0, 36.0)
    assert (b.requests, b.rows, b.errors) == (12.0, 12.0, {"client": 1.0, "server": 0.0})
    assert a.latency(0.5) == pytest.approx(0.05)  # all 6 under 0.1: half-way into [0, 0.1]
    assert b.latency(0.5) == pytest.approx(0.1 + 0.4 * 0.5)
    first = h.intervals[0]
    assert first.requests == 0.0 and first.latency(0.5) is None


def test_counter_reset_counts_new_value() -> None:
    h = History()
    h.add(expo("1", 50, 500, 2, 2, (50, 50, 50, 50)), 0.0)
    (i,) = h.add(expo("1", 4, 40, 1, 0, (0, 4, 4, 4)), 60.0)  # restarted: counters went down
    assert (i.requests, i.rows, i.errors) == (4.0, 40.0, {"client": 1.0, "server": 0.0})
    assert i.requests_per_minute == 4.0
    assert i.latency(0.5) == pytest.approx(0.3)


def test_empty_interval_and_quiet_history() -> None:
    h = History()
    text = expo("1", 10, 10, 0, 0, (10, 10, 10, 10))
    h.add(text, 0.0)
    (i,) = h.add(text, 15.0)
    assert (i.requests_per_minute, i.rows_per_minute) == (0.0, 0.0)
    assert i.latency(0.5) is None and i.latency(0.99) is None
    assert h.is_quiet()
    s = h.series()
    assert s["requests"] == [(0.0, 0.0)] and s["p95"] == [(0.0, None)]


def test_series_adds_up_each_minute() -> None:
    h = History()
    h.add(expo("1", 0, 0, 0, 0, (0, 0, 0, 0)), 100.0)
    h.add(expo("1", 4, 8, 1, 0, (4, 4, 4, 4)), 110.0)  # minute 1 (60..120)
    h.add(expo("1", 10, 20, 1, 1, (4, 10, 10, 10)), 119.0)  # minute 1 too
    h.add(expo("1", 12, 24, 1, 1, (4, 10, 12, 12)), 130.0)  # minute 2
    s = h.series()
    assert s["requests"] == [(60.0, 10.0), (120.0, 2.0)]  # counts in that minute
    assert s["rows"] == [(60.0, 20.0), (120.0, 4.0)]
    assert s["client"] == [(60.0, 1.0), (120.0, 0.0)]
    assert s["server"] == [(60.0, 1.0), (120.0, 0.0)]
    (_, p50), (_, late) = s["p50"]
    assert p50 == pytest.approx(0.1 + 0.4 * (5 - 4) / 6)  # 4 under 0.1, 6 in (0.1, 0.5]
    assert late == pytest.approx(0.75)  # both in (0.5, 1]


def test_keeps_last_hour_and_bounded() -> None:
    h = History(max_points=100)
    for n in range(200):
        h.add(expo("1", n, n, 0, 0, (n, n, n, n)), n * 60.0)
    assert len(h.intervals) == 61  # ends 8340..11940 s: within the hour before 11940
    assert h.intervals[0].end == 199 * 60.0 - 3600.0
    small = History(max_points=10)
    for n in range(50):
        small.add(expo("1", n, n, 0, 0, (n, n, n, n)), float(n))
    assert len(small.intervals) == 10


def test_histogram_quantile_like_prometheus() -> None:
    inf = float("inf")
    assert histogram_quantile(0.5, [(1.0, 0.0), (inf, 0.0)]) is None
    assert histogram_quantile(0.5, [(1.0, 4.0), (2.0, 8.0), (inf, 8.0)]) == 1.0
    assert histogram_quantile(0.75, [(1.0, 4.0), (2.0, 8.0), (inf, 8.0)]) == 1.5
    assert histogram_quantile(0.5, [(1.0, 0.0), (inf, 3.0)]) == 1.0
