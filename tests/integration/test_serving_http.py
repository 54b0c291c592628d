"""Every route and protocol of the serving runtime, over HTTP, against real server processes."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pytest

from tests.integration.test_serving_fixtures import (
    ServerProcess,
    make_classifier,
    make_fixed_tensor,
    make_mixed,
    make_regressor,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("models")
    clf, clf_model, clf_x = make_classifier(d)
    reg, reg_model, reg_x = make_regressor(d)
    mixed, mixed_model, mixed_df = make_mixed(d)
    fixed = make_fixed_tensor(d)
    return {
        "clf": (clf, clf_model, clf_x),
        "reg": (reg, reg_model, reg_x),
        "mixed": (mixed, mixed_model, mixed_df),
        "fixed": (fixed, None, None),
    }


@pytest.fixture(scope="module")
def servers(models: dict) -> Iterator[dict[str, ServerProcess]]:
    procs = {k: ServerProcess(v[0]) for k, v in models.items()}
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        codes = {k: p.stop() for k, p in procs.items()}
    assert all(c == 0 for c in codes.values()), codes


def request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | str | object | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post_json(server: ServerProcess, path: str, body: object) -> tuple[int, dict]:
    status, _, data = request(server, "POST", path, body)
    return status, json.loads(data)


# ---- health and metadata ------------------------------------------------------------------
def test_health_routes(servers: dict[str, ServerProcess]) -> None:
    s = servers["clf"]
    for path in ("/ping", "/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready"):
        status, _, _ = request(s, "GET", path)
        assert status == 200, path
    status, _, body = request(s, "GET", "/v2")
    assert status == 200 and json.loads(body)["name"] == "modelship"


def test_v2_model_metadata_describes_tensors(servers: dict[str, ServerProcess]) -> None:
    status, _, body = request(servers["clf"], "GET", "/v2/models/iris")
    meta = json.loads(body)
    assert status == 200
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    status, _, body = request(servers["clf"], "GET", "/v2/models/nope")
    assert status == 404 and "iris" in json.loads(body)["error"]


def test_openapi_describes_this_models_columns(servers: dict[str, ServerProcess]) -> None:
    status, _, body = request(servers["mixed"], "GET", "/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.")
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == ["age", "city", "visits"]
    assert record["properties"]["city"]["type"] == "string"
    assert record["properties"]["visits"]["type"] == "integer"
    assert "/v2/models/{name}/infer" in doc["paths"]


# ---- /predict and /invocations --------------------------------------------------------------
def test_predict_rows_and_records_match_the_original_model(models, servers) -> None:
    _path, model, x = models["clf"]
    rows = x[:5].tolist()
    status, out = post_json(servers["clf"], "/predict", rows)
    assert status == 200
    assert out["model"] == "iris"
    assert out["predictions"] == list(model.predict(x[:5]))
    proba = model.predict_proba(x[:5])
    got = np.array([[p[c] for c in model.classes_] for p in out["probabilities"]])
    assert np.allclose(got, proba, atol=1e-5)
    records = [{f"x{i}": v for i, v in enumerate(r)} for r in rows]
    assert post_json(servers["clf"], "/predict", records)[1] == out
    assert post_json(servers["clf"], "/predict", {"rows": records})[1] == out
    assert post_json(servers["clf"], "/invocations", rows)[1] == out


def test_predict_regressor_gives_plain_values(models, servers) -> None:
    _, model, x = models["reg"]
    status, out = post_json(servers["reg"], "/predict", x[:3].tolist())
    assert status == 200 and "probabilities" not in out
    assert np.allclose(out["predictions"], model.predict(x[:3]), atol=1e-4)


def test_predict_string_categories_per_column(models, servers) -> None:
    _, model, df = models["mixed"]
    records = df[:6].to_dict(orient="records")
    records = [
        {"age": float(r["age"]), "city": r["city"], "visits": int(r["visits"])} for r in records
    ]
    status, out = post_json(servers["mixed"], "/predict", records)
    assert status == 200, out
    assert out["predictions"] == model.predict(df[:6]).tolist()
    assert set(out["probabilities"][0]) == {"0", "1"}


def test_csv_in_gives_csv_out(models, servers) -> None:
    _, model, df = models["mixed"]
    csv_text = "city,visits,age\n" + "".join(
        f"{c},{v},{a}\n" for a, c, v in df[:4][["age", "city", "visits"]].itertuples(index=False)
    )
    status, headers, body = request(
        servers["mixed"], "POST", "/predict", csv_text, {"Content-Type": "text/csv"}
    )
    assert status == 200 and headers["content-type"].startswith("text/csv")
    lines = body.decode().strip().splitlines()
    assert lines[0] == "prediction,probability_0,probability_1"
    assert [int(line.split(",")[0]) for line in lines[1:]] == model.predict(df[:4]).tolist()


def test_sagemaker_csv_without_header(models, servers) -> None:
    """SageMaker batch transform sends header-less CSV and joins the answer lines."""
    _, model, x = models["clf"]
    csv_text = "\n".join(",".join(str(v) for v in row) for row in x[:3].tolist())
    status, _, body = request(
        servers["clf"], "POST", "/invocations", csv_text, {"Content-Type": "text/csv"}
    )
    lines = body.decode().strip().splitlines()
    assert status == 200 and len(lines) == 3
    assert [line.split(",")[0] for line in lines] == list(model.predict(x[:3]))
    status, headers, body = request(
        servers["clf"],
        "POST",
        "/invocations",
        csv_text,
        {"Content-Type": "text/csv", "Accept": "application/json"},
    )
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["predictions"] == list(model.predict(x[:3]))


def test_null_is_refused_where_the_model_cannot_take_missing_values(servers) -> None:
    # the signature does not say x0 may be missing: no confident answer on a made-up value
    status, out = post_json(servers["clf"], "/predict", [[None, 0.1, 0.2, 0.3]])
    assert status == 422 and "column 'x0'" in out["error"] and "missing" in out["error"]
    status, _, body = request(
        servers["clf"],
        "POST",
        "/predict",
        b"x0,x1,x2,x3\n,0.1,0.2,0.3\n",
        {"Content-Type": "text/csv"},
    )
    assert status == 422 and b"column 'x0'" in body


def test_tensor_model_points_to_v2(servers) -> None:
    status, out = post_json(servers["fixed"], "/predict", [[1, 2]])
    assert status == 422 and "/v2/models/fixed/infer" in out["error"]


# ---- Open Inference Protocol v2 ------------------------------------------------------------
def test_v2_infer_json(models, servers) -> None:
    path, _, x = models["clf"]
    sess = ort.InferenceSession(str(path))
    want = sess.run(None, {"X": x[:2]})
    body = {
        "id": "r1",
        "inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": x[:2].tolist()}],
        "outputs": [{"name": "probabilities"}],
    }
    status, out = post_json(servers["clf"], "/v2/models/iris/infer", body)
    assert status == 200 and out["id"] == "r1"
    [o] = out["outputs"]
    assert o["name"] == "probabilities" and o["shape"] == [2, 3] and o["datatype"] == "FP32"
    assert np.allclose(np.array(o["data"]).reshape(2, 3), want[1], atol=1e-6)


def test_v2_fixed_shape_tensor_model(servers) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    body = {
        "inputs": [
            {"name": "image", "shape": [2, 3, 4], "datatype": "FP32", "data": data.ravel().tolist()}
        ]
    }
    status, out = post_json(servers["fixed"], "/v2/models/fixed/infer", body)
    assert status == 200
    assert out["outputs"][0]["data"] == data.sum(axis=2).ravel().tolist()
    body["inputs"][0]["shape"] = [1, 3, 4]
    body["inputs"][0]["data"] = data[:1].ravel().tolist()
    status, out = post_json(servers["fixed"], "/v2/models/fixed/infer", body)
    assert status == 400 and "needs 2" in out["error"]


def test_v2_request_on_invocations_is_answered_as_v2(servers) -> None:
    """SageMaker's InvokeEndpoint reaches only /invocations: tensor models answer v2 there."""
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    body = {"inputs": [{"name": "image", "shape": [2, 3, 4], "datatype": "FP32",
                        "data": data.ravel().tolist()}]}  # fmt: skip
    status, out = post_json(servers["fixed"], "/invocations", body)
    assert status == 200
    assert out["outputs"][0]["data"] == data.sum(axis=2).ravel().tolist()


