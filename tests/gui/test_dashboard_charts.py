"""Issue 24 item 1: the dashboard's charts of the last hour (requests and rows,
errors by kind, response time), drawn from the History of real /metrics texts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.endpoint.metrics_history import History
from app.serving.metrics import Metrics

pytestmark = pytest.mark.gui

SHOTS = Path("/tmp/shots")


def _history() -> tuple[History, float]:
    """Four scrapes a minute apart of a real server's exposition (app.serving.metrics):
    30 requests in the 1st minute, none in the 2nd, 2 refused and 1 failed in the 3rd."""
    m = Metrics("people")
    h = History()
    t0 = 999_960.0  # a whole minute: one scrape a minute
    h.add(m.render().decode(), t0)
    for i in range(30):
        m.observe("/predict", 200, 0.004 if i < 20 else 0.2)
        m.observe_batch(3)
    m.observe("/ping", 200, 0.001)
    h.add(m.render().decode(), t0 + 60)
    h.add(m.render().decode(), t0 + 120)
    m.observe("/predict", 422, 0.002)
    m.observe("/predict", 422, 0.002)
    m.observe("/predict", 500, 0.05)
    h.add(m.render().decode(), t0 + 180)
    return h, t0 + 180


def _charts(qtbot, w: int, h: int):
    from wizards.charts import UsageCharts

    charts = UsageCharts()
    qtbot.addWidget(charts)
    charts.resize(w, h)
    charts.show()
    qtbot.waitExposed(charts)
    return charts


def test_charts_show_the_history_series(qtbot) -> None:
    history, now = _history()
    charts = _charts(qtbot, 800, 600)
    charts.show_history(history.series(), history.is_quiet(), now)
    assert not charts.empty.isVisible()
    xs, ys = charts.data("requests")
    assert xs == [-2.0, -1.0, 0.0]  # minutes ago
    assert ys == [30.0, 0.0, 3.0]
    assert charts.data("rows")[1] == [90.0, 0.0, 0.0]
    assert charts.data("client")[1] == [0.0, 0.0, 2.0]
    assert charts.data("server")[1] == [0.0, 0.0, 1.0]
    p50 = charts.data("p50")[1]
    # response time in milliseconds
    assert math.isclose(p50[0], 1000 * (history.minutes()[0].latency(0.5) or -1))
    assert math.isnan(p50[1])  # no requests that minute: a gap, not a zero
    (_, (low, high)) = charts.plots[0].getPlotItem().viewRange()
    assert low <= 0 and high >= 30 * 3  # counts from zero, the highest point shown
    p99 = charts.data("p99")[1]
    assert p99[0] > p50[0]


def test_charts_empty_state(qtbot) -> None:
    charts = _charts(qtbot, 800, 600)
    assert charts.empty.isVisible() and charts.empty.text() == "No requests in the last hour"
    history = History()
    text = Metrics("people").render().decode()
    history.add(text, 0.0)
    history.add(text, 60.0)
    charts.show_history(history.series(), history.is_quiet(), 60.0)
    assert charts.empty.isVisible()
    assert charts.data("requests") == ([0.0], [0.0])  # the minute that began at 60 s
    # a platform that does not pass the figures on says so instead
    charts.show_history({}, quiet=False, note="This platform does not pass on the counts.")
    assert charts.empty.isVisible()
    assert charts.empty.text() == "This platform does not pass on the counts."
    charts.show_history(history.series(), history.is_quiet(), 60.0)
    assert charts.empty.text() == "No requests in the last hour"


@pytest.mark.parametrize("size", [(800, 600), (2560, 1440)])
def test_charts_fit_both_sizes(qtbot, size: tuple[int, int]) -> None:
    history, now = _history()
    charts = _charts(qtbot, *size)
    charts.show_history(history.series(), history.is_quiet(), now)
    qtbot.wait(200)
    for plot in charts.plots:
        assert plot.isVisible()
        assert plot.height() >= plot.minimumHeight() >= 180
        assert plot.width() >= 240
        assert plot.geometry().bottom() <= charts.height()
        legend = plot.getPlotItem().legend
        assert legend.isVisible() and legend.sceneBoundingRect().bottom() <= plot.height()
    if size[0] > 2000:
        assert charts.scale > 2.0  # fonts and lines grow on a wide screen
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert charts.grab().save(str(SHOTS / f"charts-{size[0]}x{size[1]}.png"))


@pytest.fixture
def deployed(sample_model, free_port):
    """A real local deployment of the sample model (torn down afterwards)."""
    from app.run import run_deploy, teardown
    from app.store.profile import new_profile
    from app.store.records import find_record

    profile = new_profile(sample_model, name="charts", target="local", settings={"port": free_port})
    record = run_deploy(profile)
    yield record, profile
    if find_record("charts") is not None:
        teardown("charts")


@pytest.mark.slow
def test_dashboard_charts_from_a_live_server(window, qtbot, deployed) -> None:
    from PySide6.QtWidgets import QScrollArea

    from app.endpoint.client import EndpointError
    from app.store.profile import Profile
    from targets import get_target
    from wizards.dashboard import DashboardDialog

    record, _profile = deployed
    dialog = DashboardDialog("charts", window)
    qtbot.addWidget(dialog)
    dialog.resize(800, 600)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.snap is not None and dialog.snap.answering, timeout=30_000)
    scroll = dialog.findChild(QScrollArea, "dashboardChartsScroll")
    dialog.tabs.setCurrentWidget(scroll)
    assert scroll.widget() is dialog.charts
    assert dialog.charts.empty.isVisible()  # nothing asked yet
    client = get_target("local").client(
        record.endpoint_obj(), Profile.model_validate(record.profile)
    )
    row = {"tenure_months": 12, "monthly_charges": 50.0, "support_calls": 1, "age": 40}
    for _ in range(5):
        client.predict([{**row, "plan": "basic"}] * 2)
    with pytest.raises(EndpointError):
        client.predict([row])  # no plan: refused (a client error)

    def counted() -> bool:
        snap = dialog.snap
        if snap is not None and all(
            sum(v or 0 for _, v in snap.history.get(key, [])) > 0 for key in ("requests", "client")
        ):
            return True
        dialog.refresh()
        return False

    qtbot.waitUntil(counted, timeout=30_000)
    assert not dialog.charts.empty.isVisible()
    xs, ys = dialog.charts.data("requests")
    assert ys == [v for _, v in dialog.snap.history["requests"]] and max(ys) > 0
    assert all(-60.5 <= x <= 0.5 for x in xs)
    assert sum(dialog.charts.data("client")[1]) > 0  # the refused request
    SHOTS.mkdir(parents=True, exist_ok=True)
    for w, h in ((800, 600), (2560, 1440)):
        dialog.resize(w, h)
        qtbot.wait(300)
        assert (dialog.width(), dialog.height()) == (w, h)  # the charts do not force it larger
        for plot in dialog.charts.plots:
            assert plot.isVisible() and plot.height() >= 180 and plot.width() >= 240
        assert dialog.grab().save(str(SHOTS / f"dashboard-{w}x{h}.png"))


def test_charts_draw_sagemakers_cloudwatch_series_without_rows(qtbot) -> None:
    """SageMaker's history comes from CloudWatch (targets.sagemaker.usage): requests,
    errors and latency per minute, and no rows (CloudWatch does not count them)."""
    from targets.sagemaker.usage import series_from_metric_data

    t0 = 999_960.0

    def result(qid: str, points: list[tuple[int, float]]) -> dict:
        import datetime as dt

        return {
            "Id": qid,
            "Timestamps": [dt.datetime.fromtimestamp(t0 + 60 * i, dt.UTC) for i, _ in points],
            "Values": [v for _, v in points],
            "StatusCode": "Complete",
        }

    series = series_from_metric_data(
        [
            result("requests", [(0, 4.0), (2, 6.0)]),
            result("client", [(2, 1.0)]),
            result("p50", [(0, 2000.0), (2, 3000.0)]),  # microseconds
            result("p99", [(0, 9000.0)]),
        ]
    )
    charts = _charts(qtbot, 800, 600)
    charts.show_history(series, False, t0 + 120)
    assert not charts.empty.isVisible()
    assert charts.data("requests") == ([-2.0, 0.0], [4.0, 6.0])
    assert charts.data("client")[1] == [0.0, 1.0]
    assert charts.data("rows") == ([], [])
    assert charts.data("p50")[1] == pytest.approx([2.0, 3.0])  # milliseconds
    p99 = charts.data("p99")[1]
    assert p99[0] == pytest.approx(9.0) and math.isnan(p99[1])  # no p99 that minute: a gap
