"""Issue 14: the wizard as an analyst meets it. One test per defect (numbered as there)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSize, Qt

from tests.gui.helpers import wait_idle
from wizards import ask, notify

pytestmark = pytest.mark.gui


def _onnx(tmp_path: Path, name: str = "m.onnx") -> Path:
    model = tmp_path / name
    model.write_bytes(b"x")
    return model


def _record(name: str, port: int, target: str = "local"):
    from app.domain import DeploymentRecord
    from app.store.records import save_record

    record = DeploymentRecord(
        name=name,
        target=target,
        profile={"name": name, "target": {"kind": target, "settings": {"port": port}}},
        endpoint={"url": f"http://127.0.0.1:{port}", "target": target, "resources": []},
        current_version=1,
    )
    save_record(record)
    return record


def _settings(window, qtbot, model: Path, settings: dict, target: str = "local"):
    window.state.model_path = model
    window.state.target_name = target
    window.state.settings = dict(settings)
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 30_000)
    return page


# 1 ----------------------------------------------------------------------------------
def test_1_second_new_deployment_keeps_the_checked_target(window, qtbot):
    window.go("target")
    window.pages["target"].choose("local")
    assert window.next_button.isEnabled()
    window.go("start")
    window.next()  # New deployment: the answers are reset
    assert window.state.target_name is None
    window.go("target")
    assert window.state.target_name == "local"
    assert window.next_button.isEnabled()
    # clicking the card that is already checked chooses it as well
    window.state.target_name = None
    card = window.pages["target"].cards["local"]
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert window.state.target_name == "local"


# 2 ----------------------------------------------------------------------------------
def test_2_a_new_deployment_never_silently_replaces_one_of_the_same_name(
    window, qtbot, tmp_path, free_port
):
    model = _onnx(tmp_path, "iris.onnx")
    _record("iris", 9)
    window.state.model_path = model
    assert window.state.default_name() == "iris-2"  # a fresh name, not "iris"
    window.state.target_name = "local"
    window.state.settings = {"port": free_port}
    window.go("review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    wait_idle(qtbot, review, 30_000)
    assert not review.replace_box.isVisible()
    assert window.next_button.isEnabled()
    # typing the name of an existing deployment says so and needs a yes
    review.name_edit.setText("iris")
    review.name_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    wait_idle(qtbot, review, 30_000)
    assert review.replace_box.isVisible()
    assert "iris" in review.replace_box.title() + review.replace_text.text()
    assert not window.next_button.isEnabled()
    review.replace_check.setChecked(True)
    assert window.next_button.isEnabled()


# 3 ----------------------------------------------------------------------------------
def test_3_no_keyring_blocks_only_when_a_secret_is_typed(window, qtbot, tmp_path, free_port):
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())
    page = _settings(window, qtbot, _onnx(tmp_path), {"port": free_port})
    assert page.ready.isVisible()
    assert window.next_button.isEnabled()
    assert not page.no_keyring.isVisible()
    page.editors["api_key"].secret_value.setText("typed-secret")
    assert page.no_keyring.isVisible()
    assert "keyring.backends" not in page.no_keyring_text.text()
    assert "Keyring" not in page.no_keyring_text.text()


# 4 ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_4_pytorch_asks_for_an_input_shape(window, qtbot, tmp_path):
    torch = pytest.importorskip("torch")
    from tests.gui.helpers import choose_model

    path = tmp_path / "linear.pt"
    torch.jit.script(torch.nn.Linear(4, 2)).save(str(path))
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, path)
    wait_idle(qtbot, page)
    assert page.torch_box.isVisible()
    assert ".npy" in page.csv_label.text()
    assert not window.next_button.isEnabled()
    assert "input shape" in window.why.text()
    assert "--" not in page.warnings.label.text()
    qtbot.keyClicks(page.shape_edit, "1,4")
    assert window.next_button.isEnabled()
    assert page.accept()
    assert window.state.input_shape == [1, 4]
    assert window.state.convert_options().input_shape == [1, 4]
    assert window.state.build_profile().model.input_shape == [1, 4]


def test_4_a_notebook_class_is_explained_in_plain_words(window, qtbot, tmp_path, monkeypatch):
    import sys

    torch = pytest.importorskip("torch")
    from app.errors import ModelError
    from tests.gui.helpers import choose_model

    class Tiny(torch.nn.Module):
        def forward(self, x):
            return x * 2

    Tiny.__module__, Tiny.__qualname__ = "__main__", "Tiny"
    monkeypatch.setattr(sys.modules["__main__"], "Tiny", Tiny, raising=False)
    path = tmp_path / "tiny.pt"
    torch.save(Tiny(), path)
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, path)
    wait_idle(qtbot, page)
    assert page.problem.isVisible()
    text = page.problem.label.text()
    assert "notebook" in text and "TorchScript" in text
    assert not window.next_button.isEnabled()
    # the same failure, met while converting, fills the page instead of leaving it blank
    convert = window.pages["convert"]
    convert.show_failure(
        ModelError(
            "The model refers to code that /usr/bin/python3 cannot import "
            "(Can't get attribute 'Tiny' on <module '__main__'>).",
            "Put the module next to the model file, or use --python with the environment.",
        )
    )
    assert not convert.verdict.isHidden() and convert.verdict.kind == "fail"
    assert "notebook" in convert.verdict.label.text()
    assert "--" not in convert.verdict.label.text()
    assert not notify.shown


# 5 ----------------------------------------------------------------------------------
def test_5_teardown_asks_first_naming_what_goes(window, qtbot, answers):
    record = _record("iris", 9)
    window.state.record = record
    window.go("result")
    result = window.pages["result"]
    answers.replies.append(False)
    result.teardown_button.click()
    assert answers.asked and "iris" in answers.asked[0]
    assert not result.is_busy() and result.torn_down is None


def test_5_rollback_asks_first(window, qtbot, answers, monkeypatch):
    from wizards import actions

    called = []
    monkeypatch.setattr(actions, "rollback", lambda *a, **k: called.append(a))
    monkeypatch.setattr(actions, "all_statuses", lambda *a, **k: [])
    _record("iris", 9)
    start = window.pages["start"]
    start.refresh()
    wait_idle(qtbot, start)
    start.records["iris"].previous_version = lambda: SimpleNamespace(version=1)
    start.deployments.setCurrentRow(0)
    answers.replies.append(False)
    start.rollback()
    assert answers.asked and "iris" in answers.asked[0]
    assert not called and not start.is_busy()


def test_5_cancel_asks_and_goes_home_keeping_the_app_open(window, qtbot, answers, tmp_path):
    window.go("model")
    window.state.model_path = _onnx(tmp_path)
    answers.replies.append(False)
    window.cancel_button.click()
    assert answers.asked and window.isVisible() and window.current_id == "model"
    assert window.state.model_path is not None
    answers.replies.append(True)
    window.cancel_button.click()
    assert window.isVisible() and window.current_id == "start"
    assert window.state.model_path is None
    # the window's close button asks too when answers would be lost
    window.state.model_path = _onnx(tmp_path)
    answers.replies.append(False)
    window.close()
    assert window.isVisible()


# 6 ----------------------------------------------------------------------------------
def test_6_closing_when_the_deploy_finished_meanwhile_removes_it_and_says_so(
    window, qtbot, answers, monkeypatch, tmp_path, free_port
):
    import app.run
    from wizards import actions

    release = threading.Event()
    record = _record("late", free_port)

    def slow_deploy(profile, on_event=None, cancel=None, converted=None, **kw):
        release.wait(20)
        return record  # finished although cancel was asked for

    torn = []
    monkeypatch.setattr(app.run, "run_deploy", slow_deploy)
    monkeypatch.setattr(actions, "teardown", lambda name, progress=None: torn.append(name) or [])
    window.state.model_path = _onnx(tmp_path)
    window.state.target_name = "local"
    window.state.settings = {"port": free_port}
    window.state.name = "late"
    window.state.profile = window.state.build_profile()
    window.go("deploy")
    deploy = window.pages["deploy"]
    assert deploy.is_busy()

    def finish_while_asking(parent, title, text, yes="Yes", no="No"):
        answers.asked.append(title)
        release.set()
        return True

    monkeypatch.setattr(ask, "confirm", finish_while_asking)
    window.close()
    assert not window.isVisible()
    assert torn == ["late"]
    assert answers.told and "finished" in answers.told[0]


# 7 ----------------------------------------------------------------------------------
def test_7_a_blocked_next_says_why_and_offers_the_free_port(window, qtbot, tmp_path, busy_port):
    page = _settings(window, qtbot, _onnx(tmp_path), {"port": busy_port})
    assert not window.next_button.isEnabled()
    assert window.why.isVisible() and f"{busy_port}" in window.why.text()
    fix = page.fix_buttons.get("port")
    assert fix is not None and fix.isVisible() and "port" in fix.text().lower()
    fix.click()
    wait_idle(qtbot, page, 30_000)
    assert page.editors["port"].get() != busy_port
    assert window.next_button.isEnabled()
    assert not window.why.isVisible()


def test_7_a_port_held_by_your_own_deployment_is_named(window, qtbot, tmp_path, busy_port):
    _record("churn", busy_port)
    page = _settings(window, qtbot, _onnx(tmp_path), {"port": busy_port})
    assert "churn" in page.problems.label.text()


def test_7_problems_are_above_the_form(window, qtbot, tmp_path, busy_port):
    page = _settings(window, qtbot, _onnx(tmp_path), {"port": busy_port})
    assert page.problems.isVisible()
    y_problem = page.problems.mapTo(page, page.problems.rect().topLeft()).y()
    y_form = page.form_box.mapTo(page, page.form_box.rect().topLeft()).y()
    assert y_problem < y_form


# 8 ----------------------------------------------------------------------------------
def _badge_is(box, kind: str) -> bool:
    from wizards.resources import icon

    return box.badge.pixmap().toImage() == icon(kind).pixmap(22, 22).toImage()


def test_8_outcome_boxes_show_their_own_icon(window):
    report = SimpleNamespace(summary=lambda: "differs", passed=False)
    convert = window.pages["convert"]
    convert._show_verdict(report, "fail")
    assert _badge_is(convert.verdict, "fail")
    deploy = window.pages["deploy"]
    deploy._style_outcome("warning")
    assert _badge_is(deploy.outcome, "warning")
    deploy._style_outcome("fail")
    assert _badge_is(deploy.outcome, "fail")


# 9 ----------------------------------------------------------------------------------
def test_9_tolerance_zero_is_refused_on_convert(window, tmp_path):
    window.state.model_path = _onnx(tmp_path)
    page = window.pages["convert"]
    page.tolerance.setText("0")
    assert not page.tolerance.hasAcceptableInput()
    page.start()
    assert not page.is_busy()
    assert window.state.tolerance > 0
    assert "greater than 0" in page.status.text()


# 10 ---------------------------------------------------------------------------------
def test_10_no_command_line_words_on_screen(window, qtbot, tmp_path, busy_port):
    from app.errors import ParityError, TargetError
    from app.image.image import ENGINE_HINT
    from app.model.convert import parity_hint
    from wizards.pages.model import estimator_words

    class Failed:  # a proof that failed with no looser tolerance to offer
        quantized = False

        def suggested_tolerance(self):
            return None

    # the core's next step after a failed proof: "run again with --accept-mismatch"
    assert "--accept-mismatch" in parity_hint(Failed())
    _cause, hint, _ = notify.describe(ParityError("differs", parity_hint(Failed())))
    assert "--" not in hint and "Deploy anyway" in hint
    _, hint, _ = notify.describe(TargetError("Docker is not running.", ENGINE_HINT))
    assert "sudo" not in hint and "systemctl" not in hint
    assert estimator_words("sklearn.ensemble._forest.RandomForestClassifier") == (
        "RandomForestClassifier"
    )
    page = _settings(window, qtbot, _onnx(tmp_path), {"port": busy_port})
    assert "--port" not in page.problems.label.text()
    review = window.pages["review"]
    assert "modelship deploy" not in review.findChild(type(review.summary), "profileHint").text()


# 11 ---------------------------------------------------------------------------------
def test_11_every_page_fits_an_800x600_screen(window, qtbot):
    from wizards.window import ORDER

    assert window.minimumSize().width() <= 800 and window.minimumSize().height() <= 560
    room = 800 - window.sidebar.width() - 20  # the page's width at 800 px, scroll bar off
    for page_id in ORDER:
        window.go(page_id, record=False)
        hint = window.minimumSizeHint()
        assert hint.width() <= 800 and hint.height() <= 560, (page_id, hint)
        # nothing cut at the right: every page fits the width it gets
        assert window.pages[page_id].minimumSizeHint().width() <= room, page_id
    for kind in ("local", "docker"):
        window.state.target_name = kind
        window.pages["settings"]._build_form(kind)
        assert window.pages["settings"].form_box.minimumSizeHint().width() <= room - 30, kind
    window.go("start", record=False)
    window.resize(QSize(2560, 1440))
    qtbot.waitUntil(lambda: window.width() > 1400)
    qtbot.waitUntil(lambda: window.content.width() < window.width() - window.sidebar.width())
    assert window.content.width() <= 1200  # readable lines, centred


# 12 ---------------------------------------------------------------------------------
def test_12_enter_presses_next(window, qtbot):
    qtbot.keyClick(window.stack.currentWidget(), Qt.Key.Key_Return)
    assert window.current_id == "model"


def test_12_alt_letters_are_unique_on_every_page(window):
    from PySide6.QtWidgets import QAbstractButton

    from wizards.window import ORDER

    for page_id in ORDER:
        page = window.pages[page_id]
        buttons = [*page.findChildren(QAbstractButton), window.back_button, window.next_button]
        buttons += [window.cancel_button, window.home_button]
        letters: dict[str, str] = {}
        for b in buttons:
            text = b.text()
            i = text.find("&")
            if i < 0 or i + 1 >= len(text):
                continue
            letter = text[i + 1].lower()
            assert letter not in letters, (page_id, text, letters[letter])
            letters[letter] = text


def test_12_done_steps_are_clickable_and_home_keeps_the_answers(window, qtbot, tmp_path):
    window.go("model")
    window.go("convert")
    window.state.model_path = _onnx(tmp_path)
    item = window.sidebar.item(1)  # Model: visited
    rect = window.sidebar.visualItemRect(item)
    qtbot.mouseClick(window.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_id == "model"
    later = window.sidebar.visualItemRect(window.sidebar.item(5))  # Review: not reached
    qtbot.mouseClick(window.sidebar.viewport(), Qt.MouseButton.LeftButton, pos=later.center())
    assert window.current_id == "model"
    wait_idle(qtbot, window.page)
    notify.close_all()
    window.home_button.click()
    assert window.current_id == "start"
    assert window.state.model_path is not None  # kept


# 13 ---------------------------------------------------------------------------------
def test_13_one_new_deployment_button(window):
    from PySide6.QtWidgets import QPushButton

    start = window.pages["start"]
    words = [b.text().replace("&", "").lower() for b in start.findChildren(QPushButton)]
    words.append(window.next_button.text().replace("&", "").lower())
    assert sum("new deployment" in w for w in words) == 1


def test_13_pickle_warning_once(window, qtbot, tmp_path):
    import pickle

    from sklearn.linear_model import LinearRegression

    from tests.gui.helpers import choose_model

    path = tmp_path / "reg.pkl"
    path.write_bytes(pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])))
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, path, trust=False)
    assert page.pickle_box.isVisible()
    assert not (page.warnings.isVisible() and "pickle" in page.warnings.label.text())


def test_13_errors_inline_are_not_also_a_modal(window, qtbot, tmp_path):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"not a model")
    window.go("model")
    page = window.pages["model"]
    page.set_model_path(bad)
    wait_idle(qtbot, page, 30_000)
    assert page.problem.isVisible()
    assert not notify.shown


def test_13_small_words(window):
    from app.model.convert import ConversionReport
    from wizards.pages.convert import verdict_words
    from wizards.pages.settings import FieldEditor

    report = ConversionReport(
        rows=20,
        labels_agreeing=None,
        label_agreement=None,
        max_abs_diff=1e-7,
        max_abs_diff_probabilities=None,
        tolerance=1e-4,
        passed=True,
        original_ms=1.0,
        onnx_ms=1.0,
        onnx_size_bytes=2048,
        rows_from="csv",
    )
    words = verdict_words(report)
    assert "20 your" not in words and " KB" not in words
    # "empty" for a number field: the spin box says what its lowest step means
    from targets.docker.settings import DockerSettings

    info = DockerSettings.model_fields["workers"]
    editor = FieldEditor("workers", info, window.pages["settings"])
    assert editor.get() is None
    assert "CPU" in editor.widget.specialValueText()
    editor.set(3)
    assert editor.get() == 3
    editor.set(None)
    assert editor.get() is None


def test_13_larger_int8_version_is_not_offered(window):
    page = window.pages["convert"]
    full = SimpleNamespace(onnx_size_bytes=1000, summary=lambda: "ok", passed=True)
    quant = SimpleNamespace(onnx_size_bytes=1199, summary=lambda: "ok", passed=True)
    result = SimpleNamespace(report=full, quantized=SimpleNamespace(report=quant))
    page._offer_quantized(result)
    assert not page.use_quant.isEnabled()
    assert "larger" in page.quant_note.text().lower()


def test_13_deploy_page_words_after_the_run(window, qtbot):
    from app.errors import Cancelled

    page = window.pages["deploy"]
    page.items.clear()
    page._item("deploy")
    page.cancelling = True
    page._progress("event", SimpleNamespace(kind="step_failed", step="deploy", message="stop"))
    assert "Failed" not in page.log.toPlainText()
    page._failed(Cancelled("Cancelled.", ""))
    assert "Deploying" not in page.title_label.text()
    page._progress("event", SimpleNamespace(kind="log", step="", message="same line"))
    page._progress("event", SimpleNamespace(kind="finished", step="", message="same line"))
    assert page.log.toPlainText().count("same line") == 1
    # success: the title says so
    record = _record("iris", 9)
    window.state.profile = None
    page._deployed(record)
    assert "Deploying" not in page.title_label.text()


def test_13_result_after_teardown_does_not_say_online(window):
    window.state.record = _record("iris", 9)
    window.go("result")
    page = window.pages["result"]
    page._torn_down(["process 123"])
    assert "online" not in page.title_label.text().lower()
    assert not page.send_button.isEnabled()


def test_7_an_invalid_setting_is_said_above_the_form_in_its_words(window, qtbot, tmp_path):
    """Also for the remote targets' forms: no modal box, the field's title, no TOML key."""
    page = _settings(window, qtbot, _onnx(tmp_path), {"memory_limit": "lots"}, target="docker")
    assert not notify.shown
    assert page.problems.isVisible()
    text = page.problems.label.text()
    assert "“Memory limit”" in text and "memory_limit" not in text
    assert not window.next_button.isEnabled()
    assert "Memory limit" in window.why.text()


def test_item2_target_cards_show_live_health_with_what_to_do(window, qtbot, monkeypatch):
    from wizards import health

    monkeypatch.setattr(
        health,
        "card_health",
        lambda kinds: {
            "docker": health.Health(False, "The Docker Engine is not reachable.", "Start Docker.")
        },
    )
    window.go("target")
    page = window.pages["target"]
    card = page.cards["docker"]
    qtbot.waitUntil(lambda: card.health.isVisible(), timeout=10_000)
    assert "not reachable" in card.health.text() and "Start Docker" in card.health.text()
    assert card.recheck.isVisible()
    assert window.next_button.isEnabled()  # "This computer" is chosen and needs no Docker
    qtbot.waitUntil(lambda: not page.busy_workers())
    # it came back: one click checks again
    monkeypatch.setattr(
        health, "card_health", lambda kinds: {"docker": health.Health(True, "Docker is running.")}
    )
    card.recheck.click()
    qtbot.waitUntil(lambda: "running" in card.health.text(), timeout=10_000)
    assert not card.recheck.isVisible()
    qtbot.waitUntil(lambda: not page.busy_workers())


def test_item2_try_it_form_is_typed_from_the_proof_rows(window, tmp_path):
    import json

    from PySide6.QtWidgets import QComboBox, QLineEdit

    proof = tmp_path / "proof.json"
    rows = [{"plan": "basic", "age": 30}, {"plan": "premium", "age": 61}, {"plan": "basic"}]
    proof.write_text(json.dumps({"rows": rows, "predictions": ["no", "yes", "no"]}))
    window.state.record = _record("iris", 9)
    window.state.conversion = SimpleNamespace(proof_path=proof)
    window.go("result")
    page = window.pages["result"]
    plan, _ = page.inputs["plan"]
    assert isinstance(plan, QComboBox)
    assert [plan.itemText(i) for i in range(plan.count())] == ["basic", "premium"]
    age, _ = page.inputs["age"]
    assert isinstance(age, QLineEdit) and "30 to 61" in age.toolTip()
    plan.setCurrentText("premium")
    assert page.row() == {"plan": "premium", "age": 30}


def test_12_enter_in_the_try_it_form_sends_instead_of_leaving(window, qtbot, monkeypatch):
    window.state.record = _record("iris", 9)
    window.go("result")
    page = window.pages["result"]
    sent = []
    monkeypatch.setattr(page, "send", lambda: sent.append(page.row()))
    page.inputs.clear()
    from PySide6.QtWidgets import QLineEdit

    edit = QLineEdit("5")
    page.try_form.addRow("x:", edit)
    page.inputs["x"] = (edit, 5)
    qtbot.waitUntil(edit.isVisible)
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert sent == [{"x": 5}]
    assert window.current_id == "result"


def test_3_a_typed_secret_names_its_keyring_entry_before_the_check(
    window, qtbot, tmp_path, memory_keyring
):
    """A target that requires a secret (OpenStack's API key) must not say "must name a
    keyring entry" when the analyst has typed the secret."""
    page = _settings(window, qtbot, _onnx(tmp_path), {}, target="openstack")
    assert "keyring entry" in page.problems.label.text()
    notify.close_all()
    page.editors["api_key"].secret_value.setText("typed-key-123")
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    notify.close_all()
    ref = page.editors["api_key"].get()
    assert ref and memory_keyring.store[("modelship", ref)] == "typed-key-123"
    assert "keyring entry" not in page.problems.label.text()
