"""What a run tells the person watching: events for the wizard, progress for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.progress import LongWait, Progress

STEPS: tuple[str, ...] = ("intake", "convert", "build", "push", "deploy", "smoke")
STEP_TITLES = {
    "intake": "Reading the model",
    "convert": "Converting to ONNX and proving the conversion",
    "build": "Building the serving image",
    "push": "Pushing the image to the registry",
    "deploy": "Deploying",
    "smoke": "Smoke-testing the endpoint",
    "rollback": "Rolling back",
    "teardown": "Removing the deployment",
}

EventKind = Literal[
    "step_started", "progress", "log", "step_finished", "step_failed", "rollback", "finished"
]


@dataclass
class Event:
    """One thing that happened, for the CLI's stderr or the wizard's progress page."""

    kind: EventKind
    step: str
    message: str = ""
    fraction: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


OnEvent = Callable[[Event], None]


class EventProgress:
    """A :class:`app.progress.Progress` that turns a step's reports into Events."""

    def __init__(self, emit: OnEvent, step: str) -> None:
        self._emit = emit
        self.current = step

    def step(self, name: str) -> None:
        self._emit(Event("progress", self.current, message=name))

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        self._emit(Event("progress", self.current, message=message or "", fraction=fraction))

    def long_wait(self, wait: LongWait, message: str) -> None:
        """A progress event that carries the typed wait (``data["wait"]``): the wizard
        says how long it usually takes; the CLI prints the message as before."""
        self._emit(Event("progress", self.current, message=message, data={"wait": wait}))

    def log(self, line: str) -> None:
        self._emit(Event("log", self.current, message=line))


class ProgressEvents:
    """Adapter the other way round: feed Events to a Progress (e.g. ConsoleProgress)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, event: Event) -> None:
        p = self.progress
        if event.kind == "step_started":
            p.step(event.message or STEP_TITLES.get(event.step, event.step))
        elif event.kind == "progress":
            p.update(event.fraction, event.message or None)
        elif event.kind == "log":
            p.log(event.message)
        elif event.kind in {"step_failed", "rollback", "step_finished"} and event.message:
            p.update(None, event.message)
