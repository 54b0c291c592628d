"""The local target and the pipeline around it, with real server processes.

No mocks: a real scikit-learn model is converted, served by a real
``python -m app.serving`` process, smoke-tested over HTTP, replaced, rolled back and
torn down. Failures are injected for real (a doctored proof, a taken port, a model
that does not load, a cancel) and each test checks that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.domain import ConvertedModel
from app.errors import Cancelled, CredentialError, SmokeTestError, TargetError
from app.paths import data_dir
from app.progress import CancelToken
from app.run import Event, run_deploy, teardown
from app.store.journal import Journal, open_journals
from app.store.profile import new_profile
from app.store.records import find_record
from targets.base import DeployContext
from targets.local.target import LocalTarget, _proc_start_time, is_our_process, port_free

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real classifier saved with joblib (what an analyst hands in)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("models") / "iris.joblib"
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def iris_onnx(iris_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.model.convert import convert_model

    out = tmp_path_factory.mktemp("converted") / "model.onnx"
    convert_model(iris_model, out)
    return out


def serving_pids() -> set[int]:
    """Our serving processes on this machine whose model lies in this test's home."""
    home = os.environ["MODELSHIP_HOME"]
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [c.decode(errors="replace") for c in cmd]
        pid = int(entry.name)
        # the server itself leads its process group; forked workers do not count
        if (
            "app.serving" in args
            and any(a.startswith(home) for a in args)
            and _proc_start_time(pid) is not None
            and os.getpgid(pid) == pid
        ):
            out.add(pid)
    return out


def assert_nothing_left(name: str, port: int) -> None:
    assert serving_pids() == set(), "a server process was left running"
    assert port_free(port), f"port {port} is still taken"
    assert find_record(name) is None
    assert not (data_dir() / "models" / name).exists(), "converted model files were left"
    assert open_journals(name) == [], "a journal was left open"


