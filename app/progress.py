"""Progress reporting and cancellation for long steps, with no Qt.

Every long step in ``app/`` takes a :class:`Progress` and a :class:`CancelToken`.
The CLI prints progress to stderr; the wizard forwards it to the GUI thread with a
signal; tests pass :class:`NullProgress` or a recorder. A step checks
``cancel.raise_if_cancelled()`` between units of work, so cancelling takes effect
quickly and the caller can roll back.
"""

from __future__ import annotations

import threading
from typing import Protocol

from app.errors import Cancelled


class Progress(Protocol):
    def step(self, name: str) -> None:
        """A new named step starts (e.g. "Converting to ONNX")."""

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        """Progress within the current step: fraction in [0, 1], or None if unknown."""

    def log(self, line: str) -> None:
        """One line of log output (build output, converter messages). No secrets."""


class NullProgress:
    def step(self, name: str) -> None:
        pass

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        pass

    def log(self, line: str) -> None:
        pass


class RecordingProgress:
    """Keeps every call; handy for tests and for a diagnostics log."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def step(self, name: str) -> None:
        self.events.append(("step", name))

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        self.events.append(("update", (fraction, message)))

    def log(self, line: str) -> None:
        self.events.append(("log", line))

    @property
    def steps(self) -> list[str]:
        return [str(v) for k, v in self.events if k == "step"]


class CancelToken:
    """Thread-safe cancel flag. ``wait(t)`` sleeps but wakes up on cancel."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True (early) if cancelled."""
        return self._event.wait(seconds)
