"""One attempt at an operation (deploy, rollback): its journal, its events, its undo.

Every external resource is journaled before it is created; when the attempt fails or
is cancelled, :meth:`Attempt.undo` removes what it created, newest first, and
:meth:`Attempt.outcome_error` says what happened and what was cleaned up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from app.domain import BuiltImage, ConvertedModel, DeploymentRecord, PushedImage
from app.errors import Cancelled, ModelShipError
from app.progress import CancelToken, Progress
from app.run import resources
from app.run.events import STEP_TITLES, Event, EventProgress, OnEvent
from app.store.journal import Journal
from targets.base import DeployContext


class Attempt:
    """State of one deploy/rollback attempt: events, journal, what to undo."""

    def __init__(
        self,
        name: str,
        operation: str,
        target: str,
        profile: dict[str, Any],
        on_event: OnEvent | None,
        cancel: CancelToken | None,
    ) -> None:
        self.name = name
        self.target = target
        self.profile = profile
        self._on_event = on_event
        self.cancel = cancel or CancelToken()
        self.journal = Journal.create(name, operation=operation, target=target, profile=profile)
        self.step = ""

    def emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def progress(self, step: str) -> Progress:
        return EventProgress(self.emit, step)

    @contextlib.contextmanager
    def step_(self, step: str, title: str | None = None) -> Iterator[Progress]:
        """Run one step: started/finished/failed events, cancel checked on both ends."""
        self.cancel.raise_if_cancelled()
        self.step = step
        self.emit(Event("step_started", step, message=title or STEP_TITLES[step]))
        try:
            yield self.progress(step)
        except BaseException as exc:
            self.emit(Event("step_failed", step, message=short(exc)))
            raise
        self.emit(Event("step_finished", step))
        self.cancel.raise_if_cancelled()

    def context(
        self,
        profile: Any,
        model: ConvertedModel,
        version: int,
        *,
        image: BuiltImage | None,
        pushed: PushedImage | None,
        previous: DeploymentRecord | None,
        progress: Progress,
    ) -> DeployContext:
        """What the target's ``prepare``/``deploy`` get: this attempt's journal and cancel."""
        return DeployContext(
            profile=profile,
            name=self.name,
            model=model,
            journal=self.journal,
            version=version,
            image=image,
            pushed=pushed,
            previous=previous,
            progress=progress,
            cancel=self.cancel,
        )

    def undo(self) -> list[str]:
        """Remove this attempt's resources, newest first. Returns what was removed."""
        removed: list[str] = []
        failures: list[str] = []
        progress = self.progress("rollback")
        for resource in reversed(self.journal.resources()):
            try:
                resources.remove(resource, self.target, self.profile, progress)
            except Exception as exc:  # keep going: remove as much as possible
                failures.append(f"{resource.describe()}: {short(exc)}")
                continue
            self.journal.removed(resource)
            removed.append(resource.describe())
            self.emit(Event("rollback", "rollback", message=f"Removed {resource.describe()}"))
        if failures:
            self.emit(
                Event("rollback", "rollback", message="Could not remove: " + "; ".join(failures))
            )
        return removed

    def outcome_error(self, exc: BaseException, removed: list[str], restored: str) -> BaseException:
        """The error to raise after an undo: what happened, and what was cleaned up."""
        what = f" Removed: {', '.join(removed)}." if removed else " Nothing had been created yet."
        # After a cancel, whatever the step raised (a converter killed by the same Ctrl-C
        # fails with its own error) is reported as the cancel it is.
        if isinstance(exc, Cancelled | KeyboardInterrupt) or self.cancel.cancelled:
            step = STEP_TITLES.get(self.step, self.step).lower() if self.step else "starting"
            return Cancelled(
                f"Cancelled while {step}; everything it had created was removed.{what}{restored}",
                "Run the same command again to deploy.",
            )
        if isinstance(exc, ModelShipError) and getattr(exc, "touched_nothing", False):
            return exc  # refused before anything that runs was touched: it says so itself
        if isinstance(exc, ModelShipError):
            exc.message = f"{exc.message} Rolled back.{what}{restored}"
            return exc
        return exc  # a bug: the CLI reports it; the undo still happened


def short(exc: BaseException) -> str:
    if isinstance(exc, ModelShipError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted."
    return f"{type(exc).__name__}: {exc}"
