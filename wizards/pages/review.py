"""Review: what will be created, where, and where the profile is saved."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from wizards.nextstep import for_wizard
from wizards.pages.base import Page, busy_bar, note
from wizards.state import WizardState


class ReviewPage(Page):
    page_id = "review"
    title = "Check before deploying"
    subtitle = "This is what ModelShip will do. Nothing has been created yet."
    icon_name = "review"
    next_text = "&Deploy"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        top = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("deploymentName")
        self.name_edit.setToolTip("Lower-case letters, digits, - and _. Used to find it later.")
        self.name_edit.editingFinished.connect(self._name_changed)
        top.addRow("Deployment name:", self.name_edit)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        top.addRow("", self.summary)
        self.body.addLayout(top)
        # billing targets: what it costs, before anything is created
        self.cost = note("", "warning")
        self.cost.setObjectName("costNote")
        self.cost.setVisible(False)
        self.body.addWidget(self.cost)
        # a proof that failed and was accepted ("Deploy anyway") is said again here
        self.proof_note = note("", "warning")
        self.proof_note.setObjectName("proofFailedNote")
        self.proof_note.setVisible(False)
        self.body.addWidget(self.proof_note)
        # a deployment of that name exists: deploying replaces it, and that needs a yes
        self.replace_box = QGroupBox("This replaces a deployment")
        self.replace_box.setObjectName("replaceBox")
        self.replace_box.setStyleSheet("QGroupBox { font-weight: bold; color: #9a6700; }")
        rl = QVBoxLayout(self.replace_box)
        self.replace_text = QLabel("")
        self.replace_text.setWordWrap(True)
        self.replace_text.setStyleSheet("font-weight: normal; color: palette(text);")
        rl.addWidget(self.replace_text)
        self.replace_check = QCheckBox("")
        self.replace_check.setObjectName("replaceCheck")
        self.replace_check.toggled.connect(self._replace_toggled)
        rl.addWidget(self.replace_check)
        self.replace_box.setVisible(False)
        self.body.addWidget(self.replace_box)
        self.bar = busy_bar()
        self.body.addWidget(self.bar)

        plan_box = QGroupBox("What will be created")
        plan_lay = QVBoxLayout(plan_box)
        self.plan = QTableWidget(0, 3)
        self.plan.setObjectName("plan")
        self.plan.setHorizontalHeaderLabels(["Action", "What", "Details"])
        self.plan.verticalHeader().setVisible(False)
        self.plan.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.plan.horizontalHeader()
        # long paths must not push the details out of sight at 800 px: the columns
        # share the width, long texts are shortened in the middle (full text on hover)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.plan.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.plan.setWordWrap(False)
        plan_lay.addWidget(self.plan)
        self.body.addWidget(plan_box, 1)

        self.docker_box = QGroupBox("The container recipe (Dockerfile) ModelShip generates")
        docker_lay = QVBoxLayout(self.docker_box)
        self.dockerfile = QPlainTextEdit()
        self.dockerfile.setObjectName("dockerfile")
        self.dockerfile.setReadOnly(True)
        self.dockerfile.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        docker_lay.addWidget(self.dockerfile)
        self.docker_box.setVisible(False)
        self.body.addWidget(self.docker_box, 1)

        # targets with a manifests() document (e.g. Kubernetes): the exact objects a
        # deploy creates, collapsed until asked for; hidden for the others
        self.objects_box = QGroupBox("The exact objects")
        self.objects_box.setObjectName("objectsBox")
        objects_lay = QVBoxLayout(self.objects_box)
        objects_row = QHBoxLayout()
        self.objects_toggle = QToolButton()
        self.objects_toggle.setObjectName("objectsToggle")
        self.objects_toggle.setText("Show the exact objects that will be created")
        self.objects_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.objects_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.objects_toggle.setCheckable(True)
        self.objects_toggle.toggled.connect(self._objects_toggled)
        self.objects_copy = QPushButton("Co&py")
        self.objects_copy.setObjectName("objectsCopy")
        self.objects_copy.setToolTip("Copy the objects (secrets redacted) to the clipboard")
        self.objects_copy.clicked.connect(self._copy_objects)
        objects_row.addWidget(self.objects_toggle)
        objects_row.addStretch(1)
        objects_row.addWidget(self.objects_copy)
        objects_lay.addLayout(objects_row)
        self.objects = QPlainTextEdit()
        self.objects.setObjectName("objects")
        self.objects.setReadOnly(True)
        self.objects.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.objects.setVisible(False)
        objects_lay.addWidget(self.objects)
        self.objects_box.setVisible(False)
        self.body.addWidget(self.objects_box, 1)

        save_box = QGroupBox("Profile")
        save_lay = QVBoxLayout(save_box)
        self.save_check = QCheckBox("Save these choices as a profile, to deploy again later")
        self.save_check.setObjectName("saveProfile")
        self.save_check.setChecked(True)
        row = QHBoxLayout()
        self.save_path = QLineEdit()
        self.save_path.setObjectName("profilePath")
        self.save_button = QPushButton("Save &as…")
        self.save_button.clicked.connect(self._choose_path)
        row.addWidget(self.save_path, 1)
        row.addWidget(self.save_button)
        save_lay.addWidget(self.save_check)
        save_lay.addLayout(row)
        hint = QLabel(
            "The profile holds no passwords. Deploy it again later from the start page "
            "(“Saved profiles”)."
        )
        hint.setObjectName("profileHint")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #57606a;")
        save_lay.addWidget(hint)
        self.body.addWidget(save_box)
        self.problem = note("", "fail")
        self.problem.setVisible(False)
        self.body.addWidget(self.problem)
        self.plan_ok = False
        self.change: Any = None  # app.run.InputChange shown in the replace box

    def enter(self) -> None:
        self.name_edit.setText(self.state.default_name())
        self.refresh()

    def _show_replace(self, name: str) -> None:
        from app.store.records import find_record
        from targets import CATALOG

        existing = find_record(name)
        change = self._input_change(existing)
        self.change = change
        agreed = self.state.replace_ok_for == name and (
            change is None or self.state.inputs_change_ok_for == name
        )
        if existing is None or agreed:
            self.replace_box.setVisible(False)
            return
        where = getattr(CATALOG.get(existing.target), "title", existing.target)
        at = f" at {existing.url}" if existing.url else ""
        self.replace_box.setTitle(f"“{name}” already exists")
        text = (
            f"A deployment named “{name}” runs on {where}{at}. Deploying with this name "
            "replaces it with this model (its current version is kept, so you can roll "
            "back). To keep both, choose another name above."
        )
        if change is not None:
            items = "".join(f"<li>{_esc(part)}</li>" for part in change.parts())
            text = (
                f"{_esc(text)}<br><b>This model takes other inputs than the one running "
                f"now:</b><ul style='margin:2px 0'>{items}</ul>"
            )
        self.replace_text.setText(text)
        self.replace_check.blockSignals(True)
        self.replace_check.setChecked(False)
        self.replace_check.blockSignals(False)
        self.replace_check.setText(
            f"Replace “{name}” even though its inputs change"
            if change is not None
            else f"Replace “{name}”"
        )
        self.replace_box.setVisible(True)

    def _input_change(self, existing: Any) -> Any:
        """What the new model changes for the running one's callers (the core compares
        the signatures), or None. Without a conversion on hand (a Redeploy), the change
        the core found when it refused a deploy."""
        if existing is None:
            return None
        signature = getattr(self.state.conversion, "signature_path", None)
        if signature is not None:
            from app.run import input_change

            return input_change(existing, signature)
        change = self.state.input_change
        return change if change is not None and change.name == existing.name else None

    def _replace_toggled(self, on: bool) -> None:
        self.completeChanged.emit()

    def replace_blocked(self) -> bool:
        return not self.replace_box.isHidden() and not self.replace_check.isChecked()

    def blocked_reason(self) -> str:
        if self.is_busy():
            return "Making the plan…"
        if self.replace_blocked():
            return f"Confirm that “{self.state.default_name()}” may be replaced, or rename."
        if not self.plan_ok:
            return "The plan could not be made (see above)."
        return ""

    def _name_changed(self) -> None:
        name = self.name_edit.text().strip()
        if name and name != self.state.name:
            self.state.name = name
            self.refresh()

    def _choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the profile as", self.save_path.text(), "Profiles (*.toml)"
        )
        if path:
            self.save_path.setText(path)

    def refresh(self) -> None:
        """Build the profile and ask the target for its plan (off the GUI thread)."""
        self.plan_ok = False
        self.problem.setVisible(False)
        self.completeChanged.emit()
        try:
            profile = self.state.build_profile()
        except Exception as exc:
            self.problem.label.setText(str(getattr(exc, "message", exc)))
            self.problem.setVisible(True)
            self.error(exc, "preparing the deployment")
            return
        self.state.profile = profile
        self._show_replace(profile.name)
        from app.store.profile import profile_path
        from targets import get_kind

        if not self.save_path.text() or Path(self.save_path.text()).stem != profile.name:
            current = self.state.profile_path
            self.save_path.setText(
                str(
                    current
                    if current and current.stem == profile.name
                    else profile_path(profile.name)
                )
            )
        cls = get_kind(profile.target.kind)
        model = Path(profile.model.path).name
        self.summary.setText(
            f"Deploy <b>{model}</b> to <b>{cls.title}</b>"
            + (" as the smaller (8-bit) version" if profile.model.quantize else "")
            + "."
        )
        self._show_cost(profile, cls)
        conversion = self.state.conversion
        failed = proof_failed_words(conversion, profile.model.accept_mismatch)
        self.proof_note.say(failed, "warning")
        self.proof_note.setVisible(bool(failed))
        self.bar.setVisible(True)

        def work(progress: Any, cancel: Any) -> Any:
            from app.run import plan as core_plan

            plan = core_plan(profile)
            image = cls.ships == "image"
            dockerfile = render_dockerfile(profile, conversion) if image else None
            from app.run import manifests

            return plan, dockerfile, manifests(profile)

        self.start_worker(
            work,
            name="plan",
            on_result=self._planned,
            on_error=lambda exc: self.error(exc, "making the plan"),
            on_finished=self._plan_done,
        )
        self.busyChanged.emit(True)

    def _show_cost(self, profile: Any, kind: Any) -> None:
        """The cost line of a billing target (per hour and per month), from the
        target's own price table; hidden for targets that cost nothing."""
        cost = cost_of(profile) if kind.billing else None
        if cost is None:
            self.cost.setVisible(False)
            return
        self.cost.say(
            f"<b style='font-size:14pt'>Cost: {cost.headline()}</b><br>"
            f"{_esc(for_wizard(cost.explanation()))} "
            f"{kind.title.split(' (')[0]} bills it until you tear it down (the Start page or "
            f"the Try it page).<br><span style='color:#57606a'>{_esc(cost.note)}</span>",
            "warning",
        )

    def _plan_done(self) -> None:
        self.bar.setVisible(False)
        self.busyChanged.emit(False)
        self.completeChanged.emit()

    def _objects_toggled(self, shown: bool) -> None:
        self.objects.setVisible(shown)
        self.objects_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )
        self.objects_toggle.setText(
            "Hide the exact objects" if shown else "Show the exact objects that will be created"
        )

    def _copy_objects(self) -> None:
        from PySide6.QtWidgets import QApplication

        QApplication.clipboard().setText(self.objects.toPlainText())
        self.objects_copy.setText("Copied")

    def _planned(self, result: tuple[list[Any], str | None, str | None]) -> None:
        plan, dockerfile, objects = result
        self.plan.setRowCount(len(plan))
        for row, item in enumerate(plan):
            for col, text in enumerate(
                (item.action.capitalize(), f"{item.kind} {item.name}", for_wizard(item.detail))
            ):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                self.plan.setItem(row, col, cell)
        self.docker_box.setVisible(dockerfile is not None)
        self.dockerfile.setPlainText(dockerfile or "")
        self.objects_box.setVisible(bool(objects))
        self.objects.setPlainText(objects or "")
        self.objects_copy.setText("Co&py")
        self.objects_box.setTitle(
            "What will be created, exactly (secrets redacted)" if objects else ""
        )
        self.plan_ok = True
        self.completeChanged.emit()

    def is_complete(self) -> bool:
        return self.plan_ok and not self.replace_blocked()

    def accept(self) -> bool:
        self._name_changed()
        if self.state.profile is None or self.state.profile.name != self.state.default_name():
            self.refresh()
            return False
        # Saved once the deploy succeeded (the Deploy page): a failed deploy leaves the
        # saved profile as it was.
        if not self.replace_box.isHidden():
            self.state.replace_ok_for = self.state.default_name()
            if self.change is not None:
                self.state.inputs_change_ok_for = self.state.default_name()
        self.state.save_to = (
            Path(self.save_path.text()).expanduser() if self.save_check.isChecked() else None
        )
        return True


def proof_failed_words(conversion: Any, accepted: bool) -> str:
    """What the Review and Deploy pages say about a proof that failed and was accepted
    with "Deploy anyway" ('' when the proof passed or nothing was accepted)."""
    report = getattr(conversion, "report", None)
    if report is not None and not report.passed:
        from wizards.pages.convert import verdict_words

        return (
            f"<b>The proof failed:</b> {_esc(verdict_words(report))} You chose to deploy "
            "anyway (“Deploy anyway” on the Convert page: untick it there to stop)."
        )
    if accepted and conversion is None:
        return (
            "<b>If the proof fails, this deploys anyway:</b> “Deploy anyway” was chosen for "
            "this profile. The model is converted and proven again while it deploys."
        )
    return ""


def cost_of(profile: Any) -> Any:
    """The kind's cost estimate for the profile's settings (``Kind.estimate``), or None."""
    from targets import get_kind

    return get_kind(profile.target.kind).estimate(profile.target.settings)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_dockerfile(profile: Any, conversion: Any) -> str:
    """The Dockerfile the image step will generate: the core renders it, not the page."""
    from app.image.buildcontext import preview_dockerfile

    return preview_dockerfile(profile, getattr(conversion, "onnx_path", None))


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(ReviewPage))
