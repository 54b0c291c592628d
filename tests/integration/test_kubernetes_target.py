"""The kubernetes target, beyond the conformance suite, against the Kubernetes API
emulator (tests/emulators/kubernetes): `modelship deploy PROFILE` through the CLI's own
code reaching a smoke-tested endpoint through the API server's services proxy; status,
logs, stop/start, a rolling redeploy under traffic, rollback and a teardown that leaves
nothing; a Forbidden preflight naming the verb and resource."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from app.cli import main
from app.domain import ConvertedModel, PushedImage
from app.errors import TargetError
from app.progress import RecordingProgress
from app.store.journal import Journal
from app.store.profile import save_profile
from app.store.secrets import get_secret
from targets.base import DeployContext
from targets.kubernetes.target import KubernetesTarget
from tests.conformance.harnesses.kubernetes import (
    ENDPOINT_KEY,
    PULL_KEY,
    kubernetes_leftovers,
    kubernetes_profile,
    store_keys,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    path = tmp_path_factory.mktemp("k8s-model") / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    return path


def test_cli_deploy_status_logs_stop_start_rolling_redeploy_rollback_teardown(
    kubernetes_emulator, docker_client, base_image, model, capsys
) -> None:
    from app.store.records import load_record
    from targets.catalog import get_target

    cluster = kubernetes_emulator
    name = "k8s-cli"
    store_keys(cluster)
    profile = kubernetes_profile(cluster, model, name, base_image)
    save_profile(profile)
    target = get_target("kubernetes")
    try:
        assert main(["deploy", name]) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert "/services/" in out and "/proxy" in out and "Smoke test" in out
        assert cluster.token not in out + err
        # the proxy consumed the cluster credential; the endpoint key came as X-ModelShip-Key
        sent = cluster.emulator.proxied_headers[-1]
        assert "Authorization" not in sent and "authorization" not in sent
        assert any(k.lower() == "x-modelship-key" for k in sent)
        record = load_record(name)
        assert record.endpoint_obj() is not None
        assert cluster.token not in json.dumps(record.to_dict())  # never recorded

        assert main(["status", name, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert "1 of 1 pods ready" in json.dumps(status)
        assert main(["logs", name]) == 0
        assert capsys.readouterr().out.strip()

        assert main(["stop", name]) == 0
        assert target.status(load_record(name)).running is False
        assert main(["start", name]) == 0
        capsys.readouterr()
        client = target.client(load_record(name).endpoint_obj(), profile)
        assert client.ping()

        # a rolling redeploy under ~20 requests a second through the proxy: no failure
        failures: list[str] = []
        sent_count = [0]
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    if not client.ping():
                        failures.append("ping false")
                except Exception as exc:  # any failure counts
                    failures.append(repr(exc))
                sent_count[0] += 1
                time.sleep(0.05)

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        try:
            assert main(["deploy", name]) == 0, capsys.readouterr().err
            assert main(["rollback", name]) == 0, capsys.readouterr().err
        finally:
            stop.set()
            thread.join(10)
        assert sent_count[0] > 20
        assert failures == []
    finally:
        assert main(["teardown", name]) == 0
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def test_a_forbidden_preflight_names_the_verb_and_resource(
    kubernetes_emulator, base_image, model, capsys
) -> None:
    cluster = kubernetes_emulator
    store_keys(cluster)
    save_profile(kubernetes_profile(cluster, model, "k8s-denied", base_image))
    cluster.emulator.deny("create", "deployments", "apps")
    assert main(["deploy", "k8s-denied"]) != 0
    err = capsys.readouterr().err
    assert "create deployments" in err and "Forbidden" in err
    assert [k for k in cluster.emulator.store.objects if k[0] != "namespaces"] == []


def test_pods_no_node_has_room_for_are_explained_and_nothing_is_left(
    kubernetes_emulator, docker_client, base_image, model, capsys
) -> None:
    """Requests larger than any node (the emulator's has 4 CPUs): the pods stay Pending,
    Unschedulable; the deploy says so in plain words and removes what it made."""
    cluster = kubernetes_emulator
    store_keys(cluster)
    name = "k8s-too-big"
    save_profile(kubernetes_profile(cluster, model, name, base_image, cpu="8"))
    assert main(["deploy", name]) != 0
    err = capsys.readouterr().err
    assert "no node has room for the pods" in err and "Insufficient cpu" in err, err
    assert "lower CPU or memory per pod" in err
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def test_status_and_dashboard_show_the_autoscalers_figure(
    kubernetes_emulator, docker_client, base_image, model, capsys
) -> None:
    """max_replicas > replicas: a HorizontalPodAutoscaler. With no metrics server (the
    emulator's default, like a bare cluster) status says the pods ready/desired and the
    autoscaler's current/desired figure, and that CPU use is not measured; once CPU use is
    reported (90% of the request against the 70% target) the autoscaler adds the second
    pod, and status and the dashboard's snapshot show it. Stopping scales to 0 and the
    autoscaler leaves it there."""
    from app.endpoint.dashboard import snapshot

    cluster = kubernetes_emulator
    name = "k8s-hpa"
    store_keys(cluster)
    save_profile(kubernetes_profile(cluster, model, name, base_image, max_replicas=2))

    def status(answering: bool = True) -> dict:
        code = main(["status", name, "--json"])  # 1 when it does not answer
        assert code == (0 if answering else 1)
        return json.loads(capsys.readouterr().out)

    try:
        assert main(["deploy", name]) == 0, capsys.readouterr().err
        capsys.readouterr()
        kinds = {k[0] for k in cluster.emulator.store.objects}
        assert any("horizontalpodautoscalers" in k for k in kinds), kinds
        deadline = time.monotonic() + 30
        while "autoscaler: 1 pod now, 1 wanted" not in (row := status())["detail"]:
            assert time.monotonic() < deadline, row
            time.sleep(0.5)
        assert "1 of 1 pods ready" in row["detail"], row
        assert "(between 1 and 2)" in row["detail"], row
        assert "CPU use not measured (FailedGetResourceMetric)" in row["detail"], row

        cluster.emulator.controllers.cpu_percent = 90
        deadline = time.monotonic() + 90
        while "2 of 2 pods ready" not in (row := status())["detail"]:
            assert time.monotonic() < deadline, row
            time.sleep(1)
        assert "autoscaler: 2 pods now, 2 wanted (between 1 and 2)" in row["detail"], row
        assert "CPU 90% of the request against a 70% target" in row["detail"], row
        assert row["answering"] is True
        snap = snapshot(name)
        assert "2 of 2 pods ready" in snap.detail, snap.detail
        assert "CPU 90% of the request against a 70% target" in snap.detail, snap.detail

        assert main(["stop", name]) == 0
        capsys.readouterr()
        time.sleep(1)  # a few autoscaler periods: it must not scale a stopped one back up
        row = status(answering=False)
        assert "0 of 0 pods ready" in row["detail"] and "off while scaled to 0" in row["detail"]
        assert row["running"] is False, row
    finally:
        assert main(["teardown", name]) == 0
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def _deploy_fails_and_rolls_back(
    cluster, profile, pushed: PushedImage, model: Path
) -> tuple[TargetError, float]:
    """``deploy`` through the real target; then what the pipeline's rollback does
    (app.run.attempt.Attempt.undo: remove each journaled resource, newest first). The
    error and how long the deploy took to give up."""
    from app.run.resources import remove

    target = KubernetesTarget()
    journal = Journal.create(profile.name, target="kubernetes")
    ctx = DeployContext(
        profile=profile,
        name=profile.name,
        model=ConvertedModel(model),
        journal=journal,
        pushed=pushed,
        progress=RecordingProgress(),
    )
    started = time.monotonic()
    with pytest.raises(TargetError) as info:
        target.deploy(ctx)
    took = time.monotonic() - started
    assert journal.resources(), "the target journals before it applies"
    for resource in reversed(journal.resources()):
        remove(resource, "kubernetes", profile, RecordingProgress())
    journal.close("failed")
    return info.value, took


def test_an_image_the_cluster_cannot_pull_is_named_with_what_to_check(
    kubernetes_emulator, docker_client, base_image, model, tmp_path
) -> None:
    """ImagePullBackOff: the pods ask the (real, authenticated) registry for a digest it
    does not hold. The deploy stops at the kubelet's back-off, not at the start timeout,
    names the image and why, says what to check, and the rollback leaves nothing."""
    cluster = kubernetes_emulator
    store_keys(cluster)
    name = "k8s-nopull"
    profile = kubernetes_profile(cluster, model, name, base_image, start_timeout=120)
    missing = "sha256:" + "0" * 64
    pushed = PushedImage(f"{cluster.registry}/modelship/{name}", "v1", missing)
    err, took = _deploy_fails_and_rolls_back(cluster, profile, pushed, tmp_path / "model.onnx")
    assert f"cannot pull the image {pushed.ref}" in err.message, err.message
    assert f"the registry {cluster.registry} does not have it" in err.message, err.message
    assert "ImagePullBackOff" in err.message and "manifest unknown" in err.message
    assert err.hint and f"Check that {cluster.registry} still holds the image" in err.hint, err.hint
    assert took < 60, f"gave up after {took:.0f} s, not at the back-off"
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def test_a_wrong_pull_login_is_named_as_the_credential_to_check(
    kubernetes_emulator, docker_client, base_image, model, tmp_path
) -> None:
    """ImagePullBackOff because the registry refuses the pull secret's login."""
    from app.store.secrets import set_secret

    cluster = kubernetes_emulator
    store_keys(cluster)
    set_secret(PULL_KEY, "_:not-the-password")
    name = "k8s-badlogin"
    profile = kubernetes_profile(cluster, model, name, base_image, start_timeout=120)
    pushed = PushedImage(f"{cluster.registry}/modelship/{name}", "v1", "sha256:" + "1" * 64)
    err, _ = _deploy_fails_and_rolls_back(cluster, profile, pushed, tmp_path / "model.onnx")
    assert f"the registry {cluster.registry} refused the cluster's login" in err.message, (
        err.message
    )
    assert err.hint and PULL_KEY in err.hint and "Registry credential" in err.hint, err.hint
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def test_a_server_that_keeps_crashing_shows_its_last_log_lines(
    kubernetes_emulator, docker_client, base_image, builder, rf_model, model, tmp_path
) -> None:
    """CrashLoopBackOff: the real serving image with a model file its runtime cannot load
    (built like test_docker_target's crash test, cached layers but the model's), pushed to
    the cluster's registry. The deploy stops at the first back-off with the exit code and
    the server's own last log lines, and the rollback leaves nothing."""
    from app.image.image import remove_image
    from app.progress import CancelToken

    cluster = kubernetes_emulator
    store_keys(cluster)
    name = "k8s-crash"
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not an ONNX model")
    (tmp_path / "model.signature.json").write_text(rf_model.signature_path.read_text())
    _, image = builder.build(name, bad)
    profile = kubernetes_profile(cluster, model, name, base_image, start_timeout=120)
    try:
        pushed = (
            KubernetesTarget()
            .registry(profile)
            .push(image, "v1", RecordingProgress(), CancelToken())
        )
        err, took = _deploy_fails_and_rolls_back(cluster, profile, pushed, bad)
    finally:
        remove_image(docker_client, image.id)
    assert "keeps crashing (CrashLoopBackOff)" in err.message, err.message
    assert "it exited with code" in err.message and "Its last log lines:" in err.message
    shown = err.message.split("Its last log lines:", 1)[1]
    assert "model" in shown.lower() and shown.strip(), shown  # the server's own words
    assert err.details and shown.strip().splitlines()[-1].strip() in err.details
    assert err.hint and "deploy again" in err.hint, err.hint
    assert took < 90, f"gave up after {took:.0f} s, not at the back-off"
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def test_kserve_mode_reaches_a_smoke_tested_endpoint_and_tears_down(
    kubernetes_emulator, docker_client, base_image, model, capsys
) -> None:
    cluster = kubernetes_emulator
    cluster.emulator.kserve = True
    name = "k8s-kserve"
    store_keys(cluster)
    save_profile(kubernetes_profile(cluster, model, name, base_image, mode="auto"))
    try:
        assert main(["deploy", name]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "Smoke test" in out and "/proxy" in out
        kinds = {k[0] for k in cluster.emulator.store.objects}
        assert any("inferenceservices" in k for k in kinds), kinds
        # the Try-it snippet works as printed: kubectl proxy signs in with the kubeconfig,
        # curl sends the key as X-ModelShip-Key (the keyring read and the port aside)
        _run_the_snippet(name)
        # status reads the pods of KServe's predictor Deployment
        assert main(["status", name, "--json"]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["answering"] is True and "1 of 1 pods ready" in row["detail"], row
        # KServe keeps its pods running: stop says so and what to do instead
        assert main(["stop", name]) != 0
        err = capsys.readouterr().err
        assert "KServe InferenceService" in err and "modelship teardown k8s-kserve" in err
    finally:
        assert main(["teardown", name]) == 0
    assert kubernetes_leftovers(cluster, docker_client, name) == []


def _run_the_snippet(name: str) -> None:
    """The snippet's commands, run by bash with the real kubectl and curl."""
    import shutil
    import socket
    import subprocess

    from app.store.records import find_record
    from targets import get_kind
    from targets.calling import KUBECTL_PROXY_PORT

    record = find_record(name)
    kind = get_kind("kubernetes")
    settings = kind.Settings.model_validate(record.profile["target"]["settings"])
    snippets = kind.call_snippets(record.endpoint_obj(), settings, [[0.1, 0.2, 0.3, 0.4]])
    assert snippets.shell_title == "kubectl proxy + curl"
    assert shutil.which("kubectl"), "kubectl (Debian's kubernetes-client)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = "\n".join(snippets.commands)
    script = script.replace(f"--port={KUBECTL_PROXY_PORT}", f"--port={port}")
    script = script.replace(f"127.0.0.1:{KUBECTL_PROXY_PORT}", f"127.0.0.1:{port}")
    key = get_secret(ENDPOINT_KEY)  # what `keyring get` prints (the tests' keyring is in memory)
    script = script.replace(f"$(keyring get modelship {ENDPOINT_KEY})", key)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert '"predictions"' in out.stdout, (out.stdout, out.stderr)


def test_captured_requests_are_read_from_every_pod(
    kubernetes_emulator, docker_client, base_image, model, capsys
) -> None:
    """replicas = 2 and capture_rate = 1: the Service hands each request to one pod, and
    each pod keeps its own files. A pull reads every Ready pod through the pods proxy, so
    every request sent is there, from both pods, in time order. Without ``get
    pods/proxy`` the preflight names that permission."""
    from app.endpoint.capture import parse_lines
    from app.run.monitor import pull
    from app.store.records import load_record
    from targets.kubernetes.client import cluster as connect
    from targets.kubernetes.target import _pod_port, settings_of

    cluster = kubernetes_emulator
    name = "k8s-capture"
    store_keys(cluster)
    profile = kubernetes_profile(
        cluster, model, name, base_image, replicas=2, capture_rate=1, capture_max_mb=5
    )
    save_profile(profile)
    cluster.emulator.deny("get", "pods/proxy")
    assert main(["deploy", name]) != 0
    err = capsys.readouterr().err
    assert "get pods/proxy" in err and "captured requests" in err, err
    cluster.emulator.allow("get", "pods/proxy")
    try:
        assert main(["deploy", name]) == 0, capsys.readouterr().err
        capsys.readouterr()
        record = load_record(name)
        client = KubernetesTarget().client(record.endpoint_obj(), profile)
        sent = [[1000.0 + i, 0.5, -0.5, 2.0] for i in range(12)]
        for row in sent:
            client.predict([row])
        wanted = {row[0] for row in sent}

        def seen() -> set[float]:
            return {r.rows[0][0] for r in pull(record) if r.rows and r.rows[0][0] >= 1000}

        deadline = time.monotonic() + 20
        while (got := seen()) != wanted:  # the server writes a moment after it answers
            assert time.monotonic() < deadline, sorted(wanted - got)
            time.sleep(0.3)
        times = [r.t for r in pull(record)]
        assert times == sorted(times)
        # both pods served some of them, and each keeps only its own
        s = settings_of(profile)
        key = get_secret(ENDPOINT_KEY)
        with connect(s) as c:
            pods = c.list("v1", "Pod", {"modelship.deployment": name})
            per_pod = [
                c.pod_proxy_get(
                    p["metadata"]["name"], _pod_port(p), "capture", None, {"X-ModelShip-Key": key}
                )
                for p in pods
            ]
        assert len(per_pod) == 2 and all(status == 200 for status, _ in per_pod)
        counts = [
            sum(1 for r in parse_lines(body) if r.rows and r.rows[0][0] >= 1000)
            for _, body in per_pod
        ]
        assert all(counts) and sum(counts) == len(sent), counts
    finally:
        cluster.emulator.allow("get", "pods/proxy")
        assert main(["teardown", name]) == 0
    assert kubernetes_leftovers(cluster, docker_client, name) == []
