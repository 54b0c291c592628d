"""Issue 20, item 7: the wizard's words after an analyst's first hour.

The Model page says its safety verdict first (module paths only under Details) and
converts with "ModelShip's built-in Python"; a ticked "Deploy anyway" can be unticked
and Review and Deploy say the proof failed; the proof table has no empty header, no
figure twice, no 8.78e-08, no "int8" and no raw log in sight; the local settings start
on a free port, show the timeout as 60 s and keep rarely changed settings under "Show
more settings"; a removed deployment's name is free again; the smoke test's figures
are words.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.gui.helpers import SLOW, choose_model, next_page, visible_words, wait_idle
from wizards import notify

pytestmark = pytest.mark.gui


def test_model_page_says_the_verdict_first(window, qtbot, sample_model):
    next_page(qtbot, window, "model")
    page = window.pages["model"]
    choose_model(qtbot, window, sample_model, trust=False)
    assert page.pickle_box.isVisible()
    verdict = page.pickle_verdict.text()
    assert verdict.startswith("<b>Looks safe"), verdict
    said = verdict + page.pickle_text.text()
    assert "sklearn." not in said and "numpy." not in said  # no module paths up front
    assert "someone you trust" in page.pickle_text.text()
    assert not page.pickle_details.isVisible()
    page.pickle_more.click()
    assert page.pickle_details.isVisible()
    assert "sklearn.pipeline.Pipeline" in page.pickle_details.text()
    page.pickle_more.click()
    assert not page.pickle_details.isVisible()
    # who converts it, in plain words: no version number of ModelShip's own Python
    assert page.python_combo.itemText(0) == "ModelShip's built-in Python"
    assert page.python_combo.currentData() is None


def test_deploy_anyway_is_said_on_review_and_can_be_unticked(window, qtbot, sample_model):
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    window.state.tolerance = 1e-15  # nothing but bit-identical answers passes
    next_page(qtbot, window, "convert")
    page = window.pages["convert"]
    qtbot.waitUntil(lambda: page.failed_report is not None or bool(notify.shown), timeout=SLOW)
    wait_idle(qtbot, page)
    assert not window.next_button.isEnabled()
    # the proof table: no empty header, each figure once, plain numbers, no raw log
    from PySide6.QtWidgets import QTableWidget

    table = page.findChildren(QTableWidget, "proofTable")[0]
    assert table.horizontalHeader().isHidden()
    labels = [table.item(r, 0).text() for r in range(table.rowCount())]
    values = [table.item(r, 1).text() for r in range(table.rowCount())]
    assert len(labels) == len(set(labels))
    assert "Largest difference in probabilities" in labels
    assert "Largest difference" not in labels  # the same figure, said once
    assert not [v for v in values if "e-" in v or "e+" in v], values
    assert not page.log.isVisible() and page.log_button.isVisible()
    assert page.log.toPlainText()  # kept, for whoever helps
    page.log_button.click()
    assert page.log.isVisible()
    page.log_button.click()
    assert not [w for w in visible_words(page) if "int8" in w]
    # Deploy anyway: converts again with the override, and stays ticked
    page.override.setChecked(True)
    qtbot.waitUntil(lambda: window.state.conversion is not None, timeout=SLOW)
    wait_idle(qtbot, page)
    assert window.next_button.isEnabled()
    assert page.override.isVisible() and page.override.isChecked()
    # Review says so
    next_page(qtbot, window, "target")
    window.pages["target"].choose("local")
    next_page(qtbot, window, "settings")
    settings = window.pages["settings"]
    qtbot.waitUntil(lambda: settings.checked_ok or bool(notify.shown), timeout=60_000)
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    assert review.proof_note.isVisible()
    said = review.proof_note.label.text()
    assert "The proof failed:" in said and "deploy anyway" in said, said
    wait_idle(qtbot, review, 60_000)
    # back on Convert, unticking takes it back: Next is grey, the reason says why
    window.go("convert")
    assert page.override.isVisible() and page.override.isChecked()
    page.override.setChecked(False)
    assert window.state.conversion is None and not window.state.allow_mismatch
    assert not window.next_button.isEnabled()
    assert "Deploy anyway" in window.why.text()
    assert page.verdict.kind == "fail"
    # ticked again: the same conversion, accepted again without converting anew
    page.override.setChecked(True)
    assert not page.is_busy() and window.state.conversion is not None
    assert window.state.allow_mismatch and window.next_button.isEnabled()


def test_proof_table_figures_in_plain_words() -> None:
    from wizards.pages.convert import plain_number, table_rows

    rows = dict(
        table_rows(
            {
                "rows": 500,
                "max_abs_diff": 8.78e-08,
                "max_abs_diff_probabilities": 8.78e-08,
                "tolerance": 0.0001,
                "original_ms": 15.123,
                "label_agreement": 1.0,
            }
        )
    )
    assert rows["Largest difference in probabilities"] == "less than 0.000001"
    assert "Largest difference" not in rows
    assert rows["Accepted difference (tolerance)"] == "0.0001"
    assert rows["Original model, time per batch (ms)"] == "15.1"
    assert plain_number(0.021345) == "0.0213"
    assert plain_number(1.21e-05) == "0.0000121"
    assert plain_number(0.0) == "0"
    assert plain_number(1e-15) == "0.000000000000001"  # a tolerance is never said as 0
    # a regressor has no probabilities: its largest difference stands
    assert "Largest difference" in dict(table_rows({"max_abs_diff": 0.5}))


@pytest.fixture
def port_8080_taken() -> Iterator[None]:
    """8080 (the local target's default) is held for the whole test, by this test or
    by whatever holds it already."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 8080))
        s.listen(1)
    except OSError:
        pass
    try:
        yield
    finally:
        s.close()


@pytest.mark.usefixtures("port_8080_taken")
def test_local_settings_start_on_a_free_port_with_few_settings(window, qtbot, sample_model):
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    window.state.target_name = "local"
    window.go("settings")
    page = window.pages["settings"]
    port = page.editors["port"]
    assert port.get() != 8080
    from targets.net import port_free

    assert port_free(port.get())
    assert f"Port 8080 is used by another program, so ModelShip chose {port.get()}" in (
        port.hint.text()
    )
    qtbot.waitUntil(lambda: page.checked_ok or bool(notify.shown), timeout=60_000)
    assert page.checked_ok, page.problems.label.text()
    # the timeout in whole seconds
    timeout = page.editors["start_timeout"]
    assert timeout.widget.text() == "60 s"
    assert timeout.get() == 60
    # only the port and the API key in sight; the rest under "Show more settings"
    shown = [n for n, e in page.editors.items() if not e.advanced]
    assert shown == ["port", "api_key"]
    assert not page.more_box.isVisible() and page.more_button.isVisible()
    words = visible_words(page)
    assert "Start timeout:" not in words and "Worker processes:" not in words
    page.more_button.click()
    assert page.editors["start_timeout"].widget.isVisible()


def test_docker_settings_keep_rare_ones_under_more(window) -> None:
    window.state.target_name = "docker"
    page = window.pages["settings"]
    page._build_form("docker")
    shown = [n for n, e in page.editors.items() if not e.advanced]
    assert shown == ["port", "api_key"]


def test_a_removed_deployments_name_is_free_again(sample_model) -> None:
    from app.domain import DeploymentRecord
    from app.store.profile import new_profile, save_profile
    from app.store.records import mark_removed, save_record
    from wizards.state import WizardState, name_in_use

    profile = new_profile(sample_model, name="churn", target="local", settings={"port": 8099})
    save_profile(profile)
    assert name_in_use("churn")  # a saved profile (never deployed) keeps its name
    save_record(DeploymentRecord(name="churn", target="local", profile=profile.to_dict()))
    assert name_in_use("churn")
    mark_removed("churn")
    assert not name_in_use("churn")
    state = WizardState(model_path=sample_model)
    assert state.default_name() == "churn"


def test_smoke_report_in_words() -> None:
    from wizards.pages.result import smoke_words

    text = smoke_words(
        {
            "summary": "The endpoint answered 20 of 20 sample rows as the proof said.",
            "passed": True,
            "url": "http://127.0.0.1:8080",
            "healthy": True,
            "health_seconds": 2.4,
            "health_attempts": 3,
            "rows": 20,
            "matching": 20,
            "max_abs_diff": 8.78e-08,
            "latency_ms_p50": 4.123,
            "compared": True,
        }
    )
    assert "Health" not in text and "attempts" not in text and "Compared" not in text
    assert "Ready to answer after: 2 s" in text
    assert "Largest difference: less than 0.000001" in text
    assert "e-08" not in text
    assert "Typical time per request: 4.12 ms" in text


def test_dashboard_button_is_no_busy_spinner(window) -> None:
    from wizards.resources import icon

    button = window.pages["result"].dashboard_button
    assert not button.icon().isNull()
    shown = button.icon().pixmap(32).toImage()
    assert shown != icon("running").pixmap(32).toImage()
    assert shown == icon("dashboard").pixmap(32).toImage()
