"""The smoke test against a small real HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.endpoint.client import EndpointClient
from app.endpoint.smoke import run_smoke_test
from app.errors import Cancelled, SmokeTestError
from app.progress import CancelToken
from app.waiting import WaitFailed, WaitTimeout


class FakeModelServer:
    """A real HTTP server whose answers each test scripts (not a mock of our code)."""

    def __init__(self) -> None:
        self.ping_statuses: list[int] = []  # consumed one per /ping; then 200
        self.answer: dict[str, Any] = {}
        self.predict_status = 200
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers), None))
                status = outer.ping_statuses.pop(0) if outer.ping_statuses else 200
                self._send(status, {"status": "ok" if status == 200 else "loading"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                n = len(body)
                answer = {k: v[:n] if isinstance(v, list) else v for k, v in outer.answer.items()}
                self._send(outer.predict_status, answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    s = FakeModelServer()
    yield s
    s.close()


def write_proof(tmp_path: Path, **over: Any) -> Path:
    proof = {
        "schema": 1,
        "columns": ["a", "b"],
        "rows": [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}],
        "inputs": None,
        "predictions": ["x", "y"],
        "probabilities": [[0.9, 0.1], [0.2, 0.8]],
        "class_labels": ["x", "y"],
        "outputs": None,
        "tolerance": 1e-4,
    }
    proof.update(over)
    path = tmp_path / "model.proof.json"
    path.write_text(json.dumps(proof))
    return path


def test_waits_through_503_then_passes(server: FakeModelServer, tmp_path: Path) -> None:
    server.ping_statuses = [503, 503, 502]
    server.answer = {
        "predictions": ["x", "y"],
        "probabilities": [{"x": 0.90001, "y": 0.09999}, {"x": 0.2, "y": 0.8}],
    }
    report = run_smoke_test(EndpointClient(server.url), write_proof(tmp_path), timeout=10)
    assert report.passed, report.summary()
    assert report.health_attempts == 4
    assert report.rows == 2 and report.matching == 2
    assert report.max_abs_diff == pytest.approx(1e-5, rel=1e-3)
    assert report.latency_ms_p50 is not None
    assert report.summary().startswith("The endpoint answered 2 of 2 sample rows as the proof")
    d = report.to_dict()
    assert d["passed"] is True and d["summary"] == report.summary()
    # the batch went as records, keyed by column name
    _, _, body = next(r for r in server.requests if r[0] == "/predict")
    assert body == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]


def test_probability_beyond_tolerance_fails(server: FakeModelServer, tmp_path: Path) -> None:
    server.answer = {
        "predictions": ["x", "y"],
        "probabilities": [{"x": 0.8, "y": 0.2}, {"x": 0.2, "y": 0.8}],
    }
    report = run_smoke_test(EndpointClient(server.url), write_proof(tmp_path), timeout=5)
    assert not report.passed
    assert report.matching == 1
    assert "1 of 2" in report.summary() and "Row 0" in report.summary()


def test_wrong_labels_fail_and_regression_uses_tolerance(
    server: FakeModelServer, tmp_path: Path
) -> None:
    server.answer = {"predictions": ["y", "y"], "probabilities": None}
    report = run_smoke_test(
        EndpointClient(server.url), write_proof(tmp_path, probabilities=None), timeout=5
    )
    assert not report.passed and report.mismatches[0]["expected"] == "x"

    server.answer = {"predictions": [1.00001, 2.5]}
    proof = write_proof(tmp_path, predictions=[1.0, 2.5], probabilities=None, class_labels=None)
    report = run_smoke_test(EndpointClient(server.url), proof, timeout=5)
    assert report.passed, report.summary()
    server.answer = {"predictions": [1.1, 2.5]}
    assert not run_smoke_test(EndpointClient(server.url), proof, timeout=5).passed


def test_a_client_error_from_predict_is_reported(server: FakeModelServer, tmp_path: Path) -> None:
    server.predict_status = 422
    server.answer = {"error": "column 'a' is missing"}
    report = run_smoke_test(EndpointClient(server.url), write_proof(tmp_path), timeout=5)
    assert not report.passed
    assert "answered 422" in report.summary() and "column 'a' is missing" in report.summary()


def test_health_gives_up_at_once_on_404_and_after_timeout(server: FakeModelServer) -> None:
    import time

    server.ping_statuses = [404]
    start = time.monotonic()
    with pytest.raises(WaitFailed, match="/ping answered 404"):
        EndpointClient(server.url).wait_healthy(timeout=10)
    assert time.monotonic() - start < 5
    assert [r[0] for r in server.requests] == ["/ping"]  # asked once: a "no" is final
    server.ping_statuses = [503] * 100
    with pytest.raises(WaitTimeout, match="answered 503"):
        EndpointClient(server.url).wait_healthy(timeout=0.5)
    assert len(server.requests) > 2


def test_nothing_listening_and_cancel(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = run_smoke_test(
        EndpointClient(f"http://127.0.0.1:{port}"), write_proof(tmp_path), timeout=0.3
    )
    assert not report.healthy and "never became healthy" in report.summary()
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        run_smoke_test(
            EndpointClient(f"http://127.0.0.1:{port}"), write_proof(tmp_path), cancel=cancel
        )


def test_unreadable_proof_is_a_smoke_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.proof.json"
    bad.write_text("{")
    with pytest.raises(SmokeTestError, match="Cannot read the conversion proof"):
        run_smoke_test(EndpointClient("http://127.0.0.1:9"), bad)


def test_headers_are_sent(server: FakeModelServer, tmp_path: Path) -> None:
    server.answer = {"predictions": ["x", "y"], "probabilities": None}
    run_smoke_test(
        EndpointClient(server.url, headers={"Authorization": "Bearer abc"}),
        write_proof(tmp_path, probabilities=None),
        timeout=5,
    )
    assert all(h.get("Authorization") == "Bearer abc" for _, h, _ in server.requests)
