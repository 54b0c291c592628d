"""Result: the endpoint, ready-to-paste snippets, a "Try it" form, and teardown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from targets.calling import CallSnippets
from wizards import actions, ask
from wizards.pages.base import Page, busy_bar, note
from wizards.resources import icon
from wizards.state import WizardState


def load_proof(record: Any, conversion: Any = None) -> dict[str, Any]:
    """The conversion proof (sample rows and what the original model predicted)."""
    candidates = []
    version = record.version() if hasattr(record, "version") else None
    if version is not None:
        candidates.append(Path(version.proof_path))
    if conversion is not None and getattr(conversion, "proof_path", None):
        candidates.append(Path(conversion.proof_path))
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


def snippets_for(record: Any, profile: Any, row: dict[str, Any]) -> CallSnippets:
    """How to call the deployment, as its target kind describes it (curl or the AWS CLI,
    and Python), naming only the endpoint's own key entry. No SDK, no keyring read."""
    from app.domain import Endpoint
    from targets.catalog import get_kind

    endpoint = record.endpoint_obj() or Endpoint(url=record.url or "", target=record.target)
    settings = None
    if profile is not None and profile.target.kind == record.target:
        settings = profile.target.settings
    return get_kind(record.target).call_snippets(endpoint, settings, [row] if row else None)


def post_rows(record: Any, profile: Any, rows: list[dict[str, Any]]) -> Any:
    """Send rows to the deployment through its target's client (what the Try it form
    does): the same transport, credentials and pinned certificate as the smoke test.
    Worker thread only (it reads the keyring)."""
    from app.endpoint.client import EndpointError, EndpointUnreachable, error_words
    from app.errors import TargetError
    from targets import get_target
    from wizards import notify

    endpoint = record.endpoint_obj()
    client = get_target(endpoint.target).client(endpoint, profile)
    for value in client.headers.values():
        if value.startswith("Bearer "):
            notify.register_secret(value.removeprefix("Bearer "))
    try:
        return client.predict(rows)
    except EndpointError as exc:
        raise TargetError(
            f"The model did not answer these values: {error_words(exc)}",
            "Check the values you typed: each must fit the column's type.",
        ) from None
    except EndpointUnreachable as exc:
        raise TargetError(
            f"The endpoint at {client.url} did not answer ({exc}).",
            "Check on the Start page whether the deployment still runs.",
        ) from None


