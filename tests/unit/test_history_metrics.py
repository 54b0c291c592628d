"""Removed deployments stay as history; the dashboard's /metrics reader; batch scoring
in chunks (with a stand-in client: the real endpoint is in tests/gui/test_dashboard.py)."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest

from app.cli.commands import status as status_cmd
from app.endpoint.batch import default_output, score_csv
from app.endpoint.metrics_read import duration_words, parse, summarize
from app.errors import TargetError, UsageError
from app.progress import Cancelled, CancelToken
from app.serving.metrics import Metrics
from app.store.records import (
    find_record,
    find_removed,
    list_records,
    list_removed,
    mark_removed,
    save_record,
)
from tests.unit.test_records import make_record


def test_a_removed_deployment_is_history_apart_from_live_ones() -> None:
    save_record(make_record("iris"))
    save_record(make_record("wine"))
    gone = mark_removed("iris")
    assert gone is not None and gone.state == "removed" and gone.removed_at
    assert gone.endpoint is None and "http://127.0.0.1:8080" in gone.message
    assert find_record("iris") is None  # never taken for something that runs
    assert [r.name for r in list_records()] == ["wine"]
    kept = find_removed("iris")
    assert kept is not None
    assert [v["version"] for v in kept.versions] == [1, 2]  # versions and dates kept
    assert all(v["created"] for v in kept.versions)
    assert [r.name for r in list_removed()] == ["iris"]
    assert mark_removed("iris") is None  # nothing live to remove twice
    # deploying the same name again: a new live record, the history copy goes
    save_record(make_record("iris"))
    assert find_removed("iris") is None and list_removed() == []
    assert find_record("iris") is not None and find_record("iris").removed_at is None


def test_status_hides_removed_unless_all_and_names_them(capsys) -> None:
    save_record(make_record("iris"))
    mark_removed("iris")
    ns = argparse.Namespace(name=None, json=False, all=False)
    assert status_cmd.run(ns) == 0
    assert "iris" not in capsys.readouterr().out
    ns.all = True
    status_cmd.run(ns)
    out = capsys.readouterr().out
    assert "iris  [local]  version 2  removed" in out and "removed: " in out
    ns = argparse.Namespace(name="iris", json=False, all=False)
    assert status_cmd.run(ns) == 1  # it does not answer: it was removed
    assert "removed" in capsys.readouterr().out


def test_metrics_parser_reads_the_servers_own_exposition() -> None:
    m = Metrics('model "a"')
    m.started = 1_700_000_000.0
    m.observe("/predict", 200, 0.002)
    m.observe("/predict", 200, 0.003)
    m.observe("/predict", 422, 0.001)
    m.observe("/ping", 200, 0.0001)
    m.observe("/metrics", 200, 0.0001)
    m.observe_batch(5)
    text = m.render().decode()
    samples = parse(text)
    assert any(s.labels.get("model") == 'model "a"' for s in samples)  # unescaped
    s = summarize(text)
    assert (s.requests, s.errors, s.rows, s.workers) == (3, 1, 5, 1)  # /ping not counted
    assert s.started == 1_700_000_000.0
    assert s.uptime(1_700_000_090.0) == 90.0


def test_metrics_summary_adds_up_workers_and_takes_the_oldest_start() -> None:
    text = "\n".join(
        [
            "# TYPE modelship_requests_total counter",
            'modelship_requests_total{worker="1",route="/predict",code="200"} 4',
            'modelship_requests_total{worker="2",route="/predict",code="200"} 6',
            'modelship_requests_total{worker="2",route="/predict",code="500"} 1',
            'modelship_start_time_seconds{worker="1"} 200.5',
            'modelship_start_time_seconds{worker="2"} 100.25',
            "garbage line without value",
            'modelship_rows_total{worker="1"} NaN',
        ]
    )
    s = summarize(text)
    assert (s.requests, s.errors, s.workers, s.started) == (11, 1, 2, 100.25)
    assert summarize("").started is None and summarize("").uptime() is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(None, "unknown"), (5, "5 s"), (125, "2 min"), (3600, "1 h"), (3 * 3600 + 1200, "3 h 20 min"),
     (86400 * 2 + 3600 * 4, "2 days 4 h"), (86400, "1 day")],
)  # fmt: skip
def test_duration_words(seconds, words) -> None:
    assert duration_words(seconds) == words


class FakeClient:
    """Answers like the serving runtime's CSV route: prediction + probabilities."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[int] = []
        self.fail_at = fail_at

    def predict_csv(self, text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))[1:]
        self.calls.append(len(rows))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            from app.endpoint.client import EndpointError

            raise EndpointError(422, "column x is not a number")
        out = ["prediction,probability_a,probability_b"]
        out += [f"{'a' if float(r[0]) < 5 else 'b'},0.5,0.5" for r in rows]
        return "\n".join(out) + "\n"


