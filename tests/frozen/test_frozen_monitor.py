"""The packaged executable watches a deployment (issue 24): the bundled churn sample
deployed to the local target with capture on, called through the bundle's own
``invoke`` with rows 35 years older than the sample's, then the bundle's
``modelship monitor`` reports 'age' as drift and an unshifted column as ok (exit 1), in
JSON and in plain words; the bundle's dashboard opens offscreen with its "Last hour"
charts (pyqtgraph) and its "Data drift" tab reading the same report; teardown leaves no
capture folder.

Everything after the profile runs in the bundle, as its own processes, sharing the
test's MODELSHIP_HOME (tests/conftest.py).
"""

from __future__ import annotations

import csv
import json
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import require
from tests.frozen.test_frozen_app import EXE, run

pytestmark = [pytest.mark.integration, pytest.mark.frozen]

NAME = "frozen-watch"


@pytest.fixture(scope="module")
def exe() -> Path:
    require(EXE.is_file(), f"the packaged executable {EXE} (python build/build.py)")
    return EXE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _older(sample: Path, out: Path, years: int) -> Path:
    """The sample's rows, without the label, each ``years`` older."""
    with open(sample, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["age"] = str(int(r["age"]) + years)
        del r["churned"]
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def _captured_rows(folder: Path) -> int:
    return sum(
        json.loads(line)["n"]
        for f in folder.glob("capture-*.jsonl")
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )


def test_monitor_from_the_bundle_flags_the_shifted_column(exe: Path, tmp_path: Path) -> None:
    from app.model.samples import sample_csv_path, sample_model_path
    from app.store.profile import new_profile, save_profile
    from app.store.records import find_record
    from targets.local.target import capture_dir

    settings = {"port": _free_port(), "capture_rate": 1.0}
    profile = new_profile(sample_model_path(), name=NAME, settings=settings)
    profile.model.sample_csv = sample_csv_path()  # the proof's baseline: the sample's rows
    save_profile(profile)
    deployed = run(exe, "deploy", NAME, "--json")
    try:
        assert deployed.returncode == 0, deployed.stderr[-4000:]
        assert json.loads(deployed.stdout)["smoke"]["passed"] is True

        older = _older(sample_csv_path(), tmp_path / "old.csv", 35)
        invoked = run(exe, "invoke", NAME, "--csv", str(older))
        assert invoked.returncode == 0, invoked.stderr[-3000:]
        folder = capture_dir(NAME)
        deadline, seen, steady = time.time() + 30, -1, 0
        while time.time() < deadline and steady < 5:  # the server writes in the background
            n = _captured_rows(folder)
            steady = steady + 1 if n == seen and n >= 300 else 0
            seen = n
            time.sleep(0.2)
        assert seen >= 300, f"{seen} rows captured in {folder}"

        as_json = run(exe, "monitor", NAME, "--json")
        assert as_json.returncode == 1, as_json.stderr[-3000:]
        doc = json.loads(as_json.stdout)
        levels = {c["name"]: c["level"] for c in doc["columns"]}
        assert levels["age"] == "drift", levels
        assert levels["tenure_months"] == "ok", levels
        assert doc["rows"] == seen  # the 300 rows sent and the smoke test's

        plain = run(exe, "monitor", NAME)
        assert plain.returncode == 1, plain.stderr[-3000:]
        assert "Drift in 'age'" in plain.stdout, plain.stdout
        assert "'age' is now mostly above " in plain.stdout
        assert "'plan' looks like the sample." in plain.stdout
        assert "Traceback" not in plain.stderr + as_json.stderr

        # The bundle's GUI: the dashboard of the deployment, offscreen, its charts drawn
        # with the bundled pyqtgraph and its drift tab reading the report on a worker.
        shown = run(
            exe,
            QT_QPA_PLATFORM="offscreen",
            MODELSHIP_EXIT_AFTER_FIRST_PAGE="1",
            MODELSHIP_DASHBOARD_AFTER_FIRST_PAGE=NAME,
            timeout=180,
        )
        assert shown.returncode == 0, shown.stderr[-3000:]
        assert "Traceback" not in shown.stderr, shown.stderr[-3000:]
        line = next(
            (ln for ln in shown.stderr.splitlines() if "dashboard shown" in ln), shown.stderr
        )
        assert "Last hour" in line and "Data drift" in line, line
        assert "charts: UsageCharts, answering" in line and "drift: drift)" in line, line
    finally:
        if find_record(NAME) is not None:
            torn = run(exe, "teardown", NAME)
            assert torn.returncode == 0, torn.stderr[-3000:]
    assert find_record(NAME) is None
    assert not capture_dir(NAME).exists()
