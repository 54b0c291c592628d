"""Hostile and careless clients against a real server process.

Slow clients (many half-sent requests) must not stop the server answering /ping nor
flood its log; deeply nested JSON and missing values get 4xx, never a 500; HEAD
works on health routes; the API key can come from a file.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.serving.config import ConfigError, from_env
from tests.integration.test_serving_fixtures import REPO, free_port, make_classifier


class Server:
    """``python -m app.serving`` with its log in a file (a pipe could fill and block it)."""

    def __init__(self, model: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        full = {**os.environ, "MODELSHIP_LOG_LEVEL": "info", **(env or {})}
        for k in ("MODELSHIP_API_KEY", "MODELSHIP_API_KEY_FILE"):
            if k not in (env or {}):
                full.pop(k, None)
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.serving", "serve", str(model), "--port",
                 str(self.port), "--workers", "1"],
                cwd=REPO, env=full, stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while self.request("GET", "/ping", timeout=1)[0] != 200:
            assert self.proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
        timeout: float = 10,
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        except OSError:
            return 0, {}, b""
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path, _, _ = make_classifier(tmp_path_factory.mktemp("m"))
    return path


@pytest.fixture
def server(model: Path, tmp_path: Path):
    s = Server(
        model,
        tmp_path / "server.log",
        {"MODELSHIP_HEAD_TIMEOUT_S": "2", "MODELSHIP_BODY_TIMEOUT_S": "2"},
    )
    yield s
    s.stop()


def _half_sent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        # alternate: a stalled request line, a stalled header block, a stalled body
        s.sendall(
            [
                b"GET /pi",
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le",
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n[[1, 2",
            ][i % 3]
        )
        socks.append(s)
    return socks


def test_slow_clients_do_not_stop_the_server_nor_flood_its_log(server: Server) -> None:
    socks = _half_sent(server.port, 600)
    try:
        # while 600 half-sent requests are held, health and predictions still answer
        t0 = time.monotonic()
        status, _, _ = server.request("GET", "/ping", timeout=5)
        assert status == 200 and time.monotonic() - t0 < 5
        status, _, body = server.request(
            "POST", "/predict", b"[[0.1, 0.2, 0.3, 0.4]]", {"Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body)["predictions"]
        # past the head/body deadlines every stalled request is answered 408 and closed
        time.sleep(4)
        answers = []
        for s in socks:
            s.settimeout(30)
            try:
                data = s.recv(200)
            except OSError:
                data = b""
            answers.append(data.split(b" ", 2)[1] if data.startswith(b"HTTP/") else b"closed")
        assert answers.count(b"408") >= 400, answers[:10]  # stalled head or body: 408
        assert set(answers) <= {b"408", b"closed"}
    finally:
        for s in socks:
            s.close()
    assert server.request("GET", "/ping")[0] == 200
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log
    assert len(log.splitlines()) < 30, log[-2000:]  # one line per kind per interval


def test_at_the_cap_the_longest_waiting_connection_is_shed(model: Path, tmp_path: Path) -> None:
    """1,100 slow clients against a cap of 1,000, scaled down: 66 against 60. Each one past
    the cap sheds the connection that has waited longest for a complete request head (an
    idle kept-alive one too), so a normal client still gets its answers."""
    s = Server(
        model,
        tmp_path / "cap.log",
        {
            "MODELSHIP_MAX_CONNECTIONS": "60",
            "MODELSHIP_HEAD_TIMEOUT_S": "30",
            "MODELSHIP_BODY_TIMEOUT_S": "30",
        },
    )
    socks: list[socket.socket] = []
    try:
        keep = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        keep.request("GET", "/ping")
        first = keep.getresponse()
        assert first.status == 200 and first.read()
        for i in range(66):  # stalled request lines and stalled header blocks
            x = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            x.sendall([b"GET /pi", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le"][i % 2])
            socks.append(x)
            time.sleep(0.005)  # each in turn: "longest" is well defined
        # a normal client: fresh connections, health and a prediction, all answered
        for _ in range(3):
            assert s.request("GET", "/ping", timeout=5)[0] == 200
        status, _, body = s.request(
            "POST", "/predict", b"[[0.1, 0.2, 0.3, 0.4]]", {"Content-Type": "application/json"}
        )
        assert status == 200 and json.loads(body)["predictions"]
        # the shed ones are the oldest: the idle kept-alive connection is closed quietly,
        # the oldest half-sent ones are told 503; the newest are still held
        keep.sock.settimeout(5)
        assert keep.sock.recv(100) == b""
        for x in socks[:5]:
            x.settimeout(5)
            assert x.recv(100).startswith(b"HTTP/1.1 503"), "an old slow client was not shed"
        held = 0
        for x in socks[-40:]:
            x.settimeout(0.05)
            try:
                held += x.recv(100) == b""  # closed (b"") would be wrong
            except TimeoutError:
                held += 1
        assert held == 40
        keep.close()
    finally:
        for x in socks:
            x.close()
        s.stop()
    log = (tmp_path / "cap.log").read_text()
    assert "Traceback" not in log and "waited longest" in log


def test_at_the_cap_with_every_connection_busy_a_newcomer_gets_503(
    model: Path, tmp_path: Path
) -> None:
    """Connections that sent a complete head (a stalled body) are requests in progress:
    not shed. With all of them busy a newcomer gets 503, and is welcome again later."""
    s = Server(
        model,
        tmp_path / "busy.log",
        {
            "MODELSHIP_MAX_CONNECTIONS": "20",
            "MODELSHIP_HEAD_TIMEOUT_S": "2",
            "MODELSHIP_BODY_TIMEOUT_S": "2",
        },
    )
    try:
        socks = []
        for _ in range(20):
            x = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            x.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n[[1, 2"
            )
            socks.append(x)
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        head = extra.recv(200)
        assert head.startswith(b"HTTP/1.1 503"), head
        time.sleep(3.5)  # the stalled bodies time out: new connections are welcome again
        assert s.request("GET", "/ping")[0] == 200
        for x in [*socks, extra]:
            x.close()
    finally:
        s.stop()
    assert "Traceback" not in (tmp_path / "busy.log").read_text()


def test_oversized_request_head_gets_431(server: Server) -> None:
    pad = b"X-Pad: " + b"a" * 100_000
    for chunks in (
        [b"GET /ping HTTP/1.1\r\nHost: x\r\n" + pad],  # never ends
        [b"GET /ping HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n\r\n"],  # whole, in one read
        [b"GET /ping HTTP/1.1\r\nHost: x\r\n" + pad[:60_000], pad[60_000:] + b"\r\n\r\n"],
        [b"GET /" + b"p" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"],  # a long URL
        [
            b"GET /ping HTTP/1.1\r\n"
            + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 90) for i in range(1100))
            + b"\r\n"
        ],  # many headers
    ):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            for chunk in chunks:
                s.sendall(chunk)
                time.sleep(0.05)
            assert s.recv(100).startswith(b"HTTP/1.1 431")
        finally:
            s.close()
    # a head just under the limit is fine
    status, _, _ = server.request("GET", "/ping", headers={"X-Pad": "a" * 60_000})
    assert status == 200


def test_made_up_paths_do_not_grow_metrics(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for i in range(1500):
            conn.request("GET", f"/nothing-here-{i}/{'x' * 50}")
            r = conn.getresponse()
            r.read()
            assert r.status == 404
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        text = r.read().decode()
    finally:
        conn.close()
    assert len(text) < 25_000, len(text)
    assert "nothing-here" not in text
    assert 'route="other",code="404"} 1500' in text
    assert 'route="/ping"' in text  # known routes keep their own series


@pytest.mark.parametrize(
    "path", ["/predict", "/invocations", "/v2/models/iris/infer"]
)  # fmt: skip
@pytest.mark.parametrize("depth", [40, 1000, 100_000])
def test_deeply_nested_json_is_a_400(server: Server, path: str, depth: int) -> None:
    deep = b"[" * depth + b"1" + b"]" * depth
    body = b'{"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4], "data": ' + deep
    body = body + b"}]}" if "v2" in path else b"[[" + deep + b", 1, 2, 3]]"
    status, _, out = server.request("POST", path, body, {"Content-Type": "application/json"})
    assert status == 400 and b"nested" in out, (status, out[:200])
    # inside a string, brackets are text: not nesting
    status, _, out = server.request(
        "POST", path if "v2" not in path else "/predict",
        json.dumps([["[" * 5000, 1, 2, 3]]).encode(), {"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 422 and b"column 'x0'" in out
    assert server.request("GET", "/ping")[0] == 200


@pytest.mark.parametrize(
    ("body", "ctype", "column"),
    [
        (b"[[null, 0.1, 0.2, 0.3]]", "application/json", "x0"),
        (b'[{"x0": 1, "x1": null, "x2": 0.2, "x3": 0.3}]', "application/json", "x1"),
        (b"x0,x1,x2,x3\n0.5,,0.2,0.3\n", "text/csv", "x1"),
        (b"x0,x1,x2,x3\n0.5,0.1,NaN,0.3\n", "text/csv", "x2"),
        (b"0.5,0.1,0.2,\n", "text/csv", "x3"),
    ],
)
def test_missing_values_get_422_naming_the_column(
    server: Server, body: bytes, ctype: str, column: str
) -> None:
    for path in ("/predict", "/invocations"):
        status, _, out = server.request("POST", path, body, {"Content-Type": ctype})
        assert status == 422 and f"column '{column}'".encode() in out, (status, out)


def test_nan_in_binary_v2_data_gets_422(server: Server) -> None:
    import numpy as np

    data = np.array([[0.1, np.nan, 0.2, 0.3]], dtype=np.float32).tobytes()
    head = json.dumps(
        {"inputs": [{"name": "X", "datatype": "FP32", "shape": [1, 4],
                     "parameters": {"binary_data_size": len(data)}}]}
    ).encode()  # fmt: skip
    status, _, out = server.request(
        "POST", "/v2/models/iris/infer", head + data,
        {"Content-Type": "application/octet-stream",
         "Inference-Header-Content-Length": str(len(head))},
    )  # fmt: skip
    assert status == 422 and b"column 'x1'" in out


def test_head_on_health_routes(server: Server) -> None:
    for path in ("/ping", "/v2/health/live", "/v2/health/ready"):
        status, headers, body = server.request("HEAD", path)
        get_status, _, get_body = server.request("GET", path)
        assert status == get_status == 200 and body == b""
        assert int(headers["content-length"]) == len(get_body)
    status, headers, _ = server.request("HEAD", "/predict")
    assert status == 405 and "POST" in headers["allow"]


def test_api_key_from_a_file(model: Path, tmp_path: Path, monkeypatch) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("s3cret-from-file\n")
    s = Server(
        model,
        tmp_path / "key.log",
        {"MODELSHIP_API_KEY_FILE": str(key_file), "MODELSHIP_API_KEY": "from-env"},
    )
    try:
        rows = b"[[0.1, 0.2, 0.3, 0.4]]"
        j = {"Content-Type": "application/json"}
        assert s.request("POST", "/predict", rows, j)[0] == 401
        bad = {**j, "Authorization": "Bearer from-env"}
        assert s.request("POST", "/predict", rows, bad)[0] == 401  # the file wins
        good = {**j, "Authorization": "Bearer s3cret-from-file"}
        assert s.request("POST", "/predict", rows, good)[0] == 200
        assert s.request("GET", "/ping")[0] == 200  # health needs no key
    finally:
        s.stop()
    assert "s3cret" not in (tmp_path / "key.log").read_text()
    # a named file that cannot be read stops the server instead of serving without a key
    monkeypatch.setenv("MODELSHIP_API_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="MODELSHIP_API_KEY_FILE"):
        from_env(str(model))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    monkeypatch.setenv("MODELSHIP_API_KEY_FILE", str(empty))
    with pytest.raises(ConfigError, match="empty"):
        from_env(str(model))