def predict(url: str, rows: list) -> dict:
    req = urllib.request.Request(
        url + "/predict",
        data=json.dumps(rows).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    """Names to tear down whatever a failing test left."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(Exception):
            teardown(name)


# ---- the target on its own -----------------------------------------------------------


def test_local_target_starts_a_detached_server_and_destroys_it(iris_onnx: Path) -> None:
    port = free_port()
    profile = new_profile(iris_onnx, name="direct", settings={"port": port})
    target = LocalTarget()
    assert target.check(profile, None) == []
    journal = Journal.create("direct")
    ctx = DeployContext(
        profile=profile, name="direct", model=ConvertedModel(iris_onnx), journal=journal
    )
    endpoint = target.deploy(ctx)
    [resource] = endpoint.resources
    try:
        # journaled before it was started, then updated with the pid
        ops = [e["op"] for e in journal.entries()]
        assert ops == ["opened", "create", "update"]
        assert journal.resources()[0].data["pid"] == resource.data["pid"]
        pid = resource.data["pid"]
        assert is_our_process(resource.data)
        # detached: its own session, not our child (it outlives the command)
        assert os.getsid(pid) == pid
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid != os.getpid()
        assert endpoint.url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(endpoint.url + "/ping", timeout=5) as resp:
            assert resp.status == 200
        assert not port_free(port)
        # the port is now taken: a second deploy is refused with the port named
        problems = LocalTarget().check(
            new_profile(iris_onnx, name="other", settings={"port": port}), None
        )
        assert len(problems) == 1
        assert str(port) in problems[0].message and "--port" in problems[0].fix
    finally:
        target.destroy(resource, None)
    assert _proc_start_time(resource.data["pid"]) is None
    assert port_free(port)
    assert not Path(resource.data["log"]).exists()
    target.destroy(resource, None)  # idempotent


def test_a_reused_pid_is_never_killed(iris_onnx: Path) -> None:
    """A record pointing at a pid that now belongs to another program leaves it alone."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        data = {"pid": other.pid, "port": 8080, "model": str(iris_onnx), "log": "/nonexistent"}
        assert not is_our_process(data)
        from app.domain import Resource

        LocalTarget().destroy(Resource("process", "x", data=data), None)
        time.sleep(0.2)
        assert other.poll() is None, "an unrelated process was killed"
    finally:
        other.kill()
        other.wait()


def test_a_model_that_does_not_load_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    port = free_port()
    profile = new_profile(bad, name="broken", settings={"port": port, "start_timeout": 30})
    journal = Journal.create("broken")
    ctx = DeployContext(profile=profile, name="broken", model=ConvertedModel(bad), journal=journal)
    with pytest.raises(TargetError, match="exited while starting") as err:
        LocalTarget().deploy(ctx)
    assert err.value.details  # the server's log tail, for --debug
    [resource] = journal.resources()  # journaled, so the pipeline can clean up
    LocalTarget().destroy(resource, None)
    assert port_free(port)


# ---- the pipeline with the local target ----------------------------------------------


def test_deploy_redeploy_and_teardown_in_process(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("iris")
    events: list[Event] = []
    profile = new_profile(iris_model, name="iris", settings={"port": port})
    record = run_deploy(profile, on_event=events.append)
    started = [e.step for e in events if e.kind == "step_started"]
    assert started == ["intake", "convert", "deploy", "smoke"]
    assert events[-1].kind == "finished"
    assert record.smoke and record.smoke["passed"] and record.smoke["rows"] > 0
    proof = json.loads(record.version().proof_path.read_text())
    answer = predict(record.url, proof["rows"][:3])
    assert answer["predictions"] == proof["predictions"][:3]
    first_pid = record.resources()[0].data["pid"]

    events2: list[Event] = []
    record2 = run_deploy(profile, on_event=events2.append)
    assert record2.current_version == 2
    # the model did not change: its conversion and proof are reused, not redone
    assert any("unchanged since version 1" in e.message for e in events2)
    assert record2.version().conversion == record.version().conversion
    assert record2.version().model_path != record.version().model_path
    new_pid = record2.resources()[0].data["pid"]
    assert new_pid != first_pid
    assert _proc_start_time(first_pid) is None, "the replaced server still runs"
    assert serving_pids() == {new_pid}

    removed = teardown("iris")
    assert any("process" in r for r in removed)
    assert_nothing_left("iris", port)


def _doctor_proof_when(step: str, kind: str = "step_started"):
    """on_event hook that corrupts the proof's expected answers once `step` starts."""

    def hook(event: Event) -> None:
        if event.kind == kind and event.step == step:
            for proof in (data_dir() / "models").rglob("model.proof.json"):
                data = json.loads(proof.read_text())
                labels = data.get("class_labels") or [0, 1, 2]
                data["predictions"] = [
                    labels[(labels.index(p) + 1) % len(labels)] if p in labels else -1
                    for p in data["predictions"]
                ]
                proof.write_text(json.dumps(data))

    return hook


def test_smoke_mismatch_fails_and_rolls_back(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("mismatch")
    profile = new_profile(iris_model, name="mismatch", settings={"port": port})
    with pytest.raises(SmokeTestError) as err:
        run_deploy(profile, on_event=_doctor_proof_when("smoke"))
    msg = err.value.message
    assert "smoke test failed" in msg and "0 of" in msg
    assert "Rolled back" in msg and "process modelship-mismatch-v1" in msg
    assert_nothing_left("mismatch", port)


def test_keep_on_failure_keeps_it_for_debugging(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("kept")
    profile = new_profile(iris_model, name="kept", settings={"port": port})
    with pytest.raises(SmokeTestError, match="kept for debugging"):
        run_deploy(profile, on_event=_doctor_proof_when("smoke"), keep_on_failure=True)
    record = find_record("kept")
    assert record is not None and record.state == "failed"
    assert not record.smoke["passed"]
    with urllib.request.urlopen(record.url + "/ping", timeout=5) as resp:
        assert resp.status == 200
    teardown("kept")
    assert_nothing_left("kept", port)


def test_failed_redeploy_brings_the_old_one_back(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("keepold")
    profile = new_profile(iris_model, name="keepold", settings={"port": port})
    first = run_deploy(profile)
    with pytest.raises(SmokeTestError) as err:
        # corrupt only the NEW version's proof (v2), once its files exist
        def hook(event: Event) -> None:
            if event.kind == "step_started" and event.step == "smoke":
                proof = data_dir() / "models" / "keepold" / "v2" / "model.proof.json"
                data = json.loads(proof.read_text())
                data["predictions"] = [99 for _ in data["predictions"]]
                proof.write_text(json.dumps(data))

        run_deploy(profile, on_event=hook)
    assert "previous version (1) runs again" in err.value.message
    record = find_record("keepold")
    assert record.current_version == 1
    assert [v["version"] for v in record.versions] == [1]
    pid = record.resources()[0].data["pid"]
    assert pid != first.resources()[0].data["pid"]  # restarted
    assert serving_pids() == {pid}
    with urllib.request.urlopen(record.url + "/ping", timeout=5) as resp:
        assert resp.status == 200
    assert not (data_dir() / "models" / "keepold" / "v2").exists()
    teardown("keepold")
    assert_nothing_left("keepold", port)


def test_cancel_while_the_server_starts_removes_it(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("cancelme")
    cancel = CancelToken()

    def hook(event: Event) -> None:
        if event.kind == "progress" and event.message.startswith("Starting the server"):
            cancel.cancel()

    profile = new_profile(iris_model, name="cancelme", settings={"port": port})
    with pytest.raises(Cancelled) as err:
        run_deploy(profile, on_event=hook, cancel=cancel)
    msg = err.value.message
    assert msg.startswith("Cancelled while deploying")
    assert "process modelship-cancelme-v1" in msg and "files of version 1" in msg
    assert_nothing_left("cancelme", port)


def test_cancel_during_conversion(iris_model: Path, cleanup: list[str]) -> None:
    port = free_port()
    cleanup.append("cancelconv")
    cancel = CancelToken()

    def hook(event: Event) -> None:
        if event.step == "convert" and event.kind == "progress":
            cancel.cancel()

    profile = new_profile(iris_model, name="cancelconv", settings={"port": port})
    with pytest.raises(Cancelled, match="Cancelled while converting"):
        run_deploy(profile, on_event=hook, cancel=cancel)
    assert_nothing_left("cancelconv", port)


def test_rollback_goes_back_one_version(iris_model: Path, cleanup: list[str]) -> None:
    from app.run import run_rollback

    port = free_port()
    cleanup.append("rb")
    profile = new_profile(iris_model, name="rb", settings={"port": port})
    with pytest.raises(TargetError, match="no earlier version"):
        run_deploy(profile)
        run_rollback("rb")
    run_deploy(profile)
    record = run_rollback("rb")
    assert record.current_version == 1
    assert record.smoke["passed"]
    assert "Rolled back from version 2 to version 1" in record.message
    assert len(serving_pids()) == 1
    teardown("rb")
    assert_nothing_left("rb", port)


def test_api_key_from_the_keyring_is_required_and_never_written(
    iris_model: Path, cleanup: list[str]
) -> None:
    from app.store import secrets

    port = free_port()
    cleanup.append("locked")
    secret = "k3y-" + "x" * 20
    profile = new_profile(
        iris_model, name="locked", settings={"port": port, "api_key": "locked-key"}
    )
    # no secret stored yet: preflight says so before anything is created, as a missing
    # credential (exit code 6), not a target failure
    with pytest.raises(CredentialError, match="no secret named 'locked-key'") as missing:
        run_deploy(profile)
    assert missing.value.exit_code == 6
    secrets.set_secret("locked-key", secret)
    record = run_deploy(profile)  # the smoke test sends the key
    assert record.smoke["passed"]
    proof = json.loads(record.version().proof_path.read_text())
    with pytest.raises(urllib.error.HTTPError) as err:
        predict(record.url, proof["rows"][:1])
    assert err.value.code == 401
    req = urllib.request.Request(
        record.url + "/predict",
        data=json.dumps(proof["rows"][:1]).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    # the key is in no file we wrote (record, journal, log, profile)
    for path in Path(os.environ["MODELSHIP_HOME"]).rglob("*"):
        if path.is_file() and path.suffix in {".json", ".jsonl", ".log", ".toml"}:
            assert secret not in path.read_text(errors="replace"), path
    pid = record.resources()[0].data["pid"]
    assert secret not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    teardown("locked")
    assert_nothing_left("locked", port)


def _tensor_onnx(path: Path) -> Path:
    """A tiny tensor model (input [batch, 1, 2, 2]) built directly with onnx."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2) / 10, "W")
    shape = numpy_helper.from_array(np.array([-1, 4], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["y"]),
        ],
        "tensor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("kind", ["tabular", "tensor"])
def test_onnx_input_without_expected_answers_is_checked_for_answers(
    kind: str, iris_onnx: Path, tmp_path: Path, cleanup: list[str]
) -> None:
    """An ONNX file has no original to compare with: the smoke test checks it answers."""
    model = iris_onnx if kind == "tabular" else _tensor_onnx(tmp_path / "tensor.onnx")
    port = free_port()
    name = f"onnx-{kind}"
    cleanup.append(name)
    record = run_deploy(new_profile(model, name=name, settings={"port": port}))
    smoke = record.smoke
    assert smoke["passed"] and smoke["compared"] is False
    assert smoke["matching"] == smoke["rows"] == 2
    assert "no expected answers to compare with" in smoke["summary"]
    teardown(name)
    assert_nothing_left(name, port)


def test_a_server_whose_pid_was_never_written_down_is_still_found(iris_onnx: Path) -> None:
    """kill -9 between starting the server and journaling its pid: the journaled command
    line is enough for teardown to find and stop it, and free its port."""
    from app.run import teardown as run_teardown
    from targets.local.settings import LocalSettings
    from targets.local.target import _serving_argv, _spawn_detached, run_dir, server_env

    port = free_port()
    journal = Journal.create("orphan", target="local")
    model = str(iris_onnx.resolve())
    argv = _serving_argv(model, port, 1)
    log = run_dir("orphan") / "server-v1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    from app.domain import Resource

    journal.record(
        Resource(
            "process",
            "modelship-orphan-v1",
            data={"port": port, "model": model, "log": str(log), "argv": argv, "pid": None},
        )
    )
    pid = _spawn_detached(argv, log, server_env(LocalSettings()), log.parent)
    deadline = time.monotonic() + 60
    while port_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_free(port) and _proc_start_time(pid) is not None
    removed = run_teardown("orphan")
    assert any("modelship-orphan-v1" in r for r in removed), removed
    assert _proc_start_time(pid) is None
    assert port_free(port)


def test_the_shells_modelship_variables_do_not_reach_the_server(
    iris_model: Path, cleanup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API key exported in the user's shell would make the server demand a key the
    smoke test does not send, and the shell's cloud credentials have no business in a
    process that answers the network: the deployment's environment is made explicitly
    (PATH, locale, proxy settings; nothing else from the shell)."""
    monkeypatch.setenv("MODELSHIP_API_KEY", "from-the-shell")
    monkeypatch.setenv("MODELSHIP_MAX_ROWS", "1")
    leaks = {
        "AWS_ACCESS_KEY_ID": "AKIASHELLLEAK",
        "AWS_SECRET_ACCESS_KEY": "shell-secret",
        "AWS_SESSION_TOKEN": "shell-token",
        "OS_PASSWORD": "shell-os-password",
        "OS_APPLICATION_CREDENTIAL_SECRET": "shell-os-secret",
        "HEROKU_API_KEY": "shell-heroku-key",
        "GITHUB_TOKEN": "shell-github-token",
        "PYTHONPATH": "/somewhere/else",
    }
    for k, v in leaks.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    port = free_port()
    cleanup.append("clean-env")
    record = run_deploy(new_profile(iris_model, name="clean-env", settings={"port": port}))
    assert record.smoke["passed"]
    pid = record.resources()[0].data["pid"]
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [e for e in env if e.startswith(b"MODELSHIP_")]
    names = {e.partition(b"=")[0].decode() for e in env if e}
    assert not names & set(leaks), names & set(leaks)
    assert not [e for e in env if any(v.encode() in e for v in leaks.values())]
    assert {"PATH", "HTTPS_PROXY", "NO_PROXY", "LC_ALL"} <= names, names
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TEMP", "TMP", "LANG", "LANGUAGE",
               "TZ", "PYTHONUNBUFFERED", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
               "http_proxy", "https_proxy", "no_proxy", "all_proxy"}  # fmt: skip
    assert names - allowed <= {n for n in names if n.startswith("LC_")}, names - allowed
    proof = json.loads(record.version().proof_path.read_text())
    assert len(predict(record.url, proof["rows"][:3])["predictions"]) == 3  # no 1-row cap


def test_the_printed_try_it_line_answers(
    iris_model: Path, cleanup: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`modelship deploy` prints a curl line that, pasted into a shell, gets the model's
    answer: the right URL and path, and the endpoint's key from the keyring entry the
    profile names (`keyring get modelship NAME`, here a stand-in for keyring's own CLI
    that knows this test's in-memory entry); never the key itself."""
    from app.cli import main
    from app.store.profile import save_profile
    from app.store.secrets import set_secret

    secret = "k3y-for-the-curl-line"
    set_secret("try-it-key", secret)
    port = free_port()
    cleanup.append("try-it")
    save_profile(
        new_profile(iris_model, name="try-it", settings={"port": port, "api_key": "try-it-key"})
    )
    assert main(["deploy", "try-it"]) == 0
    out = capsys.readouterr().out
    assert secret not in out
    [line] = [x for x in out.splitlines() if x.startswith("Try it:")]
    curl = line.removeprefix("Try it:").strip()
    assert curl.startswith(f"curl -s -X POST http://127.0.0.1:{port}/predict ")
    assert "$(keyring get modelship try-it-key)" in curl

    def run_in_shell(key: str) -> subprocess.CompletedProcess[str]:
        bindir = tmp_path / f"bin-{len(key)}"
        bindir.mkdir()
        fake = bindir / "keyring"
        fake.write_text(
            '#!/bin/sh\n[ "$*" = "get modelship try-it-key" ] || exit 1\n'
            f"printf '%s\\n' '{key}'\n"
        )
        fake.chmod(0o755)
        env = {"PATH": f"{bindir}:{os.environ['PATH']}", "NO_PROXY": "*"}
        return subprocess.run(
            ["bash", "-c", curl + " -w '\\n%{http_code}'"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    answered = run_in_shell(secret)
    body, _, code = answered.stdout.rpartition("\n")
    assert code == "200", (answered.stdout, answered.stderr)
    proof = json.loads(find_record("try-it").version().proof_path.read_text())
    assert json.loads(body)["predictions"] == proof["predictions"][:1]
    refused = run_in_shell("not-the-key")  # the key the line fetches is what lets it in
    assert refused.stdout.rpartition("\n")[2] == "401"
    teardown("try-it")
