"""Issue 24 item 3: the dashboard's "Data drift" tab, filled from real drift reports: a
real proof (the bundled churn sample, converted), a local deployment's record and the
captured requests in its capture folder as the server writes them."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from app.domain import DeploymentRecord, ModelVersion
from app.model.convert import ConvertOptions, convert_model
from app.model.samples import sample_csv_path, sample_model_path
from app.progress import RecordingProgress
from app.store.profile import new_profile
from app.store.records import save_record

pytestmark = pytest.mark.gui

COLUMNS = ["tenure_months", "monthly_charges", "support_calls", "age", "plan"]


@pytest.fixture(scope="module")
def churn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drift-tab") / "churn.onnx"
    options = ConvertOptions(sample_csv=sample_csv_path())
    convert_model(sample_model_path(), out, options, RecordingProgress())
    return out


def _rows(age_shift: int = 0) -> list[list]:
    with open(sample_csv_path(), newline="", encoding="utf-8") as fh:
        return [
            [int(r["tenure_months"]), float(r["monthly_charges"]), int(r["support_calls"]),
             int(r["age"]) + age_shift, r["plan"]]
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def _deploy_record(onnx: Path, name: str, rate: float) -> DeploymentRecord:
    version = ModelVersion(1, str(onnx), str(sample_model_path()), target="local")
    record = DeploymentRecord(
        name=name,
        target="local",
        profile=new_profile(
            sample_model_path(), name=name, settings={"capture_rate": rate}
        ).to_dict(),
        versions=[version.to_dict()],
        current_version=1,
    )
    save_record(record)
    return record


def _capture(name: str, rows: list[list], t0: float, answers: list[str]) -> None:
    from targets.local.target import capture_dir

    folder = capture_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "capture-77-1.jsonl", "a", encoding="utf-8") as fh:
        for k in range(0, len(rows), 4):
            chunk, said = rows[k : k + 4], answers[k : k + 4]
            doc = {"v": 1, "t": t0 + k * 5, "route": "/predict", "n": len(chunk),
                   "columns": COLUMNS, "rows": chunk, "predictions": said}  # fmt: skip
            fh.write(json.dumps(doc) + "\n")


def _shifted(onnx: Path, name: str = "churn") -> None:
    """A deployment whose callers are now 35 years older than the sample's people."""
    _deploy_record(onnx, name, 0.2)
    rows = _rows(age_shift=35)[:240]
    answers = (["no", "no", "yes"] * 100)[:240]
    _capture(name, rows[:120], time.time() - 2 * 3600, answers[:120])
    _capture(name, rows[120:], time.time() - 1200, answers[120:])


def _panel(qtbot, name: str, size: tuple[int, int] = (800, 600)):
    from wizards.drift import DriftPanel

    panel = DriftPanel(name)
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_the_report_fills_the_table_and_the_charts(qtbot, churn_onnx: Path) -> None:
    _shifted(churn_onnx)
    panel = _panel(qtbot, "churn")
    panel.refresh()  # on a worker: the real pull from the capture folder
    qtbot.waitUntil(lambda: panel.report is not None, timeout=20_000)
    report = panel.report
    assert panel.headline.kind == "fail" and panel.headline.label.text() == report.headline
    assert report.headline.startswith("Drift in 'age'")
    assert "From 60 captured requests" in panel.hint.text()
    table = panel.table
    assert table.isVisible() and table.rowCount() == len(COLUMNS) + 1
    by_name = {table.item(i, 0).text(): i for i in range(table.rowCount())}
    age = by_name["age"]
    assert table.item(age, 1).text() == "Drift"
    assert table.item(age, 2).text().startswith("'age' is now mostly above ")
    assert table.item(by_name["plan"], 1).text() == "OK"
    assert table.item(by_name["The model's answers"], 1).text() in {"OK", "Watch", "Drift"}
    # one chart per column: the proof's shares beside the captured ones, in % of rows
    charts = {c.column.name: c for c in panel.charts if c.isVisible()}
    assert set(charts) == set(COLUMNS)
    col = next(c for c in report.columns if c.name == "age")
    got = charts["age"].got_bars.opts["height"]
    assert list(got) == pytest.approx([100 * v for v in col.captured])
    assert list(charts["age"].base_bars.opts["height"]) == pytest.approx(
        [100 * v for v in col.baseline]
    )
    assert charts["age"].title == "age: Drift"
    # the answers per hour: two hours of captured requests
    assert panel.answers.isVisible() and set(panel.answers.curves) >= {"no"}
    xs, _ = panel.answers.curves["no"].getData()
    assert len(xs) >= 2 and xs[-1] == 0 and xs[0] <= -1  # clock hours: two or three
    assert sum(h.rows for h in report.predictions.hours) == 240