class ResultPage(Page):
    page_id = "result"
    title = "Your model is online"
    subtitle = "Copy the address or a snippet, or try a prediction right here."
    icon_name = "result"
    next_text = "&Finish"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        url_row = QHBoxLayout()
        url_row.addWidget(QLabel("<b>Address:</b>"))
        self.url = QLineEdit()
        self.url.setObjectName("endpointUrl")
        self.url.setReadOnly(True)
        url_row.addWidget(self.url, 1)
        self.copy_url = QPushButton(icon("copy"), "Copy &address")
        self.copy_url.clicked.connect(lambda: self._copy(self.url.text(), self.copy_url))
        url_row.addWidget(self.copy_url)
        self.body.addLayout(url_row)

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("resultTabs")
        # Try it
        try_tab = QWidget()
        try_lay = QVBoxLayout(try_tab)
        try_intro = QLabel("One row from your sample, filled in. Change any value and click Send.")
        try_intro.setWordWrap(True)
        try_lay.addWidget(try_intro)
        self.try_form_host = QWidget()
        self.try_form = QFormLayout(self.try_form_host)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.try_form_host)
        try_lay.addWidget(scroll, 1)
        send_row = QHBoxLayout()
        self.send_button = QPushButton("&Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.clicked.connect(self.send)
        send_row.addWidget(self.send_button)
        self.try_bar = busy_bar()
        send_row.addWidget(self.try_bar, 1)
        try_lay.addLayout(send_row)
        self.answer = QLabel("")
        self.answer.setObjectName("tryAnswer")
        self.answer.setWordWrap(True)
        try_lay.addWidget(self.answer)
        self.tabs.addTab(try_tab, "Try it")
        # snippets
        for attr, title in (("curl", "curl"), ("python", "Python")):
            tab = QWidget()
            lay = QVBoxLayout(tab)
            snippet_note = QLabel("")
            snippet_note.setObjectName(f"{attr}Note")
            snippet_note.setWordWrap(True)
            snippet_note.setStyleSheet("color: #57606a;")
            lay.addWidget(snippet_note)
            text = QPlainTextEdit()
            text.setReadOnly(True)
            text.setFont(mono)
            text.setObjectName(f"{attr}Snippet")
            button = QPushButton(icon("copy"), f"Copy {title}")
            button.clicked.connect(
                lambda _c=False, t=text, b=button: self._copy(t.toPlainText(), b)
            )
            lay.addWidget(text, 1)
            lay.addWidget(button)
            setattr(self, f"{attr}_text", text)
            setattr(self, f"{attr}_copy", button)
            setattr(self, f"{attr}_note", snippet_note)
            setattr(self, f"{attr}_tab", self.tabs.addTab(tab, title))
        # smoke test
        smoke_tab = QWidget()
        smoke_lay = QVBoxLayout(smoke_tab)
        self.smoke = QLabel("")
        self.smoke.setObjectName("smokeReport")
        self.smoke.setWordWrap(True)
        smoke_lay.addWidget(self.smoke)
        smoke_lay.addStretch(1)
        self.tabs.addTab(smoke_tab, "Smoke test")
        self.body.addWidget(self.tabs, 1)

        actions_box = QGroupBox("Next")
        grid = QGridLayout(actions_box)
        self.save_button = QPushButton("Save &profile")
        self.save_button.setObjectName("saveProfileButton")
        self.save_button.clicked.connect(self.save_profile)
        self.export_button = QPushButton("&Export profile…")
        self.export_button.clicked.connect(self.export_profile)
        # a still picture (bars): the "running" arc looks like something still working
        self.dashboard_button = QPushButton(icon("dashboard"), "&Dashboard…")
        self.dashboard_button.setObjectName("resultDashboard")
        self.dashboard_button.setToolTip(
            "How it is doing: requests, log, versions; Stop and Start; score a whole file"
        )
        self.dashboard_button.clicked.connect(self.open_dashboard)
        self.teardown_button = QPushButton("&Tear down (remove it)")
        self.teardown_button.setObjectName("teardownButton")
        self.teardown_button.clicked.connect(self.teardown)
        grid.addWidget(self.save_button, 0, 0)
        grid.addWidget(self.export_button, 0, 1)
        grid.addWidget(self.dashboard_button, 0, 2)
        grid.addWidget(self.teardown_button, 0, 3)
        self.saved = QLabel("")
        self.saved.setWordWrap(True)
        grid.addWidget(self.saved, 1, 0, 1, 4)
        self.body.addWidget(actions_box)
        self.torn = note("", "ok")
        self.torn.setVisible(False)
        self.body.addWidget(self.torn)
        self.inputs: dict[str, tuple[QLineEdit, Any]] = {}
        self.proof: dict[str, Any] = {}
        self.last_answer: Any = None
        self.torn_down: list[str] | None = None
        self.dashboard: Any = None

    def _copy(self, text: str, button: QPushButton) -> None:
        QGuiApplication.clipboard().setText(text)
        button.setText("Copied")

    # ---- filling in -------------------------------------------------------------
    def enter(self) -> None:
        record = self.state.record
        if record is None:
            return
        self.title_label.setText(f"<h2 style='margin:0'>{self.title}</h2>")
        self.subtitle_label.setText(self.subtitle)
        self.torn.setVisible(False)
        self.torn_down = None
        self.teardown_button.setEnabled(True)
        self.dashboard_button.setEnabled(True)
        self.send_button.setEnabled(True)
        self.answer.setText("")
        url = record.url or ""
        self.url.setText(url)
        self.proof = load_proof(record, self.state.conversion)
        rows = self.proof.get("rows") or []
        row = dict(rows[0]) if rows else {}
        snippets = snippets_for(record, self.state.profile, row)
        self.tabs.setTabText(self.curl_tab, snippets.shell_title)
        self.curl_copy.setText(f"Copy {snippets.shell_title}")
        self.python_copy.setText("Copy Python")
        self.curl_text.setPlainText(snippets.shell)
        self.python_text.setPlainText(snippets.python)
        for label in (self.curl_note, self.python_note):
            label.setText(snippets.note)
            label.setVisible(bool(snippets.note))
        while self.try_form.rowCount():
            self.try_form.removeRow(0)
        self.inputs.clear()
        for column, value in row.items():
            seen = [r.get(column) for r in rows if isinstance(r, dict)]
            edit = typed_field(value, seen)
            edit.setObjectName(f"try-{column}")
            holder = QWidget()
            line = QHBoxLayout(holder)
            line.setContentsMargins(0, 0, 0, 0)
            edit.setMaximumWidth(280)  # the fields line up; the sample's range beside
            line.addWidget(edit, 1)
            hint = QLabel(edit.toolTip() if isinstance(edit, QLineEdit) else "")
            hint.setStyleSheet("color: #57606a;")
            line.addWidget(hint, 1)
            self.try_form.addRow(f"{column}:", holder)
            self.inputs[column] = (edit, value)
        if not row:
            self.try_form.addRow(QLabel("This model takes tensors: use the snippets instead."))
            self.send_button.setEnabled(False)
        self.smoke.setText(smoke_words(record.smoke))
        where = self.state.profile_path
        self.saved.setText(f"Profile saved as {where}" if where else "")

    def row(self) -> dict[str, Any]:
        out = {}
        for column, (edit, original) in self.inputs.items():
            text = (edit.currentText() if isinstance(edit, QComboBox) else edit.text()).strip()
            if text == _shown(original):
                out[column] = original  # unchanged: send exactly the proof's value
            elif isinstance(original, bool):
                out[column] = text.lower() in {"1", "true", "yes"}
            elif isinstance(original, int | float):
                try:
                    out[column] = float(text) if "." in text or "e" in text.lower() else int(text)
                except ValueError:
                    out[column] = text
            else:
                out[column] = text
        return out

    # ---- try it -------------------------------------------------------------------
    def send(self) -> None:
        if self.is_busy() or self.state.record is None:
            return
        record = self.state.record
        row = self.row()
        profile = self.state.profile
        self.try_bar.setVisible(True)
        self.answer.setText("Asking the model…")

        def work(progress: Any, cancel: Any) -> Any:
            return post_rows(record, profile, [row])

        self.start_worker(
            work,
            name="try",
            on_result=self._answered,
            on_error=self._try_failed,
            on_finished=lambda: (self.try_bar.setVisible(False), self.busyChanged.emit(False)),
        )
        self.busyChanged.emit(True)

    def _answered(self, data: Any) -> None:
        self.last_answer = data
        predictions = data.get("predictions", []) if isinstance(data, dict) else data
        prediction = predictions[0] if predictions else None
        text = f"<b>Prediction:</b> {prediction}"
        probs = data.get("probabilities") if isinstance(data, dict) else None
        if probs:
            best = sorted(probs[0].items(), key=lambda kv: -kv[1])[:3]
            text += " &nbsp; (" + ", ".join(f"{k}: {v:.1%}" for k, v in best) + ")"
        expected = (self.proof.get("predictions") or [None])[0]
        if expected is not None and self.row() == dict((self.proof.get("rows") or [{}])[0]):
            text += f"<br>Your original model predicted <b>{expected}</b> for this row."
        self.answer.setText(text)

    def _try_failed(self, exc: BaseException) -> None:
        self.answer.setText(f"<b>No answer:</b> {getattr(exc, 'message', exc)}")
        self.error(exc, "trying the endpoint")

    # ---- profile and teardown -------------------------------------------------------
    def save_profile(self) -> None:
        from app.store.profile import save_profile

        try:
            self.state.profile_path = save_profile(self.state.profile, self.state.profile_path)
        except Exception as exc:
            self.error(exc, "saving the profile")
            return
        self.saved.setText(f"Profile saved as {self.state.profile_path}")

    def export_profile(self) -> None:
        if self.state.profile is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the profile", f"{self.state.profile.name}.toml", "Profiles (*.toml)"
        )
        if path:
            actions.export_profile(self.state.profile, Path(path))
            self.saved.setText(f"Profile exported to {path}")

    def teardown(self) -> None:
        record = self.state.record
        if record is None or self.is_busy():
            return
        from wizards.pages.start import teardown_words

        if not ask.confirm(
            self.window(),
            f"Tear down “{record.name}”?",
            teardown_words(record),
            yes="Tear down",
            no="Keep it",
        ):
            return
        self.teardown_button.setEnabled(False)
        self.send_button.setEnabled(False)
        self.try_bar.setVisible(True)

        self.start_worker(
            lambda progress, cancel: actions.teardown(record.name, progress),
            name="teardown",
            on_result=self._torn_down,
            on_error=self._teardown_failed,
            on_finished=lambda: (self.try_bar.setVisible(False), self.busyChanged.emit(False)),
        )
        self.busyChanged.emit(True)

    def open_dashboard(self) -> None:
        record = self.state.record
        if record is None or self.torn_down is not None:
            return
        from wizards.dashboard import open_dashboard

        if self.dashboard is not None:
            self.dashboard.close()
        self.dashboard = open_dashboard(self.window(), record.name)
        self.dashboard.finished.connect(self._dashboard_closed)

    def _dashboard_closed(self, *_: Any) -> None:
        self.dashboard = None

    def stop_workers(self, timeout: float = 30.0) -> None:
        """The window stops every page's work when it closes: the dashboard closes too."""
        if getattr(self, "dashboard", None) is not None:
            self.dashboard.close()
        super().stop_workers(timeout)

    def _torn_down(self, removed: list[str]) -> None:
        self.torn_down = list(removed)
        self.dashboard_button.setEnabled(False)
        what = "; ".join(removed) if removed else "nothing was left to remove"
        self.torn.label.setText(f"<b>Removed.</b> {what}.")
        self.torn.setVisible(True)
        self.url.setText("")
        self.send_button.setEnabled(False)
        self.title_label.setText(
            f"<h2 style='margin:0'>“{self.state.record.name}” was removed</h2>"
        )
        saved = self.state.profile_path is not None and self.state.profile_path.is_file()
        self.subtitle_label.setText(
            "Nothing runs any more. Its profile is kept: deploy it again from “Saved "
            "profiles” on the start page."
            if saved
            else "Nothing runs any more. Click “Save profile” to keep these choices for "
            "another deployment."
        )

    def _teardown_failed(self, exc: BaseException) -> None:
        self.teardown_button.setEnabled(True)
        self.error(exc, "tearing down")

    def next_page(self) -> str | None:
        return "start"

    def enter_pressed(self, focused: Any) -> bool:
        """Enter in the Try it form sends the row (it must not leave the page)."""
        if focused is not None and self.try_form_host.isAncestorOf(focused):
            self.send()
            return True
        return False


