"""Starting the wizard: the QApplication, one error path, a clean quit.

Uncaught exceptions (in slots on the GUI thread, or in any Python thread) are routed to
the GUI thread and shown by :func:`wizards.notify.show_error`, never lost in a
terminal the analyst does not have. On quit, every page's workers are stopped and
waited for, so no thread outlives the app.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget

from wizards import notify


class _ErrorRouter(QObject):
    """Carries exceptions from any thread to the GUI thread."""

    raised = Signal(object, str)


_router: _ErrorRouter | None = None


def _show(exc: BaseException, context: str) -> None:
    app = QApplication.instance()
    parent = app.activeWindow() if isinstance(app, QApplication) else None
    notify.show_error(parent, exc, context)


def install_excepthooks() -> None:
    """Route uncaught exceptions to the notification path (after napari)."""
    global _router
    if _router is not None:
        return
    _router = _ErrorRouter()
    _router.raised.connect(_show, Qt.ConnectionType.QueuedConnection)
    router = _router

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        exc.__traceback_text__ = "".join(  # type: ignore[attr-defined]
            traceback.format_exception(exc_type, exc, tb)
        )
        router.raised.emit(exc, "unexpected error")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def create_app(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("ModelShip")
    app.setOrganizationName("ModelShip")
    app.setApplicationDisplayName("ModelShip")
    from wizards.resources import icon

    app.setWindowIcon(icon("app"))
    return app


def run() -> int:
    """Open the wizard; returns the exit code when the window is closed."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    ):
        print("error: no display to show the wizard on.", file=sys.stderr)
        print(
            "  next step: run it on a desktop, or use a command (see `modelship --help`).",
            file=sys.stderr,
        )
        return 2
    app = create_app()
    notify.install_log_capture()
    install_excepthooks()
    from wizards.window import WizardWindow

    window = WizardWindow()
    window.show()
    app.aboutToQuit.connect(window.stop_all_workers)
    if os.environ.get("MODELSHIP_EXIT_AFTER_FIRST_PAGE") == "1":
        # Used by the packaged-app tests and bench/package.py: prove the first page
        # shows, then close the way a person would.
        QTimer.singleShot(0, lambda: _first_page_shown(window))
    return int(app.exec())


def _first_page_shown(window: QWidget) -> None:
    QApplication.processEvents()
    print(f"modelship: first page shown ({window.windowTitle()})", file=sys.stderr, flush=True)
    name = os.environ.get("MODELSHIP_DASHBOARD_AFTER_FIRST_PAGE", "")
    if name:
        # The packaged-app tests: the dashboard of a deployment with its charts
        # (pyqtgraph) and the drift report read on a worker, then close.
        _show_dashboard(window, name)
        return
    window.close()


def _show_dashboard(window: QWidget, name: str) -> None:
    from wizards.dashboard import open_dashboard

    dialog = open_dashboard(window, name)
    tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    dialog.tabs.setCurrentWidget(dialog.drift)
    deadline = time.monotonic() + 90

    def poll() -> None:
        drift, snap = dialog.drift, dialog.snap
        waiting = (drift.report is None and not drift.problem) or snap is None
        if waiting and time.monotonic() < deadline:
            QTimer.singleShot(100, poll)
            return
        level = drift.report.level if drift.report is not None else drift.problem or "none"
        answers = "none" if snap is None else "answering" if snap.answering else "not answering"
        print(
            f"modelship: dashboard shown (tabs: {', '.join(tabs)}; charts: "
            f"{type(dialog.charts).__name__}, {answers}; drift: {level})",
            file=sys.stderr,
            flush=True,
        )
        dialog.close()
        window.close()

    QTimer.singleShot(0, poll)


if __name__ == "__main__":
    sys.exit(run())
