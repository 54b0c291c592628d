"""Long work off the GUI thread: one small worker type used by every page.

A :class:`Worker` runs a plain core function ``fn(progress, cancel)`` on its own
(non-daemon) Python thread and reports back through Qt signals, which Qt delivers on
the GUI thread (queued connection), so slots may touch widgets. The function gets a
:class:`QtProgress` (an ``app.progress.Progress``) and an ``app.progress.CancelToken``,
exactly what the CLI passes, so the wizard holds no logic of its own.

Why our own thread and not the global QThreadPool: a page must be able to *stop* its
work and *wait* for it when it closes, and the tests' leak fixture must see any thread
left behind. ``stop()`` cancels and joins; after ``stop()`` no signal reaches the page
any more (results that were already queued are dropped).
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.progress import CancelToken

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class QtProgress:
    """An ``app.progress.Progress`` that forwards everything to a worker's signal."""

    def __init__(self, emit: Callable[[str, Any], None]) -> None:
        self._emit = emit

    def step(self, name: str) -> None:
        self._emit("step", name)

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        self._emit("update", (fraction, message))

    def log(self, line: str) -> None:
        self._emit("log", line)

    def event(self, event: Any) -> None:
        """A pipeline event (``app.run.Event``), passed through unchanged."""
        self._emit("event", event)


class Worker(QObject):
    """Runs ``fn(progress, cancel)`` on a thread; signals arrive on the GUI thread.

    Signals: ``progress(kind, payload)`` with kind ``step``/``update``/``log``/``event``;
    ``result(value)``; ``error(exception)`` (the exception carries ``__traceback_text__``);
    ``finished()`` always last.
    """

    progress = Signal(str, object)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()

    # emitted from the worker thread; delivered queued to the GUI thread
    _t_progress = Signal(str, object)
    _t_result = Signal(object)
    _t_error = Signal(object)
    _t_finished = Signal()

    def __init__(
        self,
        fn: Callable[[QtProgress, CancelToken], Any],
        *,
        name: str = "work",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.fn = fn
        self.name = f"modelship-{name}-{next(_ids)}"
        self.cancel_token = CancelToken()
        self._thread: threading.Thread | None = None
        self._discarded = False
        self._done = False
        self._t_progress.connect(self._on_progress)
        self._t_result.connect(self._on_result)
        self._t_error.connect(self._on_error)
        self._t_finished.connect(self._on_finished)

    # ---- control (GUI thread) ----------------------------------------------
    def start(self) -> Worker:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=False)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check; results still arrive (e.g. Cancelled)."""
        self.cancel_token.cancel()

    def stop(self, timeout: float = 30.0) -> bool:
        """Cancel, wait for the thread, and drop anything it still reports.

        Returns True when the thread has ended. Used when a page or the app closes.
        """
        self._discarded = True
        self.cancel_token.cancel()
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            log.warning("worker %s did not stop within %.0f s", self.name, timeout)
        return not alive

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        """True once ``finished`` was delivered (or the worker was stopped)."""
        return self._done or self._discarded

    # ---- worker thread -------------------------------------------------------
    def _run(self) -> None:
        progress = QtProgress(self._t_progress.emit)
        try:
            value = self.fn(progress, self.cancel_token)
        except BaseException as exc:  # reported, never swallowed
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._t_error.emit(exc)
        else:
            self._t_result.emit(value)
        finally:
            self._t_finished.emit()

    # ---- GUI thread ------------------------------------------------------------
    @Slot(str, object)
    def _on_progress(self, kind: str, payload: object) -> None:
        if not self._discarded:
            self.progress.emit(kind, payload)

    @Slot(object)
    def _on_result(self, value: object) -> None:
        if not self._discarded:
            self.result.emit(value)

    @Slot(object)
    def _on_error(self, exc: object) -> None:
        if not self._discarded:
            self.error.emit(exc)

    @Slot()
    def _on_finished(self) -> None:
        if self._thread is not None:
            self._thread.join()  # it is past its last line: returns at once
        self._done = True
        if not self._discarded:
            self.finished.emit()


class WorkerOwner:
    """Mixin for pages: start workers, and stop them all when the page closes."""

    def _workers(self) -> list[Worker]:
        if not hasattr(self, "_owned_workers"):
            self._owned_workers: list[Worker] = []
        return self._owned_workers

    def start_worker(
        self,
        fn: Callable[[QtProgress, CancelToken], Any],
        *,
        name: str,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[str, Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Worker:
        worker = Worker(fn, name=name)
        if on_progress:
            worker.progress.connect(on_progress)
        if on_result:
            worker.result.connect(on_result)
        if on_error:
            worker.error.connect(on_error)
        owned = self._workers()
        owned.append(worker)

        def _forget() -> None:
            if worker in owned:
                owned.remove(worker)
            if on_finished:
                on_finished()

        worker.finished.connect(_forget)
        return worker.start()

    def busy_workers(self) -> list[Worker]:
        return [w for w in self._workers() if w.running or not w.done]

    def stop_workers(self, timeout: float = 30.0) -> None:
        for worker in list(self._workers()):
            worker.stop(timeout)
        self._workers().clear()