def test_capture_off_says_how_to_turn_it_on(qtbot, churn_onnx: Path) -> None:
    from wizards.drift import CAPTURE_OFF, TURN_ON

    _deploy_record(churn_onnx, "quiet", 0.0)
    panel = _panel(qtbot, "quiet")
    panel.refresh()
    qtbot.waitUntil(lambda: panel.problem == "off", timeout=20_000)
    assert panel.headline.label.text() == CAPTURE_OFF and panel.headline.kind == "warning"
    assert panel.hint.text() == TURN_ON and "“Capture share”" in TURN_ON
    assert not panel.table.isVisible() and not panel.grid_host.isVisible()
    assert "--" not in panel.hint.text() and "modelship" not in panel.hint.text()
    Path("/tmp/shots").mkdir(exist_ok=True)
    qtbot.waitUntil(lambda: panel.check.isEnabled(), timeout=5000)
    qtbot.wait(200)
    assert panel.hint.height() >= panel.hint.heightForWidth(panel.hint.width()) - 2
    assert panel.grab().save("/tmp/shots/drift-off-800.png")

    _deploy_record(churn_onnx, "fresh", 0.1)
    panel = _panel(qtbot, "fresh")
    panel.refresh()
    qtbot.waitUntil(lambda: panel.problem == "nothing", timeout=20_000)
    assert panel.headline.label.text().startswith("<b>Nothing captured yet.</b> Nothing captured")


@pytest.mark.parametrize("size", [(800, 600), (2560, 1440)])
def test_the_dashboard_tab_at_both_sizes(qtbot, churn_onnx: Path, size: tuple[int, int]) -> None:
    from PySide6.QtWidgets import QScrollArea

    from wizards.dashboard import DashboardDialog

    _shifted(churn_onnx)
    dialog = DashboardDialog("churn")
    qtbot.addWidget(dialog)
    dialog.resize(*size)
    dialog.show()
    qtbot.waitExposed(dialog)
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert titles.index("Data drift") == titles.index("Last hour") + 1
    assert dialog.drift.report is None  # nothing pulled until the tab is shown
    dialog.tabs.setCurrentWidget(dialog.drift)
    qtbot.waitUntil(lambda: dialog.drift.report is not None, timeout=20_000)
    qtbot.wait(300)
    panel = dialog.drift
    for chart in panel.charts:
        assert chart.width() >= 250 and chart.height() >= 228
    if size[0] > 2000:
        assert panel.scale > 2.0 and panel.per_row >= 3
    shot = Path(f"/tmp/shots/drift-{size[0]}.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(shot))
    body = panel.findChild(QScrollArea, "driftScroll").widget()
    assert body.grab().save(str(shot.with_name(f"drift-body-{size[0]}.png")))
    dialog.close()


def test_turn_capture_on_opens_its_settings_in_the_wizard(window, qtbot, churn_onnx: Path) -> None:
    from wizards.dashboard import DashboardDialog

    _deploy_record(churn_onnx, "quiet", 0.0)
    dialog = DashboardDialog("quiet", window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.tabs.setCurrentWidget(dialog.drift)
    qtbot.waitUntil(lambda: dialog.drift.problem == "off", timeout=20_000)
    button = dialog.drift.turn_on
    assert button.isVisible() and button.text() == "Turn capture o&n…"
    button.click()
    assert window.current_id == "settings"
    assert window.state.settings["capture_rate"] == 0.1
    assert window.state.replace_ok_for == "quiet" and window.state.name == "quiet"
    page = window.pages["settings"]
    editor = page.editors["capture_rate"]
    assert editor.widget.isVisible()  # among the advanced settings, shown
    assert not dialog.isVisible()  # the dashboard made way for the wizard
    # the Review page's profile carries it: deploying it again turns capture on
    assert window.state.build_profile().target.settings.capture_rate == 0.1
    qtbot.wait(100)
    Path("/tmp/shots").mkdir(exist_ok=True)
    assert window.grab().save("/tmp/shots/drift-turn-on.png")
