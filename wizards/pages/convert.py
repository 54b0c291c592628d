"""Convert and prove: make the ONNX model and show, in plain words, that it agrees.

Over 600 lines: one page; its report table and verdict words are kept beside it.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.plain import TINY, plain_number
from wizards.pages.base import Page, note
from wizards.state import WizardState

# report fields shown in the details table, in words
ROWS = [
    ("rows", "Sample rows compared"),
    ("rows_from", "Where the rows came from"),
    ("labels_agreeing", "Rows with the same label"),
    ("labels_tied", "Ties in the original, broken the other way"),
    ("max_abs_diff", "Largest difference"),
    ("max_abs_diff_probabilities", "Largest difference in probabilities"),
    ("rows_over_tolerance", "Rows differing by more than the accepted difference"),
    ("tolerance", "Accepted difference (tolerance)"),
    ("passed", "Proof passed"),
    ("precision", "Numbers taken in"),
    ("original_ms", "Original model, time per batch (ms)"),
    ("onnx_ms", "Converted model, time per batch (ms)"),
    ("onnx_size_bytes", "Converted model size"),
    ("isolation", "How the model was opened"),
]


def size_words(n: int) -> str:
    """Sizes the way the whole wizard writes them (KiB/MiB, as file managers on Linux)."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def verdict_words(report: Any, brief: bool = False) -> str:
    """The core's proof summary, in the wizard's words (sizes in KiB like the table, and
    no command-line words: the proof's summary names none)."""
    text = str(report.summary(brief=True) if brief else report.summary())
    text = re.sub(
        r"(\d+(?:\.\d+)?) (KB|MB|GB)\b",
        lambda m: f"{m.group(1)} {m.group(2)[0]}iB",
        text,
    )
    text = re.sub(
        r"on (\d+) your sample( CSV)? (inputs|rows)", r"on \1 \3 from your sample\2", text
    )
    return re.sub(r"[ \t]{2,}", " ", text)


DIFF_KEYS = {"max_abs_diff", "max_abs_diff_probabilities"}


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "onnx_size_bytes":
        return size_words(int(value))
    if key == "rows_from":
        return {"generated": "made up by ModelShip from the model's inputs", "csv": "your CSV"}.get(
            str(value), str(value)
        )
    if key == "label_agreement":
        return f"{value * 100:.1f} %"
    if key == "isolation":  # "Conversion runs isolated: no network, ..." -> "Isolated: ..."
        text = str(value).removeprefix("Conversion runs ")
        return text[:1].upper() + text[1:]
    if key == "precision":
        words = {"float64": "double precision (float64)", "float32": "single precision (float32)"}
        return words.get(str(value), str(value))
    if isinstance(value, float):
        return plain_number(value, TINY if key in DIFF_KEYS else None)
    return str(value)


def table_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of the report's figures, each said once: a classifier's largest
    difference is the one in its probabilities, so that row stands alone."""
    keys = [(k, label) for k, label in ROWS if k in data and data[k] != ""]
    if data.get("max_abs_diff_probabilities") is not None:
        keys = [(k, label) for k, label in keys if k != "max_abs_diff"]
    if not data.get("labels_tied"):
        keys = [(k, label) for k, label in keys if k != "labels_tied"]
    out = [(label, _fmt(key, data[key])) for key, label in keys]
    if data.get("labels_agreeing") is not None and data.get("rows"):
        # "500 of 500", not a share: "100.0 %" beside a failed proof read as a contradiction
        same = f"{data['labels_agreeing']} of {data['rows']}"
        out = [(label, same if label == "Rows with the same label" else v) for label, v in out]
    if data.get("passed") is False and data.get("rows_over_tolerance"):
        # a bare "no" beside "100.0 %" reads as a contradiction: say what failed
        n = data["rows_over_tolerance"]
        agreeing = data.get("labels_agreeing")
        labels_same = agreeing is not None and agreeing + data.get("labels_tied", 0) == data["rows"]
        what = "probabilities differ" if labels_same else "answers differ"
        if agreeing is None:
            what = "values differ"
        verdict = f"no: {what} on {n} row{'s' if n != 1 else ''}"
        out = [(label, verdict if label == "Proof passed" else v) for label, v in out]
    return out


def report_table(report: Any) -> QTableWidget:
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    keys = table_rows(data)
    table = QTableWidget(len(keys), 2)
    table.setObjectName("proofTable")
    table.setHorizontalHeaderLabels(["What was compared", "Result"])
    table.horizontalHeader().setVisible(False)  # the box's title says what it is
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for row, (label, value) in enumerate(keys):
        table.setItem(row, 0, QTableWidgetItem(label))
        table.setItem(row, 1, QTableWidgetItem(value))
    table.verticalHeader().setDefaultSectionSize(24)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setFixedHeight(24 * len(keys) + 4)
    return table


def next_step(report: Any) -> str:
    """One way on after a failed proof, with this page's own controls."""
    tol = report.suggested_tolerance() if hasattr(report, "suggested_tolerance") else None
    if tol is not None:
        figure = plain_number(tol)
        return (
            f"if differences of up to {figure} are fine for how you use the model, set the "
            f"accepted difference to {figure} and click “Convert and prove”. Or tick "
            "“Deploy anyway” below."
        )
    return (
        "check that the sample rows are the kind of data the model was made for, or tick "
        "“Deploy anyway” below to use the converted model as it is."
    )


