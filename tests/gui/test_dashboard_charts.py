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
    t0 = 1_000_000.0
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
    assert math.isclose(p50[0], 1000 * (history.intervals[0].latency(0.5) or -1))
    assert math.isnan(p50[1])  # no requests that minute: a gap, not a zero
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
    assert charts.data("requests") == ([0.0], [0.0])


@pytest.mark.parametrize("size", [(800, 600), (2560, 1440)])
def test_charts_fit_both_sizes(qtbot, size: tuple[int, int]) -> None:
    history, now = _history()
    charts = _charts(qtbot, *size)
    charts.show_history(history.series(), history.is_quiet(), now)
    qtbot.wait(200)
    for plot in charts.plots:
        assert plot.isVisible()
        assert plot.height() >= plot.minimumHeight() >= 120
        assert plot.width() >= 240
        assert plot.geometry().bottom() <= charts.height()
        legend = plot.getPlotItem().legend
        assert legend.isVisible() and legend.sceneBoundingRect().bottom() <= plot.height()
    if size[0] > 2000:
        assert charts.scale > 2.0  # fonts and lines grow on a wide screen
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert charts.grab().save(str(SHOTS / f"charts-{size[0]}x{size[1]}.png"))
