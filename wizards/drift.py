"""The dashboard's "Data drift" tab: whether the inputs a deployment now gets still look
like the rows its model was proven on (issue 24).

The report is the core's (:func:`app.run.monitor.deployment_drift`, the same that
``modelship monitor`` prints), made on a worker thread when the tab is shown, every
minute while it stays shown, and on "Check again": pulling captured requests may go over
the network, so the window never waits on it. This widget only shows it: a headline in a
coloured note, a table of columns with their level in words, and per column a small bar
chart of the proof's shares against the captured shares per bin (or category), plus the
model's answers per hour. When capture is off it says how to turn it on.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizards.charts import make_still
from wizards.pages.base import busy_bar, note
from wizards.workers import WorkerOwner

REFRESH_MS = 60_000
BASE_COLOUR = "#8c959f"  # the proof's shares: grey
LEVEL_COLOUR = {"ok": "#1a7f37", "watch": "#bf8700", "drift": "#cf222e", "unknown": "#57606a"}
LEVEL_WORDS = {"ok": "OK", "watch": "Watch", "drift": "Drift", "unknown": "Not judged"}
NOTE_KIND = {"ok": "ok", "watch": "warning", "drift": "fail", "unknown": "info"}
LINE_COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a")
TURN_ON = (
    "To turn it on, deploy it again with “Capture share” above 0 in its target's settings "
    "(under “Show more settings”; 0.1 keeps one request in ten). Only the inputs and the "
    "answers are kept, never a key or a header."
)
SUGGESTED_RATE = 0.1
CAPTURE_OFF = "<b>Capture is off.</b> This deployment keeps none of the requests it answers."
TABLE_HEADERS = ["Column", "Level", "What changed", "PSI"]


def _short(text: str, n: int = 12) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _number(x: float) -> str:
    from app.plain import plain_number

    return plain_number(x)


class BinChart(pg.PlotWidget):
    """One column: the proof's share of rows per bin (grey) beside the captured share
    (in the column's level colour)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.legend = make_still(self, "driftChart", (260, 200), 2)
        item = self.getPlotItem()
        item.showGrid(y=True, alpha=0.2)
        item.setLabel("left", "% of rows", color="#24292f")
        self.base_bars = pg.BarGraphItem(x=[], height=[], width=0.38, brush=BASE_COLOUR)
        self.got_bars = pg.BarGraphItem(x=[], height=[], width=0.38, brush=LEVEL_COLOUR["ok"])
        item.addItem(self.base_bars)
        item.addItem(self.got_bars)
        self.legend.addItem(self.base_bars, "In the proof")
        self.legend.addItem(self.got_bars, "Captured")
        self.column: Any = None
        self.title = ""

    def show_column(self, column: Any) -> None:
        self.column = column
        k = len(column.bins)
        xs = list(range(k))
        colour = LEVEL_COLOUR.get(column.level, LEVEL_COLOUR["unknown"])
        self.base_bars.setOpts(
            x=[x - 0.2 for x in xs], height=[100 * v for v in column.baseline], brush=BASE_COLOUR
        )
        self.got_bars.setOpts(
            x=[x + 0.2 for x in xs], height=[100 * v for v in column.captured], brush=colour
        )
        self.title = f"{column.name}: {LEVEL_WORDS.get(column.level, column.level)}"
        item = self.getPlotItem()
        item.setXRange(-0.6, k - 0.4, padding=0)
        top = max([*column.baseline, *column.captured, 0.01]) * 100
        item.setYRange(0, top, padding=0.08)
        item.getAxis("bottom").setTicks([self._ticks(column)])

    @staticmethod
    def _ticks(column: Any) -> list[tuple[float, str]]:
        edges = list(column.edges or [])
        if column.kind == "number" and len(edges) > 2:
            # the bins' boundaries, in the column's own values
            inner = [(i + 0.5, _number(edges[i + 1])) for i in range(len(edges) - 2)]
            if len(inner) > 6:  # a narrow chart: every other boundary
                inner = inner[::2]
            extra = [(i, "missing") for i, b in enumerate(column.bins) if b == "missing"]
            return inner + extra
        labels = [(i, _short(b)) for i, b in enumerate(column.bins)]
        return labels if len(labels) <= 8 else labels[::2]

    def restyle(self, size: float, scale: float) -> None:
        item = self.getPlotItem()
        item.setTitle(self.title, color="#24292f", size=f"{size * 1.05:.1f}pt")
        tick = QFont(self.font())
        tick.setPointSizeF(size * 0.85)
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setTickFont(tick)
            axis.setPen(pg.mkPen("#57606a", width=max(1.0, scale)))
            axis.setTextPen(pg.mkPen("#24292f"))
        item.getAxis("left").setLabel("% of rows", **{"font-size": f"{size * 0.9:.1f}pt"})
        # room for the tick words' descenders ("basic", "premium")
        item.getAxis("bottom").setHeight(int(size * 0.85 * 1.4 * 1.5 + 10))
        for _, label in self.legend.items:
            label.setAttr("size", f"{size * 0.85:.1f}pt")
            label.setText(label.text)


class AnswersChart(pg.PlotWidget):
    """The model's answers per hour: one line per answer, its share of that hour's rows."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.legend = make_still(self, "driftAnswers", (260, 200), 3)
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("left", "% of rows", color="#24292f")
        item.setLabel("bottom", "hours ago", color="#24292f")
        self.curves: dict[str, pg.PlotDataItem] = {}

    def show_answers(self, predictions: Any, now: float | None = None) -> None:
        item = self.getPlotItem()
        for curve in self.curves.values():
            item.removeItem(curve)
        self.legend.clear()
        self.curves = {}
        hours = list(predictions.hours) if predictions is not None else []
        if not hours:
            return
        now = hours[-1].t if now is None else now
        keys = list(predictions.bins)[: len(LINE_COLOURS)]
        for colour, key in zip(LINE_COLOURS, keys, strict=False):
            xs = [(h.t - now) / 3600.0 for h in hours]
            ys = [100 * h.shares.get(key, 0.0) for h in hours]
            curve = item.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour)
            self.legend.addItem(curve, _short(key, 20))
            self.curves[key] = curve
        first = min((h.t - now) / 3600.0 for h in hours)
        item.setXRange(min(first, -1.0), 0, padding=0.05)
        item.setYRange(0, 100, padding=0.05)

    def restyle(self, size: float, scale: float) -> None:
        item = self.getPlotItem()
        item.setTitle("The model's answers per hour", color="#24292f", size=f"{size * 1.05:.1f}pt")
        tick = QFont(self.font())
        tick.setPointSizeF(size * 0.85)
        for side, words in (("left", "% of rows"), ("bottom", "hours ago")):
            axis = item.getAxis(side)
            axis.setTickFont(tick)
            axis.setPen(pg.mkPen("#57606a", width=max(1.0, scale)))
            axis.setTextPen(pg.mkPen("#24292f"))
            axis.setLabel(words, **{"font-size": f"{size * 0.9:.1f}pt"})
        for curve in self.curves.values():
            curve.setSymbolSize(5 * scale)
        for _, label in self.legend.items:
            label.setAttr("size", f"{size * 0.85:.1f}pt")
            label.setText(label.text)


class DriftPanel(QWidget, WorkerOwner):
    """The "Data drift" tab of one deployment's dashboard."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.report: Any = None
        self.problem = ""  # "off" | "nothing" | "error" | ""
        self.scale = 1.0
        self.setObjectName("driftPanel")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setObjectName("driftScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        lay = QVBoxLayout(body)

        self.headline = note("Not checked yet.", "info")
        self.headline.setObjectName("driftHeadline")
        lay.addWidget(self.headline)
        self.hint = QLabel("")
        self.hint.setObjectName("driftHint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #57606a;")
        lay.addWidget(self.hint)
        row = QHBoxLayout()
        self.check = QPushButton("Check &again")
        self.check.setObjectName("driftCheck")
        self.check.setToolTip("Pull the captured requests again and compare")
        self.check.clicked.connect(self.refresh)
        row.addWidget(self.check)
        self.turn_on = QPushButton("Turn capture o&n…")
        self.turn_on.setObjectName("driftTurnOn")
        self.turn_on.setToolTip(
            "Open its settings in the wizard with “Capture share” at 0.1, to review and deploy"
        )
        self.turn_on.clicked.connect(self.turn_capture_on)
        self.turn_on.setVisible(False)
        row.addWidget(self.turn_on)
        self.bar = busy_bar()
        self.bar.setMaximumWidth(200)
        row.addWidget(self.bar)
        row.addStretch(1)
        self.when = QLabel("")
        self.when.setStyleSheet("color: #57606a;")
        row.addWidget(self.when)
        lay.addLayout(row)

        self.table = QTableWidget(0, len(TABLE_HEADERS))
        self.table.setObjectName("driftTable")
        self.table.setHorizontalHeaderLabels(TABLE_HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(True)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        for j, mode in enumerate(
            (
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Stretch,
                QHeaderView.ResizeMode.ResizeToContents,
            )
        ):
            header.setSectionResizeMode(j, mode)
        lay.addWidget(self.table)

        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.grid_host)
        lay.addStretch(1)
        self.answers = AnswersChart()
        self.charts: list[BinChart] = []
        self.per_row = 0

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._show_nothing()

    # ---- refreshing ----------------------------------------------------------------
    def _tick(self) -> None:
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        """Make a new report on a worker (not while one is on its way)."""
        if self.busy_workers():
            return
        from app.run.monitor import deployment_drift
        from app.store.records import load_record

        name = self.name
        self.bar.setVisible(True)
        self.check.setEnabled(False)
        self.start_worker(
            lambda progress, cancel: deployment_drift(load_record(name)),
            name="drift",
            on_result=self.show_report,
            on_error=self.show_error,
            on_finished=self._finished,
        )

    def _finished(self) -> None:
        self.bar.setVisible(False)
        self.check.setEnabled(True)
        self.when.setText(f"Checked {time.strftime('%H:%M:%S')}")

    def show_error(self, exc: BaseException) -> None:
        from app.run.monitor import CaptureOff, NothingCaptured
        from wizards.nextstep import for_wizard

        self.turn_on.setVisible(False)
        if isinstance(exc, CaptureOff):
            self.problem = "off"
            self.headline.say(CAPTURE_OFF, "warning")
            self.hint.setText(TURN_ON)
            self.turn_on.setVisible(self._wizard() is not None)
        elif isinstance(exc, NothingCaptured):
            self.problem = "nothing"
            self.headline.say(f"<b>Nothing captured yet.</b> {exc.message}", "info")
            self.hint.setText(
                "Captured requests appear here once it has answered some predictions "
                "(Score a file, or your own calls)."
            )
        else:
            self.problem = "error"
            message = getattr(exc, "message", str(exc))
            hint = getattr(exc, "hint", None)
            self.headline.say(f"<b>Cannot compare yet.</b> {message}", "fail")
            self.hint.setText(for_wizard(hint) if hint else "")
        self.report = None
        self._clear()

    # ---- turning capture on ----------------------------------------------------------
    def _wizard(self) -> Any:
        """The wizard's window this dashboard was opened from (None when on its own)."""
        parent = self.window().parentWidget()
        return parent if parent is not None and hasattr(parent, "state") else None

    def turn_capture_on(self) -> None:
        """Open the deployment's settings in the wizard with capture on (0.1), as
        Redeploy does: the person reviews them and deploys; nothing changes until then."""
        from app.store.profile import Profile
        from app.store.records import find_record
        from wizards import ask

        win, record = self._wizard(), find_record(self.name)
        if win is None or record is None:
            return
        state = win.state
        if (
            state.model_path is not None
            and state.record is None
            and not ask.confirm(
                self,
                "Discard this deployment?",
                f"You have started a deployment of {state.model_path.name}. Open the "
                f"settings of “{record.name}” instead and lose those answers?",
                yes="Open its settings",
                no="Keep it",
            )
        ):
            return
        try:
            profile = Profile.model_validate(record.profile)
        except Exception as exc:
            from wizards import notify

            notify.show_error(self, exc, "reading the deployment's profile")
            return
        state.adopt_profile(profile, Path(record.profile_path) if record.profile_path else None)
        state.settings["capture_rate"] = SUGGESTED_RATE
        state.replace_ok_for = record.name  # deploying it again replaces it: the point
        win.go("settings")
        more = getattr(win.pages.get("settings"), "more_button", None)
        if more is not None and more.isVisible():
            more.setChecked(True)  # the capture settings are among the advanced ones
        self.window().close()
        win.activateWindow()

    # ---- showing -------------------------------------------------------------------
    def _show_nothing(self) -> None:
        self.table.setVisible(False)
        self.grid_host.setVisible(False)

    def _clear(self) -> None:
        self.table.setRowCount(0)
        self._show_nothing()

    def show_report(self, report: Any) -> None:
        self.report = report
        self.problem = ""
        self.turn_on.setVisible(False)
        kind = NOTE_KIND.get(report.level, "info")
        self.headline.say(report.headline, kind)
        span = ""
        if report.first_t and report.last_t:
            fmt = "%Y-%m-%d %H:%M"
            span = (
                f"From {report.requests} captured requests, "
                f"{time.strftime(fmt, time.localtime(report.first_t))} to "
                f"{time.strftime(fmt, time.localtime(report.last_t))}. "
            )
        self.hint.setText(span + " ".join(report.notes))
        rows = list(report.columns)
        preds = report.predictions
        self.table.setRowCount(len(rows) + (1 if preds is not None else 0))
        for i, c in enumerate(rows):
            self._row(i, c.name, c.level, c.words, c.psi)
        if preds is not None:
            self._row(len(rows), "The model's answers", preds.level, preds.words, preds.psi)
        self.table.setVisible(bool(rows))
        self._fit_table()
        # one chart per column, those that changed most first (on a small screen the first
        # charts are the ones in view), then the answers per hour
        while len(self.charts) < len(rows):
            self.charts.append(BinChart())
        first = {"drift": 0, "watch": 1}
        in_order = sorted(rows, key=lambda c: first.get(c.level, 2))
        for chart, c in zip(self.charts, in_order, strict=False):
            chart.show_column(c)
        self.answers.show_answers(preds)
        self.per_row = 0  # lay out again
        self._layout_charts()
        self.grid_host.setVisible(bool(rows))
        self._restyle()

    def _row(self, i: int, name: str, level: str, words: str, value: float | None) -> None:
        cells = [
            name,
            LEVEL_WORDS.get(level, level),
            words,
            "" if value is None or not math.isfinite(value) else f"{value:.2f}",
        ]
        for j, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if j == 1:
                colour = QColor(LEVEL_COLOUR.get(level, LEVEL_COLOUR["unknown"]))
                item.setForeground(QBrush(colour))
                f = item.font()
                f.setBold(True)
                item.setFont(f)
            if j == 2:
                item.setToolTip(words)
            self.table.setItem(i, j, item)

    def _fit_table(self) -> None:
        """The whole table, no scroll bar of its own (the tab scrolls)."""
        self.table.resizeRowsToContents()
        h = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        h += sum(self.table.rowHeight(i) for i in range(self.table.rowCount()))
        self.table.setFixedHeight(h + 2)

    def _layout_charts(self) -> None:
        width = max(self.width(), 300)
        per_row = max(1, min(4, int(width // (420 * max(self.scale, 1.0) ** 0.5))))
        if per_row == self.per_row:
            return
        self.per_row = per_row
        while self.grid.count():
            self.grid.takeAt(0)
        shown = self.charts[: len(self.report.columns)] if self.report else []
        widgets = [*shown, self.answers] if self.report and self.report.predictions else shown
        for k, w in enumerate(widgets):
            self.grid.addWidget(w, k // per_row, k % per_row)
            w.setVisible(True)
        for w in self.charts[len(shown) :]:
            w.setVisible(False)
        if self.answers not in widgets:
            self.answers.setVisible(False)
        for r in range(self.grid.rowCount()):
            self.grid.setRowMinimumHeight(r, self.chart_height())

    def chart_height(self) -> int:
        return int(228 * self.scale**0.5)

    # ---- sizes ---------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        scale = min(2.5, max(1.0, self.width() / 1000.0))
        if abs(scale - self.scale) > 0.05:
            self.scale = scale
            self.per_row = 0
            self._restyle()
        if self.report is not None:
            self._layout_charts()
            self._fit_table()

    def _restyle(self) -> None:
        base = QFont(self.font())
        points = max(8.0, base.pointSizeF() if base.pointSizeF() > 0 else 9.0)
        size = points * self.scale
        for chart in [*self.charts, self.answers]:
            chart.restyle(size, self.scale)
            chart.setFixedHeight(self.chart_height())
        # the words grow less than the charts: they sit beside the dashboard's own text
        f = QFont(base)
        f.setPointSizeF(points * (1.0 + (self.scale - 1.0) * 0.4))
        for w in (self.table, self.table.horizontalHeader(), self.headline.label, self.hint):
            w.setFont(f)
        for w in (self.check, self.when):
            w.setFont(f)
        if self.report is not None:
            self._fit_table()

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        self.stop_workers()
        super().closeEvent(event)


__all__ = ["CAPTURE_OFF", "TURN_ON", "AnswersChart", "BinChart", "DriftPanel"]