class ToleranceEdit(QLineEdit):
    """A number like 0.0001 or 1e-6, shown as typed (a spin box would show 0.00010000)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        # the profile accepts only a tolerance above 0: refuse 0 here, not pages later
        validator = QDoubleValidator(1e-300, 1.0, 12, self)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.setValidator(validator)
        self.setValue(value)

    def value(self) -> float | None:
        """The typed tolerance, or None when it is not a number above 0."""
        try:
            value = float(self.text())
        except ValueError:
            return None
        return value if 0 < value <= 1 else None

    def setValue(self, value: float) -> None:
        self.setText(f"{value:g}")


class ConvertPage(Page):
    page_id = "convert"
    title = "Convert and prove"
    subtitle = (
        "ModelShip turns your model into ONNX, a portable format that serves fast "
        "everywhere, then checks that it gives the same answers as your original."
    )
    icon_name = "convert"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        options = QGroupBox("Options")
        form = QFormLayout(options)
        self.tolerance = ToleranceEdit(state.tolerance)
        self.tolerance.setObjectName("tolerance")
        self.tolerance.setToolTip(
            "The largest difference between the answers of the two models that you accept "
            "(e.g. 0.0001)."
        )
        self.tolerance.setMaximumWidth(160)
        form.addRow("Accepted difference:", self.tolerance)
        self.quantize = QCheckBox("Also make a smaller (8-bit) version, and prove it too")
        self.quantize.setObjectName("quantize")
        form.addRow("", self.quantize)
        row = QHBoxLayout()
        self.run_button = QPushButton("Convert and &prove")
        self.run_button.setObjectName("convertButton")
        self.run_button.clicked.connect(self.start)
        row.addWidget(self.run_button)
        self.details_button = QPushButton("Details and &diagnostics…")
        self.details_button.setObjectName("convertDetails")
        self.details_button.clicked.connect(
            lambda: self.failed_exc is not None and self.error(self.failed_exc, "converting")
        )
        self.details_button.setVisible(False)
        row.addWidget(self.details_button)
        row.addStretch(1)
        form.addRow("", row)
        self.body.addWidget(options)
        # offered when the model was saved with other library versions than ModelShip's
        # own (app/model/envs.py): one click makes a matching environment and converts again
        self.match_button = QPushButton("Make a matching environment")
        self.match_button.setObjectName("matchEnvButton")
        self.match_button.clicked.connect(self.make_matching_environment)
        self.match_button.setVisible(False)

        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.body.addWidget(self.bar)
        self.body.addWidget(self.status)

        self.verdict = note("", "ok")
        self.verdict.setVisible(False)
        self.body.addWidget(self.verdict)
        self.body.addWidget(self.match_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.tables = QHBoxLayout()
        self.body.addLayout(self.tables)
        self.choice_box = QGroupBox("Which version to put online")
        choice = QHBoxLayout(self.choice_box)
        self.use_full = QRadioButton("The converted model (exact)")
        self.use_quant = QRadioButton("The smaller (8-bit) version")
        self.use_full.setChecked(True)
        choice.addWidget(self.use_full)
        choice.addWidget(self.use_quant)
        self.quant_note = QLabel("")
        self.quant_note.setWordWrap(True)
        self.quant_note.setStyleSheet("color: #57606a;")
        self.quant_note.setVisible(False)
        choice.addWidget(self.quant_note, 1)
        self.choice_box.setVisible(False)
        self.body.addWidget(self.choice_box)
        self.override = QCheckBox(
            "Deploy anyway: I understand the converted model may answer differently"
        )
        self.override.setObjectName("override")
        self.override.setVisible(False)
        self.override.toggled.connect(self._override)
        self.body.addWidget(self.override)
        # the converter's own messages, for whoever helps: under Details, closed
        self.log_button = QPushButton("Details: the converter's messages")
        self.log_button.setObjectName("convertLogToggle")
        self.log_button.setCheckable(True)
        self.log_button.setFlat(True)
        self.log_button.setStyleSheet("text-align: left; color: #0969da;")
        self.log_button.toggled.connect(self._show_log)
        self.body.addWidget(self.log_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.log = QPlainTextEdit()
        self.log.setObjectName("convertLog")
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(110)
        self.log.setPlaceholderText("Converter messages appear here.")
        self.log.setVisible(False)
        self.body.addWidget(self.log, 1)
        # on a tall screen the room left goes below everything, not into the tables' box
        self.body.addStretch(1)
        self.failed_report: Any = None
        self.failed_exc: BaseException | None = None
        self._for_model: Any = None
        self._unaccepted: Any = None  # a conversion whose "Deploy anyway" was unticked

    def enter(self) -> None:
        if self._for_model != self.state.model_path:  # another model: forget the last run
            self._for_model = self.state.model_path
            self.failed_report = None
            self._clear_results()
            self.log.clear()
        self.tolerance.setValue(self.state.tolerance)
        self.quantize.setChecked(self.state.quantize)
        if self.state.conversion is None and not self.is_busy() and self.failed_report is None:
            self.start()

    # ---- running ----------------------------------------------------------------
    def start(self) -> None:
        if self.is_busy() or self.state.model_path is None:
            return
        tolerance = self.tolerance.value()
        if tolerance is None:
            self.status.setText(
                "The accepted difference must be a number greater than 0 and at most 1, "
                "e.g. 0.0001."
            )
            self.tolerance.setFocus()
            return
        self.state.tolerance = tolerance
        self.state.quantize = self.quantize.isChecked()
        self.state.conversion = None
        self.failed_report = None
        self._clear_results()
        self.bar.setVisible(True)
        # busy, not a number: the converter reports few steps, and a bar that stands at
        # 5 % for a minute looks stuck
        self.bar.setRange(0, 0)
        self.status.setText("Converting…")
        self.run_button.setEnabled(False)
        out = self.state.conversion_dir() / "model.onnx"
        state = self.state

        def work(progress: Any, cancel: Any) -> Any:
            from app.run import prove  # heavy import: off the GUI thread

            # the pipeline's own route (app.run.steps.prove), from the answers so far
            return prove(state.model_section(), out, progress, cancel, trust=state.trusted)

        self.start_worker(
            work,
            name="convert",
            on_progress=self._progress,
            on_result=self._converted,
            on_error=self._failed,
            on_finished=self._finished,
        )
        self.busyChanged.emit(True)

    def _progress(self, kind: str, payload: Any) -> None:
        if kind == "step":
            self.status.setText(f"{payload}…")
            self.log.appendPlainText(f"== {payload}")
        elif kind == "update":
            _fraction, message = payload
            if message:
                self.status.setText(message)
        elif kind == "log":
            self.log.appendPlainText(str(payload))

    def _finished(self) -> None:
        self.bar.setVisible(False)
        self.run_button.setEnabled(True)
        self.busyChanged.emit(False)
        self.completeChanged.emit()

    def _clear_results(self) -> None:
        self.failed_exc = None
        self._unaccepted = None
        self.details_button.setVisible(False)
        self.match_button.setVisible(False)
        self.verdict.setVisible(False)
        self.choice_box.setVisible(False)
        self.override.setVisible(False)
        self.override.blockSignals(True)
        self.override.setChecked(False)
        self.override.blockSignals(False)
        while self.tables.count():
            item = self.tables.takeAt(0)
            if item.widget():
                item.widget().deleteLater()

    def _add_table(self, title: str, report: Any) -> None:
        box = QGroupBox(title)
        box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        lay = QHBoxLayout(box)
        lay.addWidget(report_table(report))
        self.tables.addWidget(box)

    def _converted(self, result: Any) -> None:
        self.state.conversion = result
        self.state.conversion_key = None
        try:
            from app.run import conversion_key

            self.state.conversion_key = conversion_key(self.state.build_profile())
        except Exception:  # no valid profile yet: the deploy will convert on its own
            pass
        report = result.report
        self.status.setText("")
        self._show_verdict(report, "ok" if report.passed else "warning")
        self._add_table("Details", report)
        if not report.passed:  # accepted with "Deploy anyway": shown ticked, and untickable
            self.override.blockSignals(True)
            self.override.setChecked(True)
            self.override.blockSignals(False)
            self.override.setVisible(True)
        quantized = getattr(result, "quantized", None)
        if quantized is not None:
            self._add_table("Smaller (8-bit) version", quantized.report)
            self.verdict.label.setText(
                self.verdict.label.text()
                + f"<br><b>Smaller (8-bit) version:</b> {verdict_words(quantized.report)}"
            )
            self._offer_quantized(result)

    def _offer_quantized(self, result: Any) -> None:
        """Offer the int8 version only when it is proven and really smaller."""
        full, quant = result.report, result.quantized.report
        smaller = quant.onnx_size_bytes < full.onnx_size_bytes
        ok = bool(quant.passed) and smaller
        self.use_quant.setEnabled(ok)
        if not ok:
            self.use_full.setChecked(True)
        if not smaller:
            self.quant_note.setText(
                f"The 8-bit version is not smaller ({size_words(quant.onnx_size_bytes)} "
                f"against {size_words(full.onnx_size_bytes)}: this model has few weights "
                "to shrink), so it is larger and not offered."
            )
        elif not quant.passed:
            self.quant_note.setText("The 8-bit version did not pass its proof.")
        else:
            self.quant_note.setText("")
        self.quant_note.setVisible(bool(self.quant_note.text()))
        self.choice_box.setVisible(True)

    def _show_verdict(self, report: Any, kind: str) -> None:
        lead = {
            "ok": "The conversion is proven.",
            "warning": "The conversion differs, and you chose to accept that.",
            "fail": "The converted model does not answer like your original.",
        }[kind]
        text = f"<b>{lead}</b> {verdict_words(report)}"
        if kind == "fail" and hasattr(report, "meaning"):
            # what happened, what it means, what to do (the timings are in the table)
            text = (
                f"<b>{lead}</b> {verdict_words(report, brief=True)} {_esc(report.meaning())}"
                f"<br><b>What to do:</b> {_esc(next_step(report))}"
            )
        self.verdict.say(text, kind)

    def _failed(self, exc: BaseException) -> None:
        from app.errors import Cancelled, ParityError

        self.status.setText("")
        if isinstance(exc, Cancelled):
            self.status.setText("Conversion cancelled.")
            return
        report = getattr(exc, "report", None)
        if isinstance(exc, ParityError) and report is not None:
            self.failed_report = report
            self._show_verdict(report, "fail")
            self._add_table("Details", report)
            self.override.setVisible(True)
            return  # said on the page, with the way on (the override): no second box
        if self._offer_matching(exc):
            return
        self.show_failure(exc)

    def _offer_matching(self, exc: BaseException) -> bool:
        """A model saved with other library versions: say so in plain words and offer
        the one button that makes a matching environment (no command-line words)."""
        from app.model.envs import EnvSpec, MatchingEnvironmentError, NeedsMatchingEnvironment

        if isinstance(exc, NeedsMatchingEnvironment):
            found = exc.mismatch
            spec = EnvSpec.of(found.wanted, "")
            here = ", ".join(
                f"{d} {v}" if v else f"no {d}" for d, v in sorted(found.differing.items())
            )
            self.failed_exc = exc
            if found.picked:
                said = (
                    f"<b>Your model needs {_esc(spec.words())} to be converted; ModelShip "
                    f"has {_esc(here)}.</b> The file does not say which release made it, so "
                    "ModelShip uses the newest release its converters support."
                )
                what = "with it"
            else:
                said = (
                    f"<b>Your model was saved with {_esc(spec.words())}; ModelShip has "
                    f"{_esc(here)}.</b> A model file like this one loads reliably only with "
                    "the versions it was saved with."
                )
                what = "with exactly those versions"
            self.verdict.say(
                f"{said}<br><b>What to do:</b> let ModelShip make a separate environment "
                f"{what} and convert the model there. It is kept and used again for every "
                "model that needs the same versions.",
                "warning",
            )
            self.match_button.setText(
                f"Make a matching environment (downloads about {spec.download_mb()} MB, once)"
            )
            self.match_button.setVisible(True)
            self.details_button.setVisible(True)
            return True
        if isinstance(exc, MatchingEnvironmentError):
            from wizards import notify

            cause, _hint, _details = notify.describe(exc)
            self.failed_exc = exc
            self.verdict.say(
                f"<b>The matching environment could not be made.</b> {_esc(cause)}"
                "<br><b>What to do:</b> check that this computer is online (and its proxy "
                "or package mirror settings, if your organisation uses them), then try "
                "again.",
                "fail",
            )
            self.match_button.setText("Try again to make the matching environment")
            self.match_button.setVisible(True)
            self.details_button.setVisible(True)
            return True
        return False

    def make_matching_environment(self) -> None:
        """Convert again, in an environment with the versions the file was saved with
        (made first, with its progress on this page; reused later)."""
        self.state.match_env = True
        self.start()

    def show_failure(self, exc: BaseException) -> None:
        """Any other failure: said on the page in plain words (never a blank page)."""
        from app.errors import ModelShipError
        from wizards import notify
        from wizards.model_words import NOTEBOOK_CLASS, NOTEBOOK_FIX, notebook_class

        cause, hint, details = notify.describe(exc)
        notebook = notebook_class(f"{cause} {details}")
        if notebook:
            cause, hint = NOTEBOOK_CLASS.format(cls=notebook), NOTEBOOK_FIX
        self.failed_exc = exc
        self.verdict.say(
            f"<b>The model could not be converted.</b> {_esc(cause)}"
            f"<br><b>What to do:</b> {_esc(hint)}",
            "fail",
        )
        self.details_button.setVisible(True)
        if not isinstance(exc, ModelShipError):
            self.error(exc, "converting the model")  # a bug: the dialog has diagnostics

    def _override(self, on: bool) -> None:
        """Accepting a failed proof re-runs the conversion with the override on;
        unticking it takes the acceptance back (Next goes grey again)."""
        kept = self._unaccepted
        if on and kept is not None and kept.report is self.failed_report:
            # ticked again: the same conversion, accepted again (nothing to redo)
            self.state.allow_mismatch = True
            self.state.conversion, self.failed_report, self._unaccepted = kept, None, None
            self._show_verdict(kept.report, "warning")
            self.choice_box.setVisible(getattr(kept, "quantized", None) is not None)
            self.completeChanged.emit()
            return
        if on and self.failed_report is not None:
            self.state.allow_mismatch = True
            self.failed_report = None
            self.start()
            return
        conversion = self.state.conversion
        if on or self.is_busy():
            return
        self.state.allow_mismatch = False
        report = getattr(conversion, "report", None)
        if report is not None and not report.passed:
            self.state.conversion = None  # a failed proof is no conversion to deploy
            self._unaccepted = conversion
            self.failed_report = report
            self._show_verdict(report, "fail")
            self.choice_box.setVisible(False)
        self.completeChanged.emit()

    def _show_log(self, on: bool) -> None:
        self.log.setVisible(on)
        self.log_button.setText(
            "Hide the converter's messages" if on else "Details: the converter's messages"
        )

    # ---- leaving ----------------------------------------------------------------
    def is_complete(self) -> bool:
        return self.state.conversion is not None

    def blocked_reason(self) -> str:
        if self.is_busy():
            return "Converting and proving…"
        if self.failed_report is not None:
            return "The proof failed: tick “Deploy anyway”, or change the accepted difference."
        if self.failed_exc is not None and not self.match_button.isHidden():
            return "Click “Make a matching environment”."
        if self.failed_exc is not None:
            return "The model could not be converted (see above)."
        if self.state.conversion is None:
            return "Click “Convert and prove”."
        return ""

    def accept(self) -> bool:
        self.state.tolerance = self.tolerance.value() or self.state.tolerance
        quantized = getattr(self.state.conversion, "quantized", None)
        use_quant = quantized is not None and self.use_quant.isChecked()
        self.state.quantize = use_quant
        return True

    def cancel(self) -> bool:
        busy = self.busy_workers()
        for worker in busy:
            worker.cancel()
        return bool(busy)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(ConvertPage))
