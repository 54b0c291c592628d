"""The dashboard's charts of the last hour: requests and rows, errors, response time.

Drawn with pyqtgraph (pure Python over numpy, about 2 MB; PySide6-Addons' QtCharts
would add about 175 MB to the packaged app). The figures come from the snapshot's
``history`` (app.endpoint.metrics_history), computed in the refresh worker: this
widget only draws them. Fonts and line widths grow with the widget, so the charts
read the same on an 800×600 window and on a 2560 px wide screen.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QResizeEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

# (series key, legend words, colour)
CHARTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Requests and rows per minute",
        "per minute",
        (("requests", "Requests", "#0969da"), ("rows", "Rows predicted", "#1a7f37")),
    ),
    (
        "Errors per minute",
        "per minute",
        (
            ("client", "Refused (bad requests, 4xx)", "#bf8700"),
            ("server", "Failed (server errors, 5xx)", "#cf222e"),
        ),
    ),
    (
        "Response time",
        "milliseconds",
        (
            ("p50", "Half answered within", "#0969da"),
            ("p95", "95 in 100 answered within", "#8250df"),
            ("p99", "99 in 100 answered within", "#cf222e"),
        ),
    ),
)
LATENCY = {"p50", "p95", "p99"}
EMPTY = "No requests in the last hour"


def make_still(
    plot: pg.PlotWidget, name: str, minimum: tuple[int, int], legend_columns: int
) -> pg.LegendItem:
    """Make ``plot`` a chart to read, not to explore (no mouse zoom, buttons or menu)
    and give it a legend under the chart (never over the newest points, on the right)."""
    plot.setObjectName(name)
    plot.setMinimumSize(*minimum)
    item = plot.getPlotItem()
    item.setMouseEnabled(x=False, y=False)
    item.hideButtons()
    item.setMenuEnabled(False)
    legend = pg.LegendItem(colCount=legend_columns, labelTextColor="#24292f")
    item.layout.addItem(legend, 4, 1)
    item.legend = legend
    return legend


class UsageCharts(QWidget):
    """Three charts over the last hour (x: minutes ago), or the empty state."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dashboardCharts")
        lay = QVBoxLayout(self)
        self.empty = QLabel(EMPTY)
        self.empty.setObjectName("dashboardChartsEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #57606a;")
        lay.addWidget(self.empty)
        self.plots: list[pg.PlotWidget] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.colours: dict[str, str] = {}
        self.scale = 1.0
        for title, unit, lines in CHARTS:
            # title, axes, legend and a plot to read
            plot = pg.PlotWidget(background="w")
            legend = make_still(plot, "dashboardChart", (240, 180), len(lines))
            item = plot.getPlotItem()
            item.setTitle(title, color="#24292f")
            item.setLabel("left", unit, color="#24292f")
            item.setLabel("bottom", "minutes ago", color="#24292f")
            item.showGrid(x=True, y=True, alpha=0.2)
            item.setXRange(-60, 0, padding=0.02)
            if unit == "milliseconds":
                item.getAxis("left").enableAutoSIPrefix(False)
            for key, words, colour in lines:
                curve = item.plot([], [], connect="finite", symbol="o", symbolBrush=colour)
                legend.addItem(curve, words)
                self.curves[key] = curve
                self.colours[key] = colour
            self.plots.append(plot)
            lay.addWidget(plot, 1)
        self._restyle()
        self.show_history({}, quiet=True)

    def show_history(
        self,
        history: dict[str, list[tuple[float, float | None]]],
        quiet: bool,
        now: float | None = None,
        note: str = "",
    ) -> None:
        """Draw the snapshot's series (x: minutes before ``now``); ``note`` says why
        there are no figures at all (a platform that does not pass them on)."""
        now = time.time() if now is None else now
        self.empty.setText(note or EMPTY)
        self.empty.setVisible(quiet or bool(note))
        for key, curve in self.curves.items():
            points = history.get(key, [])
            xs = np.array([(t - now) / 60.0 for t, _ in points], dtype=float)
            factor = 1000.0 if key in LATENCY else 1.0  # seconds, shown in milliseconds
            ys = np.array([math.nan if v is None else v * factor for _, v in points], dtype=float)
            if not np.isfinite(ys).any():  # nothing to draw (pyqtgraph warns on all-NaN)
                xs, ys = xs[:0], ys[:0]
            curve.setData(xs, ys)
        for plot, (_, _, lines) in zip(self.plots, CHARTS, strict=True):
            # from zero up (counts and times), a little above the highest point
            top = max(
                (y for key, _, _ in lines for y in self.data(key)[1] if math.isfinite(y)),
                default=0.0,
            )
            item = plot.getPlotItem()
            item.setXRange(-60, 0, padding=0.02)
            item.setYRange(0, top if top > 0 else 1.0, padding=0.08)  # 0 shows

    def data(self, key: str) -> tuple[list[float], list[float]]:
        """What a line shows now (for tests and the curious)."""
        xs, ys = self.curves[key].getData()
        if xs is None or ys is None:
            return [], []
        return [float(x) for x in xs], [float(y) for y in ys]

    # ---- sizes ---------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        scale = min(2.5, max(1.0, self.width() / 1000.0))
        if abs(scale - self.scale) > 0.05:
            self.scale = scale
            self._restyle()

    def _restyle(self) -> None:
        base = QFont(self.font())
        size = max(8.0, base.pointSizeF() if base.pointSizeF() > 0 else 9.0) * self.scale
        tick = QFont(base)
        tick.setPointSizeF(size * 0.9)
        width = 2.0 * self.scale
        for plot, (title, unit, _) in zip(self.plots, CHARTS, strict=True):
            item = plot.getPlotItem()
            item.setTitle(title, color="#24292f", size=f"{size * 1.1:.1f}pt")
            for side, words in (("left", unit), ("bottom", "minutes ago")):
                axis = item.getAxis(side)
                axis.setTickFont(tick)
                axis.setPen(pg.mkPen("#57606a", width=max(1.0, self.scale)))
                axis.setTextPen(pg.mkPen("#24292f"))
                axis.setLabel(words, **{"font-size": f"{size:.1f}pt", "color": "#24292f"})
            legend = item.legend
            if legend is not None:
                for _, label in legend.items:
                    label.setAttr("size", f"{size * 0.9:.1f}pt")
                    label.setText(label.text)
        for key, curve in self.curves.items():
            colour = QColor(self.colours[key])
            curve.setPen(pg.mkPen(colour, width=width))
            curve.setSymbolSize(4 * self.scale)
            curve.setSymbolPen(pg.mkPen(colour))
        f = QFont(base)
        f.setPointSizeF(size * 1.2)
        self.empty.setFont(f)


__all__ = ["CHARTS", "EMPTY", "UsageCharts"]