def _write(path: Path, n: int) -> Path:
    path.write_text("x,name\n" + "".join(f'{i},"row, {i}"\n' for i in range(n)) + "\n")
    return path


def test_score_csv_in_chunks_keeps_input_columns_and_order(tmp_path) -> None:
    src = _write(tmp_path / "rows.csv", 12)
    client = FakeClient()
    seen: list[float] = []

    class P:
        def update(self, fraction=None, message=None):
            if fraction is not None:
                seen.append(fraction)

    result = score_csv(client, src, chunk_rows=5, progress=P())  # type: ignore[arg-type]
    assert result.path == default_output(src) == tmp_path / "rows.predictions.csv"
    assert client.calls == [5, 5, 2] and result.rows == 12
    table = list(csv.reader(result.path.open()))
    assert table[0] == ["x", "name", "prediction", "probability_a", "probability_b"]
    assert table[1] == ["0", "row, 0", "a", "0.5", "0.5"]
    assert [r[2] for r in table[1:]] == ["a"] * 5 + ["b"] * 7
    assert seen[-1] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "rows.predictions.csv"]


def test_score_csv_cancel_and_refusal_leave_no_half_file(tmp_path) -> None:
    src = _write(tmp_path / "rows.csv", 12)
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        score_csv(FakeClient(), src, chunk_rows=5, cancel=cancel)
    with pytest.raises(TargetError, match="rows 6-10"):
        score_csv(FakeClient(fail_at=2), src, chunk_rows=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]
    (tmp_path / "empty.csv").write_text("x,name\n")
    with pytest.raises(UsageError, match="no rows"):
        score_csv(FakeClient(), tmp_path / "empty.csv")


def test_stop_is_refused_where_the_platform_cannot_stop_with_what_to_do() -> None:
    from app.run.power import can_stop, stop_deployment

    record = make_record("paid")
    record.target = "sagemaker"
    save_record(record)
    assert not can_stop(record)
    with pytest.raises(UsageError, match="billed while it exists") as info:
        stop_deployment("paid")
    assert "teardown paid" in (info.value.hint or "")
    assert find_record("paid").state == "running"  # nothing changed


def test_score_csv_sends_only_the_models_columns_and_keeps_the_others(tmp_path) -> None:
    src = tmp_path / "labelled.csv"
    src.write_text("id,x,churned\n7,1,yes\n8,9,no\n")
    heads: list[list[str]] = []

    class Client(FakeClient):
        def predict_csv(self, text: str) -> str:
            table = list(csv.reader(io.StringIO(text)))
            heads.append(table[0])
            return super().predict_csv(text)

    result = score_csv(Client(), src, columns=["x"])
    assert heads == [["x"]]
    table = list(csv.reader(result.path.open()))
    assert table[0] == ["id", "x", "churned", "prediction", "probability_a", "probability_b"]
    assert [r[3] for r in table[1:]] == ["a", "b"]


def test_dashboard_snapshot_of_a_removed_deployment_and_the_cost_words() -> None:
    from app.endpoint.dashboard import cost_words, snapshot

    save_record(make_record("iris"))
    mark_removed("iris")
    snap = snapshot("iris")
    assert snap.removed and snap.state == "removed" and not snap.can_stop
    assert [v.version for v in snap.versions] == [2, 1] and snap.versions[0].current
    assert all(v.created for v in snap.versions)
    assert cost_words("local", False, "") == "Nothing: it runs on this computer."
    assert "Free on bwCloud" in cost_words("openstack", False, "")
    assert cost_words("heroku", True, "$0.01 so far") == "$0.01 so far"  # the target's own


def test_metrics_book_adds_up_workers_seen_in_separate_scrapes() -> None:
    from app.endpoint.metrics_read import MetricsBook

    def scrape(worker: str, started: float, n: int) -> str:
        return (
            f'modelship_requests_total{{worker="{worker}",route="/predict",code="200"}} {n}\n'
            f'modelship_start_time_seconds{{worker="{worker}"}} {started}\n'
        )

    book = MetricsBook()
    assert book.add(scrape("11", 1000.0, 4)).requests == 4
    assert book.add(scrape("12", 1001.0, 6)).requests == 10  # another worker answered
    total = book.add(scrape("11", 1000.0, 5))  # the first one again, one more request
    assert (total.requests, total.workers, total.started) == (11, 2, 1000.0)
    # stopped and started again: new workers; the old ones' counts are gone
    total = book.add(scrape("31", 5000.0, 1))
    assert (total.requests, total.workers, total.started) == (1, 1, 5000.0)
