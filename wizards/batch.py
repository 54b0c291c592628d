"""Score a file: pick a CSV, get a CSV of its rows with predictions, open its folder.

The scoring is ``app.endpoint.batch.score_csv`` (what ``modelship invoke --csv -o`` runs), on a
worker thread; the bar follows its chunks and Cancel stops it between chunks, leaving
no half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.endpoint.batch import dropped_words
from wizards import notify
from wizards.nextstep import for_wizard
from wizards.pages.base import note
from wizards.workers import WorkerOwner


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def score_file(name: str, source: Path, progress: Any, cancel: Any) -> Any:
    """Worker thread: the deployment's own client (keyring, pinned certificate), then
    ``app.endpoint.batch.score_csv``."""
    from app.endpoint.batch import model_columns, score_csv
    from app.run import deployment_client

    record, client = deployment_client(name)  # a stopped one says how to start it
    for value in client.headers.values():
        if value.startswith("Bearer "):
            notify.register_secret(value.removeprefix("Bearer "))
    columns = model_columns(record)
    return score_csv(
        client, source, columns=columns, progress=progress, cancel=cancel, name=record.name
    )


class BatchPanel(QWidget, WorkerOwner):
    """Pick a CSV, Score it, watch the bar, Cancel, Open folder."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.source: Path | None = None
        self.result: Any = None
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Get predictions for a whole file: pick a CSV with a header row and the "
            "model's columns. You get a new CSV next to it with each row and its "
            "prediction."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        grid = QGridLayout()
        self.pick_button = QPushButton("&Choose a CSV file…")
        self.pick_button.setObjectName("batchPick")
        self.pick_button.clicked.connect(lambda: self.pick())
        grid.addWidget(self.pick_button, 0, 0)
        self.source_label = QLabel("No file chosen.")
        self.source_label.setObjectName("batchSource")
        self.source_label.setWordWrap(True)
        grid.addWidget(self.source_label, 0, 1)
        grid.addWidget(QLabel("Predictions go to:"), 1, 0)
        self.output_label = QLabel("—")
        self.output_label.setObjectName("batchOutput")
        self.output_label.setWordWrap(True)
        grid.addWidget(self.output_label, 1, 1)
        grid.setColumnStretch(1, 1)
        lay.addLayout(grid)
        row = QHBoxLayout()
        self.score_button = QPushButton("&Score the file")
        self.score_button.setObjectName("batchScore")
        self.score_button.clicked.connect(self.score)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("batchCancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.bar = QProgressBar()
        self.bar.setObjectName("batchProgress")
        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        row.addWidget(self.score_button)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.message = note("", "ok")
        self.message.setVisible(False)
        lay.addWidget(self.message)
        self.open_button = QPushButton("&Open folder")
        self.open_button.setObjectName("batchOpenFolder")
        self.open_button.setToolTip("Show the predictions file in the file manager")
        self.open_button.clicked.connect(self.open_folder)
        open_row = QHBoxLayout()
        open_row.addWidget(self.open_button)
        open_row.addStretch(1)
        lay.addLayout(open_row)
        lay.addStretch(1)
        self.blocked = ""  # why scoring cannot run now (the deployment is stopped), or ""
        self._update()

    # ---- state ---------------------------------------------------------------------
    def is_busy(self) -> bool:
        return bool(self.busy_workers())

    def _update(self) -> None:
        busy = self.is_busy()
        self.pick_button.setEnabled(not busy)
        self.score_button.setEnabled(self.source is not None and not busy and not self.blocked)
        self.score_button.setToolTip(self.blocked)
        self.cancel_button.setEnabled(busy)
        self.open_button.setEnabled(self.result is not None and not busy)

    def block(self, reason: str) -> None:
        """Score only while the deployment answers: ``reason`` says why not ('' lifts it)."""
        if reason == self.blocked:
            return
        before, self.blocked = self.blocked, reason
        if reason and not self.is_busy():
            self.message.say(reason, "warning")
        elif not reason and before and self.message.label.text() == before:
            self.message.setVisible(False)
        self._update()

    def pick(self, path: Path | None = None) -> None:
        from app.endpoint.batch import default_output

        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Choose a CSV file to score", "", "CSV files (*.csv);;All files (*)"
            )
            if not chosen:
                return
            path = Path(chosen)
        self.source = Path(path)
        self.result = None
        self.source_label.setText(str(self.source))
        self.output_label.setText(str(default_output(self.source)))
        self.bar.setValue(0)
        self.message.setVisible(False)
        self._update()

    # ---- scoring -------------------------------------------------------------------
    def score(self) -> None:
        if self.source is None or self.is_busy():
            return
        source, name = self.source, self.name
        self.result = None
        self.bar.setValue(0)
        self.message.say("Scoring…", "info")
        self.start_worker(
            lambda progress, cancel: score_file(name, source, progress, cancel),
            name="batch",
            on_progress=self._progress,
            on_result=self._done,
            on_error=self._failed,
            on_finished=self._update,
        )
        self._update()

    def cancel(self) -> None:
        for worker in self.busy_workers():
            worker.cancel()

    def _progress(self, kind: str, payload: Any) -> None:
        if kind != "update":
            return
        fraction, message = payload
        if fraction is not None:
            self.bar.setValue(round(fraction * 100))
        if message:
            self.message.say(message, "info")

    def _done(self, result: Any) -> None:
        self.result = result
        self.bar.setValue(100)
        dropped = getattr(result, "dropped", None)
        left_out = (
            f"<br>{_esc(dropped_words(dropped))} (they are kept in the new file)."
            if dropped
            else ""
        )
        self.message.say(
            f"<b>Done.</b> {result.rows} rows scored into {_esc(result.path.name)}.{left_out}",
            "ok",
        )

    def _failed(self, exc: BaseException) -> None:
        from app.errors import Cancelled

        self.bar.setValue(0)
        if isinstance(exc, Cancelled):
            self.message.say("Cancelled. No predictions file was written.", "warning")
            return
        from app.errors import ModelShipError

        if not isinstance(exc, ModelShipError):  # a bug: the notification path reports it
            self.message.setVisible(False)
            notify.show_error(self.window(), exc, "scoring a file")
            return
        # one message, here next to the file (no second copy in a dialog)
        hint = f"<br>{_esc(for_wizard(exc.hint))}" if exc.hint else ""
        self.message.say(f"<b>Not scored:</b> {_esc(for_wizard(exc.message))}{hint}", "fail")

    def folder_url(self) -> QUrl | None:
        if self.result is None:
            return None
        return QUrl.fromLocalFile(str(Path(self.result.path).parent))

    def open_folder(self) -> None:
        url = self.folder_url()
        if url is not None:
            QDesktopServices.openUrl(url)

    def closeEvent(self, event: Any) -> None:
        self.stop_workers()
        super().closeEvent(event)
