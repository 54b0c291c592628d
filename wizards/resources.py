"""Icons from ``resources/icons`` via importlib.resources (works when packaged)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from PySide6.QtGui import QIcon


@cache
def icon_path(name: str) -> str:
    return str(resources.files("resources.icons").joinpath(f"{name}.svg"))


def icon(name: str) -> QIcon:
    """The icon ``resources/icons/NAME.svg`` (an empty icon if it does not exist)."""
    path = icon_path(name)
    return QIcon(path)
