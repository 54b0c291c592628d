"""Issue 20, items 3 and 4 in the wizard: Review names what a new model changes for a
running deployment's callers and needs a tick that says so; the tick is what lets the
deploy replace it; Score a file says a problem once, next to the file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.gui.helpers import wait_idle
from tests.unit.test_issue20 import FIVE, _record, _signature
from wizards import notify

pytestmark = pytest.mark.gui


def _review(window, qtbot, tmp_path: Path, columns, free_port: int):
    model = tmp_path / "other.onnx"
    model.write_bytes(b"x")
    sig = _signature(tmp_path / "converted", columns)
    window.state.model_path = model
    window.state.name = "churn"
    window.state.target_name = "local"
    window.state.settings = {"port": free_port}
    window.state.conversion = SimpleNamespace(
        signature_path=sig, onnx_path=sig.with_name("model.onnx")
    )
    window.go("review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    wait_idle(qtbot, review, 30_000)
    return review


def test_review_names_the_inputs_that_change_and_the_tick_says_so(
    window, qtbot, tmp_path, free_port
):
    _record(tmp_path, "churn", FIVE)
    review = _review(window, qtbot, tmp_path, FIVE[:3], free_port)
    assert review.replace_box.isVisible()
    text = review.replace_text.text()
    assert "'region', 'membership' removed; callers sending them will get errors" in text
    assert review.replace_check.text() == "Replace “churn” even though its inputs change"
    assert not window.next_button.isEnabled()
    window.resize(800, 600)
    review.grab().save(str(Path("/tmp") / "issue20-review-inputs-change.png"))
    review.replace_check.setChecked(True)
    assert window.next_button.isEnabled()
    assert review.accept()
    assert window.state.inputs_change_ok_for == "churn" == window.state.replace_ok_for


def test_review_with_the_same_inputs_asks_only_to_replace(window, qtbot, tmp_path, free_port):
    _record(tmp_path, "churn", FIVE)
    review = _review(window, qtbot, tmp_path, FIVE, free_port)
    assert review.replace_box.isVisible()
    assert review.replace_check.text() == "Replace “churn”"
    assert "inputs" not in review.replace_text.text()
    review.replace_check.setChecked(True)
    assert review.accept()
    assert window.state.inputs_change_ok_for is None


def test_score_a_file_says_a_missing_column_once(qtbot, tmp_path):
    from wizards.batch import BatchPanel

    # a real record and the real client: the file is checked before anything is sent,
    # so no server needs to answer
    _record(tmp_path, "churn", FIVE)
    source = tmp_path / "people.csv"
    source.write_text("id,tenure,plan,region,membership,churned\n1,3,basic,north,gold,no\n")
    panel = BatchPanel("churn")
    qtbot.addWidget(panel)
    panel.show()
    panel.pick(source)
    panel.score_button.click()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    said = panel.message.label.text()
    assert "Your file has no column 'age', which the model needs." in said
    assert "422" not in said and "{" not in said
    assert not notify.shown  # no second copy of the same message in a dialog
    panel.resize(700, 260)
    panel.grab().save(str(Path("/tmp") / "issue20-score-missing-column.png"))
    panel.close()
