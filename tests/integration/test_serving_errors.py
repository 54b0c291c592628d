"""A caller's mistakes get a 4xx with a message that says what was wrong, never a 500."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from tests.integration.test_serving_fixtures import (
    ServerProcess,
    make_classifier,
    make_mixed,
)

KEY = "s3cret-test-key"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    d = tmp_path_factory.mktemp("models")
    clf, _, _ = make_classifier(d)
    mixed, _, _ = make_mixed(d)
    procs = {
        "clf": ServerProcess(
            clf, env={"MODELSHIP_MAX_BODY_BYTES": "4000", "MODELSHIP_MAX_ROWS": "20"}
        ),
        "mixed": ServerProcess(mixed),
        "auth": ServerProcess(clf, env={"MODELSHIP_API_KEY": KEY}),
    }
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        codes = {k: p.stop() for k, p in procs.items()}  # stop all before judging any
        outputs = {k: p.output() for k, p in procs.items()}
    assert all(c == 0 for c in codes.values()), codes
    # the key is never logged
    assert KEY not in outputs["auth"]
    assert "Traceback" not in "".join(outputs.values())


def call(s: ServerProcess, method: str, path: str, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


J = {"Content-Type": "application/json"}
ROW = [0.1, 0.2, 0.3, 0.4]

# (server, path, body, headers, status, words the message must contain)
CASES = [
    ("clf", "/predict", b"", J, 400, "empty"),
    ("clf", "/predict", b"[[1,2,3,4]", J, 400, "not valid JSON"),
    ("clf", "/predict", b"\xff\xfe", J, 400, "not valid JSON"),
    ("clf", "/predict", b"[]", J, 422, "empty"),
    ("clf", "/predict", b"{}", J, 422, "rows"),
    ("clf", "/predict", b'"hello"', J, 422, "list of rows"),
    ("clf", "/predict", b"42", J, 422, "list of rows"),
    ("clf", "/predict", b"[1,2,3,4]", J, 422, "Row 1"),
    ("clf", "/predict", b"[[1,2,3]]", J, 422, "expects 4"),
    ("clf", "/predict", b"[[1,2,3,4,5]]", J, 422, "expects 4"),
    ("clf", "/predict", b'[[1,2,"x",4]]', J, 422, "expected a number"),
    ("clf", "/predict", b"[[1,2,true,4]]", J, 422, "expected a number"),
    ("clf", "/predict", b"[[1,2,[3],4]]", J, 422, "expected a number"),
    ("clf", "/predict", b"[[1,2,3,4],[1,2]]", J, 422, "Row 2"),
    ("clf", "/predict", b'[[1,2,3,4],{"x0":1}]', J, 422, "Row 2"),
    ("clf", "/predict", b'[{"x0":1,"x1":2,"x2":3}]', J, 422, "missing 'x3'"),
    ("clf", "/predict", b'[{"x0":1,"x1":2,"x2":3,"x3":4,"x9":5}]', J, 422, "unknown 'x9'"),
    ("clf", "/predict", b'{"rows": [[1,2,3,4]], "x": 1}', J, 422, "rows"),
    ("clf", "/predict", b"[[1e400,2,3,4]]", J, 400, "not valid JSON"),
    ("clf", "/predict", b"[[1,2,3,4]]", {"Content-Type": "text/plain"}, 415, "application/json"),
    (
        "clf",
        "/predict",
        b"a=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "text/csv",
    ),
    ("clf", "/predict", json.dumps([ROW] * 21).encode(), J, 413, "20"),
    ("clf", "/predict", b"[" + b"[1,2,3,4]," * 800 + b"[1,2,3,4]]", J, 413, "limit"),
    ("clf", "/predict", b"x0,x1\n1,2\n", {"Content-Type": "text/csv"}, 422, "lacks 'x2'"),
    (
        "clf",
        "/predict",
        b"x0,x1,x2,x3\n1,2,a,4\n",
        {"Content-Type": "text/csv"},
        422,
        "expected a number",
    ),
    ("clf", "/predict", b"x0,x1,x2,x3\n", {"Content-Type": "text/csv"}, 422, "no data rows"),
    ("clf", "/predict", b"1,2,3\n", {"Content-Type": "text/csv"}, 422, "expects 4"),
    ("clf", "/predict", b"1,2,3,4\n1,2\n", {"Content-Type": "text/csv"}, 422, "row 2"),
    ("clf", "/predict", b"\xff\xfe\x00", {"Content-Type": "text/csv"}, 400, "UTF-8"),
    ("mixed", "/predict", b'[{"age": 30, "city": 7, "visits": 1}]', J, 422, "expected text"),
    ("mixed", "/predict", b'[{"age": 30, "city": "Ulm", "visits": 1.5}]', J, 422, "whole number"),
    (
        "mixed",
        "/predict",
        b'[{"age": "30", "city": "Ulm", "visits": 1}]',
        J,
        422,
        "expected a number",
    ),
    (
        "mixed",
        "/predict",
        b"age,city,visits\n30,Ulm,many\n",
        {"Content-Type": "text/csv"},
        422,
        "whole number",
    ),
    ("clf", "/v2/models/iris/infer", b"[]", J, 400, "inputs"),
    ("clf", "/v2/models/iris/infer", b'{"inputs": []}', J, 400, "inputs"),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"Y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}',
        J,
        400,
        "Unknown input",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}',
        J,
        400,
        "expects 'FP32'",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}',
        J,
        400,
        "needs 4",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}',
        J,
        400,
        "3 values",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,"a",4]}]}',
        J,
        400,
        "number",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}',
        J,
        400,
        "shape",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[0,4],"datatype":"FP32","data":[]}]}',
        J,
        400,
        "empty",
    ),
    (
        "clf",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],'
        b'"outputs":[{"name":"nope"}]}',
        J,
        400,
        "Unknown output",
    ),
    ("clf", "/v2/models/iris/infer", b'{"inputs":[{"name":"X"}]}', J, 400, "FP32"),
    ("clf", "/v2/models/other/infer", b"{}", J, 404, "iris"),
    ("clf", "/v2/models/iris/infer", b'{"inputs":[1]}', J, 400, "object"),
    (
        "clf",
        "/v2/models/iris/infer",
        b"{}",
        {"Inference-Header-Content-Length": "99"},
        400,
        "does not fit",
    ),
]


@pytest.mark.parametrize(
    ("server", "path", "body", "headers", "status", "words"),
    CASES,
    ids=[f"{c[0]}-{c[1].split('/')[-1]}-{i}" for i, c in enumerate(CASES)],
)
def test_malformed_request_gets_a_4xx_that_says_why(
    servers, server, path, body, headers, status, words
) -> None:
    got, hdrs, data = call(servers[server], "POST", path, body, headers)
    assert got == status, data
    assert hdrs["content-type"] == "application/json"
    message = json.loads(data)["error"]
    assert words.lower() in message.lower(), message


def test_oversized_declared_body_is_refused_before_it_is_read(servers) -> None:
    """413 on Content-Length alone: the server does not wait for 10 MB that never come."""
    s = servers["clf"]
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n[[1,2"
        )
        answer = b""
        while b"limit" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"limit" in answer


def test_chunked_body_over_the_limit_is_counted_while_streaming(servers) -> None:
    s = servers["clf"]
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    chunks = (b"[" + b"[1,2,3,4]," * 100 for _ in range(20))
    conn.request(
        "POST",
        "/predict",
        body=chunks,
        headers={**J, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    r = conn.getresponse()
    assert r.status == 413
    assert "limit" in json.loads(r.read())["error"]
    conn.close()


def test_api_key_guards_everything_but_health(servers) -> None:
    s = servers["auth"]
    body = json.dumps([ROW]).encode()
    for path in ("/ping", "/v2/health/live", "/v2/health/ready"):
        assert call(s, "GET", path)[0] == 200, path
    for method, path in (
        ("POST", "/predict"),
        ("POST", "/invocations"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/v2/models/iris"),
    ):
        status, headers, data = call(s, method, path, body if method == "POST" else None, J)
        assert status == 401, path
        assert headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in json.loads(data)["error"]
    status, _, data = call(s, "POST", "/predict", body, {**J, "Authorization": "Bearer wrong"})
    assert status == 401 and "wrong" in json.loads(data)["error"]
    assert KEY not in data.decode()
    status, _, _ = call(s, "POST", "/predict", body, {**J, "Authorization": f"Bearer {KEY}"})
    assert status == 200
    status, _, _ = call(s, "POST", "/predict", body, {**J, "Authorization": f"Basic {KEY}"})
    assert status == 401
    # where a proxy keeps Authorization for itself (Kubernetes' services proxy), the key
    # travels as X-ModelShip-Key; a wrong one there is refused even beside a right Bearer
    status, _, _ = call(s, "POST", "/predict", body, {**J, "X-ModelShip-Key": KEY})
    assert status == 200
    both = {**J, "X-ModelShip-Key": "wrong", "Authorization": f"Bearer {KEY}"}
    status, _, data = call(s, "POST", "/predict", body, both)
    assert status == 401 and "wrong" in json.loads(data)["error"]


def test_model_refusing_input_is_422_not_500(servers) -> None:
    """Input that passes the checks but that the model cannot take is the caller's, not ours."""
    # rows the model will take, with one absurdly large value: still a prediction
    status, _, _ = call(servers["clf"], "POST", "/predict", b"[[1e38,2,3,4]]", J)
    assert status == 200
