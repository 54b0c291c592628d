"""Click through the wizard as an analyst would: model file -> tried endpoint -> teardown.

Everything is real: the conversion runs in a subprocess, the local target starts the
serving runtime as a process, "Try it" sends HTTP to it, and teardown removes it.
"""

from __future__ import annotations

import os
import urllib.request

import pytest

from tests.conftest import require
from tests.gui.helpers import SLOW, choose_model, next_page, wait_converted, wait_idle
from wizards import notify

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _through_review(qtbot, window, model, target: str, settings: dict) -> None:
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, model)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    convert = window.pages["convert"]
    assert convert.verdict.isVisible()
    assert "same label" in convert.verdict.label.text()
    assert convert.tables.count() == 1
    next_page(qtbot, window, "target")
    window.pages["target"].choose(target)
    next_page(qtbot, window, "settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    for key, value in settings.items():
        page.editors[key].set(value)
    secret = getattr(page, "stage_secret", None)
    if secret:
        page.editors["api_key"].secret_value.setText(secret)
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert page.checked_ok, page.problems.label.text()
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok or bool(notify.shown), timeout=60_000)
    assert not notify.shown, notify.last().diagnostics_text()
    assert review.plan.rowCount() >= 2
    assert window.next_button.text() == "&Deploy"


def _deploy_try_teardown(qtbot, window) -> None:
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, deploy)
    assert "online" in deploy.outcome.label.text()
    next_page(qtbot, window, "result")
    result = window.pages["result"]
    url = result.url.text()
    assert url.startswith("http://127.0.0.1:")
    assert "/predict" in result.curl_text.toPlainText()
    assert url in result.python_text.toPlainText()
    assert "as the proof said" in result.smoke.text()
    # Try it: one row from the proof, sent for real
    assert result.inputs, "the Try it form has the sample row's columns"
    result.send_button.click()
    qtbot.waitUntil(lambda: result.last_answer is not None or bool(notify.shown), timeout=60_000)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, result, 30_000)
    expected = result.proof["predictions"][0]
    assert result.last_answer["predictions"][0] == expected
    assert "Prediction:" in result.answer.text()
    # the profile was saved on Review and loads back
    from app.store.profile import load_profile

    assert load_profile(window.state.profile_path).name == window.state.profile.name
    # teardown from the result page removes it
    result.teardown_button.click()
    qtbot.waitUntil(lambda: result.torn_down is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, result, 30_000)
    assert result.torn_down, "teardown says what it removed"
    assert "Removed" in result.torn.label.text()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/ping", timeout=3)
    from app.store.records import list_records

    assert list_records() == []
    # Finish goes home, where nothing runs any more and the removed one stays listed
    next_page(qtbot, window, "start")
    assert window.pages["start"].deployments.item(0).text() == "Nothing running now."
    assert window.pages["start"].deployments.item(1).text() == "Removed"


def test_deploy_sample_model_to_local_and_tear_down(window, qtbot, sample_model, free_port):
    """With an API key: stored in the keyring, sent by Try it, named in the snippets."""
    window.pages["settings"].stage_secret = "api-key-for-the-test-789"
    _through_review(qtbot, window, sample_model, "local", {"port": free_port})
    assert window.state.settings["api_key"]
    _deploy_try_teardown(qtbot, window)
    result = window.pages["result"]
    entry = window.state.settings["api_key"]
    assert f"$(keyring get modelship {entry})" in result.curl_text.toPlainText()
    assert 'os.environ["MODELSHIP_API_KEY"]' in result.python_text.toPlainText()
    for text in (result.curl_text.toPlainText(), result.python_text.toPlainText()):
        assert "api-key-for-the-test-789" not in text


@pytest.mark.integration
def test_deploy_sample_model_to_docker_and_tear_down(
    window, qtbot, sample_model, free_port, docker_client, base_image
):
    from targets import CATALOG

    require("docker" in CATALOG, "the docker target")
    window.state.name = "wizard-docker"
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    next_page(qtbot, window, "target")
    window.pages["target"].choose("docker")
    next_page(qtbot, window, "settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    if "port" in page.editors:
        page.editors["port"].set(free_port)
    # image targets ask for the base image ([image] base_image); tests cannot pull one
    assert page.image_box.isVisible()
    page.base_image.setText(base_image)
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert page.checked_ok, page.problems.label.text()
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=60_000)
    assert review.docker_box.isVisible()
    assert "FROM" in review.dockerfile.toPlainText()
    _deploy_try_teardown(qtbot, window)
    mine = {"label": "modelship.deployment=wizard-docker"}
    assert not docker_client.containers.list(ignore_removed=True, all=True, filters=mine)


def test_failed_proof_blocks_and_can_be_overridden(window, qtbot, sample_model):
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    window.state.tolerance = 1e-15  # nothing but bit-identical answers passes
    next_page(qtbot, window, "convert")
    page = window.pages["convert"]
    qtbot.waitUntil(lambda: page.failed_report is not None or bool(notify.shown), timeout=SLOW)
    wait_idle(qtbot, page)
    assert not notify.shown  # said on the page, with the way on: no second, modal box
    assert page.verdict.isVisible() and page.verdict.kind == "fail"
    assert "does not answer like your original" in page.verdict.label.text()
    assert not window.next_button.isEnabled()
    assert "Deploy anyway" in window.why.text()
    # the explicit override converts again and lets the analyst go on
    page.override.setChecked(True)
    qtbot.waitUntil(lambda: window.state.conversion is not None, timeout=SLOW)
    wait_idle(qtbot, page)
    assert window.next_button.isEnabled()
    assert window.state.allow_mismatch


