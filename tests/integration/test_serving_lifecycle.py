"""Start, readiness, workers, and SIGTERM: stop accepting, finish what was accepted, exit 0."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_serving_fixtures import (
    REPO,
    ServerProcess,
    free_port,
    make_classifier,
    make_regressor,
)


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    d = tmp_path_factory.mktemp("models")
    path, _, x = make_classifier(d, n_features=20, trees=100, name="forest")
    return path, x


def _post(port: int, body: bytes, timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _in_flight(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith("modelship_requests_in_flight"):
            return int(float(line.rsplit(" ", 1)[1])) - 1  # minus this /metrics request
    return 0


@pytest.mark.slow
def test_sigterm_under_load_loses_no_accepted_request(forest) -> None:
    """Requests whose whole body the server took in before SIGTERM all get their answer.

    Bodies of several MB cannot sit in kernel buffers: when the client has sent all of
    one, the server has accepted the connection and is reading or running it.
    """
    path, x = forest
    server = ServerProcess(path, env={"MODELSHIP_MAX_BODY_BYTES": str(64 * 2**20)}).start()
    rng = np.random.default_rng(0)
    big = [rng.normal(size=(12000, 20)).astype(np.float32) for _ in range(8)]
    bodies = [json.dumps(b.tolist()).encode() for b in big]
    sent = [threading.Event() for _ in big]
    accepted: dict[int, tuple[int, bytes] | BaseException] = {}

    def heavy(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            conn.request(
                "POST", "/predict", body=bodies[i], headers={"Content-Type": "application/json"}
            )
            sent[i].set()
            r = conn.getresponse()
            accepted[i] = (r.status, r.read())
        except BaseException as exc:  # recorded and asserted below
            accepted[i] = exc
            sent[i].set()
        finally:
            conn.close()

    background: dict = {"ok": 0, "refused": 0, "bad": []}
    stop_background = threading.Event()

    def hammer() -> None:
        body = json.dumps(x[:2].tolist()).encode()
        while not stop_background.is_set():
            try:
                status, data = _post(server.port, body, timeout=60)
            except (
                ConnectionRefusedError,
                ConnectionResetError,
                BrokenPipeError,
                http.client.RemoteDisconnected,
            ):
                background["refused"] += 1  # not accepted: the listener was closing or closed
                time.sleep(0.01)
                continue
            if status == 200 and len(json.loads(data)["predictions"]) == 2:
                background["ok"] += 1
            else:
                background["bad"].append((status, data[:200]))

    workers = [threading.Thread(target=heavy, args=(i,)) for i in range(len(big))]
    hammers = [threading.Thread(target=hammer) for _ in range(3)]
    try:
        for t in hammers + workers:
            t.start()
        for e in sent:
            assert e.wait(60)
        assert not any(isinstance(v, BaseException) for v in accepted.values()), accepted
        in_flight = _in_flight(server.port)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(120)
        for t in workers:
            t.join(60)
    finally:
        stop_background.set()
        for t in hammers:
            t.join(60)
        server.stop()
    assert code == 0, server.output()
    assert in_flight >= 1, "nothing was in flight when SIGTERM came: the test proves nothing"
    for i, rows in enumerate(big):
        result = accepted[i]
        assert not isinstance(result, BaseException), f"request {i} lost: {result!r}"
        status, data = result
        assert status == 200, data[:300]
        assert len(json.loads(data)["predictions"]) == len(rows)
    assert background["ok"] > 0 and not background["bad"], background
    # and after exit nothing listens any more
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_two_workers_share_the_port_and_stop_cleanly(forest) -> None:
    path, x = forest
    server = ServerProcess(path, workers=2).start()
    try:
        pids = set()
        body = json.dumps(x[:3].tolist()).encode()
        deadline = time.monotonic() + 60  # the second worker may still be loading its model
        while len(pids) < 2 and time.monotonic() < deadline:
            status, _ = _post(server.port, body)
            assert status == 200
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            pids.add(text.split('worker="')[1].split('"')[0])
        assert len(pids) == 2, "connections never reached the second worker"
        assert str(server.proc.pid) not in pids  # the parent only supervises
    finally:
        code = server.stop()
    assert code == 0, server.output()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_port_in_use_is_a_plain_error(forest) -> None:
    path, _ = forest
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run([sys.executable, "-m", "app.serving", str(path), "--port", str(port)])
    assert result.returncode == 3
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_unloadable_model_is_a_plain_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    result = _run([sys.executable, "-m", "app.serving", str(bad), "--port", str(free_port())])
    assert result.returncode == 3
    assert "not a model onnxruntime can load" in result.stderr
    assert "Traceback" not in result.stderr
    result = _run(
        [
            sys.executable,
            "-m",
            "app.serving",
            str(tmp_path / "none.onnx"),
            "--port",
            str(free_port()),
            "--workers",
            "2",
        ]
    )
    assert result.returncode == 3 and "no model file" in result.stderr


def test_modelship_serve_cli(tmp_path: Path) -> None:
    path, _, x = make_regressor(tmp_path)
    port = free_port()
    exe = Path(sys.executable).with_name("modelship")
    proc = subprocess.Popen(
        [str(exe), "serve", str(path), "--port", str(port), "--workers", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, data = _post(port, json.dumps(x[:2].tolist()).encode())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 200 and len(json.loads(data)["predictions"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert f"http://127.0.0.1:{port}" in err
    result = _run([str(exe), "serve", str(tmp_path / "missing.onnx")])
    assert result.returncode == 2 and "no model file" in result.stderr
    assert "next step" in result.stderr


def test_image_style_start_reads_env(tmp_path: Path) -> None:
    """As in an image: `python -m app.serving serve`, model and port from the environment."""
    path, _, x = make_regressor(tmp_path)
    port = free_port()
    server = ServerProcess(path, port=port)
    env = {
        **os.environ,
        "MODELSHIP_MODEL": str(path),
        "PORT": str(port),
        "MODELSHIP_WORKERS": "1",
        "MODELSHIP_LOG_LEVEL": "warning",
    }
    server.proc = subprocess.Popen(
        [sys.executable, "-m", "app.serving", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _post(port, json.dumps(x[:1].tolist()).encode())
                break
            except OSError:
                assert server.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 200
    finally:
        assert server.stop() == 0
