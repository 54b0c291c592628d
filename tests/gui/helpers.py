"""Small steps shared by the GUI tests (always waiting on conditions, never sleeping)."""

from __future__ import annotations

import re
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


# what an analyst must never be told to type
COMMAND_LINE = re.compile(
    r"(?:^|[\s(“\"'`])--[a-z]"
    r"|\bmodelship (?:deploy|teardown|status|convert|rollback|serve|trust|hosts)\b"
    r"|\baws (?:configure|sso)\b|\bheroku (?:login|authorizations)\b|\bkeyring set\b"
    r"|\btargets\.\w+\.\w+"
)


RAW_TEXT = {"dockerfile", "deployLog"}


def visible_words(widget) -> list[str]:
    """Every text a person can see on ``widget``: labels, buttons, group titles,
    placeholders, dropdown entries."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QComboBox,
        QGroupBox,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
    )

    out: list[str] = []
    for w in [widget, *widget.findChildren(QLabel), *widget.findChildren(QAbstractButton)]:
        if not w.isVisibleTo(widget.window()):
            continue
        text = getattr(w, "text", None)
        if callable(text):
            out.append(text())
    for box in widget.findChildren(QGroupBox):
        if box.isVisibleTo(widget.window()):
            out.append(box.title())
    for edit in widget.findChildren(QLineEdit):
        if edit.isVisibleTo(widget.window()):
            out.append(edit.placeholderText())
    for combo in widget.findChildren(QComboBox):
        if combo.isVisibleTo(widget.window()):
            out += [combo.itemText(i) for i in range(combo.count())]
    for edit in widget.findChildren(QPlainTextEdit):
        # the Dockerfile and the deploy's raw log (pip, docker build) are shown as they
        # are, for whoever helps; the person is told what happens in the lines above them
        if edit.isVisibleTo(widget.window()) and edit.objectName() not in RAW_TEXT:
            out.append(edit.toPlainText())
    return out


def assert_no_command_line_words(widget) -> None:
    found = [t for t in visible_words(widget) if COMMAND_LINE.search(t)]
    assert not found, f"command-line words on screen: {found}"


def review_deploy_result_teardown(
    qtbot, window, cost: str | None, usually: str, leftovers, timeout: int = SLOW
) -> None:
    """From a checked settings page: Review (with ``cost`` on it, if the target bills)
    → Deploy (saying ``usually`` while it waits) → Result (smoke test passed) → Tear
    down, after which ``leftovers()`` (what the platform still holds) is empty. No
    command-line words on any page on the way."""
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok or bool(notify.shown), timeout=60_000)
    assert not notify.shown, notify.last().diagnostics_text()
    if cost is not None:
        assert review.cost.isVisible()
        assert cost in review.cost.label.text(), review.cost.label.text()
    assert_no_command_line_words(review)
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    seen: list[str] = []
    deploy.wait_line.setText = lambda t, f=deploy.wait_line.setText: (seen.append(t), f(t))
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=timeout)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, deploy, timeout)
    assert "online" in deploy.outcome.label.text()
    assert any(usually in s for s in seen), seen
    assert_no_command_line_words(deploy)
    next_page(qtbot, window, "result")
    result = window.pages["result"]
    assert result.url.text().startswith(("http://", "https://"))
    smoke = window.state.record.smoke
    smoke = smoke if isinstance(smoke, dict) else smoke.to_dict()
    assert smoke.get("passed"), smoke
    assert "as the proof said" in result.smoke.text(), result.smoke.text()
    assert_no_command_line_words(result)
    result.teardown_button.click()
    qtbot.waitUntil(lambda: result.torn_down is not None or bool(notify.shown), timeout=timeout)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, result, 60_000)
    assert_no_command_line_words(result)
    assert leftovers() == []