def test_cancel_mid_deploy_rolls_back(window, qtbot, sample_model, free_port):
    _through_review(qtbot, window, sample_model, "local", {"port": free_port})
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    started = []

    def on_event(kind, payload):
        if kind == "event" and payload.kind == "step_started":
            started.append(payload.step)

    deploy.worker.progress.connect(on_event)
    qtbot.waitUntil(lambda: "convert" in started, timeout=SLOW)
    window.cancel_button.click()  # Cancel on the deploy page = roll back
    assert window.current_id == "deploy"
    wait_idle(qtbot, deploy)
    text = deploy.outcome.label.text()
    assert "cancelled" in text.lower()
    assert "Removed" in text or "Nothing had been created" in text
    assert window.state.record is None
    assert not window.next_button.isEnabled()
    assert deploy.retry_button.isVisible()
    from app.store.records import list_records

    assert list_records() == []
    # nothing left listening
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/ping", timeout=3)


def test_app_module_opens_and_closes_cleanly(qtbot, monkeypatch):
    """`modelship` with no command -> wizards.app.run(); it must quit without threads."""
    import sys
    import threading

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from wizards import app as wizard_app

    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    QTimer.singleShot(200, QApplication.closeAllWindows)
    assert wizard_app.run() == 0
    assert sys.excepthook is not sys.__excepthook__  # errors go to the notification path


def test_redeploy_roll_back_and_tear_down_from_the_start_page(
    window, qtbot, sample_model, free_port
):
    from app.store.records import find_record, list_records

    _through_review(qtbot, window, sample_model, "local", {"port": free_port})
    next_page(qtbot, window, "deploy")
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    name = window.state.record.name
    wait_idle(qtbot, window.pages["deploy"])
    # home: the deployment is listed with its live status
    window.go("start")
    start = window.pages["start"]
    wait_idle(qtbot, start, 60_000)
    assert "running and answering" in start.deployments.item(0).text()
    # redeploy: straight to Review with the same choices, then a second version
    start.deployments.setCurrentRow(0)
    start.redeploy_button.click()
    assert window.current_id == "review"
    next_page(qtbot, window, "deploy", timeout=60_000)
    deploy = window.pages["deploy"]
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, deploy)
    assert find_record(name).current_version == 2
    # roll back to version 1 from the start page
    window.go("start")
    wait_idle(qtbot, start, 60_000)
    start.deployments.setCurrentRow(0)
    assert start.rollback_button.isEnabled()
    start.rollback_button.click()
    qtbot.waitUntil(
        lambda: "Rolled back" in start.message.label.text() or bool(notify.shown), timeout=SLOW
    )
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, start, 60_000)
    assert find_record(name).current_version == 1
    assert "running and answering" in start.deployments.item(0).text()
    # tear down from the start page
    start.deployments.setCurrentRow(0)
    start.teardown_button.click()
    qtbot.waitUntil(
        lambda: "Removed" in start.message.label.text() or bool(notify.shown), timeout=SLOW
    )
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, start, 60_000)
    assert list_records() == []
    assert start.deployments.item(0).text() == "Nothing running now."
    assert start.deployments.item(1).text() == "Removed"  # the history stays


def test_quantized_version_gets_its_own_proof(window, qtbot, sample_model):
    """Also checks that the window stays responsive while converting (work off-thread)."""
    import itertools
    import time

    from PySide6.QtCore import QTimer

    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    window.state.quantize = True
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    timer.stop()
    longest = max(b - a for a, b in itertools.pairwise(ticks))
    print(f"longest GUI-thread pause while converting: {longest * 1000:.0f} ms")
    assert longest < 1.0, f"the window froze for {longest:.2f} s"
    page = window.pages["convert"]
    assert window.state.conversion.quantized is not None
    assert page.tables.count() == 2
    assert "8-bit" in page.verdict.label.text()
    assert page.choice_box.isVisible()
    if page.use_quant.isEnabled():
        page.use_quant.setChecked(True)
        page.accept()
        assert window.state.quantize
        assert window.state.build_profile().model.quantize


def test_closing_the_window_mid_deploy_asks_then_rolls_back(
    window, qtbot, sample_model, free_port, answers
):
    _through_review(qtbot, window, sample_model, "local", {"port": free_port})
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    steps = []
    deploy.worker.progress.connect(
        lambda kind, e: steps.append(e.step) if kind == "event" and e.kind == "step_started" else 0
    )
    qtbot.waitUntil(lambda: "convert" in steps, timeout=SLOW)
    answers.replies.extend([False, True])
    window.close()  # "No": keep deploying
    assert window.isVisible() and deploy.is_busy()
    window.close()  # "Yes": cancel, roll back, wait for the worker
    assert not window.isVisible()
    assert [a.split("\n")[0] for a in answers.asked] == ["A deployment is running"] * 2
    assert not deploy.busy_workers()
    from app.store.records import list_records

    assert list_records() == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{free_port}/ping", timeout=3)
