"""Progress reporting and cancellation for long steps, with no Qt.

Every long step in ``app/`` takes a :class:`Progress` and a :class:`CancelToken`.
The CLI prints progress to stderr; the wizard forwards it to the GUI thread with a
signal; tests pass :class:`NullProgress` or a recorder. A step checks
``cancel.raise_if_cancelled()`` between units of work, so cancelling takes effect
quickly and the caller can roll back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from app.errors import Cancelled


class Progress(Protocol):
    def step(self, name: str) -> None:
        """A new named step starts (e.g. "Converting to ONNX")."""

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        """Progress within the current step: fraction in [0, 1], or None if unknown."""

    def log(self, line: str) -> None:
        """One line of log output (build output, converter messages). No secrets."""


@dataclass(frozen=True)
class LongWait:
    """A wait the target cannot measure, said once when it starts: what is happening
    and how long it usually takes ("Starting the virtual machine", "this usually takes
    1–3 minutes"). A target declares its waits with its kind (``targets/<kind>/kind.py``)
    and announces one with :func:`long_wait`; the wizard shows :attr:`words` under the
    bar until the step ends."""

    what: str
    usually: str

    @property
    def words(self) -> str:
        return f"{self.what}: {self.usually}."


def long_wait(progress: Progress, wait: LongWait, message: str) -> None:
    """Announce ``wait`` with its progress ``message`` ("Creating server ms-iris ...").

    A progress that knows long waits (the pipeline's, :class:`app.run.EventProgress`)
    gets the typed wait with the message; any other gets the message as an update, so
    the CLI prints exactly what it printed before.
    """
    announce = getattr(progress, "long_wait", None)
    if callable(announce):
        announce(wait, message)
    else:
        progress.update(None, message)


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