def test_tritonclient_calls_the_server(models, servers) -> None:
    """A stock Open Inference Protocol client, with its default binary tensors."""
    tritonclient_http = pytest.importorskip("tritonclient.http")
    _path, model, x = models["clf"]
    client = tritonclient_http.InferenceServerClient(url=f"127.0.0.1:{servers['clf'].port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris")
        meta = client.get_model_metadata("iris")
        assert meta["inputs"][0]["name"] == "X"
        for binary in (True, False):
            inp = tritonclient_http.InferInput("X", [4, 4], "FP32")
            inp.set_data_from_numpy(x[:4], binary_data=binary)
            outs = [
                tritonclient_http.InferRequestedOutput("label", binary_data=binary),
                tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary),
            ]
            result = client.infer("iris", [inp], outputs=outs)
            labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
            assert labels == list(model.predict(x[:4]))
            assert np.allclose(
                result.as_numpy("probabilities"), model.predict_proba(x[:4]), atol=1e-5
            )
    finally:
        client.close()


def test_tritonclient_string_inputs(models, servers) -> None:
    tritonclient_http = pytest.importorskip("tritonclient.http")
    _, model, df = models["mixed"]
    client = tritonclient_http.InferenceServerClient(url=f"127.0.0.1:{servers['mixed'].port}")
    try:
        inputs = []
        for name, dtype, arr in (
            ("age", "FP32", df["age"].to_numpy(np.float32)[:3, None]),
            ("city", "BYTES", df["city"].to_numpy(object)[:3, None]),
            ("visits", "INT64", df["visits"].to_numpy(np.int64)[:3, None]),
        ):
            i = tritonclient_http.InferInput(name, [3, 1], dtype)
            i.set_data_from_numpy(arr)
            inputs.append(i)
        result = client.infer("churn", inputs)
        assert result.as_numpy("label").tolist() == model.predict(df[:3]).tolist()
    finally:
        client.close()


