"""The wizard hands its proven conversion to the deploy, and saves the profile only
after the deploy succeeded (issue 9): nothing converts twice, and a failed deploy
leaves a saved profile as it was, byte for byte."""

from __future__ import annotations

import socket

import pytest

from tests.gui.helpers import SLOW, next_page, wait_converted, wait_idle
from tests.gui.test_clickthrough import _through_review
from wizards import notify

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts real conversions (the real converter still runs)."""
    import app.model.convert

    calls: list[str] = []
    real = app.model.convert.convert_model

    def counting(model_path, *args, **kwargs):
        calls.append(str(model_path))
        return real(model_path, *args, **kwargs)

    monkeypatch.setattr(app.model.convert, "convert_model", counting)
    return calls


def test_the_wizard_converts_once_per_deploy(
    window, qtbot, sample_model, free_port, conversions
) -> None:
    _through_review(qtbot, window, sample_model, "local", {"port": free_port})
    assert len(conversions) == 1  # the Convert page's proof
    proven = window.state.conversion.onnx_path.read_bytes()
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, deploy)
    assert len(conversions) == 1, "the deploy converted the model again"
    assert "reusing the conversion you just proved" in deploy.log.toPlainText()
    record = window.state.record
    assert record.version().converted().onnx_path.read_bytes() == proven
    from app.run import teardown

    teardown(record.name)


def test_a_failed_deploy_leaves_the_saved_profile_byte_identical(
    window, qtbot, sample_model, free_port
) -> None:
    from app.store.profile import new_profile, save_profile

    # a saved profile from an earlier session, opened to deploy again on another port
    saved = save_profile(new_profile(sample_model, name="kept", settings={"port": 8099}))
    before = saved.read_bytes()
    window.pages["start"].open_profile(saved)
    qtbot.waitUntil(lambda: window.current_id == "model", timeout=5_000)
    model = window.pages["model"]
    qtbot.waitUntil(lambda: model.state.artifact is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    if model.state.artifact.runs_code_on_load and not window.next_button.isEnabled():
        model.trust.setChecked(True)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    next_page(qtbot, window, "target")
    next_page(qtbot, window, "settings")
    settings = window.pages["settings"]
    wait_idle(qtbot, settings, 60_000)
    settings.editors["port"].set(free_port)
    settings.check_button.click()
    wait_idle(qtbot, settings, 60_000)
    assert settings.checked_ok, settings.problems.label.text()
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok or bool(notify.shown), timeout=60_000)
    assert window.state.profile.name == "kept"
    # the port is taken between the check and the deploy: the deploy is refused
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", free_port))
        blocker.listen()
        next_page(qtbot, window, "deploy")
        assert window.state.save_to == saved  # Review meant to save it there, after the deploy
        deploy = window.pages["deploy"]
        qtbot.waitUntil(lambda: bool(notify.shown) or not deploy.is_busy(), timeout=SLOW)
        wait_idle(qtbot, deploy)
    assert window.state.record is None
    shown = deploy.outcome.label.text() + deploy.log.toPlainText()
    shown += "".join(n.diagnostics_text() for n in notify.shown)
    assert str(free_port) in shown, "the deploy did not fail on the taken port"
    assert saved.read_bytes() == before, "a failed deploy rewrote the saved profile"
    notify.close_all()
