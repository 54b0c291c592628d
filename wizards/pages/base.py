"""What every wizard page has: a title, a one-line "why", its body, and its workers."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from wizards import notify
from wizards.resources import icon
from wizards.state import WizardState
from wizards.workers import WorkerOwner


class Page(QWidget, WorkerOwner):
    """One decision per page.

    The window calls :meth:`enter` when the page is shown, asks :meth:`is_complete`
    to enable Next, and calls :meth:`accept` before moving on (False: stay here).
    A page asks to go somewhere else with ``go.emit(page_id)``.
    """

    page_id = ""
    title = ""
    subtitle = ""
    icon_name = "info"
    next_text = "&Next"
    # pages shown as steps in the sidebar (Start is the home, not a step)

    completeChanged = Signal()
    go = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setObjectName(f"page-{self.page_id}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 16, 24, 8)
        header = QHBoxLayout()
        badge = QLabel()
        badge.setPixmap(icon(self.icon_name).pixmap(40, 40))
        header.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        self.title_label = QLabel(f"<h2 style='margin:0'>{self.title}</h2>")
        self.title_label.setWordWrap(True)
        self.subtitle_label = QLabel(self.subtitle)
        self.subtitle_label.setWordWrap(True)
        texts.addWidget(self.title_label)
        texts.addWidget(self.subtitle_label)
        header.addLayout(texts, 1)
        outer.addLayout(header)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        outer.addWidget(line)
        self.body = QVBoxLayout()
        self.body.setSpacing(10)
        outer.addLayout(self.body, 1)

    # ---- hooks ---------------------------------------------------------------------
    def enter(self) -> None:
        """Called every time the page is shown (state may have changed)."""

    def is_complete(self) -> bool:
        return True

    def enter_pressed(self, focused: Any) -> bool:
        """Enter was pressed with ``focused`` holding the focus: True when the page acted
        on it (e.g. Send in the Try it form); else the window presses Next."""
        return False

    def blocked_reason(self) -> str:
        """Why Next is grey, in a few words (shown next to it); "" when there is nothing
        to say."""
        return ""

    def accept(self) -> bool:
        """Before Next: store the answers in the state; False keeps the page open."""
        return True

    def next_page(self) -> str | None:
        """The page Next goes to (None: the window's default order)."""
        return None

    def cancel(self) -> bool:
        """Cancel pressed: True when the page handled it (e.g. cancelled a deploy)."""
        return False

    def is_busy(self) -> bool:
        return bool(self.busy_workers())

    # ---- helpers -------------------------------------------------------------------
    def error(self, exc: BaseException, context: str = "") -> notify.ErrorDialog:
        return notify.show_error(self.window(), exc, context or self.title)

    def closeEvent(self, event: Any) -> None:
        self.stop_workers()
        super().closeEvent(event)


NOTE_COLORS = {
    "info": "#ddf4ff",
    "warning": "#fff8c5",
    "ok": "#dafbe1",
    "fail": "#ffebe9",
}


class Note(QFrame):
    """A framed, icon-led note: info, warning, ok or fail.

    :meth:`set_kind` changes colour *and* icon together, so that a red "did not finish"
    box never carries a green check.
    """

    def __init__(self, text: str = "", kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        self.badge = QLabel()
        lay.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setOpenExternalLinks(False)
        lay.addWidget(self.label, 1)
        self.kind = ""
        self.set_kind(kind)

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.setObjectName(f"note-{kind}")
        self.setStyleSheet(
            f"QFrame#note-{kind} {{ background: {NOTE_COLORS.get(kind, '#eee')};"
            " border-radius: 6px; } QLabel { color: #1f2328; }"
        )
        self.badge.setPixmap(icon(kind).pixmap(22, 22))

    def say(self, text: str, kind: str | None = None) -> None:
        if kind is not None:
            self.set_kind(kind)
        self.label.setText(text)
        self.setVisible(True)


def note(text: str, kind: str = "info") -> Note:
    """A framed, icon-led note: info, warning, ok or fail."""
    return Note(text, kind)


def busy_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 0)
    bar.setTextVisible(False)
    bar.setMaximumHeight(10)
    bar.setVisible(False)
    return bar


def preview(page_cls: type[Page], state: WizardState | None = None) -> int:
    """Show one page on its own (each page module's ``__main__`` uses this)."""
    import sys

    from PySide6.QtWidgets import QApplication

    from wizards.window import WizardWindow

    app = QApplication.instance() or QApplication(sys.argv)
    window = WizardWindow(state or WizardState())
    window.show()
    window.go(page_cls.page_id, record=False)
    return app.exec()
