"""`modelship monitor` end to end on a real local deployment: the bundled churn sample
deployed with capture on, called with rows whose ages are 35 years older than the
sample's, and the drift report read from what the real server captured."""

from __future__ import annotations

import csv
import json
import socket
import time
from pathlib import Path

import pytest

from app.cli import main
from app.model.samples import sample_csv_path, sample_model_path
from app.run import run_deploy, teardown
from app.store.profile import new_profile
from app.store.records import find_record
from targets.local.target import capture_dir

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _older(path: Path, years: int) -> Path:
    with open(sample_csv_path(), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["age"] = str(int(r["age"]) + years)
        del r["churned"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_monitor_reads_what_the_server_captured(tmp_path: Path, capsys) -> None:
    settings = {"port": _free_port(), "capture_rate": 1.0}
    profile = new_profile(sample_model_path(), name="churn-watch", settings=settings)
    profile.model.sample_csv = sample_csv_path()  # the proof's baseline: the sample's rows
    run_deploy(profile)
    try:
        assert main(["invoke", "churn-watch", "--csv", str(_older(tmp_path / "old.csv", 35))]) == 0
        capsys.readouterr()
        folder = capture_dir("churn-watch")
        deadline, seen, steady = time.time() + 20, -1, 0
        while time.time() < deadline and steady < 5:  # the writer thread works in the background
            n = sum(
                json.loads(line)["n"]
                for f in folder.glob("capture-*.jsonl")
                for line in f.read_text(encoding="utf-8").splitlines()
                if line.strip()
            )
            steady = steady + 1 if n == seen and n >= 300 else 0
            seen = n
            time.sleep(0.2)
        assert main(["monitor", "churn-watch"]) == 1
        out = capsys.readouterr().out
        # the 300 rows sent, and the smoke test's (the proof's own rows)
        assert "Drift in 'age'" in out and "captured rows compared with the 300 rows" in out, out
        assert "'age' is now mostly above " in out
        assert "'plan' looks like the sample." in out
        assert main(["monitor", "churn-watch", "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        levels = {c["name"]: c["level"] for c in doc["columns"]}
        assert levels["age"] == "drift" and levels["tenure_months"] == "ok"
        assert doc["rows"] == seen >= 300  # every captured row, the smoke test's too
        assert sum(h["rows"] for h in doc["predictions"]["hours"]) == seen
    finally:
        if find_record("churn-watch") is not None:
            teardown("churn-watch")
    assert not capture_dir("churn-watch").exists()
