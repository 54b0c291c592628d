"""Issue 14 item 2 and item 13: a deployment's dashboard (live figures from a real local
deployment), Stop/Start apart from Delete, batch scoring, and the history that stays
after a teardown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.gui.helpers import SLOW
from wizards import notify

pytestmark = pytest.mark.gui


@pytest.fixture
def deployed(sample_model, free_port):
    """A real local deployment of the sample model (torn down afterwards)."""
    from app.run import run_deploy, teardown
    from app.store.profile import new_profile
    from app.store.records import find_record

    profile = new_profile(sample_model, name="dash", target="local", settings={"port": free_port})
    record = run_deploy(profile)
    yield record, profile
    if find_record("dash") is not None:
        teardown("dash")


def _rows(record) -> list[dict]:
    return json.loads(Path(record.version().proof_path).read_text())["rows"]


def _dashboard(qtbot, window, name: str = "dash"):
    from wizards.dashboard import DashboardDialog

    dialog = DashboardDialog(name, window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.snap is not None, timeout=30_000)
    return dialog


def _fresh(qtbot, dialog, check, timeout: int = 30_000) -> None:
    """Refresh until ``check(snapshot)`` holds (each refresh is a new snapshot)."""

    def ok() -> bool:
        if dialog.snap is not None and check(dialog.snap):
            return True
        dialog.refresh()
        return False

    qtbot.waitUntil(ok, timeout=timeout)


def test_dashboard_shows_live_figures_and_stops_starts_and_deletes(
    window, qtbot, deployed, answers
):
    from app.store.records import find_record, find_removed

    record, profile = deployed
    dialog = _dashboard(qtbot, window)
    try:
        _fresh(qtbot, dialog, lambda s: s.answering and s.metrics is not None)
        snap = dialog.snap
        assert dialog.url.text() == record.url
        assert dialog.values["uptime"].text() not in {"", "—", "unknown"}
        assert "this computer" in dialog.values["cost"].text()
        assert dialog.log.toPlainText().strip()  # the server's own log lines
        # issue 20: no keys to press in a log nobody types into, no process ids, and
        # the same words as everywhere else for removing it
        assert "Ctrl+C" not in dialog.log.toPlainText()
        assert "process" not in dialog.values["where"].text()
        assert f"port {profile.target.settings.port}" in dialog.values["where"].text()
        assert dialog.delete_button.text() == "&Tear down…"
        assert dialog.versions.rowCount() == 1
        assert dialog.versions.item(0, 0).text() == "1 (current)"
        assert dialog.versions.item(0, 1).text()  # deployed when
        before = snap.metrics.requests
        # a Try it on the Result page counts as one more prediction asked
        window.state.record = record
        window.state.profile = profile
        window.go("result")
        result = window.pages["result"]
        result.send()
        qtbot.waitUntil(lambda: result.last_answer is not None, timeout=30_000)
        # the Result page opens the same dashboard
        result.dashboard_button.click()
        assert result.dashboard is not None and result.dashboard.isVisible()
        assert result.dashboard.name == "dash"
        result.dashboard.close()
        qtbot.waitUntil(lambda: result.dashboard is None, timeout=5_000)
        _fresh(qtbot, dialog, lambda s: s.metrics is not None and s.metrics.requests > before)
        assert dialog.values["requests"].text().startswith(f"{before + 1} (")
        assert dialog.values["errors"].text() == "0"
        # Stop: nothing answers, the record says stopped; Start: it answers again
        assert dialog.stop_button.isVisible() and dialog.stop_button.isEnabled()
        assert not dialog.start_button.isEnabled()
        dialog.stop_button.click()
        _fresh(qtbot, dialog, lambda s: s.stopped and not s.answering)
        assert find_record("dash").state == "stopped"
        assert "Stopped" in dialog.status_note.label.text()
        assert dialog.start_button.isEnabled() and not dialog.stop_button.isEnabled()
        assert dialog.delete_button.isEnabled()  # Tear down is apart from Stop
        # Score a file waits while it is stopped, and says why
        dialog.batch.pick(Path(record.version().proof_path))
        assert not dialog.batch.score_button.isEnabled()
        assert "stopped" in dialog.batch.message.label.text()
        dialog.start_button.click()
        _fresh(qtbot, dialog, lambda s: s.answering and not s.stopped, timeout=SLOW)
        assert find_record("dash").state == "running"
        assert dialog.batch.score_button.isEnabled()  # answering again: it can score
        assert dialog.batch.message.isHidden()
        # Delete asks first, then removes it; the history stays
        answers.replies.append(True)
        dialog.delete_button.click()
        qtbot.waitUntil(lambda: dialog.removed is not None, timeout=SLOW)
        assert answers.asked and answers.asked[-1].startswith("Tear down “dash”?")
        assert find_record("dash") is None and find_removed("dash") is not None
        assert not notify.shown, notify.last().diagnostics_text()
    finally:
        dialog.close()


@pytest.mark.usefixtures("deployed")
def test_start_page_keeps_removed_deployments_under_removed(window, qtbot, answers):
    from app.store.records import find_removed

    window.go("start")
    start = window.pages["start"]
    qtbot.waitUntil(lambda: not start.is_busy(), timeout=30_000)
    assert start.select_deployment("dash")
    assert start.dashboard_button.isEnabled() and start.teardown_button.isEnabled()
    start.dashboard_button.click()
    assert [d.name for d in start.dashboards] == ["dash"]
    qtbot.waitUntil(lambda: start.dashboards[0].snap is not None, timeout=30_000)
    start.dashboards[0].close()
    qtbot.waitUntil(lambda: not start.dashboards, timeout=5_000)
    start.teardown()
    qtbot.waitUntil(lambda: find_removed("dash") is not None and not start.is_busy(), timeout=SLOW)
    texts = [start.deployments.item(i).text() for i in range(start.deployments.count())]
    assert "Removed" in texts
    assert any(t.startswith("dash\n") and "removed" in t for t in texts)
    assert not start.select_deployment("dash")  # no live "dash" any more
    assert start.select_deployment("dash", removed=True)
    assert start.redeploy_button.text() == "&Deploy again"
    assert not start.teardown_button.isEnabled() and not start.rollback_button.isEnabled()
    assert not start.dashboard_button.isEnabled()
    # Deploy again: the last profile, on the review page, replacing nothing
    start.redeploy()
    assert window.current_id == "review"
    assert window.state.profile.name == "dash" and window.state.replace_ok_for != "dash"


def test_batch_scoring_writes_every_row_with_predictions(
    window, qtbot, deployed, tmp_path, monkeypatch
):
    from PySide6.QtGui import QDesktopServices

    from app.store.profile import Profile
    from targets import get_target
    from wizards.batch import BatchPanel

    record, _profile = deployed
    rows = _rows(record)
    columns = list(rows[0])
    source = tmp_path / "people.csv"
    with source.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for i in range(1100):  # three chunks of 500
            w.writerow([rows[i % len(rows)][c] for c in columns])
    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    panel = BatchPanel("dash")
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.score_button.isEnabled()
    panel.pick(source)
    assert panel.output_label.text().endswith("people.predictions.csv")
    seen: list[int] = []
    panel.bar.valueChanged.connect(seen.append)
    panel.score_button.click()
    qtbot.waitUntil(lambda: panel.result is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=5_000)
    assert panel.bar.value() == 100 and any(0 < v < 100 for v in seen)
    out = list(csv.reader((tmp_path / "people.predictions.csv").open()))
    assert len(out) == 1101
    assert out[0][: len(columns)] == columns and out[0][len(columns)] == "prediction"
    # the same predictions as `modelship invoke NAME --csv` (one request for the file)
    endpoint = record.endpoint_obj()
    client = get_target("local").client(endpoint, Profile.model_validate(record.profile))
    whole = list(csv.reader(io.StringIO(client.predict_csv(source.read_bytes()))))
    assert [r[len(columns) :] for r in out] == whole
    assert panel.open_button.isEnabled()
    panel.open_button.click()
    assert opened == [str(tmp_path)]
    # Cancel: no half-written file
    (tmp_path / "people.predictions.csv").unlink()
    from app.progress import CancelToken

    cancelled = CancelToken()
    cancelled.cancel()
    from wizards import batch

    real = batch.score_file
    monkeypatch.setattr(
        batch,
        "score_file",
        lambda name, src, progress, cancel: real(name, src, progress, cancelled),
    )
    panel.score_button.click()
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=30_000)
    assert "Cancelled" in panel.message.label.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]
    panel.close()