# ---- micro-batching ----------------------------------------------------------------------------
def test_micro_batching_returns_each_caller_its_own_rows(models, servers) -> None:
    path, _, _x = models["clf"]
    sess = ort.InferenceSession(str(path))
    rng = np.random.default_rng(7)
    payloads = [rng.normal(size=(int(rng.integers(1, 6)), 4)).astype(np.float32) for _ in range(96)]
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            results[i] = post_json(servers["clf"], "/predict", payloads[i].tolist())[1]
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, rows in enumerate(payloads):
        label, proba = sess.run(None, {"X": rows})
        assert results[i]["predictions"] == label.tolist(), i
        got = np.array([list(p.values()) for p in results[i]["probabilities"]])
        assert np.allclose(got, proba, atol=1e-6), i
    _, _, metrics = request(servers["clf"], "GET", "/metrics")
    text = metrics.decode()
    # some runs held more than one request's rows: batching really happened
    buckets = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("modelship_batch_rows_bucket")
    }
    assert buckets["+Inf"] > buckets["4"], "no run held more than 4 rows: nothing was batched"


def test_metrics_count_requests_and_errors(servers) -> None:
    s = servers["reg"]
    post_json(s, "/predict", [[1, 2, 3]])
    post_json(s, "/predict", [[1, 2]])
    _, headers, body = request(s, "GET", "/metrics")
    text = body.decode()
    assert headers["content-type"].startswith("text/plain")
    assert 'route="/predict",code="200"}' in text
    assert 'route="/predict",code="422"}' in text
    assert "modelship_request_duration_seconds_bucket" in text
    assert 'modelship_errors_total{model="price"' in text


def test_no_api_key_needed_when_none_set(servers) -> None:
    assert request(servers["clf"], "GET", "/metrics")[0] == 200


@pytest.mark.parametrize("key", ["clf"])
def test_unknown_route_and_method(servers, key: str) -> None:
    s = servers[key]
    status, _, body = request(s, "GET", "/nope")
    assert status == 404 and "/predict" in json.loads(body)["error"]
    status, headers, _ = request(s, "GET", "/predict")
    assert status == 405 and headers["allow"] == "POST"
    status, _, _ = request(s, "GET", "/v2/models/iris/infer")
    assert status == 405
