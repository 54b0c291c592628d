"""Page basics: each page shows what it should and refuses what it must."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.errors import ModelError, TargetError
from tests.gui.helpers import choose_model, wait_idle
from wizards import notify

pytestmark = pytest.mark.gui


def test_start_page_is_first_and_lists_nothing_on_a_fresh_install(window):
    assert window.current_id == "start"
    page = window.pages["start"]
    assert page.profiles.count() == 1
    assert not page.profiles.item(0).flags() & Qt.ItemFlag.ItemIsSelectable
    assert page.deployments.item(0).text() == "Nothing deployed yet."
    assert window.next_button.isEnabled()
    assert not window.back_button.isEnabled()
    # every step is in the sidebar, in order
    steps = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert steps[0] == "Start" and steps[-1] == "Try it" and len(steps) == 8


def test_keyboard_next_and_back(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert window.current_id == "model"
    assert not window.next_button.isEnabled()  # no model chosen yet
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert window.current_id == "start"


def test_bad_model_file_says_what_is_wrong_and_blocks_next(window, qtbot, tmp_path):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"this is not a model at all")
    window.go("model")
    page = window.pages["model"]
    page.set_model_path(bad)
    wait_idle(qtbot, page)
    # said on the page (issue 14: not a second time in a modal box)
    assert page.problem.isVisible()
    assert "cannot be used" in page.problem.label.text()
    assert "Next step:" in page.problem.label.text()
    assert not window.next_button.isEnabled()
    assert "cannot be used" in window.why.text()
    # the error dialog (for bugs): details are folded away until asked for
    dialog = notify.show_error(window, ModelError("Bad file.", "Choose another."))
    assert dialog.hint_label.text().startswith("<b>Next step:</b>")
    assert not dialog.details.isVisible()
    dialog.details_button.click()
    assert dialog.details.isVisible()


def test_pickle_needs_explicit_trust(window, qtbot, tmp_path):
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "reg.pkl"
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    path.write_bytes(pickle.dumps(model))
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, path, trust=False)
    assert page.pickle_box.isVisible()
    assert "run any code" in page.pickle_text.text()
    assert not window.next_button.isEnabled()
    page.trust.setChecked(True)
    assert window.next_button.isEnabled()
    assert "LinearRegression" in page.kind_label.text()


def test_target_cards_come_from_the_registry(window):
    from targets import CATALOG

    window.go("target")
    page = window.pages["target"]
    assert list(page.cards) == list(CATALOG)
    for name, card in page.cards.items():
        assert card.radio.text() == CATALOG[name].title
        assert card.summary.text() == CATALOG[name].summary
    page.choose("local")
    assert window.state.target_name == "local"
    assert window.next_button.isEnabled()


def _settings_page(window, qtbot, model: Path, port: int):
    window.state.model_path = model
    window.state.target_name = "local"
    window.state.settings = {"port": port}
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 30_000)
    return page


def test_settings_form_is_generated_from_the_target_settings(window, qtbot, tmp_path, free_port):
    from targets.local.settings import LocalSettings

    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _settings_page(window, qtbot, model, free_port)
    assert list(page.editors) == list(LocalSettings.model_fields)
    assert page.editors["port"].get() == free_port
    assert page.ready.isVisible() and not page.problems.isVisible()
    assert window.next_button.isEnabled()
    # a change must be checked again before going on
    page.editors["workers"].set(2)
    assert not window.next_button.isEnabled()
    page.check_button.click()
    wait_idle(qtbot, page, 30_000)
    assert window.next_button.isEnabled()
    assert window.state.settings["workers"] == 2


def test_failing_preflight_shows_the_fix(window, qtbot, tmp_path, busy_port):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _settings_page(window, qtbot, model, busy_port)
    assert page.problems.isVisible()
    text = page.problems.label.text()
    assert f"Port {busy_port}" in text and "How to fix it" in text
    assert not window.next_button.isEnabled()


def test_profiles_import_duplicate_export(window, qtbot, tmp_path):
    from app.store.profile import list_profiles, load_profile, new_profile, save_profile

    model = tmp_path / "iris.onnx"
    model.write_bytes(b"x")
    outside = save_profile(new_profile(model, name="iris"), tmp_path / "shared.toml")
    page = window.pages["start"]
    page.import_profile(outside)
    assert [p.name for p in list_profiles()] == ["iris"]
    assert page.profiles.count() == 1
    page.profiles.setCurrentRow(0)
    page.duplicate_profile()
    assert sorted(p.name for p in list_profiles()) == ["iris", "iris-copy"]
    assert "iris-copy" in page.message.label.text()
    # opening a profile fills the answers and goes on to the model page
    page.profiles.setCurrentRow(0)
    page.open_profile()
    assert window.current_id == "model"
    assert window.state.model_path == model
    assert window.state.target_name == "local"
    # exported profiles load back identically and hold no secrets
    from wizards import actions

    exported = actions.export_profile(load_profile("iris"), tmp_path / "out.toml")
    assert load_profile(exported).model_dump() == load_profile("iris").model_dump()


def test_notification_removes_secrets_from_diagnostics(qtbot):
    notify.register_secret("hunter2-very-secret")
    exc = TargetError(
        "Login failed for token=abc123XYZ.",
        "Check the token.",
        details="sent header Authorization: Bearer hunter2-very-secret to https://u:pw@h",
    )
    dialog = notify.show_error(None, exc, "testing")
    qtbot.addWidget(dialog)
    text = dialog.diagnostics_text()
    assert "hunter2-very-secret" not in text
    assert "abc123XYZ" not in text
    assert ":pw@" not in text
    assert "Login failed" in text and "[secret removed]" in text
    dialog.copy_diagnostics()
    from PySide6.QtGui import QGuiApplication

    assert "hunter2" not in QGuiApplication.clipboard().text()
    dialog.close()
    assert notify.last() is not dialog


def test_unexpected_errors_are_called_bugs(qtbot):
    dialog = notify.show_error(None, ZeroDivisionError("boom"))
    qtbot.addWidget(dialog)
    assert "inside ModelShip" in dialog.cause_label.text()
    assert "bug" in dialog.hint_label.text()
    dialog.close()


def test_worker_reports_result_error_and_stops(qtbot):
    from app.errors import Cancelled
    from wizards.workers import Worker

    ok = Worker(lambda progress, cancel: (progress.update(0.5, "half"), 42)[1])
    with qtbot.waitSignals([ok.progress, ok.result, ok.finished], order="strict"):
        ok.start()
    assert not ok.running

    bad = Worker(lambda progress, cancel: 1 / 0)
    with qtbot.waitSignal(bad.error) as blocker:
        bad.start()
    assert isinstance(blocker.args[0], ZeroDivisionError)
    assert "ZeroDivisionError" in blocker.args[0].__traceback_text__
    qtbot.waitUntil(lambda: bad.done)

    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        while not cancel.wait(0.05):
            pass
        cancel.raise_if_cancelled()

    long = Worker(slow)
    long.start()
    assert started.wait(10)
    with qtbot.waitSignal(long.error) as blocker:
        long.cancel()
    assert isinstance(blocker.args[0], Cancelled)
    assert long.wait(10)

    stopped = Worker(slow).start()
    assert started.wait(10)
    assert stopped.stop(10) and not stopped.running


def test_secrets_go_to_the_keyring_never_to_the_profile(
    window, qtbot, tmp_path, free_port, memory_keyring
):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _settings_page(window, qtbot, model, free_port)
    assert "api_key" in page.editors and page.editors["api_key"].secret
    assert page.secret_note.isVisible() and "keyring" in page.secret_note.label.text()
    assert not page.no_keyring.isVisible()
    page.editors["api_key"].secret_value.setText("s3cret-value-123")
    page.check_button.click()
    wait_idle(qtbot, page, 30_000)
    window.next()
    assert window.current_id == "review"
    ref = window.state.settings["api_key"]
    assert ref and ref != "s3cret-value-123"
    assert memory_keyring.store[("modelship", ref)] == "s3cret-value-123"
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    from app.store.profile import save_profile

    text = save_profile(window.state.profile, tmp_path / "p.toml").read_text()
    assert ref in text and "s3cret-value-123" not in text


def test_without_a_secure_keyring_the_wizard_asks_and_never_writes_the_secret(
    window, qtbot, tmp_path, free_port
):
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())  # the fixture restores it
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _settings_page(window, qtbot, model, free_port)
    assert not page.no_keyring.isVisible()  # no secret typed: nothing to ask
    page.editors["api_key"].secret_value.setText("typed-each-run-456")
    assert page.no_keyring.isVisible()
    assert "never writes secrets into files" in page.no_keyring_text.text()
    page.check_button.click()
    wait_idle(qtbot, page, 30_000)
    assert not window.next_button.isEnabled()  # a choice is needed first
    page.each_run.setChecked(True)
    page.check_button.click()
    wait_idle(qtbot, page, 30_000)
    window.next()
    assert window.current_id == "review"
    from app.store.secrets import get_secret
    from wizards.session_keyring import SessionKeyring

    assert isinstance(keyring.get_keyring(), SessionKeyring)
    assert get_secret(window.state.settings["api_key"]) == "typed-each-run-456"
    home = Path(__import__("os").environ["MODELSHIP_HOME"])
    for f in home.rglob("*"):
        if f.is_file():
            assert b"typed-each-run-456" not in f.read_bytes(), f


def test_dropping_a_file_on_the_model_page_inspects_it(window, qtbot, sample_model):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window.go("model")
    page = window.pages["model"]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_model))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    page.drop.dropEvent(event)
    qtbot.waitUntil(lambda: window.state.artifact is not None, timeout=30_000)
    assert window.state.model_path == sample_model
    assert page.path_edit.text() == str(sample_model)
    assert page.found.isVisible()


def test_window_size_is_remembered(qtbot):
    from wizards.window import WizardWindow

    first = WizardWindow()
    qtbot.addWidget(first)
    first.show()
    first.resize(960, 660)
    qtbot.waitUntil(lambda: first.width() == 960)
    first.close()
    second = WizardWindow()
    qtbot.addWidget(second)
    second.show()
    # the offscreen screen is narrower than the window's minimum width, so only the
    # height can come back exactly here
    assert second.height() == 660
    from wizards.window import settings_store

    assert settings_store().value("window/geometry") is not None
    second.close()


def test_tab_order_reaches_the_page_and_then_the_buttons(window, qtbot):
    """Tab goes through the page's fields first, then Back, Next, Cancel."""
    window.go("model")
    page = window.pages["model"]
    chain = []
    widget = page.path_edit
    for _ in range(5000):  # the chain holds every widget; Tab skips hidden ones
        if (
            widget.isVisibleTo(window)
            and widget.isEnabled()
            and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
        ):
            chain.append(widget)
        widget = widget.nextInFocusChain()
        if widget is page.path_edit:
            break
    assert chain.index(page.path_edit) < chain.index(page.browse_button)
    assert chain.index(page.browse_button) < chain.index(page.python_combo)
    assert chain.index(page.python_combo) < chain.index(window.back_button)
    assert chain.index(window.back_button) < chain.index(window.cancel_button)
    assert window.next_button.isDefault()


