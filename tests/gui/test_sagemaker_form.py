"""The wizard offers the sagemaker target with its settings form (issue 12).

The form is generated from SageMakerSettings like every target's; its preflight runs
against moto (no real AWS), and a missing credential shows the fix in the form.
"""

from __future__ import annotations

from pathlib import Path

from tests.gui.test_pages import wait_idle


def _sagemaker_page(window, qtbot, model: Path):
    window.state.model_path = model
    window.state.target_name = "sagemaker"
    window.state.settings = {"region": "us-east-1", "instance_type": "ml.m5.large"}
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    qtbot.waitUntil(lambda: page.problems.isVisible() or page.ready.isVisible(), timeout=60_000)
    return page


def test_sagemaker_card_and_settings_form(window, qtbot, tmp_path, moto_server) -> None:
    from targets import CATALOG
    from targets.sagemaker.settings import SageMakerSettings

    assert "sagemaker" in window.pages["target"].cards
    assert CATALOG["sagemaker"].title == "AWS SageMaker"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _sagemaker_page(window, qtbot, model)
    assert list(page.editors) == list(SageMakerSettings.model_fields)
    assert page.editors["memory_mb"].get() == 2048
    assert page.editors["mode"].get() == "realtime"
    assert page.ready.isVisible() and not page.problems.isVisible()


def test_sagemaker_form_shows_the_credential_fix(
    window, qtbot, tmp_path, moto_server, monkeypatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _sagemaker_page(window, qtbot, model)
    assert page.problems.isVisible()
    assert "Set one up" in page.problems.label.text()  # the wizard's words, no command
    assert not window.next_button.isEnabled()
