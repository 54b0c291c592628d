"""Captured requests (issue 24): sampling, the size bound with rotation, reading lines
that are broken, and the refusals of ``GET /capture``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.endpoint.capture import CaptureRecord, parse_lines
from app.serving.app import ServingApp
from app.serving.capture import Capture, capture_files, read_lines, record_line
from app.serving.config import ConfigError, ServeConfig, from_env
from app.serving.signature import ColumnSpec


class TwoColumns:
    """What the writer reads of a model runtime: its columns and its predictions."""

    def __init__(self) -> None:
        self.columns = [ColumnSpec("age", "float32", "x", 0), ColumnSpec("plan", "str", "p", 0)]
        self.column_names = ["age", "plan"]

    def predictions(self, outputs: list[Any]) -> tuple[Any, None, None]:
        return outputs[0], None, None


def _offer(cap: Capture, i: int) -> None:
    feeds = {
        "x": np.array([[float(i)], [0.5]], dtype=np.float32),
        "p": np.array([["basic"], ["pro"]], dtype=object),
    }
    cap.offer("/predict", TwoColumns(), feeds, 2, [np.array([i, 1], dtype=np.int64)])


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in read_lines(folder).splitlines()]


def test_record_line_fields() -> None:
    feeds = {
        "x": np.array([[34.0], [np.nan]], dtype=np.float32),
        "p": np.array([["basic"], ["pro"]], dtype=object),
    }
    line = record_line(12.3456, "/predict", TwoColumns(), feeds, 2, [np.array([0, 1])])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    rec = json.loads(line)
    assert rec == {
        "v": 1,
        "t": 12.346,
        "route": "/predict",
        "n": 2,
        "columns": ["age", "plan"],
        "rows": [[34.0, "basic"], [None, "pro"]],
        "predictions": [0, 1],
    }


def test_record_line_one_numeric_tensor() -> None:
    """One [n, k] float32 tensor (most tabular models): written as it is, each value in
    float32's own shortest form, a missing one as null."""

    class FourColumns(TwoColumns):
        def __init__(self) -> None:
            self.columns = [ColumnSpec(f"f{i}", "float32", "x", i) for i in range(3)]
            self.column_names = ["f0", "f1", "f2"]

    feeds = {"x": np.array([[0.548, np.nan, -1.25], [1, 2, 3]], dtype=np.float32)}
    rec = json.loads(record_line(1.0, "/invocations", FourColumns(), feeds, 2, [np.array([1, 0])]))
    assert rec["columns"] == ["f0", "f1", "f2"]
    assert rec["rows"] == [[0.548, None, -1.25], [1.0, 2.0, 3.0]]
    assert rec["predictions"] == [1, 0]


def test_sampling_share(tmp_path: Path) -> None:
    random.seed(24)
    cap = Capture(tmp_path / "c", 0.3, 50, queue_size=5000)
    for i in range(2000):
        _offer(cap, i)
    cap.close()
    written = len(_lines(tmp_path / "c"))
    assert cap.records == written and cap.dropped == 0
    assert 520 < written < 680  # 600 expected; the bounds are 4 standard deviations


def test_rate_zero_writes_nothing_and_one_writes_all(tmp_path: Path) -> None:
    off = Capture(tmp_path / "off", 0.0, 50)
    assert not off.enabled
    for i in range(50):
        _offer(off, i)
    off.close()
    assert not (tmp_path / "off").exists()
    on = Capture(tmp_path / "on", 1.0, 50)
    for i in range(50):
        _offer(on, i)
    on.close()
    assert [r["rows"][0][0] for r in _lines(tmp_path / "on")] == [float(i) for i in range(50)]


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    cap = Capture(tmp_path, 1.0, 50, queue_size=1)
    cap.start()
    for i in range(2000):  # far faster than a thread can write them
        _offer(cap, i)
    cap.close()
    assert cap.dropped > 0
    assert cap.records + cap.dropped == 2000
    assert len(_lines(tmp_path)) == cap.records


