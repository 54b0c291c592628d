"""Issue 15: a model saved with another scikit-learn converts after one click in the wizard.

The model comes from a real environment with another scikit-learn release, made by
app.model.envs from the package index (cached: see tests/integration/test_match_env.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui.helpers import wait_idle
from tests.integration.test_match_env import OTHER, env_cache, old_model  # noqa: F401

pytestmark = [pytest.mark.gui, pytest.mark.integration, pytest.mark.slow]


def test_one_click_makes_a_matching_environment_and_the_proof_passes(
    window,
    qtbot,
    old_model: tuple[Path, Path],  # noqa: F811
) -> None:
    model, _rows = old_model
    window.state.model_path = model
    page = window.pages["convert"]
    page.start()
    wait_idle(qtbot, page, 120_000)
    # refused in plain words, with the one button that fixes it
    assert window.state.conversion is None
    assert not page.match_button.isHidden()
    assert "MB, once" in page.match_button.text()
    text = page.verdict.label.text()
    assert f"scikit-learn {OTHER}" in text and "--" not in text and "pip" not in text

    qtbot.mouseClick(page.match_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, page, 600_000)
    result = window.state.conversion
    assert result is not None and result.report.passed, page.verdict.label.text()
    assert page.match_button.isHidden()
    assert "The conversion is proven." in page.verdict.label.text()
    # the deploy converts the same way: the profile carries the choice
    assert window.state.build_profile().model.match_env is True