def test_a_new_deployment_starts_from_clean_pages(window, qtbot, sample_model, answers):
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, sample_model)
    assert page.found.isVisible()
    window.go("start")
    answers.replies.append(True)  # "Discard this deployment?"
    window.next_button.click()  # New deployment
    assert answers.asked and "Discard" in answers.asked[0]
    assert window.current_id == "model"
    assert window.state.model_path is None
    assert page.path_edit.text() == ""
    assert not page.found.isVisible() and not page.pickle_box.isVisible()
    assert not window.next_button.isEnabled()


def test_uncaught_exceptions_reach_the_notification(qtbot, monkeypatch):
    import sys

    from wizards import app as wizard_app

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(wizard_app, "_router", None)
    wizard_app.install_excepthooks()
    try:
        raise ValueError("slot blew up")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: bool(notify.shown))
    dialog = notify.last()  # closed (and deleted) by notify.close_all below
    assert "slot blew up" in dialog.cause_label.text()
    assert "slot blew up" in dialog.diagnostics_text()
    # from a plain Python thread as well
    notify.close_all()
    worker = threading.Thread(target=lambda: 1 / 0)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: bool(notify.shown))
    assert "ZeroDivisionError" in notify.last().cause_label.text()
    notify.close_all()


@pytest.mark.parametrize("kind", ["heroku", "sagemaker", "openstack"])
def test_result_snippets_come_from_the_target(qtbot, tmp_path, kind):
    """The result page shows the kind's own snippets: Heroku's name the endpoint's key
    entry, never the account's; SageMaker's are the AWS CLI and boto3 (signed), not curl;
    a VM's fetch, check and trust its pinned certificate."""
    import json

    from app.domain import DeploymentRecord, Endpoint
    from app.store.profile import Profile
    from wizards.pages.result import ResultPage
    from wizards.state import WizardState

    settings = {
        # a schema-1 record: Heroku's account key was `api_key` then (migrated on load)
        "heroku": {"api_key": "my-heroku-account", "endpoint_api_key": "iris-endpoint-key"},
        "sagemaker": {"region": "eu-central-1"},
        "openstack": {"api_key": "iris-endpoint-key"},
    }[kind]
    endpoint = Endpoint(
        url={
            "heroku": "https://iris.herokuapp.com",
            "sagemaker": "https://runtime.sagemaker.eu-central-1.amazonaws.com/endpoints/"
            "modelship-iris/invocations",
            "openstack": "https://192.0.2.7:8443",
        }[kind],
        target=kind,
        tls_sha256="ab" * 32 if kind == "openstack" else None,
        data={"endpoint_name": "modelship-iris", "region": "eu-central-1"},
    )
    profile = {
        "schema": 1,
        "name": "iris",
        "model": {"path": str(tmp_path / "iris.onnx")},
        "target": {"kind": kind, "settings": settings},
    }
    record = DeploymentRecord.from_dict(
        {"name": "iris", "target": kind, "endpoint": endpoint.to_dict(), "profile": profile}
    )
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({"rows": [{"petal length": 1.4}], "predictions": [0]}))

    class Version:
        proof_path = proof

    record.version = lambda: Version()  # type: ignore[method-assign]
    state = WizardState()
    state.record = record
    state.profile = Profile.model_validate(profile)
    page = ResultPage(state)
    qtbot.addWidget(page)
    page.resize(900, 640)
    page.show()
    page.enter()
    page.tabs.setCurrentIndex(page.curl_tab)
    shell, python = page.curl_text.toPlainText(), page.python_text.toPlainText()
    page.grab().save(str(Path("/tmp") / f"result-{kind}.png"))
    assert "my-heroku-account" not in shell + python
    if kind == "sagemaker":
        assert page.tabs.tabText(page.curl_tab) == "AWS CLI"
        assert "aws sagemaker-runtime invoke-endpoint" in shell and "fileb://row.json" in shell
        assert 'boto3.client("sagemaker-runtime"' in python and ".invoke_endpoint(" in python
        assert "curl" not in shell + python and "Bearer" not in shell + python
        assert "/predict" not in shell + python
        assert "SigV4" in page.curl_note.text()
    else:
        assert page.tabs.tabText(page.curl_tab) == "curl"
        assert f"{endpoint.url}/predict" in shell and f'"{endpoint.url}/predict"' in python
        assert "$(keyring get modelship iris-endpoint-key)" in shell
        assert "iris-endpoint-key" in page.curl_note.text()
    if kind == "openstack":
        assert "--cacert modelship-endpoint.pem" in shell and "-fingerprint -sha256" in shell
        assert "context=context" in python
