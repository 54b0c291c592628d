"""Guard against a Qt binding that corrupts Python's reference counts.

PySide6 6.12.0 (abi3 wheels) on Python 3.11 drops one reference to ``None`` on every
call of a void method and to ``True``/``False`` on every signal emit; after a few
thousand calls the interpreter aborts ("deallocating None"). An analyst's session
makes far more calls than that, so the wizard would crash after minutes of use.
pyproject.toml keeps PySide6 below 6.12; this test fails if such a build comes back.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

pytestmark = pytest.mark.gui


class _Emitter(QObject):
    value = Signal(object)


def test_void_calls_and_signals_keep_reference_counts(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    seen = []
    emitter.value.connect(seen.append)
    none_before = sys.getrefcount(None)
    true_before = sys.getrefcount(True)
    for i in range(500):
        label.setText(str(i))
        emitter.value.emit(i)
    seen.clear()
    # other code may take references meanwhile; losing hundreds is the bug
    assert sys.getrefcount(None) > none_before - 50
    assert sys.getrefcount(True) > true_before - 50
