"""A deployment's dashboard: how it is doing now, its log, versions, and Score a file.

Opened from a past deployment on the Start page and from the Result page. Everything
on it comes from ``app.endpoint.dashboard.snapshot`` (status, the server's ``/metrics``, the log
tail, versions, cost), taken on a worker thread every few seconds: the window never
waits on the network. Stop/Start (where the platform can) are apart from Tear down,
which asks first, as everywhere else.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from wizards import actions, ask, notify
from wizards.batch import BatchPanel
from wizards.pages.base import busy_bar, note
from wizards.resources import icon
from wizards.workers import WorkerOwner

REFRESH_MS = 5000


def when_words(iso: str | None) -> str:
    """2026-11-29T01:44:16Z -> 2026-11-29 02:44 (local time)."""
    if not iso:
        return ""
    try:
        t = time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return iso
    import calendar

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(calendar.timegm(t)))


class DashboardDialog(QDialog, WorkerOwner):
    """One deployment, live. ``changed`` is emitted after Stop, Start or Tear down."""

    changed = Signal()

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.snap: Any = None
        from app.endpoint.metrics_read import MetricsBook

        self.book = MetricsBook()  # used by one snapshot at a time (see refresh)
        self.removed: list[str] | None = None
        self.setObjectName("dashboard")
        self.setWindowTitle(f"{name} — ModelShip")
        self.resize(860, 600)
        lay = QVBoxLayout(self)
        self.heading = QLabel(f"<h2 style='margin:0'>{name}</h2>")
        self.heading.setWordWrap(True)
        lay.addWidget(self.heading)
        self.status_note = note("Checking…", "info")
        self.status_note.setObjectName("dashboardStatus")
        lay.addWidget(self.status_note)

        now = QGroupBox("Now")
        form = QFormLayout(now)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        url_row = QHBoxLayout()
        self.url = QLineEdit()
        self.url.setObjectName("dashboardUrl")
        self.url.setReadOnly(True)
        self.copy_url = QPushButton(icon("copy"), "Copy")
        self.copy_url.clicked.connect(lambda: self._copy(self.url.text()))
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_url)
        form.addRow("Address:", url_row)
        self.values: dict[str, QLabel] = {}
        for key, title in (
            ("uptime", "Up for:"),
            ("requests", "Requests:"),
            ("errors", "Refused or failed:"),
            ("cost", "Running cost:"),
            ("where", "Where:"),
        ):
            label = QLabel("…")
            label.setObjectName(f"dashboard-{key}")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = label
            form.addRow(title, label)
        lay.addWidget(now)

        buttons = QHBoxLayout()
        self.stop_button = QPushButton("S&top")
        self.stop_button.setObjectName("dashboardStop")
        self.stop_button.setToolTip("Stop it for now; it keeps everything to start again")
        self.start_button = QPushButton("&Start")
        self.start_button.setObjectName("dashboardStart")
        self.start_button.setToolTip("Start it again; it answers at the same address")
        self.delete_button = QPushButton("&Tear down…")
        self.delete_button.setObjectName("dashboardDelete")
        self.delete_button.setToolTip("Remove it and everything it created")
        self.refresh_button = QPushButton("&Refresh")
        self.stop_button.clicked.connect(self.stop)
        self.start_button.clicked.connect(self.start)
        self.delete_button.clicked.connect(self.delete)
        self.refresh_button.clicked.connect(self.refresh)
        for b in (self.stop_button, self.start_button, self.delete_button, self.refresh_button):
            buttons.addWidget(b)
        self.bar = busy_bar()
        buttons.addWidget(self.bar, 1)
        self.updated = QLabel("")
        self.updated.setStyleSheet("color: #57606a;")
        buttons.addWidget(self.updated)
        lay.addLayout(buttons)
        self.power_note = QLabel("")
        self.power_note.setObjectName("dashboardPowerNote")
        self.power_note.setWordWrap(True)
        self.power_note.setStyleSheet("color: #57606a;")
        lay.addWidget(self.power_note)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("dashboardTabs")
        self.log = QPlainTextEdit()
        self.log.setObjectName("dashboardLog")
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.tabs.addTab(self.log, "Log")
        from wizards.charts import UsageCharts

        self.charts = UsageCharts()
        # scrolls in a small window (800×600): each chart keeps a readable height
        charts_scroll = QScrollArea()
        charts_scroll.setObjectName("dashboardChartsScroll")
        charts_scroll.setWidgetResizable(True)
        charts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        charts_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        charts_scroll.setWidget(self.charts)
        self.tabs.addTab(charts_scroll, "Last hour")
        from wizards.drift import DriftPanel

        # made when the tab is shown (pulling captured requests may go over the network)
        self.drift = DriftPanel(name)
        self.tabs.addTab(self.drift, "Data drift")
        self.tabs.currentChanged.connect(self._tab_shown)
        self.versions = QTableWidget(0, 4)
        self.versions.setObjectName("dashboardVersions")
        self.versions.setHorizontalHeaderLabels(["Version", "Deployed", "Where", "Model file"])
        self.versions.verticalHeader().setVisible(False)
        self.versions.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.versions.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.tabs.addTab(self.versions, "Versions")
        self.batch = BatchPanel(name)
        self.tabs.addTab(self.batch, "Score a file")
        lay.addWidget(self.tabs, 1)
        close_row = QHBoxLayout()
        close_row.addStretch(1)
        close = QPushButton("&Close")
        close.clicked.connect(self.close)
        close_row.addWidget(close)
        lay.addLayout(close_row)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._update()
        self.refresh()

    # ---- refreshing ----------------------------------------------------------------
    def _work(self, name: str) -> list[Any]:
        return [w for w in self.busy_workers() if w.name.startswith(f"modelship-{name}-")]

    def is_busy(self) -> bool:
        return bool(self.busy_workers())

    def _tab_shown(self, index: int) -> None:
        if self.tabs.widget(index) is self.drift and self.drift.report is None:
            self.drift.refresh()

    def refresh(self) -> None:
        """Take a new snapshot (not while one is on its way)."""
        if self._work("snapshot") or self.removed is not None:
            return
        from app.endpoint.dashboard import snapshot

        name, book = self.name, self.book
        self.start_worker(
            lambda progress, cancel: snapshot(name, book=book),
            name="snapshot",
            on_result=self.show_snapshot,
            on_error=self._snapshot_failed,
        )

    def _snapshot_failed(self, exc: BaseException) -> None:
        self.status_note.say(f"Cannot tell how it is doing: {getattr(exc, 'message', exc)}", "fail")

    def show_snapshot(self, snap: Any) -> None:
        from app.endpoint.metrics_read import duration_words

        self.snap = snap
        no_figures = snap.metrics_note if snap.metrics is None and snap.answering else ""
        if snap.history_note:  # the platform's own metrics (SageMaker: CloudWatch)
            no_figures = "" if snap.history else snap.history_note
        self.charts.show_history(snap.history, snap.quiet, snap.taken, no_figures)
        self.heading.setText(f"<h2 style='margin:0'>{snap.name}</h2>")
        if snap.removed:
            self.status_note.say(f"<b>Removed.</b> {snap.detail}. Nothing of it runs.", "info")
        elif snap.answering:
            self.status_note.say("<b>Running and answering.</b>", "ok")
        elif snap.stopped:
            self.status_note.say("<b>Stopped.</b> Click Start to run it again.", "warning")
        elif snap.running:
            self.status_note.say(f"<b>Running, but not answering.</b> {snap.detail}", "warning")
        else:
            self.status_note.say(f"<b>Not running.</b> {snap.detail}", "fail")
        self.url.setText(snap.url or "")
        m = snap.metrics
        self.values["uptime"].setText(
            duration_words(snap.uptime()) if snap.uptime() is not None else "—"
        )
        self.values["requests"].setText(
            f"{m.requests} ({m.rows} row{'s' if m.rows != 1 else ''} predicted)"
            if m
            else snap.metrics_note or "—"
        )
        self.values["errors"].setText(str(m.errors) if m else "—")
        self.values["cost"].setText(snap.cost or "—")
        self.values["where"].setText(f"{snap.title}: {snap.detail}" if snap.detail else snap.title)
        if snap.can_stop or snap.removed:
            self.power_note.setText("")
        else:
            self.power_note.setText(
                f"{snap.title} cannot stop a deployment and keep it: "
                + (
                    "it is billed while it exists. Tear it down to stop the billing."
                    if snap.billing
                    else "Tear it down to stop it; deploy it again later."
                )
            )
        at_end = self.log.verticalScrollBar().value() >= self.log.verticalScrollBar().maximum()
        if self.log.toPlainText() != snap.logs:
            self.log.setPlainText(snap.logs or "No log lines yet.")
            if at_end:
                self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())
        self.versions.setRowCount(len(snap.versions))
        for i, v in enumerate(snap.versions):
            cells = [
                f"{v.version} (current)" if v.current and not snap.removed else str(v.version),
                when_words(v.created),
                v.target,
                v.model,
            ]
            for j, text in enumerate(cells):
                self.versions.setItem(i, j, QTableWidgetItem(text))
        self.updated.setText(f"Updated {time.strftime('%H:%M:%S')}")
        self._update()

    def _update(self) -> None:
        snap = self.snap
        busy = bool(self._work("power") or self._work("delete"))
        can = snap is not None and snap.can_stop and not snap.removed and self.removed is None
        self.stop_button.setVisible(snap is None or snap.can_stop)
        self.start_button.setVisible(snap is None or snap.can_stop)
        self.stop_button.setEnabled(can and not busy and not snap.stopped)
        self.start_button.setEnabled(can and not busy and (snap.stopped or not snap.running))
        gone = self.removed is not None or (snap is not None and snap.removed)
        self.delete_button.setEnabled(snap is not None and not busy and not gone)
        self.batch.setEnabled(not gone)
        if snap is not None and not gone and not snap.answering:
            self.batch.block(
                "It is stopped: click Start above, then score the file."
                if snap.stopped
                else "It does not answer right now: scoring waits until it does."
            )
        else:
            self.batch.block("")
        self.bar.setVisible(busy)

    # ---- actions -------------------------------------------------------------------
    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.copy_url.setText("Copied")

    def _power(self, what: str, fn: Any) -> None:
        name = self.name
        self.start_worker(
            lambda progress, cancel: fn(name, progress, cancel),
            name="power",
            on_error=lambda exc: notify.show_error(self, exc, what),
            on_finished=self._power_done,
        )
        self._update()

    def _power_done(self) -> None:
        self._update()
        self.changed.emit()
        self.refresh()

    def stop(self) -> None:
        from app.run.power import stop_deployment

        self.status_note.say("Stopping…", "info")
        self._power("stopping", lambda name, progress, cancel: stop_deployment(name, progress))

    def start(self) -> None:
        from app.run.power import start_deployment

        self.status_note.say("Starting… (it counts once it answers)", "info")
        self._power("starting", start_deployment)

    def delete(self) -> None:
        from app.store.records import find_record
        from wizards.pages.start import teardown_words

        record = find_record(self.name)
        if record is None or not ask.confirm(
            self,
            f"Tear down “{record.name}”?",
            teardown_words(record),
            yes="Tear down",
            no="Keep it",
        ):
            return
        name = self.name
        self.start_worker(
            lambda progress, cancel: actions.teardown(name, progress),
            name="delete",
            on_result=self._deleted,
            on_error=lambda exc: notify.show_error(self, exc, "tearing down"),
            on_finished=self._power_done,
        )
        self._update()

    def _deleted(self, removed: list[str]) -> None:
        self.removed = list(removed)
        what = "; ".join(removed) if removed else "nothing was left to remove"
        self.status_note.say(f"<b>Removed.</b> {what}.", "ok")
        self.url.setText("")
        self.timer.stop()

    # ---- closing -------------------------------------------------------------------
    def done(self, result: int) -> None:
        self.timer.stop()
        self.batch.stop_workers()
        self.drift.timer.stop()
        self.drift.stop_workers()
        self.stop_workers()
        super().done(result)

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        self.batch.stop_workers()
        self.drift.timer.stop()
        self.drift.stop_workers()
        self.stop_workers()
        super().closeEvent(event)


def open_dashboard(parent: QWidget | None, name: str) -> DashboardDialog:
    """Show the dashboard of ``name`` (not modal: the wizard stays usable)."""
    dialog = DashboardDialog(name, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


if __name__ == "__main__":
    from PySide6.QtWidgets import QApplication

    qt = QApplication(sys.argv)
    win = DashboardDialog(sys.argv[1] if len(sys.argv) > 1 else "iris")
    win.show()
    sys.exit(qt.exec())
