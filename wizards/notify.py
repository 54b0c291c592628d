"""The one way the wizard tells a person that something went wrong.

Every error, from a worker, a slot or an uncaught exception, ends up in
:func:`show_error`: the cause and the next step in plain words (from
``ModelShipError.message`` / ``.hint``), the details folded away, and a
"Copy diagnostics" button that copies a report with secrets removed. Anything that is
not a ModelShipError is a bug in ModelShip and is said to be one.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import re
import sys
from collections import deque

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import ModelShipError
from wizards.resources import icon

# ---- a log of recent lines for diagnostics ----------------------------------------
_RECENT: deque[str] = deque(maxlen=400)
_SECRETS: set[str] = set()
# dialogs currently shown (tests and the screenshot script look here)
shown: list[ErrorDialog] = []


class _RecentHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # logging must never raise into the app
            _RECENT.append(self.format(record))


_handler = _RecentHandler()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def install_log_capture() -> None:
    """Keep recent log lines (all of ModelShip's loggers) for "Copy diagnostics"."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)


def remember_line(line: str) -> None:
    """Add one line (e.g. a deploy log line) to the diagnostics log."""
    _RECENT.append(line)


def register_secret(value: str | None) -> None:
    """A value typed into a secret field: it is removed from every diagnostics text."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


_PATTERNS = [
    # key=value / key: value for anything that looks like a credential
    re.compile(
        r"(?i)((?:api[_-]?key|password|passwd|secret|token|authorization|auth)"
        r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]+)"
    ),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._\-+/=]+)"),
    re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]+)"),
    re.compile(r"(://[^/\s:@]+:)([^@\s/]+)(@)"),  # user:password@host
]


def redact(text: str) -> str:
    """Remove secrets: values typed into secret fields, and credential-looking pairs."""
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, "[secret removed]")
    for pattern in _PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(r"\1[secret removed]\3", text)
        else:
            text = pattern.sub(r"\1[secret removed]", text)
    return text


# ---- turning an exception into words -------------------------------------------------
def describe(exc: BaseException) -> tuple[str, str, str]:
    """(cause, next step, details) in plain words for any exception."""
    trace = getattr(exc, "__traceback_text__", "") or ""
    if isinstance(exc, ModelShipError):
        from wizards.nextstep import for_wizard

        hint = exc.hint or "Check the details below, then try again."
        details = exc.details or ""
        return for_wizard(exc.message), for_wizard(hint), details
    cause = f"Something went wrong inside ModelShip ({type(exc).__name__}: {exc})."
    hint = (
        "This is a bug in ModelShip, not something you did. Click “Copy diagnostics” and "
        "send the text to whoever looks after ModelShip."
    )
    return cause, hint, trace


def diagnostics(exc: BaseException | None = None, context: str = "") -> str:
    """A plain-text report for support, with secrets removed."""
    from app import __version__

    lines = [
        f"ModelShip {__version__}",
        f"Python {sys.version.split()[0]} on {platform.platform()}",
    ]
    if context:
        lines.append(f"While: {context}")
    if exc is not None:
        cause, hint, details = describe(exc)
        lines += ["", f"Error: {type(exc).__name__}", f"Cause: {cause}", f"Next step: {hint}"]
        if details:
            lines += ["", "Details:", details]
        trace = getattr(exc, "__traceback_text__", "")
        if trace and trace != details:
            lines += ["", "Where it happened (for developers):", trace]
    if _RECENT:
        lines += ["", "Recent log:", *list(_RECENT)[-200:]]
    return redact("\n".join(lines))


class ErrorDialog(QDialog):
    """Cause, next step, folded details, Copy diagnostics. Never blocks a worker."""

    def __init__(
        self, exc: BaseException, context: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.exc = exc
        self.context = context
        cause, hint, details = describe(exc)
        self.setWindowTitle("ModelShip — something needs your attention")
        self.setObjectName("errorDialog")
        self.setMinimumWidth(520)

        head = QHBoxLayout()
        badge = QLabel()
        badge.setPixmap(icon("warning").pixmap(40, 40))
        badge.setAlignment(Qt.AlignmentFlag.AlignTop)
        head.addWidget(badge)
        texts = QVBoxLayout()
        self.cause_label = QLabel(f"<b>{_escape(cause)}</b>")
        self.cause_label.setWordWrap(True)
        self.cause_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label = QLabel(f"<b>Next step:</b> {_escape(hint)}")
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        texts.addWidget(self.cause_label)
        texts.addWidget(self.hint_label)
        texts.addStretch(1)
        head.addLayout(texts, 1)

        self.details_button = QToolButton()
        self.details_button.setText("Show details")
        self.details_button.setCheckable(True)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        # no details from the error: show the diagnostics report (what Copy copies)
        self.details = QPlainTextEdit(redact(details) if details else diagnostics(exc, context))
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMinimumHeight(160)
        self.details_button.toggled.connect(self._toggle_details)

        buttons = QDialogButtonBox()
        self.copy_button = QPushButton(icon("copy"), "Copy diagnostics")
        self.copy_button.setToolTip("Copies a report for support. Passwords and keys are removed.")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.copy_button.clicked.connect(self.copy_diagnostics)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.details, 1)
        layout.addWidget(buttons)
        self.close_button.setFocus()

    def _toggle_details(self, on: bool) -> None:
        self.details.setVisible(on)
        self.details_button.setText("Hide details" if on else "Show details")
        self.details_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.adjustSize()

    def diagnostics_text(self) -> str:
        return diagnostics(self.exc, self.context)

    def copy_diagnostics(self) -> None:
        QGuiApplication.clipboard().setText(self.diagnostics_text())
        self.copy_button.setText("Copied")

    def done(self, result: int) -> None:
        if self in shown:
            shown.remove(self)
        super().done(result)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def show_error(parent: QWidget | None, exc: BaseException, context: str = "") -> ErrorDialog:
    """Show an error the one way the wizard shows errors; returns the (open) dialog."""
    level = logging.INFO if isinstance(exc, ModelShipError) else logging.WARNING
    logging.getLogger("wizards").log(level, "%s: %s", context or "error", redact(describe(exc)[0]))
    dialog = ErrorDialog(exc, context, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    shown.append(dialog)
    dialog.open()  # window-modal, does not block the event loop
    return dialog


def close_all() -> None:
    for dialog in list(shown):
        dialog.done(0)


def last() -> ErrorDialog | None:
    return shown[-1] if shown else None