def typed_field(value: Any, seen: list[Any]) -> QWidget:
    """A Try-it field that fits the column: the values the sample had for a text column
    (a drop-down that still takes a new value), the sample's range for a number."""
    if isinstance(value, str):
        box = QComboBox()
        box.setEditable(True)
        choices = sorted({str(v) for v in seen if isinstance(v, str)})[:50]
        box.addItems(choices or [value])
        box.setCurrentText(value)
        box.setToolTip("The values in your sample; you can also type another one.")
        return box
    edit = QLineEdit(_shown(value))
    numbers = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and not isinstance(value, bool):
        lo, hi = min(numbers), max(numbers)
        edit.setToolTip(f"sample: {_shown(lo)} to {_shown(hi)}")
    return edit


def _shown(value: Any) -> str:
    """A sample value as an analyst reads it (46.066 rather than 46.066001892089844)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# the smoke test's figures, in words (the summary line above them says the verdict)
SMOKE_LINES: list[tuple[str, str]] = [
    ("health_seconds", "Ready to answer after"),
    ("rows", "Sample rows sent"),
    ("matching", "Answered as the proof said"),
    ("max_abs_diff", "Largest difference"),
    ("tolerance", "Accepted difference"),
    ("latency_ms_p50", "Typical time per request"),
    ("latency_ms_max", "Slowest request"),
    ("batch_ms", "All rows in one request"),
]


def smoke_words(smoke: Any) -> str:
    """The smoke test report in words (no field names such as "Health seconds")."""
    from wizards.pages.convert import TINY, plain_number

    if not smoke:
        return "No smoke test report."
    if not isinstance(smoke, dict):
        smoke = smoke.to_dict() if hasattr(smoke, "to_dict") else {"result": str(smoke)}
    lines = []
    summary = smoke.get("summary")
    if summary:
        lines.append(f"<b>{_html(summary)}</b>")
    passed = smoke.get("passed")
    if passed is not None and not summary:
        lines.append("<b>Passed.</b>" if passed else "<b>Failed.</b>")
    for key, label in SMOKE_LINES:
        value = smoke.get(key)
        if value is None or isinstance(value, bool | dict | list):
            continue
        if key == "health_seconds":
            text = f"{max(1, round(float(value)))} s" if value >= 0.5 else "less than a second"
        elif "_ms" in key:
            text = f"{plain_number(float(value))} ms"
        elif key == "max_abs_diff":
            text = plain_number(float(value), TINY)
        elif isinstance(value, float):
            text = plain_number(value)
        else:
            text = str(value)
        lines.append(f"{label}: {text}")
    for error in (smoke.get("errors") or [])[:3]:
        lines.append(f"Problem: {_html(str(error))}")
    return "<br>".join(lines)


def _html(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(ResultPage))
