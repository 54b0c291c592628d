"""SageMaker's dashboard charts from CloudWatch: the GetMetricData queries and the
conversion of its answers (hand-written in the shape of botocore's service model) into
the dashboard's per-minute series."""

from __future__ import annotations

import datetime as dt
from typing import Any

from targets.base import UsageHistory
from targets.sagemaker import usage

T0 = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)


def _minute(i: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=i)


def _result(qid: str, points: list[tuple[int, float]]) -> dict[str, Any]:
    return {
        "Id": qid,
        "Label": qid,
        "Timestamps": [_minute(i) for i, _ in points],
        "Values": [v for _, v in points],
        "StatusCode": "Complete",
    }


def _valid(operation: str, params: dict[str, Any]) -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("cloudwatch")
    validate_parameters(params, model.operation_model(operation).input_shape)


def test_the_queries_ask_sagemakers_metrics_per_minute_and_are_valid_getmetricdata() -> None:
    queries = usage.metric_queries("modelship-churn", "AllTraffic")
    start, end = usage.window(T0.timestamp() + 90)
    _valid(
        "GetMetricData",
        {"MetricDataQueries": queries, "StartTime": start, "EndTime": end},
    )
    asked = {(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Stat"]) for q in queries}
    assert asked == {
        ("Invocations", "Sum"),
        ("Invocation4XXErrors", "Sum"),
        ("Invocation5XXErrors", "Sum"),
        ("ModelLatency", "p50"),
        ("ModelLatency", "p95"),
        ("ModelLatency", "p99"),
    }
    for q in queries:
        stat = q["MetricStat"]
        assert stat["Period"] == 60
        assert stat["Metric"]["Namespace"] == "AWS/SageMaker"
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "EndpointName", "Value": "modelship-churn"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ]
    # whole minutes: the hour before the minute after now (61 minutes, now's included)
    assert end - start == dt.timedelta(minutes=61)
    assert end == _minute(2) and start.second == 0


def test_getmetricdata_answer_becomes_per_minute_series_in_seconds() -> None:
    answer = [
        _result("requests", [(0, 12.0), (1, 3.0), (3, 5.0)]),
        _result("client", [(1, 1.0)]),  # one 4xx in minute 1
        _result("server", [(3, 2.0)]),
        _result("p50", [(0, 1500.0), (1, 2500.0), (3, 800.0)]),  # microseconds
        _result("p95", [(0, 9000.0), (1, 4000.0)]),
        _result("p99", [(0, 20000.0), (1, 4100.0)]),
        _result("unknown", [(2, 99.0)]),  # not ours: left out
    ]
    series = usage.series_from_metric_data(answer)
    t = [_minute(i).timestamp() for i in range(4)]
    assert series["requests"] == [(t[0], 12.0), (t[1], 3.0), (t[3], 5.0)]
    assert series["client"] == [(t[0], 0.0), (t[1], 1.0), (t[3], 0.0)]
    assert series["server"] == [(t[0], 0.0), (t[1], 0.0), (t[3], 2.0)]
    assert series["p50"] == [(t[0], 0.0015), (t[1], 0.0025), (t[3], 0.0008)]
    assert series["p95"] == [(t[0], 0.009), (t[1], 0.004), (t[3], None)]
    assert series["p99"] == [(t[0], 0.02), (t[1], 0.0041), (t[3], None)]
    assert series["rows"] == []  # CloudWatch counts no rows
    history = UsageHistory(series, usage.NOTE)
    assert not history.quiet
    assert "rows per minute are not shown" in history.note


def test_an_hour_without_invocations_is_quiet_and_descending_pages_are_merged() -> None:
    empty = usage.series_from_metric_data([_result(q, []) for q, *_ in usage.QUERIES])
    assert all(v == [] for v in empty.values())
    assert UsageHistory(empty).quiet

    class Pages:  # GetMetricData's answer in two pages (NextToken), newest first
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
            _valid("GetMetricData", kwargs)
            self.calls.append(kwargs)
            if "NextToken" not in kwargs:
                return {"MetricDataResults": [_result("requests", [(5, 2.0)])], "NextToken": "n"}
            return {"MetricDataResults": [_result("requests", [(4, 1.0)])]}

    pages = Pages()
    series = usage.read_series(pages, "ep", "AllTraffic", _minute(10).timestamp())
    assert [c.get("NextToken") for c in pages.calls] == [None, "n"]
    assert series["requests"] == [(_minute(4).timestamp(), 1.0), (_minute(5).timestamp(), 2.0)]


def test_the_answer_is_kept_a_minute_as_each_getmetricdata_is_billed() -> None:
    asked: list[int] = []

    def read() -> dict[str, list[tuple[float, float | None]]]:
        asked.append(1)
        return {"requests": [(0.0, float(len(asked)))]}

    key = ("p", "r", f"ep-{id(asked)}", "AllTraffic")
    assert usage.cached_series(key, read, now=1000.0)["requests"] == [(0.0, 1.0)]
    assert usage.cached_series(key, read, now=1059.0)["requests"] == [(0.0, 1.0)]
    assert usage.cached_series(key, read, now=1060.0)["requests"] == [(0.0, 2.0)]
    assert len(asked) == 2
