"""Start: a new deployment, a saved profile, or a past deployment (with its live status).

Past deployments list what runs (with live status) and, under "Removed", what was torn
down (greyed, with its dates), which "Deploy again" re-runs with its last profile.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wizards import actions, ask
from wizards.pages.base import Page, busy_bar, note
from wizards.resources import icon
from wizards.state import WizardState

ROLE = Qt.ItemDataRole.UserRole
REMOVED_ROLE = Qt.ItemDataRole.UserRole + 1  # True on a removed deployment's item
GREY = QColor("#6e7781")


class StartPage(Page):
    page_id = "start"
    title = "Put a trained model online"
    subtitle = (
        "ModelShip turns your model file into a tested web service that answers "
        "predictions. Start a new deployment, or reuse one you made before."
    )
    icon_name = "app"
    next_text = "&New deployment"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        # one way to start: the "New deployment" button at the bottom right (Next)
        self.resume = note("", "info")
        self.resume.setVisible(False)
        self.body.addWidget(self.resume)

        grid = QGridLayout()
        # saved profiles
        profiles_box = QGroupBox("Saved profiles")
        pl = QVBoxLayout(profiles_box)
        self.profiles = QListWidget()
        self.profiles.setObjectName("profiles")
        self.profiles.setWordWrap(True)
        self.profiles.setSpacing(2)
        self.profiles.itemDoubleClicked.connect(lambda _i: self.open_profile())
        self.profiles.currentItemChanged.connect(lambda *_: self._update())
        pl.addWidget(self.profiles, 1)
        pb = QGridLayout()
        self.open_button = QPushButton("&Open")
        self.open_button.setObjectName("openProfile")
        self.open_button.setToolTip("Deploy with this profile's choices (you can change them)")
        self.duplicate_button = QPushButton("D&uplicate")
        self.export_button = QPushButton("E&xport…")
        self.import_button = QPushButton("&Import…")
        self.open_button.clicked.connect(self.open_profile)
        self.duplicate_button.clicked.connect(self.duplicate_profile)
        self.export_button.clicked.connect(self.export_profile)
        self.import_button.clicked.connect(self.import_profile)
        pb.addWidget(self.open_button, 0, 0)
        pb.addWidget(self.duplicate_button, 0, 1)
        pb.addWidget(self.export_button, 1, 0)
        pb.addWidget(self.import_button, 1, 1)
        pl.addLayout(pb)
        grid.addWidget(profiles_box, 0, 0)
        # past deployments
        deployments_box = QGroupBox("Past deployments")
        dl = QVBoxLayout(deployments_box)
        self.deployments = QListWidget()
        self.deployments.setObjectName("deployments")
        self.deployments.setWordWrap(True)
        self.deployments.setSpacing(2)
        self.deployments.currentItemChanged.connect(lambda *_: self._update())
        dl.addWidget(self.deployments, 1)
        self.status_bar = busy_bar()
        dl.addWidget(self.status_bar)
        db = QGridLayout()
        self.redeploy_button = QPushButton("&Redeploy")
        self.redeploy_button.setToolTip("Deploy it again with the same choices")
        self.rollback_button = QPushButton("Ro&ll back")
        self.rollback_button.setToolTip("Go back to the version deployed before this one")
        self.teardown_button = QPushButton("&Tear down")
        self.teardown_button.setObjectName("teardownDeployment")
        self.teardown_button.setToolTip("Stop it and remove everything it created")
        self.refresh_button = QPushButton("Re&fresh")
        self.dashboard_button = QPushButton("&Dashboard")
        self.dashboard_button.setObjectName("openDashboard")
        self.dashboard_button.setToolTip(
            "How it is doing: status, requests, log, versions; Stop and Start; score a file"
        )
        self.dashboard_button.clicked.connect(self.open_dashboard)
        self.deployments.itemDoubleClicked.connect(lambda _i: self.open_dashboard())
        self.redeploy_button.clicked.connect(self.redeploy)
        self.rollback_button.clicked.connect(self.rollback)
        self.teardown_button.clicked.connect(self.teardown)
        self.refresh_button.clicked.connect(self.refresh)
        db.addWidget(self.dashboard_button, 0, 0)
        db.addWidget(self.redeploy_button, 0, 1)
        db.addWidget(self.rollback_button, 1, 0)
        db.addWidget(self.teardown_button, 1, 1)
        db.addWidget(self.refresh_button, 2, 0, 1, 2)
        dl.addLayout(db)
        grid.addWidget(deployments_box, 0, 1)
        self.body.addLayout(grid, 1)
        self.message = note("", "ok")
        self.message.setVisible(False)
        self.body.addWidget(self.message)
        self.records: dict[str, Any] = {}
        self.removed: dict[str, Any] = {}  # torn-down deployments (history)
        self.dashboards: list[Any] = []

    # ---- lists ---------------------------------------------------------------------
    def enter(self) -> None:
        model = self.state.model_path
        if model is not None and self.state.record is None:
            self.resume.label.setText(
                f"<b>Your deployment of {model.name} is kept.</b> Click a step on the left "
                "to go on with it, or “New deployment” to start over."
            )
            self.resume.setVisible(True)
        else:
            self.resume.setVisible(False)
        self.refresh()

    def refresh(self) -> None:
        from app.store.profile import list_profiles
        from app.store.records import list_records, list_removed

        self.profiles.clear()
        for info in list_profiles():
            model = Path(info.model).name if info.model else "?"
            text = f"{info.name}\n{model} → {target_title(info.target) or '?'}"
            if info.error:
                text = f"{info.name}\ncannot be read: {info.error}"
            item = QListWidgetItem(icon("fail" if info.error else "review"), text)
            item.setData(ROLE, info)
            self.profiles.addItem(item)
        if not self.profiles.count():
            empty = QListWidgetItem("No saved profiles yet.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.profiles.addItem(empty)
        self.deployments.clear()
        self.records = {r.name: r for r in list_records()}
        for name, record in self.records.items():
            where = target_title(record.target)
            item = QListWidgetItem(icon("pending"), f"{name}\n{where}: checking…")
            item.setData(ROLE, name)
            self.deployments.addItem(item)
        self.removed = {r.name: r for r in list_removed()}
        if not self.records:
            # with removed ones below, "yet" would be untrue
            empty = QListWidgetItem(
                "Nothing running now." if self.removed else "Nothing deployed yet."
            )
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.deployments.addItem(empty)
        if self.removed:
            header = QListWidgetItem("Removed")
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            bold = QFont(header.font())
            bold.setBold(True)
            header.setFont(bold)
            header.setForeground(QBrush(GREY))
            self.deployments.addItem(header)
        for name, record in self.removed.items():
            item = QListWidgetItem(icon("pending"), removed_words(record))
            item.setData(ROLE, name)
            item.setData(REMOVED_ROLE, True)
            item.setForeground(QBrush(GREY))
            item.setToolTip(record.message)
            self.deployments.addItem(item)
        self._update()
        if self.records and not self.is_busy():
            self.status_bar.setVisible(True)
            self.start_worker(
                lambda progress, cancel: actions.all_statuses(progress, cancel),
                name="status",
                on_result=self._statuses,
                on_error=lambda exc: self.error(exc, "checking deployments"),
                on_finished=self._busy_done,
            )
            self.busyChanged.emit(True)

    def _statuses(self, statuses: list[actions.LiveStatus]) -> None:
        by_name = {s.name: s for s in statuses}
        for i in range(self.deployments.count()):
            item = self.deployments.item(i)
            name = item.data(ROLE)
            status = by_name.get(name)
            if status is None or item.data(REMOVED_ROLE):
                continue
            where = f" at {status.url}" if status.url and status.running else ""
            words = status.words()
            record = self.records.get(name)
            if not status.running and getattr(record, "state", "") == "stopped":
                words = "stopped (start it from its dashboard)"
            item.setText(f"{name}\n{target_title(status.target)}: {words}{where}")
            item.setIcon(
                icon("ok" if status.answering else "warning" if status.running else "fail")
            )
            item.setToolTip(status.detail)

    def _busy_done(self) -> None:
        self.status_bar.setVisible(False)
        self.busyChanged.emit(False)
        self._update()

    def _update(self) -> None:
        busy = self.is_busy()
        profile = self._selected_profile()
        record = self._selected_record()
        self.open_button.setEnabled(profile is not None and not profile.error)
        self.duplicate_button.setEnabled(profile is not None and not profile.error)
        self.export_button.setEnabled(profile is not None and not profile.error)
        gone = self._selected_is_removed()
        self.redeploy_button.setText("&Deploy again" if gone else "&Redeploy")
        self.redeploy_button.setToolTip(
            "Deploy it again with its last choices"
            if gone
            else "Deploy it again with the same choices"
        )
        self.redeploy_button.setEnabled(record is not None and not busy)
        self.teardown_button.setEnabled(record is not None and not busy and not gone)
        self.dashboard_button.setEnabled(record is not None and not gone)
        self.rollback_button.setEnabled(
            record is not None and not busy and not gone and record.previous_version() is not None
        )

    def _selected_profile(self) -> Any:
        item = self.profiles.currentItem()
        return item.data(ROLE) if item is not None else None

    def _selected_record(self) -> Any:
        item = self.deployments.currentItem()
        name = item.data(ROLE) if item is not None else None
        if not name:
            return None
        return self.removed.get(name) if item.data(REMOVED_ROLE) else self.records.get(name)

    def _selected_is_removed(self) -> bool:
        item = self.deployments.currentItem()
        return bool(item is not None and item.data(REMOVED_ROLE))

    def select_deployment(self, name: str, removed: bool = False) -> bool:
        """Select ``name`` in the list (tests and the Result page use this)."""
        for i in range(self.deployments.count()):
            item = self.deployments.item(i)
            if item.data(ROLE) == name and bool(item.data(REMOVED_ROLE)) == removed:
                self.deployments.setCurrentItem(item)
                return True
        return False

    def open_dashboard(self) -> None:
        record = self._selected_record()
        if record is None or self._selected_is_removed():
            return
        from wizards.dashboard import open_dashboard

        dialog = open_dashboard(self.window(), record.name)
        dialog.changed.connect(self.refresh)
        self.dashboards.append(dialog)
        dialog.finished.connect(lambda *_: self._forget_dashboard(dialog))

    def _forget_dashboard(self, dialog: Any) -> None:
        if dialog in self.dashboards:
            self.dashboards.remove(dialog)

    def stop_workers(self, timeout: float = 30.0) -> None:
        """The window stops every page's work when it closes: dashboards close too."""
        for dialog in list(getattr(self, "dashboards", [])):
            dialog.close()
        super().stop_workers(timeout)

    def _say(self, text: str, kind: str = "ok") -> None:
        self.message.label.setText(text)
        self.message.setVisible(True)

    # ---- actions ---------------------------------------------------------------------
    def new_deployment(self) -> None:
        if self.accept():
            self.go.emit("model")

    def accept(self) -> bool:  # Next = "New deployment"
        if (
            self.state.model_path is not None
            and self.state.record is None
            and not ask.confirm(
                self.window(),
                "Discard this deployment?",
                f"You have started a deployment of {self.state.model_path.name}. Start a new "
                "one and lose those answers?",
                yes="Discard and start over",
                no="Keep it",
            )
        ):
            return False
        self.state.reset()
        return True

    def open_profile(self, path: Path | None = None) -> None:
        from app.store.profile import load_profile

        info = self._selected_profile()
        source = path or (info.path if info is not None else None)
        if source is None:
            return
        try:
            profile = load_profile(source)
        except Exception as exc:
            self.error(exc, "opening the profile")
            return
        self.state.adopt_profile(profile, Path(source))
        self._confirm_python()
        self.go.emit("model")

    def _confirm_python(self) -> None:
        """A profile that names its own Python interpreter: ask before ModelShip runs it
        (a profile may come from someone else); the answer is kept on this computer."""
        python = self.state.python
        if not python:
            return
        from app.store import trust

        if trust.python_trusted(python):
            return
        where = trust.python_path(python)
        if where is not None and ask.confirm(
            self.window(),
            "Run this profile's Python?",
            f"This profile converts the model with the Python interpreter\n\n{where}\n\n"
            "ModelShip would run that program. Use it only if it is your own environment "
            "(for example the one the model was trained in). Otherwise ModelShip converts "
            "with its own Python.",
            yes="Use this Python",
            no="Use ModelShip's own",
        ):
            trust.trust_python(str(where))
            return
        self.state.python = None
        self._say(
            f"Not using the profile's Python ({python}): converting with ModelShip's own. "
            "Choose another on the Model page."
        )

    def duplicate_profile(self) -> None:
        info = self._selected_profile()
        if info is None:
            return
        try:
            copy, path = actions.duplicate_profile(info.name)
        except Exception as exc:
            self.error(exc, "duplicating the profile")
            return
        self.refresh()
        self._say(f"Saved a copy as “{copy.name}” ({path}).")

    def export_profile(self) -> None:
        info = self._selected_profile()
        if info is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the profile", f"{info.name}.toml", "Profiles (*.toml)"
        )
        if not path:
            return
        try:
            from app.store.profile import load_profile

            actions.export_profile(load_profile(info.path), Path(path))
        except Exception as exc:
            self.error(exc, "exporting the profile")
            return
        self._say(f"Exported “{info.name}” to {path}. It holds no passwords.")

    def import_profile(self, path: Path | None = None) -> None:
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Import a profile", "", "Profiles (*.toml);;All files (*)"
            )
            if not chosen:
                return
            path = Path(chosen)
        try:
            profile, saved = actions.import_profile(path)
        except Exception as exc:
            self.error(exc, "importing the profile")
            return
        self.refresh()
        notes = "".join(f" {n}" for n in profile.notes)  # e.g. trust that was not imported
        self._say(f"Imported “{profile.name}” ({saved}).{notes}")

    def redeploy(self) -> None:
        record = self._selected_record()
        if record is None:
            return
        from app.store.profile import Profile

        try:
            profile = Profile.model_validate(record.profile)
        except Exception as exc:
            self.error(exc, "reading the deployment's profile")
            return
        self.state.adopt_profile(
            profile, Path(record.profile_path) if record.profile_path else None
        )
        self._confirm_python()
        if not self._selected_is_removed():
            self.state.replace_ok_for = record.name  # a redeploy replaces it: the point
        self.go.emit("review")

    def _run_on_record(self, what: str, fn: Any, done: Any) -> None:
        record = self._selected_record()
        if record is None or self.is_busy():
            return
        self.status_bar.setVisible(True)
        name = record.name
        self.start_worker(
            lambda progress, cancel: fn(name, progress, cancel),
            name=what,
            on_result=lambda value: done(name, value),
            on_error=lambda exc: self.error(exc, what),
            on_finished=lambda: (self._busy_done(), self.refresh()),
        )
        self.busyChanged.emit(True)
        self._update()

    def teardown(self) -> None:
        record = self._selected_record()
        if record is None or not ask.confirm(
            self.window(),
            f"Tear down “{record.name}”?",
            teardown_words(record),
            yes="Tear down",
            no="Keep it",
        ):
            return
        self._run_on_record(
            "tearing down",
            lambda name, progress, cancel: actions.teardown(name, progress),
            lambda name, removed: self._say(
                f"Removed “{name}”: " + ("; ".join(removed) or "nothing was left") + "."
            ),
        )

    def rollback(self) -> None:
        record = self._selected_record()
        if record is None:
            return
        older = record.previous_version()
        if older is None or not ask.confirm(
            self.window(),
            f"Roll back “{record.name}”?",
            f"“{record.name}” will serve version {older.version} again instead of version "
            f"{record.current_version}. The newer version is kept, so you can deploy it "
            "again later.",
            yes=f"Go back to version {older.version}",
            no="Keep the current version",
        ):
            return
        self._run_on_record(
            "rolling back",
            lambda name, progress, cancel: actions.rollback(name, progress, cancel),
            lambda name, record: self._say(f"“{name}”: {record.message}"),
        )

    def is_complete(self) -> bool:
        return True

    def next_page(self) -> str | None:
        return "model"


def target_title(kind: str | None) -> str | None:
    """ "This computer" rather than "local": the card's title for a target kind."""
    from targets import CATALOG

    return getattr(CATALOG.get(kind or ""), "title", kind)


def removed_words(record: Any) -> str:
    """A removed deployment's line: name, where it ran, when it was removed."""
    from wizards.dashboard import when_words

    where = target_title(record.target)
    n = len(record.versions)
    versions = f", {n} version{'s' if n != 1 else ''}" if n else ""
    return f"{record.name}\n{where}: removed {when_words(record.removed_at)}{versions}"


def teardown_words(record: Any) -> str:
    """What a teardown removes, named before it happens."""
    where = target_title(record.target)
    things = [r.name or f"{r.kind} {r.id}" for r in record.resources()] if record.endpoint else []
    versions = len(record.versions)
    text = (
        f"This stops “{record.name}” ({where}) and removes everything it created"
        + (f": {', '.join(things)}" if things else "")
        + (f", with all {versions} kept versions" if versions > 1 else "")
        + ". Programs that call its address will get no answer. This cannot be undone."
    )
    if record.url:
        text += f"\n\nAddress: {record.url}"
    return text


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(StartPage))
