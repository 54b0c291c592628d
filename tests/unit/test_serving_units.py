"""Fast checks of the serving runtime's parts: settings, micro-batcher, decoding, metrics."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import numpy as np
import pytest

from app.serving.batcher import Batcher
from app.serving.config import ConfigError, available_cpus, from_env
from app.serving.metrics import Metrics
from app.serving.model import ModelLoadError, ModelRuntime, RequestError


# ---- settings --------------------------------------------------------------------------------
def test_cpus_follow_the_affinity_mask() -> None:
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))


def test_settings_from_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "5001")
    monkeypatch.setenv("MODELSHIP_MODEL", "/models/m.onnx")
    monkeypatch.setenv("MODELSHIP_MAX_WAIT_MS", "0.5")
    cfg = from_env(workers=1)
    assert (cfg.port, str(cfg.model), cfg.max_wait_ms) == (5001, "/models/m.onnx", 0.5)
    assert cfg.threads == available_cpus()  # one worker gets every CPU as threads
    assert from_env(port=7000).port == 7000  # an argument beats $PORT
    cfg = from_env()
    assert cfg.workers * cfg.threads <= max(available_cpus(), cfg.workers)


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("MODELSHIP_WORKERS", "many", "MODELSHIP_WORKERS"),
        ("MODELSHIP_MAX_BATCH", "0", "at least 1"),
        ("MODELSHIP_MAX_WAIT_MS", "-1", "negative"),
        ("PORT", "x", "PORT"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, var: str, value: str, words: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=words):
        from_env()


def test_api_key_is_never_part_of_the_settings_repr(monkeypatch) -> None:
    monkeypatch.setenv("MODELSHIP_API_KEY", "hunter2")
    cfg = from_env()
    assert cfg.api_key == "hunter2"
    assert "hunter2" not in repr(cfg)


# ---- micro-batcher ---------------------------------------------------------------------------
class Recorder:
    """A real computation (row sums times two) that records the batch sizes it ran."""

    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.fail_on = fail_on

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["x"]
        self.batches.append(len(x))
        if self.fail_on is not None and np.any(x == self.fail_on):
            raise ValueError("bad value")
        time.sleep(self.delay)
        return [x.sum(axis=1) * 2, x[:, :1]]


def _run_concurrently(batcher: Batcher, payloads: list[np.ndarray]) -> list:
    async def main() -> list:
        try:
            return await asyncio.gather(
                *(batcher.submit({"x": p}, len(p)) for p in payloads), return_exceptions=True
            )
        finally:
            await batcher.close()

    return asyncio.run(main())


def test_each_caller_gets_its_own_rows_back() -> None:
    rec = Recorder(delay=0.005)
    rng = np.random.default_rng(0)
    payloads = [rng.normal(size=(int(rng.integers(1, 5)), 3)) for _ in range(50)]
    results = _run_concurrently(Batcher(rec, enabled=True, max_batch=16), payloads)
    for p, (sums, first) in zip(payloads, results, strict=True):
        assert np.allclose(sums, p.sum(axis=1) * 2)
        assert np.allclose(first, p[:, :1])
    assert max(rec.batches) > 4, "nothing was batched"
    assert max(rec.batches) <= 16


def test_alone_a_request_runs_at_once() -> None:
    """No added wait at concurrency 1, however long max_wait is."""
    rec = Recorder()
    batcher = Batcher(rec, enabled=True, max_wait_s=5.0, slots=2)
    t0 = time.perf_counter()
    [(sums, _)] = _run_concurrently(batcher, [np.ones((1, 3))])
    assert time.perf_counter() - t0 < 1.0
    assert sums.tolist() == [6.0]


def test_with_batching_off_every_request_runs_alone() -> None:
    rec = Recorder(delay=0.002)
    payloads = [np.full((2, 3), i, dtype=float) for i in range(10)]
    results = _run_concurrently(Batcher(rec, enabled=False), payloads)
    assert rec.batches == [2] * 10
    assert [r[0][0] for r in results] == [i * 6.0 for i in range(10)]


def test_one_bad_request_does_not_fail_its_batch_mates() -> None:
    rec = Recorder(delay=0.002, fail_on=-1.0)
    payloads = [np.full((1, 3), i, dtype=float) for i in range(8)]
    payloads[5] = np.full((1, 3), -1.0)
    results = _run_concurrently(Batcher(rec, enabled=True), payloads)
    assert isinstance(results[5], ValueError)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 5)
    assert results[3][0].tolist() == [18.0]


def test_a_partial_batch_waits_for_company_only_while_another_runs() -> None:
    rec = Recorder(delay=0.6)
    batcher = Batcher(rec, enabled=True, max_batch=64, max_wait_s=0.3, slots=2)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 3))}, 1))
        await asyncio.sleep(0.01)  # first is running; a slot is free
        second = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 3))}, 1))
        await asyncio.sleep(0.01)
        third = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 3))}, 1))
        await asyncio.gather(first, second, third)
        await batcher.close()

    asyncio.run(main())
    assert rec.batches == [1, 2]  # the first ran at once; the others waited and ran together


# ---- decoding against a real model --------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> ModelRuntime:
    from tests.integration.test_serving_fixtures import make_mixed

    path, _, _ = make_mixed(Path(tmp_path_factory.mktemp("m")))
    return ModelRuntime(path)


def test_records_become_per_column_tensors(runtime: ModelRuntime) -> None:
    feeds, n = runtime.feeds_from_json(
        [{"visits": 3, "city": "Ulm", "age": 30.5}, {"age": 41, "city": "Kiel", "visits": 0}],
        max_rows=10,
    )
    assert n == 2
    assert feeds["city"].tolist() == [["Ulm"], ["Kiel"]]
    assert feeds["visits"].dtype == np.int64 and feeds["visits"].shape == (2, 1)
    assert feeds["age"][0, 0] == np.float32(30.5) and feeds["age"][1, 0] == np.float32(41)


def test_missing_values_only_where_the_signature_allows(runtime: ModelRuntime, tmp_path) -> None:
    rows = [{"visits": 3, "city": "Ulm", "age": 30.5}, {"age": None, "city": "Kiel", "visits": 0}]
    with pytest.raises(RequestError, match="Row 2, column 'age': the value is missing") as err:
        runtime.feeds_from_json(rows, max_rows=10)
    assert err.value.status == 422
    with pytest.raises(RequestError, match=r"CSV data row 1, column 'age'.*empty cell"):
        runtime.feeds_from_csv(b"age,city,visits\n,Ulm,3\n", max_rows=10)
    with pytest.raises(RequestError, match=r"column 'age'.*NaN"):
        runtime.feeds_from_csv(b"age,city,visits\nnan,Ulm,3\n", max_rows=10)
    # the same model, its signature saying that age may be missing: NaN goes through
    import shutil

    from app.serving.signature import Signature

    model = tmp_path / runtime.path.name
    shutil.copyfile(runtime.path, model)
    sig = Signature.load(Signature.path_for(runtime.path))
    for c in sig.columns:
        c.missing = c.name == "age"
    sig.save(Signature.path_for(model))
    lenient = ModelRuntime(model)
    feeds, n = lenient.feeds_from_json(rows, max_rows=10)
    assert n == 2 and np.isnan(feeds["age"][1, 0])
    feeds, _, _ = lenient.feeds_from_csv(b"age,city,visits\n,Ulm,3\n", max_rows=10)
    assert np.isnan(feeds["age"][0, 0])
    with pytest.raises(RequestError, match=r"column 'city'.*empty cell"):
        lenient.feeds_from_csv(b"age,city,visits\n3,,3\n", max_rows=10)


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ([], 422, "empty"),
        ([{"age": 1, "city": "Ulm"}], 422, "missing 'visits'"),
        ([[1, "Ulm", True]], 422, "whole number"),
        ([[1, "Ulm", 2]] * 11, 413, "10"),
        ({"data": []}, 422, "rows"),
    ],
)
def test_bad_rows_raise_request_errors(runtime, payload, status: int, words: str) -> None:
    with pytest.raises(RequestError) as info:
        runtime.feeds_from_json(payload, max_rows=10)
    assert info.value.status == status
    assert words in info.value.message


def test_csv_header_in_any_order(runtime: ModelRuntime) -> None:
    feeds, n, header = runtime.feeds_from_csv(b"visits,age,city\n2,40,Bonn\n", max_rows=10)
    assert (n, header) == (1, True)
    assert feeds["city"].tolist() == [["Bonn"]] and feeds["visits"].tolist() == [[2]]


def test_answers_carry_labels(runtime: ModelRuntime) -> None:
    feeds, _ = runtime.feeds_from_json([[30, "Ulm", 2]], max_rows=10)
    answer = runtime.answer_json(runtime.run(feeds))
    assert answer["model"] == "churn"
    assert set(answer["probabilities"][0]) == {"0", "1"}
    text = runtime.answer_csv(runtime.run(feeds), header=True).decode()
    assert text.splitlines()[0] == "prediction,probability_0,probability_1"


# ---- metrics -------------------------------------------------------------------------------------
def test_metrics_are_prometheus_text() -> None:
    m = Metrics('my "model"')
    m.observe("/predict", 200, 0.0004)
    m.observe("/predict", 422, 0.002)
    m.observe_batch(7)
    text = m.render().decode()
    assert 'model="my \\"model\\""' in text
    assert 'route="/predict",code="422"} 1' in text
    assert 'le="0.0005"} 1' in text and 'le="+Inf"} 2' in text
    assert 'modelship_batch_rows_bucket{model="my \\"model\\"",worker' in text
    assert 'kind="client"} 1' in text
    for line in text.splitlines():
        assert line.startswith("#") or " " in line


def test_cheap_runs_can_skip_the_thread() -> None:
    """With inline_below_s set, a measured-cheap model runs on the loop; answers are the same."""
    rec = Recorder()
    batcher = Batcher(rec, enabled=True, inline_below_s=0.5)
    payloads = [np.full((1, 3), i, dtype=float) for i in range(20)]
    results = _run_concurrently(batcher, payloads)
    assert [r[0].tolist() for r in results] == [[i * 6.0] for i in range(20)]
    assert batcher._per_row_s < 0.5  # measured, so later runs were cheap enough to inline


def test_model_without_signature_file_is_described_from_the_graph(tmp_path: Path) -> None:
    from app.serving.signature import Signature
    from tests.integration.test_serving_fixtures import make_classifier

    path, model, x = make_classifier(tmp_path)
    Signature.path_for(path).unlink()
    rt = ModelRuntime(path)
    assert rt.column_names == ["f0", "f1", "f2", "f3"]
    feeds, _ = rt.feeds_from_json([{f"f{i}": float(v) for i, v in enumerate(x[0])}], 5)
    answer = rt.answer_json(rt.run(feeds))
    assert answer["predictions"] == list(model.predict(x[:1]))
    assert list(answer["probabilities"][0]) == ["0", "1", "2"]


def test_warm_up_uses_the_conversion_proof_rows(tmp_path: Path) -> None:
    """Warm-up runs a real sample row when convert left a proof; a broken one stops the start."""
    import json

    from tests.integration.test_serving_fixtures import make_mixed

    path, _, _ = make_mixed(tmp_path)
    proof = path.with_name(path.stem + ".proof.json")
    proof.write_text(json.dumps({"schema": 1, "rows": [{"age": 30, "city": "Ulm", "visits": 2}]}))
    rt = ModelRuntime(path)
    assert rt.proof_rows == [{"age": 30, "city": "Ulm", "visits": 2}]
    rt.warm_up()
    proof.write_text(json.dumps({"schema": 1, "rows": [{"age": "old", "city": "Ulm"}]}))
    with pytest.raises(ModelLoadError, match="Convert the model again"):
        ModelRuntime(path).warm_up()


def test_the_server_waits_for_a_key_file_handed_over_after_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A container's key arrives on its tmpfs after it started (docker target): with
    MODELSHIP_API_KEY_WAIT_S the server waits for it, and without it never starts open."""
    import threading

    key_file = tmp_path / "api_key"
    monkeypatch.setenv("MODELSHIP_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("MODELSHIP_API_KEY_WAIT_S", "0.3")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"did not appear within 0\.3 s"):
        from_env("model.onnx")
    assert time.monotonic() - t0 >= 0.3
    monkeypatch.setenv("MODELSHIP_API_KEY_WAIT_S", "30")
    writer = threading.Timer(0.3, lambda: key_file.write_text("handed-over\n"))
    writer.start()
    try:
        assert from_env("model.onnx").api_key == "handed-over"
    finally:
        writer.cancel()
