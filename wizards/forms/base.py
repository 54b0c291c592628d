"""What every cloud target's panel has: a line that says what is being asked, the
error with a Retry button, and workers that never hold up the page's Next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from wizards.nextstep import for_wizard

GREY = "color: #57606a;"
GREEN = "color: #1a7f37;"
RED = "color: #cf222e;"


def esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def wrapped(text: str = "", style: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    return label


class TargetForm(QGroupBox):
    """A panel above the generated form. Subclasses list ``choice_fields`` (drawn as
    dropdowns) and ``advanced_fields`` (under "Show more settings")."""

    choice_fields: tuple[str, ...] = ()
    advanced_fields: tuple[str, ...] = ()
    panel_title = ""

    def __init__(self, page: Any) -> None:
        super().__init__(self.panel_title)
        self.page = page
        self.editors = page.editors
        self.lay = QVBoxLayout(self)
        # "Asking the cloud…" / the error and Retry
        row = QHBoxLayout()
        self.asking = wrapped("", GREY)
        self.asking.setObjectName("askingState")
        self.retry_button = QPushButton("&Retry")
        self.retry_button.setObjectName("retryChoices")
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self.refresh)
        row.addWidget(self.asking, 1)
        row.addWidget(self.retry_button)
        self.status_row = QWidget()
        self.status_row.setLayout(row)
        self.status_row.setVisible(False)  # shown while asking, or with an error
        row.setContentsMargins(0, 0, 0, 0)
        self.last_error: BaseException | None = None
        self._generation = 0
        self._timers: list[QTimer] = []

    # ---- for subclasses ------------------------------------------------------------
    def entered(self) -> None:
        """The page was shown with its values set: start asking."""
        self.refresh()

    def refresh(self) -> None:
        """Ask again (Retry)."""

    def after_check(self) -> None:
        """The page's check ran (typed secrets are in the keyring now)."""

    def debounce(self, ms: int, fn: Callable[[], None]) -> QTimer:
        """A single-shot timer restarted on every call of its ``start`` (typing)."""
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(fn)
        self._timers.append(timer)
        return timer

    def ask(
        self,
        fn: Callable[[], Any],
        on_result: Callable[[Any], None],
        doing: str,
        name: str = "choices",
    ) -> None:
        """Run ``fn`` off the GUI thread; meanwhile say ``doing``; an error is said in
        words with Retry. An answer that an newer question overtook is dropped."""
        self._generation += 1
        generation = self._generation
        self.asking.setText(f"{doing}…")
        self.asking.setStyleSheet(GREY)
        self.status_row.setVisible(True)
        self.retry_button.setVisible(False)

        def work(progress: Any, cancel: Any) -> Any:
            return fn()

        def done(value: Any) -> None:
            if generation == self._generation and self.alive():
                self.asking.setText("")
                self.status_row.setVisible(False)
                on_result(value)

        def failed(exc: BaseException) -> None:
            if generation != self._generation or not self.alive():
                return
            from app.errors import ModelShipError

            if not isinstance(exc, ModelShipError):
                self.page.error(exc, doing.lower())  # a bug: the dialog with details
            self.last_error = exc
            message = for_wizard(getattr(exc, "message", exc))
            hint = for_wizard(getattr(exc, "hint", "") or "")
            self.asking.setText(
                f"<span style='{RED}'><b>{esc(message)}</b></span>"
                + (f"<br>{esc(hint)}" if hint else "")
            )
            self.retry_button.setVisible(True)
            self.failed(exc)

        self.page.start_worker(work, name=f"choices-{name}", on_result=done, on_error=failed)

    def failed(self, exc: BaseException) -> None:
        """A question failed (already said on screen)."""

    def short_checkbox(self, name: str, text: str) -> None:
        """A tick box with a short text and its description as a wrapped hint below
        (a tick box's own text never wraps: a long one widens the page past 800 px)."""
        editor = self.editors.get(name)
        if editor is None or editor.kind != "bool":
            return
        words = editor.widget.text()
        editor.widget.setText(text)
        editor.widget.setToolTip(words)
        form = self.page.more_form if editor.advanced else self.page.form
        row = form.getWidgetPosition(editor.widget)[0]
        hint = wrapped(words, GREY)
        hint.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        form.insertRow(row + 1, "", hint)
        editor.hint = hint

    def alive(self) -> bool:
        """False once Qt deleted the panel (its page closed while a question ran)."""
        from shiboken6 import isValid

        return isValid(self) and isValid(self.asking)

    def value(self, name: str) -> Any:
        return self.editors[name].get() if name in self.editors else None

    def close_form(self) -> None:
        """The form is replaced: stop its timers (its workers' answers are dropped)."""
        self._generation += 1
        for timer in self._timers:
            timer.stop()
