"""Small steps shared by the GUI tests (always waiting on conditions, never sleeping)."""

from __future__ import annotations

from pathlib import Path

from wizards import notify

SLOW = 240_000  # ms: conversions and deploys on a shared 2-core machine


def next_page(qtbot, window, expected: str, timeout: int = 30_000) -> None:
    """Wait until Next is enabled, click it, and check where we landed."""
    qtbot.waitUntil(window.next_button.isEnabled, timeout=timeout)
    window.next_button.click()
    qtbot.waitUntil(lambda: window.current_id == expected, timeout=5_000)


def choose_model(qtbot, window, path: Path, trust: bool = True) -> None:
    page = window.pages["model"]
    page.set_model_path(path)
    qtbot.waitUntil(lambda: page.state.artifact is not None or bool(notify.shown), timeout=60_000)
    assert not notify.shown, notify.last().diagnostics_text()
    if page.state.artifact.runs_code_on_load and trust:
        assert not window.next_button.isEnabled()
        page.trust.setChecked(True)


def wait_converted(qtbot, window) -> None:
    page = window.pages["convert"]
    qtbot.waitUntil(
        lambda: (page.state.conversion is not None or bool(notify.shown)) and not page.is_busy(),
        timeout=SLOW,
    )
    assert not notify.shown, notify.last().diagnostics_text()


def wait_idle(qtbot, page, timeout: int = SLOW) -> None:
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=timeout)
