"""The wizard window: a step sidebar, one page at a time, Back / Next / Cancel.

A QMainWindow with a page stack rather than QWizard: pages branch (Start can jump to
Review to redeploy a saved profile, or to Result), and the Deploy page needs Cancel to
mean "roll back" while it runs. Window geometry is remembered with QSettings in
ModelShip's own config folder.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wizards import ask
from wizards.pages.base import Page
from wizards.resources import icon
from wizards.state import WizardState

MAX_CONTENT_WIDTH = 1100
ORDER = ["start", "model", "convert", "target", "settings", "review", "deploy", "result"]


def settings_store() -> QSettings:
    from app.paths import config_dir

    return QSettings(str(config_dir() / "wizard.ini"), QSettings.Format.IniFormat)


def _page_classes() -> dict[str, type[Page]]:
    from wizards.pages.convert import ConvertPage
    from wizards.pages.deploy import DeployPage
    from wizards.pages.model import ModelPage
    from wizards.pages.result import ResultPage
    from wizards.pages.review import ReviewPage
    from wizards.pages.settings import SettingsPage
    from wizards.pages.start import StartPage
    from wizards.pages.target import TargetPage

    classes: list[type[Page]] = [
        StartPage,
        ModelPage,
        ConvertPage,
        TargetPage,
        SettingsPage,
        ReviewPage,
        DeployPage,
        ResultPage,
    ]
    return {c.page_id: c for c in classes}


class WizardWindow(QMainWindow):
    def __init__(self, state: WizardState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state or WizardState()
        self.setWindowTitle("ModelShip")
        self.setWindowIcon(icon("app"))
        self.setObjectName("wizardWindow")
        self.history: list[str] = []
        self.current_id = ""
        # steps of this deployment already shown: the sidebar lets a person go back to
        # them (and forward again, while every step in between is complete)
        self.reached: set[str] = set()

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("steps")
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.sidebar.setFixedWidth(190)
        self.sidebar.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.sidebar.setStyleSheet(
            "QListWidget#steps { border: none; background: palette(window); padding-top: 12px; }"
            " QListWidget#steps::item { padding: 8px 6px; }"
            " QListWidget#steps::item:selected { background: #ddf4ff; color: #0550ae;"
            " border-left: 3px solid #0969da; }"
        )
        self.sidebar.itemClicked.connect(self._step_clicked)

        self.stack = QStackedWidget()
        self.pages: dict[str, Page] = {}
        self.holders: dict[str, QScrollArea] = {}
        for page_id, cls in _page_classes().items():
            page = cls(self.state)
            self.pages[page_id] = page
            # every page scrolls when the screen is small (an 800x600 lab screen)
            holder = QScrollArea()
            holder.setObjectName(f"holder-{page_id}")
            holder.setWidgetResizable(True)
            holder.setFrameShape(QFrame.Shape.NoFrame)
            holder.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            holder.setWidget(page)
            self.holders[page_id] = holder
            self.stack.addWidget(holder)
            page.completeChanged.connect(self._update_buttons)
            page.busyChanged.connect(lambda _b: self._update_buttons())
            page.go.connect(self.go)
            item = QListWidgetItem(icon(cls.icon_name), _step_name(cls))
            self.sidebar.addItem(item)

        self.home_button = QPushButton(icon("app"), "&Home")
        self.home_button.setObjectName("homeButton")
        self.home_button.setToolTip("Back to the start page; your answers are kept")
        self.back_button = QPushButton("&Back")
        self.back_button.setObjectName("backButton")
        self.next_button = QPushButton("&Next")
        self.next_button.setObjectName("nextButton")
        self.next_button.setDefault(True)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.home_button.clicked.connect(self.home)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.cancel_button.clicked.connect(self.cancel)
        QShortcut(QKeySequence("Alt+Left"), self, activated=self.back)
        QShortcut(QKeySequence("Alt+Right"), self, activated=self.next)
        # why Next is grey, right next to it
        self.why = QLabel("")
        self.why.setObjectName("whyBlocked")
        self.why.setWordWrap(True)
        self.why.setStyleSheet("color: #9a6700;")
        self.why.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.why.setVisible(False)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(24, 8, 24, 16)
        buttons.addWidget(self.home_button)
        buttons.addStretch(0)  # takes the room while there is nothing to say
        buttons.addWidget(self.why, 1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.cancel_button)

        # at 2560 px the content keeps a readable width, centred
        self.content = QWidget()
        self.content.setObjectName("content")
        self.content.setMaximumWidth(MAX_CONTENT_WIDTH)
        right = QVBoxLayout(self.content)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.stack, 1)
        right.addLayout(buttons)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addStretch(0)  # on a wide screen, steps and page stay together, centred
        row.addWidget(self.sidebar)
        row.addWidget(self.content, 1)
        row.addStretch(0)
        self.setCentralWidget(central)

        self.resize(1100, 760)
        self.setMinimumSize(720, 520)
        geometry = settings_store().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.go("start", record=False)

    # ---- navigation -------------------------------------------------------------
    @property
    def page(self) -> Page:
        return self.pages[self.current_id]

    def go(self, page_id: str, record: bool = True) -> None:
        if self.current_id and record and page_id != self.current_id:
            self.history.append(self.current_id)
        if page_id == "start":
            self.history.clear()
        if self.state.model_path is None and page_id in {"start", "model"}:
            self.reached.clear()  # a new deployment: no steps done yet
        self.current_id = page_id
        self.reached.add(page_id)
        page = self.pages[page_id]
        self.stack.setCurrentWidget(self.holders[page_id])
        self.sidebar.setCurrentRow(ORDER.index(page_id))
        page.enter()
        self._update_buttons()
        nxt = page.nextInFocusChain()
        if nxt is not None and page.isAncestorOf(nxt):
            nxt.setFocus(Qt.FocusReason.TabFocusReason)

    def can_jump(self, page_id: str) -> bool:
        """A step in the sidebar can be clicked: one already shown in this deployment,
        and, going forward, only over complete steps (never into the deploy itself)."""
        if page_id == self.current_id or self.page.is_busy():
            return False
        if page_id == "start":
            return True  # home, always
        if page_id not in self.reached:
            return False
        here, there = ORDER.index(self.current_id), ORDER.index(page_id)
        if there < here:
            return self.current_id != "deploy" or not self.page.is_busy()
        if page_id == "deploy":
            return False
        return all(self.pages[p].is_complete() for p in ORDER[here:there])

    def _step_clicked(self, item: QListWidgetItem) -> None:
        page_id = ORDER[self.sidebar.row(item)]
        if self.can_jump(page_id):
            self.go(page_id)
        else:
            self.sidebar.setCurrentRow(ORDER.index(self.current_id))

    def home(self) -> None:
        """Home keeps every answer: the sidebar's steps lead back into the deployment."""
        if self.page.is_busy():
            return
        self.go("start")

    def next(self) -> None:
        if not self.next_button.isEnabled():
            return
        page = self.page
        if not page.accept():
            return
        target = page.next_page()
        if target is None:
            i = ORDER.index(self.current_id)
            if i + 1 >= len(ORDER):
                self.close()
                return
            target = ORDER[i + 1]
        self.go(target)

    def back(self) -> None:
        if not self.back_button.isEnabled() or not self.history:
            return
        previous = self.history.pop()
        self.go(previous, record=False)

    def has_answers(self) -> bool:
        """Something typed or chosen that a discard would lose (a deployed one is kept)."""
        return self.state.model_path is not None and self.state.record is None

    def cancel(self) -> None:
        if self.page.cancel():
            return
        if self.current_id in {"start", "result"}:
            self.close()
            return
        if self.has_answers() and not ask.confirm(
            self,
            "Discard this deployment?",
            "The answers you gave for this deployment will be lost. Nothing has been deployed yet.",
            yes="Discard",
            no="Keep editing",
        ):
            return
        self.state.reset()
        self.go("start")

    def keyPressEvent(self, event: Any) -> None:
        """Enter presses Next (a main window has no default button of its own); on a
        focused button, Enter presses that button."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & (
            ~Qt.KeyboardModifier.KeypadModifier
        ):
            focused = self.focusWidget()  # this window's, also while it is not active
            if isinstance(focused, QAbstractButton) and focused.isEnabled():
                focused.animateClick()
            elif not self.page.enter_pressed(focused):
                self.next()
            event.accept()
            return
        super().keyPressEvent(event)

    def _update_buttons(self) -> None:
        if not self.current_id:
            return
        page = self.page
        busy = page.is_busy()
        self.back_button.setEnabled(bool(self.history) and not busy)
        self.home_button.setEnabled(not busy)
        self.home_button.setVisible(self.current_id != "start")
        self.next_button.setText(page.next_text)
        self.next_button.setEnabled(page.is_complete() and not busy)
        self.next_button.setVisible(page.next_text != "")
        why = "" if self.next_button.isEnabled() else page.blocked_reason()
        self.why.setText(why)
        self.why.setVisible(bool(why))
        closing = page.page_id in {"start", "result"} and not busy
        self.cancel_button.setText("&Close" if closing else "&Cancel")
        for row in range(self.sidebar.count()):
            item = self.sidebar.item(row)
            font = item.font()
            font.setBold(ORDER[row] == self.current_id)
            item.setFont(font)
            enabled = ORDER[row] == self.current_id or self.can_jump(ORDER[row])
            flags = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags if enabled else Qt.ItemFlag.NoItemFlags)

    # ---- closing ----------------------------------------------------------------
    def stop_all_workers(self) -> None:
        for page in self.pages.values():
            page.stop_workers()

    def closeEvent(self, event: Any) -> None:
        deploy = self.pages["deploy"]
        if deploy.is_busy():
            if not ask.confirm(
                self,
                "A deployment is running",
                "ModelShip is deploying right now. Stop it and remove what it created so far?",
                yes="Stop and remove",
                no="Keep deploying",
            ):
                event.ignore()
                return
            self._stop_deploy(deploy)
        elif self.has_answers() and not ask.confirm(
            self,
            "Discard this deployment?",
            "ModelShip will close and the answers you gave for this deployment will be "
            "lost. Nothing has been deployed yet.",
            yes="Discard and close",
            no="Keep editing",
        ):
            event.ignore()
            return
        settings_store().setValue("window/geometry", self.saveGeometry())
        self.stop_all_workers()
        super().closeEvent(event)

    def _stop_deploy(self, deploy: Page) -> None:
        """Cancel the deploy and wait for it. If it finished while the person was
        deciding, remove it as asked (and say so), instead of leaving it running."""
        from wizards import actions

        for worker in deploy.busy_workers():
            worker.cancel()
            worker.wait(600)
        QApplication.sendPostedEvents()  # deliver its result or error to the page
        QApplication.processEvents()
        record = self.state.record
        if record is None:
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            if record.current_version > 1:
                done = actions.rollback(record.name)
                words = f"ModelShip went back to the version that ran before ({done.message})."
            else:
                removed = actions.teardown(record.name)
                words = "ModelShip removed it again" + (
                    ": " + "; ".join(removed) + "." if removed else "."
                )
        except Exception as exc:  # said, never lost: the person must know it still runs
            words = (
                f"Removing it failed ({getattr(exc, 'message', exc)}). It may still run: "
                "open ModelShip again and tear it down on the Start page."
            )
        finally:
            QApplication.restoreOverrideCursor()
        self.state.record = None
        ask.inform(
            self,
            "The deployment had finished",
            f"The deployment “{record.name}” finished before it could be stopped. {words}",
        )


def _step_name(cls: type[Page]) -> str:
    names = {
        "start": "Start",
        "model": "Model",
        "convert": "Convert and prove",
        "target": "Where to run it",
        "settings": "Target settings",
        "review": "Review",
        "deploy": "Deploy",
        "result": "Try it",
    }
    return names.get(cls.page_id, cls.title)