def _folder_bytes(folder: Path) -> int:
    """The folder's size now; the writer thread may remove a file between the listing
    and its stat (it is then not there, so it counts nothing)."""
    total = 0
    for p in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += p.stat().st_size
    return total


def test_rotation_keeps_the_folder_under_the_bound(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    # a file a worker that is gone left behind, older than everything else
    gone = folder / "capture-999999999-000001.jsonl"
    gone.write_bytes(b'{"v": 1, "t": 1.0, "route": "/predict", "n": 0}\n' * 40)
    os.utime(gone, (1, 1))
    max_mb = 0.01  # 10 KiB
    bound = int(max_mb * 1024 * 1024)
    cap = Capture(folder, 1.0, max_mb, workers=2)
    biggest = 0
    for i in range(600):  # about 60 KiB of lines
        _offer(cap, i)
        if i % 50 == 0:
            time.sleep(0.02)
            biggest = max(biggest, _folder_bytes(folder))
    cap.close()
    biggest = max(biggest, _folder_bytes(folder))
    assert cap.records == 600
    assert biggest <= bound
    assert not gone.exists()
    files = capture_files(folder)
    assert len(files) > 1 and all(f.stat().st_size <= cap.file_limit for f in files)
    kept = [r["rows"][0][0] for r in _lines(folder)]
    assert kept[-1] == 599.0  # the newest are kept ...
    assert 0.0 not in kept  # ... the oldest are gone
    assert kept == sorted(kept)  # newest files last


def test_restarted_worker_keeps_its_earlier_files(tmp_path: Path) -> None:
    first = Capture(tmp_path, 1.0, 50)
    _offer(first, 1)
    first.close()
    second = Capture(tmp_path, 1.0, 50)  # same pid: a worker restarted in a new container
    _offer(second, 2)
    second.close()
    assert len(capture_files(tmp_path)) == 2
    assert [r["rows"][0][0] for r in _lines(tmp_path)] == [1.0, 2.0]


def test_broken_lines_are_skipped(tmp_path: Path) -> None:
    good = (
        b'{"v":1,"t":5.5,"route":"/predict","n":1,"columns":["a"],"rows":[[1]],"predictions":[0]}'
    )
    tensor = (
        b'{"v":1,"t":6,"route":"/v2/models/m/infer","n":2,"columns":null,"shape":[2,3],'
        b'"predictions":[1,2]}'
    )
    data = b"\n".join(
        [
            good,
            b"",
            b"not json",
            b'["a list"]',
            b'{"v":1,"t":"soon","route":"/predict","n":1}',
            b'{"v":1,"t":7,"route":"/predict","n":1,"columns":["a"],"rows":[[1,2]]}',
            tensor,
            good[:40],  # a last line still being written
        ]
    )
    assert parse_lines(data) == [
        CaptureRecord(5.5, "/predict", 1, ["a"], [[1]], [0]),
        CaptureRecord(6.0, "/v2/models/m/infer", 2, None, None, [1, 2], [2, 3]),
    ]
    # the server's reader leaves out the text after the last newline, and filters on t
    (tmp_path / "capture-1-000001.jsonl").write_bytes(good + b"\n" + tensor + b"\n" + good[:40])
    assert read_lines(tmp_path) == good + b"\n" + tensor + b"\n"
    assert read_lines(tmp_path, since=5.5) == tensor + b"\n"


def test_env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELSHIP_CAPTURE_RATE", "0.1")
    monkeypatch.setenv("MODELSHIP_CAPTURE_MAX_MB", "5")
    monkeypatch.setenv("MODELSHIP_CAPTURE_DIR", str(tmp_path))
    cfg = from_env("m.onnx")
    assert (cfg.capture_rate, cfg.capture_max_mb, cfg.capture_dir) == (0.1, 5.0, tmp_path)
    monkeypatch.setenv("MODELSHIP_CAPTURE_RATE", "1.5")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        from_env("m.onnx")
    monkeypatch.setenv("MODELSHIP_CAPTURE_RATE", "0.5")
    monkeypatch.setenv("MODELSHIP_CAPTURE_MAX_MB", "0")
    with pytest.raises(ConfigError, match="above 0"):
        from_env("m.onnx")


# ---- GET /capture's refusals, through the ASGI app ------------------------------------------
def _get(app: ServingApp, path: str, headers: list | None = None) -> tuple[int, bytes]:
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": headers or [],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def _app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None, **kw: Any) -> ServingApp:
    monkeypatch.delenv("MODELSHIP_API_KEY_FILE", raising=False)
    if key:
        monkeypatch.setenv("MODELSHIP_API_KEY", key)
    else:
        monkeypatch.delenv("MODELSHIP_API_KEY", raising=False)
    return ServingApp(ServeConfig(model=tmp_path / "m.onnx", capture_dir=tmp_path / "c", **kw))


def test_route_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    off = _app(tmp_path, monkeypatch, None)
    status, body = _get(off, "/capture")
    assert status == 404 and b"Capture is off" in body

    open_net = _app(tmp_path, monkeypatch, None, host="0.0.0.0", capture_rate=0.5)
    status, body = _get(open_net, "/capture")
    assert status == 403 and b"API key" in body

    keyed = _app(tmp_path, monkeypatch, "k-123", host="0.0.0.0", capture_rate=0.5)
    status, _ = _get(keyed, "/capture")
    assert status == 401
    auth = [(b"authorization", b"Bearer k-123")]
    status, body = _get(keyed, "/capture?since=x", auth)
    assert status == 400
    (tmp_path / "c").mkdir()
    line = b'{"v":1,"t":3,"route":"/predict","n":1,"columns":["a"],"rows":[[1]],"predictions":[0]}'
    (tmp_path / "c" / "capture-1-000001.jsonl").write_bytes(line + b"\n")
    assert _get(keyed, "/capture", auth) == (200, line + b"\n")
    assert _get(keyed, "/capture?since=3", auth) == (200, b"")

    loopback = _app(tmp_path, monkeypatch, None, host="127.0.0.1", capture_rate=0.5)
    assert _get(loopback, "/capture") == (200, line + b"\n")
    # behind a proxy that signs callers in (Kubernetes' services proxy)
    proxied = _app(
        tmp_path, monkeypatch, None, host="0.0.0.0", capture_rate=0.5, capture_guarded=True
    )
    assert _get(proxied, "/capture") == (200, line + b"\n")


# ---- the profile keys, on every target, and what each target hands the server --------------
def test_every_target_declares_the_capture_keys() -> None:
    from pydantic import ValidationError

    from targets import CATALOG

    for kind, entry in CATALOG.items():
        fields = entry.Settings.model_fields
        assert fields["capture_rate"].default == 0.0, kind
        assert fields["capture_max_mb"].default == 50.0, kind
        for bad in ({"capture_rate": 1.5}, {"capture_rate": -0.1}, {"capture_max_mb": 0}):
            with pytest.raises(ValidationError):
                entry.Settings.model_validate({**_minimal(kind), **bad})


def _minimal(kind: str) -> dict[str, Any]:
    """Settings a kind accepts as they are (required fields filled in)."""
    return {
        "heroku": {"account_key": "heroku-key", "require_api_key": False},
        "openstack": {"cloud": "c", "require_api_key": False},
        "kubernetes": {"registry": "registry.example.edu/ml"},
    }.get(kind, {})


def test_targets_hand_the_server_capture_only_while_it_is_on() -> None:
    from targets.common import capture_env
    from targets.heroku.settings import HerokuSettings
    from targets.heroku.shared import CAPTURE_KEYS, config_vars
    from targets.local.settings import LocalSettings
    from targets.local.target import capture_dir, run_dir, server_env

    assert capture_env(LocalSettings(), "/x") == {}
    on = LocalSettings(capture_rate=0.1, capture_max_mb=5)
    assert capture_env(on, "/x") == {
        "MODELSHIP_CAPTURE_RATE": "0.1",
        "MODELSHIP_CAPTURE_MAX_MB": "5",
        "MODELSHIP_CAPTURE_DIR": "/x",
    }
    assert capture_dir("iris").parent == run_dir("iris")  # removed with it on teardown
    env = server_env(on, capture_dir("iris"))
    assert env["MODELSHIP_CAPTURE_DIR"] == str(capture_dir("iris"))
    assert "MODELSHIP_CAPTURE_RATE" not in server_env(LocalSettings(), capture_dir("iris"))

    base = {"account_key": "heroku-key", "require_api_key": False}
    off = config_vars(HerokuSettings(**base))
    assert all(off[k] is None for k in CAPTURE_KEYS)  # removed if an earlier deploy set them
    heroku_on = config_vars(HerokuSettings(**base, capture_rate=0.5))
    assert heroku_on["MODELSHIP_CAPTURE_RATE"] == "0.5"
    assert heroku_on["MODELSHIP_CAPTURE_DIR"] == "/tmp/modelship-capture"


def test_local_capture_goes_with_the_last_server(tmp_path: Path) -> None:
    """A redeploy keeps the folder while another version's server runs; destroying the
    last one (a rolled-back first deploy, teardown) removes the captured requests."""
    from app.domain import Resource
    from app.progress import NullProgress
    from targets.local.target import LocalTarget

    folder = tmp_path / "run"
    (folder / "capture").mkdir(parents=True)
    (folder / "capture" / "capture-1-000001.jsonl").write_bytes(b"{}\n")
    resources = []
    for v in (1, 2):
        log = folder / f"server-v{v}.log"
        log.write_text("started\n")
        data = {"log": str(log), "model": str(tmp_path / "no-such-model.onnx"), "port": 1}
        resources.append(Resource(kind="process", id=f"p{v}", name=f"process v{v}", data=data))
    target = LocalTarget()
    target.destroy(resources[0], NullProgress())
    assert (folder / "capture" / "capture-1-000001.jsonl").exists()
    target.destroy(resources[1], NullProgress())
    assert not folder.exists()


def test_capture_answers_name_their_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a router that picks one of several servers (Heroku's dynos), the caller
    counts who answered: the dyno's name on Heroku, else the host name."""
    import socket

    keyed = _app(tmp_path, monkeypatch, "k-123", host="0.0.0.0", capture_rate=0.5)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/capture",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer k-123")],
    }
    monkeypatch.delenv("DYNO", raising=False)
    asyncio.run(keyed(scope, receive, send))
    assert sent[0]["status"] == 200
    assert (b"x-modelship-instance", socket.gethostname().encode()) in sent[0]["headers"]
    monkeypatch.setenv("DYNO", "web.2")
    sent.clear()
    asyncio.run(keyed(scope, receive, send))
    assert (b"x-modelship-instance", b"web.2") in sent[0]["headers"]


def test_merge_capture_orders_by_time_and_keeps_each_servers_line_once() -> None:
    """Several servers' lines (pods, dynos) as one: by time; one server pulled twice
    counts its lines once; two servers' equal lines are two requests; a partly written
    last line is left out."""
    from targets.common import merge_capture

    def line(t: float, x: int) -> bytes:
        return (
            b'{"v":1,"t":%r,"route":"/predict","n":1,"columns":["a"],"rows":[[%d]],'
            b'"predictions":[0]}' % (t, x)
        )

    a1, a2, b1 = line(3.0, 1), line(5.0, 2), line(4.0, 3)
    out = merge_capture(
        [
            ("web.1", a1 + b"\n" + a2 + b"\n"),
            ("web.2", b1 + b"\n" + a1 + b"\n" + b'{"v":1,"t":6.0,"rou'),
            ("web.1", a1 + b"\n"),
        ]
    )
    assert out.splitlines() == [a1, a1, b1, a2]
    assert [r.t for r in parse_lines(out)] == [3.0, 3.0, 4.0, 5.0]
    assert merge_capture([]) == b""
