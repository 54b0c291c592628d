"""Deploy: the pipeline's steps with live progress and the log; Cancel rolls back.

The page runs ``app.run.run_deploy`` (the same call as ``modelship deploy``) on a
worker and draws its events. Cancelling sets the pipeline's cancel token; the pipeline
removes what it created and says what it removed, which the page shows.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from wizards import notify
from wizards.nextstep import for_wizard
from wizards.pages.base import Page, note
from wizards.resources import icon
from wizards.state import WizardState

# The pipeline's own long wait (the targets announce theirs as typed events: a
# LongWait that their kind declares, carried in the progress event's data["wait"]).
PUSH_WAIT = "Uploading the image: usually a minute or two, depending on your connection."


def wait_words(step: str, wait: Any = None, remote: bool = False) -> str | None:
    """What a long wait is about and how long it usually takes; None: no long wait.

    ``wait`` is the :class:`app.progress.LongWait` a target announced (or None); the
    push step of a remote target is a long wait of its own.
    """
    if wait is not None:
        return str(wait.words)
    if step == "push" and remote:
        return PUSH_WAIT
    return None


STEP_WORDS = {
    "intake": "Read the model file",
    "convert": "Convert and prove",
    "build": "Build the container image",
    "push": "Upload the image",
    "deploy": "Start the service",
    "smoke": "Test the running service",
}


class DeployPage(Page):
    page_id = "deploy"
    title = "Deploying"
    subtitle = "You can cancel at any time: ModelShip then removes what it created."
    icon_name = "deploy"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        row = QHBoxLayout()
        self.steps = QListWidget()
        self.steps.setObjectName("deploySteps")
        self.steps.setMaximumWidth(240)
        row.addWidget(self.steps)
        self.log = QPlainTextEdit()
        self.log.setObjectName("deployLog")
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("What ModelShip is doing appears here.")
        row.addWidget(self.log, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.wait_line = QLabel("")
        self.wait_line.setObjectName("waitLine")
        self.wait_line.setWordWrap(True)
        self.wait_line.setStyleSheet("color: #57606a;")
        self.wait_line.setVisible(False)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        # a failed proof accepted with "Deploy anyway" stays in sight while it deploys
        self.proof_note = note("", "warning")
        self.proof_note.setObjectName("deployProofNote")
        self.proof_note.setVisible(False)
        self.body.addWidget(self.proof_note)
        self.body.addWidget(self.status)
        self.body.addWidget(self.wait_line)
        self.body.addWidget(self.bar)
        self.body.addLayout(row, 1)
        self.outcome = note("", "ok")
        self.outcome.setVisible(False)
        self.body.addWidget(self.outcome)
        again = QHBoxLayout()
        self.retry_button = QPushButton("&Try again")
        self.retry_button.setObjectName("retryButton")
        self.retry_button.clicked.connect(self.start)
        self.retry_button.setVisible(False)
        again.addWidget(self.retry_button)
        self.details_button = QPushButton("&Details and diagnostics…")
        self.details_button.setObjectName("deployDetails")
        self.details_button.clicked.connect(
            lambda: self.last_error is not None and self.error(self.last_error, "deploying")
        )
        self.details_button.setVisible(False)
        again.addWidget(self.details_button)
        again.addStretch(1)
        self.body.addLayout(again)
        self.items: dict[str, QListWidgetItem] = {}
        self.worker: Any = None
        self.cancelling = False
        self.removed: list[str] = []
        self._last_message = ""
        self._last_line = ""
        self.last_error: BaseException | None = None
        self._ran_for: Any = None

    def enter(self) -> None:
        """Deploy once per reviewed profile: coming Back here does not deploy again."""
        if not self.is_busy() and self._ran_for is not self.state.profile:
            self.start()

    # ---- running ---------------------------------------------------------------
    def _reset_steps(self) -> None:
        from app.run import steps_for

        self.steps.clear()
        self.items.clear()
        for step in steps_for(self.state.profile):
            self._item(step)

    def _item(self, step: str) -> QListWidgetItem:
        if step not in self.items:
            item = QListWidgetItem(icon("pending"), STEP_WORDS.get(step, step.capitalize()))
            self.steps.addItem(item)
            self.items[step] = item
        return self.items[step]

    def start(self) -> None:
        if self.is_busy():
            return
        profile = self.state.profile
        if profile is None:
            return
        self.state.record = None
        self._ran_for = profile
        self.cancelling = False
        self.removed = []
        self.outcome.setVisible(False)
        self.retry_button.setVisible(False)
        self.details_button.setVisible(False)
        self.last_error = None
        self.log.clear()
        self._last_line = ""
        self.bar.setValue(0)
        self._reset_steps()
        self._title(f"Deploying {profile.name}")
        self.subtitle_label.setText(self.subtitle)
        self.status.setText("Starting…")
        from wizards.pages.review import proof_failed_words

        failed = proof_failed_words(self.state.conversion, profile.model.accept_mismatch)
        self.proof_note.say(failed, "warning")
        self.proof_note.setVisible(bool(failed))

        converted = self.state.converted(profile)
        # the person ticked "Replace … even though its inputs change" on Review
        allow_input_change = self.state.inputs_change_ok_for == profile.name

        def work(progress: Any, cancel: Any) -> Any:
            from app.run import run_deploy

            return run_deploy(
                profile,
                on_event=progress.event,
                cancel=cancel,
                converted=converted,
                allow_input_change=allow_input_change,
            )

        self.worker = self.start_worker(
            work,
            name="deploy",
            on_progress=self._progress,
            on_result=self._deployed,
            on_error=self._failed,
            on_finished=self._finished,
        )
        self.busyChanged.emit(True)

    def _progress(self, kind: str, payload: Any) -> None:
        if kind != "event":
            return
        event = payload
        step = getattr(event, "step", "") or ""
        message = for_wizard(getattr(event, "message", "") or "")
        fraction = getattr(event, "fraction", None)
        ek = event.kind
        self._show_wait(ek, step, (getattr(event, "data", None) or {}).get("wait"))
        if ek == "step_started":
            self._item(step).setIcon(icon("running"))
            self.status.setText(f"{STEP_WORDS.get(step, step)}…")
            self._log(f"== {STEP_WORDS.get(step, step)}")
            self.bar.setRange(0, 0) if fraction is None else None
        elif ek == "progress":
            if fraction is not None:
                self.bar.setRange(0, 100)
                self.bar.setValue(int(fraction * 100))
            if message:
                self.status.setText(message)
                if message != self._last_message:
                    self._log(f"   {message}")
                    self._last_message = message
        elif ek == "log":
            self._log(notify.redact(message))
            notify.remember_line(message)
        elif ek == "step_finished":
            self._item(step).setIcon(icon("ok"))
            self.bar.setRange(0, 100)
            self.bar.setValue(100)
            if message:
                self._log(message)
        elif ek == "step_failed":
            # a cancel stops a step: that is not a failure, and must not read as one
            self._item(step).setIcon(icon("warning" if self.cancelling else "fail"))
            if message:
                self._log(f"{'Stopped' if self.cancelling else 'Failed'}: {message}")
        elif ek == "rollback":
            self.status.setText("Removing what was created…")
            if message:
                self.removed.append(message)
                self._log(f"Removed: {message}")
        elif ek == "finished" and message:
            self._log(message)

    def _show_wait(self, kind: str, step: str, wait: Any) -> None:
        """The "this usually takes…" line for a long wait (a target's typed LongWait, or
        the push of a remote target); gone when the step ends."""
        if kind in {"step_finished", "step_failed", "rollback", "finished"}:
            self.wait_line.setVisible(False)
            return
        from targets import CATALOG

        target = CATALOG.get(self.state.profile.target.kind) if self.state.profile else None
        remote = bool(getattr(target, "remote", False))
        if kind == "step_started":
            words = wait_words(step, None, remote)
        elif kind == "progress" and wait is not None:
            words = wait_words(step, wait)
        else:
            words = None
        if kind == "step_started" and words is None:
            self.wait_line.setVisible(False)
        if words is not None:
            self.wait_line.setText(f"⏳ {words}")
            self.wait_line.setVisible(True)

    def _deployed(self, record: Any) -> None:
        self.state.record = record
        if self.state.save_to is not None:
            from app.store.profile import save_profile

            try:
                self.state.profile_path = save_profile(self.state.profile, self.state.save_to)
            except Exception as exc:  # the deployment stands; only the file failed
                self.error(exc, "saving the profile")
        self.bar.setRange(0, 100)
        self.bar.setValue(100)
        self.status.setText("")
        self._title(f"Deployed {record.name}")
        self.subtitle_label.setText("It runs and answered the smoke test.")
        self.outcome.say(
            f"<b>Your model is online</b> at {record.url}. Click Next to try it.", "ok"
        )

    def _failed(self, exc: BaseException) -> None:
        from app.errors import Cancelled

        self.bar.setRange(0, 100)
        self.bar.setValue(0)
        self.status.setText("")
        stopped = isinstance(exc, Cancelled) or self.cancelling
        for item in self.items.values():
            if item.icon().cacheKey() == icon("running").cacheKey():
                item.setIcon(icon("warning" if stopped else "fail"))
        removed = self.removed or _removed_from(exc)
        what = (
            "Removed: " + "; ".join(removed) + "."
            if removed
            else "Nothing had been created yet, so nothing needed removing."
        )
        if isinstance(exc, Cancelled):
            self._title("Deployment cancelled")
            self.subtitle_label.setText("Below: what was removed again.")
            self.outcome.say(f"<b>Deployment cancelled.</b> {what}", "warning")
        else:
            from app.errors import ModelShipError

            self._title("The deployment did not finish")
            self.subtitle_label.setText("Below: what happened, what was removed, what to do.")
            cause, hint, _details = notify.describe(exc)
            self.outcome.say(
                f"<b>The deployment did not finish:</b> {_esc(cause)} {what}"
                f"<br><b>Next step:</b> {_esc(hint)}",
                "fail",
            )
            self.last_error = exc
            self.details_button.setVisible(True)
            change = getattr(exc, "change", None)
            if change is not None:  # Review shows what changes, with the tick to allow it
                self.state.input_change = change
            if not isinstance(exc, ModelShipError):
                self.error(exc, "deploying")  # a bug: the dialog offers the diagnostics
        self.retry_button.setVisible(True)

    def _style_outcome(self, kind: str) -> None:
        self.outcome.set_kind(kind)

    def _log(self, line: str) -> None:
        """Append a log line, once (the pipeline may repeat its last line as the result)."""
        if line and line.strip() != self._last_line:
            self.log.appendPlainText(line)
            self._last_line = line.strip()

    def _title(self, text: str) -> None:
        self.title_label.setText(f"<h2 style='margin:0'>{text}</h2>")

    def _finished(self) -> None:
        self.worker = None
        self.cancelling = False
        self.busyChanged.emit(False)
        self.completeChanged.emit()

    # ---- navigation --------------------------------------------------------------
    def cancel(self) -> bool:
        """Cancel while deploying: roll back (the window stays open)."""
        if self.worker is None:
            return False
        if not self.cancelling:
            self.cancelling = True
            self.status.setText("Cancelling: removing what was created…")
            self.worker.cancel()
        return True

    def is_complete(self) -> bool:
        return self.state.record is not None and not self.is_busy()


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _removed_from(exc: BaseException) -> list[str]:
    """What the pipeline says it removed (in the error's details, one per line)."""
    for attr in ("removed",):
        value = getattr(exc, attr, None)
        if value:
            return [str(v) for v in value]
    details = getattr(exc, "details", None) or ""
    lines = [ln.strip("-• ").strip() for ln in details.splitlines()]
    if any(ln.lower().startswith("removed") for ln in lines):
        start = next(i for i, ln in enumerate(lines) if ln.lower().startswith("removed"))
        return [ln for ln in lines[start + 1 :] if ln]
    return []


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(DeployPage))
