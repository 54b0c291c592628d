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
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wizards.pages.base import Page
from wizards.resources import icon
from wizards.state import WizardState

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

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("steps")
        self.sidebar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # shows where you are; moving happens with Back/Next (one decision per page)
        self.sidebar.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.sidebar.setFixedWidth(210)
        self.sidebar.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.sidebar.setStyleSheet(
            "QListWidget#steps { border: none; background: palette(window); padding-top: 12px; }"
            " QListWidget#steps::item { padding: 8px 6px; }"
            " QListWidget#steps::item:selected { background: #ddf4ff; color: #0550ae;"
            " border-left: 3px solid #0969da; }"
        )

        self.stack = QStackedWidget()
        self.pages: dict[str, Page] = {}
        for page_id, cls in _page_classes().items():
            page = cls(self.state)
            self.pages[page_id] = page
            self.stack.addWidget(page)
            page.completeChanged.connect(self._update_buttons)
            page.busyChanged.connect(lambda _b: self._update_buttons())
            page.go.connect(self.go)
            item = QListWidgetItem(icon(cls.icon_name), _step_name(cls))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.sidebar.addItem(item)

        self.back_button = QPushButton("&Back")
        self.back_button.setObjectName("backButton")
        self.next_button = QPushButton("&Next")
        self.next_button.setObjectName("nextButton")
        self.next_button.setDefault(True)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.cancel_button.clicked.connect(self.cancel)
        QShortcut(QKeySequence("Alt+Left"), self, activated=self.back)
        QShortcut(QKeySequence("Alt+Right"), self, activated=self.next)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(24, 8, 24, 16)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.cancel_button)

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.stack, 1)
        right.addLayout(buttons)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.sidebar)
        row.addLayout(right, 1)
        self.setCentralWidget(central)

        self.resize(1100, 760)
        self.setMinimumSize(900, 620)
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
        self.current_id = page_id
        page = self.pages[page_id]
        self.stack.setCurrentWidget(page)
        self.sidebar.setCurrentRow(ORDER.index(page_id))
        page.enter()
        self._update_buttons()
        nxt = page.nextInFocusChain()
        if nxt is not None and page.isAncestorOf(nxt):
            nxt.setFocus(Qt.FocusReason.TabFocusReason)

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

    def cancel(self) -> None:
        if self.page.cancel():
            return
        self.close()

    def _update_buttons(self) -> None:
        if not self.current_id:
            return
        page = self.page
        busy = page.is_busy()
        self.back_button.setEnabled(bool(self.history) and not busy)
        self.next_button.setText(page.next_text)
        self.next_button.setEnabled(page.is_complete() and not busy)
        self.next_button.setVisible(page.next_text != "")
        closing = page.page_id in {"start", "result"} and not busy
        self.cancel_button.setText("&Close" if closing else "&Cancel")
        for row in range(self.sidebar.count()):
            font = self.sidebar.item(row).font()
            font.setBold(ORDER[row] == self.current_id)
            self.sidebar.item(row).setFont(font)

    # ---- closing ----------------------------------------------------------------
    def stop_all_workers(self) -> None:
        for page in self.pages.values():
            page.stop_workers()

    def closeEvent(self, event: Any) -> None:
        deploy = self.pages["deploy"]
        if deploy.is_busy():
            answer = QMessageBox.question(
                self,
                "A deployment is running",
                "ModelShip is deploying right now. Stop it and remove what it created so far?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        settings_store().setValue("window/geometry", self.saveGeometry())
        self.stop_all_workers()
        super().closeEvent(event)


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
