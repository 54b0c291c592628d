"""The target conformance suite: every registered target passes the same tests.

Run against each kind in ``targets.CATALOG`` through its harness (real processes,
containers, registries, or the cloud emulators in ``tests/emulators``):

* every resource is journaled before it is created;
* ``destroy`` is idempotent (True, then False);
* a failure injected after each step, and a cancel at the start of each step, leave
  nothing behind (checked on the platform, not in ModelShip's own records);
* a platform that fails inside the target's deploy step leaves nothing behind;
* teardown leaves nothing;
* redeploy and rollback keep the endpoint answering (with no gap for targets that
  replace side by side or through the platform);
* with ``capture_rate = 1`` the smoke test's requests are captured and pulled back with
  the proof's columns, and teardown leaves no captured file (issue 24).
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from app.errors import Cancelled, ModelShipError
from app.run import Event, run_deploy, run_rollback, steps_for, teardown
from app.store.journal import Journal, journals_dir, open_journals
from app.store.records import find_record
from targets import get_target
from tests.conformance.harnesses.base import Harness

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class InjectedFailure(Exception):
    """Raised from the event stream right after a step: a failure the pipeline did not
    expect (a bug, a crash-like error), which must still be rolled back."""


def _train(path: Path, seed: int) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + (seed + 1) * X[:, 1] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(X, y), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("conformance-models")
    return _train(folder / "clf.joblib", 0), _train(folder / "clf-b.joblib", 1)


def _name(harness: Harness, what: str) -> str:
    return f"conf-{harness.kind}-{what}-{secrets.token_hex(2)}"


def _nothing_left(harness: Harness, name: str) -> None:
    assert harness.leftovers(name) == [], f"{harness.kind} left resources behind"
    assert find_record(name) is None
    assert open_journals(name) == []


def _journals(name: str) -> list[Journal]:
    return [Journal(p) for p in sorted(journals_dir(name).glob("*.jsonl"))]


def _client(record):
    from app.store.profile import Profile

    endpoint = record.endpoint_obj()
    return get_target(endpoint.target).client(endpoint, Profile.model_validate(record.profile))


def _predictions(record, rows: list) -> list:
    return _client(record).predict(rows)["predictions"]


def _capture_pullable(kind: str) -> bool:
    """SageMaker's captured requests come from its own Data Capture, read by
    ``targets.sagemaker.capture.pull_lines``; until that exists only its settings are
    checked."""
    if kind != "sagemaker":
        return True
    try:
        from targets.sagemaker import capture
    except ImportError:
        return False
    return hasattr(capture, "pull_lines")


def _same_row(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        g == w
        if isinstance(w, str) or isinstance(g, str) or g is None or w is None
        else abs(float(g) - float(w)) <= 1e-5 * max(1.0, abs(float(w)))
        for g, w in zip(got, want, strict=True)
    )


def _check_captured(record) -> None:
    """The smoke test's requests were captured: pulled back with the proof's columns and
    the predictions the endpoint answered."""
    import json

    from app.model.convert.report import proof_path_for
    from app.run.monitor import pull

    version = record.version_objects()[-1]
    proof = json.loads(proof_path_for(version.model_path).read_text(encoding="utf-8"))
    deadline = time.monotonic() + 60
    records = pull(record)
    while not records and time.monotonic() < deadline:  # SageMaker writes to S3 later
        time.sleep(1)
        records = pull(record)
    assert records, "capture_rate = 1 but nothing was captured"
    # the server writes captured lines a moment after it answers (never during a request),
    # each worker on its own: read until two reads agree, so that `since` below sees all
    settled = time.monotonic() + 10
    while time.monotonic() < settled:
        time.sleep(0.5)
        again = pull(record)
        if len(again) == len(records):
            break
        records = again
    for r in records:
        assert r.columns == proof["columns"]
        assert r.rows and len(r.rows) == r.n == len(r.predictions or [])
        assert all(len(row) == len(proof["columns"]) for row in r.rows)
    # the smoke test sent the proof's rows: they are among those captured (float32 inputs
    # are kept in their own precision), with the predictions the proof expects
    cols = proof["columns"]
    proof_rows = [[r[c] for c in cols] if isinstance(r, dict) else r for r in proof["rows"]]
    expected = dict(zip(map(json.dumps, proof_rows), proof["predictions"], strict=True))
    found = 0
    for r in records:
        for row, pred in zip(r.rows, r.predictions or [], strict=True):
            for text, want in expected.items():
                if _same_row(row, json.loads(text)):
                    assert pred == want
                    found += 1
                    break
    assert found, "none of the proof's rows was captured"
    assert pull(record, since=max(r.t for r in records)) == []


def test_deploy_journals_first_destroy_is_idempotent_teardown_leaves_nothing(
    harness: Harness, models: tuple[Path, Path]
) -> None:
    name = _name(harness, "life")
    profile = harness.profile(models[0], name)
    profile.target.settings.capture_rate = 1.0  # captured requests (issue 24)
    profile.target.settings.capture_max_mb = 5.0
    try:
        record = run_deploy(profile)
        assert record.smoke and record.smoke["passed"]
        assert _client(record).ping()
        if _capture_pullable(harness.kind):
            _check_captured(record)
        # every live resource was written down (create) before anything else was known
        [journal] = [j for j in _journals(name) if j.outcome == "deployed"]
        ops = [(e["op"], (e["resource"]["kind"], e["resource"]["id"]))
               for e in journal.entries() if "resource" in e]  # fmt: skip
        for resource in record.all_resources():
            seen = [op for op, key in ops if key == resource.key]
            assert seen and seen[0] == "create", f"{resource.describe()} was not journaled first"
        # destroy is idempotent: removed once, then "already gone"
        target = get_target(record.target)
        from app.progress import NullProgress

        for resource in reversed(record.resources()):
            assert target.destroy(resource, NullProgress()) is True
            assert target.destroy(resource, NullProgress()) is False
    finally:
        teardown(name)
    _nothing_left(harness, name)


def test_a_failure_after_each_step_leaves_nothing(
    harness: Harness, models: tuple[Path, Path]
) -> None:
    name = _name(harness, "fail")
    profile = harness.profile(models[0], name)
    steps = steps_for(profile)
    for step in steps:

        def fail_after(event: Event, step: str = step) -> None:
            if event.kind == "step_finished" and event.step == step:
                raise InjectedFailure(f"injected after {step}")

        with pytest.raises(InjectedFailure):
            run_deploy(profile, on_event=fail_after)
        _nothing_left(harness, name)


def test_a_cancel_at_each_step_leaves_nothing(harness: Harness, models: tuple[Path, Path]) -> None:
    from app.progress import CancelToken

    name = _name(harness, "cancel")
    profile = harness.profile(models[0], name)
    for step in steps_for(profile):
        cancel = CancelToken()

        def cancel_in(event: Event, step: str = step, cancel: CancelToken = cancel) -> None:
            # cancel once the step has started its work (its first progress report)
            if event.step == step and event.kind in {"progress", "log", "step_finished"}:
                cancel.cancel()

        with pytest.raises(Cancelled):
            run_deploy(profile, on_event=cancel_in, cancel=cancel)
        _nothing_left(harness, name)


def test_a_failing_platform_leaves_nothing(harness: Harness, models: tuple[Path, Path]) -> None:
    name = _name(harness, "platform")
    profile = harness.profile(models[0], name)
    for label, fault in harness.faults.items():
        with fault(), pytest.raises(ModelShipError):
            run_deploy(profile)
        assert harness.leftovers(name) == [], f"{label}: resources left behind"
        assert find_record(name) is None and open_journals(name) == [], label


def test_redeploy_and_rollback_keep_answering(harness: Harness, models: tuple[Path, Path]) -> None:
    import json

    name = _name(harness, "versions")
    first = harness.profile(models[0], name)
    failures: list[str] = []
    stop = threading.Event()
    try:
        v1 = run_deploy(first)
        rows = json.loads(v1.version().proof_path.read_text())["rows"]
        expected_v1 = _predictions(v1, rows)
        target = get_target(v1.target)
        client = _client(v1)

        def poll() -> None:
            while not stop.is_set():
                try:
                    client.ping(timeout=2)
                except Exception as exc:
                    failures.append(str(exc))
                time.sleep(0.05)

        poller = threading.Thread(target=poll, name="conformance-poller")
        poller.start()
        try:
            second = first.model_copy(deep=True)
            second.model.path = models[1]
            v2 = run_deploy(second)
            assert v2.current_version == 2 and v2.smoke["passed"]
            expected_v2 = _predictions(v2, rows)
            back = run_rollback(name)
            assert back.current_version == 1 and back.smoke["passed"]
        finally:
            stop.set()
            poller.join()
        assert _predictions(back, rows) == expected_v1
        assert expected_v1 != expected_v2, "the two model versions should differ on some rows"
        if target.replacement != "stop_old_first":
            assert failures == [], f"the endpoint stopped answering: {failures[:3]}"
    finally:
        teardown(name)
    _nothing_left(harness, name)


def test_stop_and_start_apart_from_delete(harness: Harness, models: tuple[Path, Path]) -> None:
    """Kinds that declare ``stop_start``: stopped, nothing answers; started again, the
    smoke rows get the same predictions; teardown still leaves nothing. Others refuse
    Stop with an error that says how to stop paying/running (teardown)."""
    import json

    from app.endpoint.client import EndpointError, EndpointUnreachable
    from app.errors import UsageError
    from app.run.power import start_deployment, stop_deployment
    from app.store.records import load_record
    from targets.catalog import get_kind

    name = _name(harness, "stop")
    profile = harness.profile(models[0], name)
    try:
        record = run_deploy(profile)
        if not get_kind(harness.kind).can_stop:
            # refused in words that say how to stop it running (and billing): delete it
            with pytest.raises(UsageError, match=r"(?i)tear|delete"):
                stop_deployment(name)
            assert load_record(name).state != "stopped"
            assert _client(record).ping(), "a refused Stop must leave it answering"
            return
        rows = json.loads(record.version().proof_path.read_text())["rows"]
        expected = _predictions(record, rows)
        stopped = stop_deployment(name)
        assert stopped.state == "stopped" and stopped.stopped_at
        assert load_record(name).state == "stopped"
        try:
            answered = _client(stopped).ping(timeout=2)
        except (EndpointError, EndpointUnreachable):
            answered = False
        assert not answered, "a stopped deployment still answers"
        started = start_deployment(name)
        assert started.state == "running" and started.stopped_at is None
        assert _client(started).ping()
        assert _predictions(started, rows) == expected
        with pytest.raises(UsageError):
            stop_deployment(f"{name}-unknown")
    finally:
        teardown(name)
    _nothing_left(harness, name)
