"""Captured requests against real server processes (issue 24): capture on writes one line
per request with the contract's fields and nothing of the key or the headers; capture off
writes nothing and has no ``/capture``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.endpoint.capture import parse_lines
from tests.integration.test_serving_fixtures import (
    ServerProcess,
    make_fixed_tensor,
    make_mixed,
)
from tests.integration.test_serving_http import request

KEY = "capture-test-key-3f9a"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _wait_lines(folder: Path, want: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    while time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for p in sorted(folder.glob("capture-*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines()
        ]
        if len(lines) >= want:
            return lines
        time.sleep(0.05)
    return lines


def test_capture_on_two_workers(tmp_path: Path) -> None:
    model, _, _ = make_mixed(tmp_path)
    folder = tmp_path / "capture"
    server = ServerProcess(
        model,
        workers=2,
        env={
            "MODELSHIP_CAPTURE_RATE": "1",
            "MODELSHIP_CAPTURE_MAX_MB": "1",
            "MODELSHIP_CAPTURE_DIR": str(folder),
            "MODELSHIP_API_KEY": KEY,
        },
    ).start()
    try:
        rows = [[34.0, "Ulm", 3], [61.0, "Kiel", 12]]
        for _ in range(10):
            status, _, body = request(server, "POST", "/predict", rows, AUTH)
            assert status == 200, body
        status, _, body = request(
            server,
            "POST",
            "/invocations",
            [{"age": 22.0, "city": "Bonn", "visits": 1}],
            {**AUTH, "X-Secret-Header": "do-not-keep"},
        )
        assert status == 200, body
        infer = {
            "inputs": [
                {"name": "age", "shape": [1, 1], "datatype": "FP32", "data": [45.5]},
                {"name": "city", "shape": [1, 1], "datatype": "BYTES", "data": ["Ulm"]},
                {"name": "visits", "shape": [1, 1], "datatype": "INT64", "data": [7]},
            ]
        }
        status, _, body = request(server, "POST", "/v2/models/churn/infer", infer, AUTH)
        assert status == 200, body
        # a refused request is not captured
        status, _, _ = request(server, "POST", "/predict", [[1.0, "Ulm"]], AUTH)
        assert status == 422

        lines = _wait_lines(folder, 12)
        assert len(lines) == 12
        files = list(folder.glob("capture-*.jsonl"))
        assert files and all(p.name.startswith("capture-") for p in files)
        raw = "".join(p.read_text(encoding="utf-8") for p in files)
        assert KEY not in raw and "do-not-keep" not in raw and "127.0.0.1" not in raw
        by_route: dict[str, list[dict]] = {}
        for line in lines:
            assert set(line) == {"v", "t", "route", "n", "columns", "rows", "predictions"}
            assert line["v"] == 1 and line["columns"] == ["age", "city", "visits"]
            assert len(line["rows"]) == line["n"] == len(line["predictions"])
            by_route.setdefault(line["route"], []).append(line)
        assert len(by_route["/predict"]) == 10
        assert by_route["/predict"][0]["rows"] == [[34.0, "Ulm", 3], [61.0, "Kiel", 12]]
        assert by_route["/invocations"][0]["rows"] == [[22.0, "Bonn", 1]]
        assert by_route["/v2/models/churn/infer"][0]["rows"] == [[45.5, "Ulm", 7]]
        assert all(p in (0, 1) for line in lines for p in line["predictions"])

        # GET /capture: every worker's lines, behind the key
        status, _, _ = request(server, "GET", "/capture")
        assert status == 401
        status, headers, body = request(server, "GET", "/capture", headers=AUTH)
        assert status == 200 and headers["content-type"] == "application/x-ndjson"
        records = parse_lines(body)
        assert len(records) == 12
        assert {r.route for r in records} == set(by_route)
        newest = max(r.t for r in records)
        status, _, body = request(server, "GET", f"/capture?since={newest}", headers=AUTH)
        assert status == 200 and body == b""
        status, _, body = request(server, "GET", "/capture?since=soon", headers=AUTH)
        assert status == 400

        status, _, metrics = request(server, "GET", "/metrics", headers=AUTH)
        assert b"modelship_capture_records_total" in metrics
        assert b"modelship_capture_dropped_total" in metrics
    finally:
        assert server.stop() == 0


def test_capture_tensor_model(tmp_path: Path) -> None:
    model = make_fixed_tensor(tmp_path)
    folder = tmp_path / "capture"
    server = ServerProcess(
        model, env={"MODELSHIP_CAPTURE_RATE": "1", "MODELSHIP_CAPTURE_DIR": str(folder)}
    ).start()
    try:
        data = [float(i) for i in range(24)]
        infer = {
            "inputs": [{"name": "image", "shape": [2, 3, 4], "datatype": "FP32", "data": data}]
        }
        status, _, body = request(server, "POST", "/v2/models/fixed/infer", infer)
        assert status == 200, body
        (line,) = _wait_lines(folder, 1)
        assert line["columns"] is None and "rows" not in line
        assert line["shape"] == [2, 3, 4] and line["n"] == 2
        assert len(line["predictions"]) == 2
    finally:
        assert server.stop() == 0


def test_capture_off(tmp_path: Path) -> None:
    model, _, _ = make_mixed(tmp_path)
    folder = tmp_path / "capture"
    server = ServerProcess(model, env={"MODELSHIP_CAPTURE_DIR": str(folder)}).start()
    try:
        status, _, _ = request(server, "POST", "/predict", [[34.0, "Ulm", 3]])
        assert status == 200
        status, _, body = request(server, "GET", "/capture")
        assert status == 404 and b"Capture is off" in body
        status, _, metrics = request(server, "GET", "/metrics")
        assert b"modelship_capture" not in metrics
        time.sleep(0.3)
        assert not folder.exists()
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_capture_refused_without_key_off_loopback(tmp_path: Path, host: str) -> None:
    model, _, _ = make_mixed(tmp_path)
    server = ServerProcess(
        model,
        env={
            "MODELSHIP_CAPTURE_RATE": "1",
            "MODELSHIP_CAPTURE_DIR": str(tmp_path / "capture"),
            "MODELSHIP_HOST": host,
        },
    ).start()
    try:
        status, _, body = request(server, "GET", "/capture")
        assert status == 403 and b"API key" in body
    finally:
        assert server.stop() == 0
