"""The wizard's questions and notices: one place, so that each can be answered in tests.

A question names what will happen in plain words and has buttons that say what they do
("Tear down", "Keep it") rather than Yes/No, so that the answer cannot be misread.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def confirm(
    parent: QWidget | None, title: str, text: str, yes: str = "Yes", no: str = "No"
) -> bool:
    """Ask before something that cannot be undone; True only for an explicit yes."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(title)
    box.setText(text)
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    no_button = box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(no_button)
    box.setEscapeButton(no_button)
    box.exec()
    return box.clickedButton() is yes_button


def inform(parent: QWidget | None, title: str, text: str) -> None:
    """Tell the person something they must not miss (e.g. right before the app closes)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Information)
    box.setWindowTitle(title)
    box.setText(text)
    box.exec()
