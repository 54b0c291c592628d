"""Target: where the model should run. One card per registered target.

The cards come from ``targets.CATALOG`` (title + one-line summary), so a new target
appears here without any change to this page.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from wizards.pages.base import Page
from wizards.resources import icon
from wizards.state import WizardState


class TargetCard(QFrame):
    def __init__(self, name: str, cls: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setObjectName("targetCard")
        self.setStyleSheet(
            "QFrame#targetCard { border: 1px solid #d0d7de; border-radius: 8px; }"
            'QFrame#targetCard[chosen="true"] { border: 2px solid #0969da;'
            " background: #f6faff; }"
        )
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        badge = QLabel()
        badge.setPixmap(icon(cls.wizard.icon).pixmap(36, 36))  # the kind's own icon
        badge.setFixedSize(40, 40)
        lay.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
        texts = QVBoxLayout()
        self.radio = QRadioButton(getattr(cls, "title", name))
        self.radio.setObjectName(f"target-{name}")
        font = self.radio.font()
        font.setBold(True)
        self.radio.setFont(font)
        self.summary = QLabel(getattr(cls, "summary", ""))
        self.summary.setWordWrap(True)
        # Expanding: a word-wrapped label alone in a row otherwise takes its narrowest
        # width and the card's spare room goes to the left of it
        wide = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.summary.setSizePolicy(wide)
        self.radio.setSizePolicy(wide)
        texts.addWidget(self.radio)
        texts.addWidget(self.summary)
        if getattr(cls, "needs_image", False):
            extra = QLabel("Builds a container image first.")
            extra.setStyleSheet("color: #57606a;")
            texts.addWidget(extra)
        # live health (wizards.health): filled in when the page is shown
        health_row = QHBoxLayout()
        self.health = QLabel("")
        self.health.setObjectName(f"health-{name}")
        self.health.setWordWrap(True)
        self.health.setVisible(False)
        self.recheck = QPushButton("Check again")
        self.recheck.setObjectName(f"recheck-{name}")
        self.recheck.setVisible(False)
        # a one-click fix ("Set one up"), when the health check offers one
        self.fix_button = QPushButton("")
        self.fix_button.setObjectName(f"fix-{name}")
        self.fix_button.setVisible(False)
        self.fix_action = ""
        health_row.addWidget(self.health, 1)
        health_row.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignTop)
        health_row.addWidget(self.recheck, 0, Qt.AlignmentFlag.AlignTop)
        texts.addLayout(health_row)
        lay.addLayout(texts, 1)
        self.radio.toggled.connect(self._chosen)

    def show_health(self, health: Any) -> None:
        if health.ok:
            self.health.setText(f"<span style='color:#1a7f37'>✔ {health.text}</span>")
        else:
            fix = f"<br>{health.fix}" if health.fix else ""
            self.health.setText(f"<span style='color:#cf222e'><b>{health.text}</b></span>{fix}")
        self.health.setVisible(True)
        self.fix_action = getattr(health, "action", "")
        self.fix_button.setText(f"{getattr(health, 'action_text', '')}…")
        self.fix_button.setVisible(bool(self.fix_action))
        self.recheck.setVisible(not health.ok and not self.fix_action)

    def _chosen(self, on: bool) -> None:
        self.setProperty("chosen", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def mousePressEvent(self, event: Any) -> None:
        self.radio.setChecked(True)
        self.radio.setFocus()
        self.clicked_card()
        super().mousePressEvent(event)

    def clicked_card(self) -> None:
        """Set by the page: the card was clicked (even when it was already checked)."""


class TargetPage(Page):
    page_id = "target"
    title = "Where should the model run?"
    subtitle = "Pick one. You can deploy the same model somewhere else later."
    icon_name = "target"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        from targets import CATALOG

        self.group = QButtonGroup(self)
        self.cards: dict[str, TargetCard] = {}
        self.fix_dialog: Any = None  # the card's fix dialog last opened
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(0, 0, 0, 0)
        for name, cls in CATALOG.items():
            card = TargetCard(name, cls)
            self.cards[name] = card
            self.group.addButton(card.radio)
            card.radio.toggled.connect(lambda on, n=name: on and self._chose(n))
            card.radio.clicked.connect(lambda _c=False, n=name: self._chose(n))
            card.recheck.clicked.connect(self.check_health)
            card.fix_button.clicked.connect(lambda _c=False, c=card: self.apply_fix(c))
            card.clicked_card = lambda n=name: self._chose(n)  # type: ignore[method-assign]
            lay.addWidget(card)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        self.body.addWidget(scroll, 1)

    def enter(self) -> None:
        name = self.state.target_name or next(iter(self.cards), None)
        if name in self.cards:
            self.choose(name)
        self.check_health()

    def check_health(self) -> None:
        """Quick live checks for the cards (off the GUI thread; Next does not wait)."""
        if any(w.name.startswith("modelship-health") for w in self.busy_workers()):
            return
        kinds = list(self.cards)

        def work(progress: Any, cancel: Any) -> Any:
            from wizards import health

            return health.card_health(kinds)

        self.start_worker(
            work,
            name="health",
            on_result=self._healthy,
            on_error=lambda exc: self.error(exc, "checking the targets"),
        )

    def apply_fix(self, card: TargetCard) -> None:
        """The card's one-click fix, then its health again. The dialog is window-modal
        but opened with ``open()``: the page's workers and events go on meanwhile."""
        if card.fix_action == "aws_setup":
            from wizards.forms.sagemaker import AwsKeyDialog

            dialog = AwsKeyDialog(self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.accepted.connect(self.check_health)
            self.fix_dialog = dialog
            dialog.open()

    def _healthy(self, found: dict[str, Any]) -> None:
        for name, health in found.items():
            if name in self.cards:
                self.cards[name].show_health(health)

    def is_busy(self) -> bool:
        # the cards' health check never holds up Next
        return any(not w.name.startswith("modelship-health") for w in self.busy_workers())

    def choose(self, name: str) -> None:
        # a radio button checked again emits no toggle: choose explicitly as well, or a
        # second new deployment keeps no target while its card looks chosen
        self.cards[name].radio.setChecked(True)
        self._chose(name)

    def blocked_reason(self) -> str:
        return "" if self.is_complete() else "Pick where the model should run."

    def _chose(self, name: str) -> None:
        if self.state.target_name != name:
            self.state.settings = {}
        self.state.target_name = name
        self.completeChanged.emit()

    def is_complete(self) -> bool:
        return self.state.target_name in self.cards


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(TargetPage))
