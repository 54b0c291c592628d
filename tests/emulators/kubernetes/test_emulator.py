"""Over 600 lines: the proofs of one emulator against two clients, sharing fixtures.

The Kubernetes emulator against the two real clients a target and a person use: the
official ``kubernetes`` Python client and ``kubectl``. One cluster per module (each
test uses its own names), one small image per session, pushed to the cluster's registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import yaml

from .emulator import wait_until
from .fixtures import Cluster, running_emulator

pytestmark = pytest.mark.integration

TEST_LABEL = "modelship.kubernetes-emulator.test"
SERVER = """
import json, os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def secret():
    try:
        return open("/etc/modelship/key").read()
    except OSError as exc:
        return repr(exc)

def root_writable():
    try:
        open("/root-write-test", "w").close()
        return True
    except OSError:
        return False

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/ping":
            body = b"pong"
        else:
            body = json.dumps({
                "path": self.path,
                "host": socket.gethostname(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "version": os.environ.get("VERSION"),
                "token": os.environ.get("TOKEN"),
                "key_file": secret(),
                "uid": os.getuid(),
                "root_writable": root_writable(),
                "tmp_writable": os.access("/tmp", os.W_OK),
            }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, fmt, *args):
        print("request", self.command, self.path, flush=True)

print("serving version", os.environ.get("VERSION"), flush=True)
ThreadingHTTPServer(("", 8080), Handler).serve_forever()
"""


@pytest.fixture(scope="session")
def echo_image(docker_client, base_image, tmp_path_factory) -> Iterator[str]:
    """One small image: Debian + python3 + an HTTP server on 8080 (removed at the end)."""
    context = tmp_path_factory.mktemp("k8s-image")
    (context / "server.py").write_text(SERVER)
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nCOPY server.py /srv/server.py\n"
        'CMD ["python3", "-u", "/srv/server.py"]\n'
    )
    image, _ = docker_client.images.build(
        path=str(context),
        tag="modelship-k8s-emulator-test:echo",
        labels={TEST_LABEL: "echo"},
        rm=True,
        forcerm=True,
    )
    yield image.id
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        docker_client.images.remove(image.id, force=True)


@pytest.fixture(scope="module")
def cluster(docker_client, echo_image, tmp_path_factory) -> Iterator[Cluster]:
    with running_emulator(tmp_path_factory.mktemp("k8s")) as shared:
        shared.image = shared.push(docker_client, echo_image, "modelship/echo", "v1")
        yield shared


def manifests(
    cluster: Cluster, name: str, version: str = "1", replicas: int = 1, **extra: Any
) -> list[dict]:
    """A Deployment (non-root, read-only root, key as a Secret file and env), its Service
    and Secrets, labelled as a target labels them."""
    labels = {"modelship.managed": "true", "modelship.deployment": name}
    container = {
        "name": "server",
        "image": cluster.image,
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "VERSION", "value": version},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{name}-key", "key": "key"}}},
        ],
        "volumeMounts": [{"name": "key", "mountPath": "/etc/modelship", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/ping", "port": 8080}, "periodSeconds": 1},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
        },
        **extra,
    }
    pull = cluster.pull_secret(f"{name}-pull")
    pull["metadata"]["labels"] = labels
    return [
        pull,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-key", "labels": labels},
            "type": "Opaque",
            "stringData": {"key": f"sk-{name}"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"modelship.deployment": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "progressDeadlineSeconds": 30,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "imagePullSecrets": [{"name": f"{name}-pull"}],
                        "containers": [container],
                        "volumes": [{"name": "key", "secret": {"secretName": f"{name}-key"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": {"modelship.deployment": name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


# ------------------------------------------------------------------ the Python client


@pytest.fixture(scope="module")
def k8s(cluster: Cluster) -> Iterator[Any]:
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(
        config_file=str(cluster.kubeconfig), context=cluster.context
    )
    yield kubernetes, api_client
    api_client.close()


def ssa(api_client: Any, cluster: Cluster, manifest: dict) -> dict:
    """Server-side apply through the dynamic client, field manager modelship."""
    from kubernetes.dynamic import DynamicClient

    resource = DynamicClient(api_client).resources.get(
        api_version=manifest["apiVersion"], kind=manifest["kind"]
    )
    return resource.server_side_apply(
        body=manifest,
        name=manifest["metadata"]["name"],
        namespace=cluster.namespace,
        field_manager="modelship",
    ).to_dict()


def test_python_client_deploys_serves_scales_watches_and_deletes(
    cluster: Cluster, k8s: Any
) -> None:
    kubernetes, api_client = k8s
    from kubernetes.client import ApiException

    apps, core = kubernetes.client.AppsV1Api(api_client), kubernetes.client.CoreV1Api(api_client)
    ns, name = cluster.namespace, "py-echo"
    applied = [ssa(api_client, cluster, m) for m in manifests(cluster, name)]
    deployment = applied[2]
    assert deployment["metadata"]["generation"] == 1 and deployment["metadata"]["uid"]
    assert deployment["metadata"]["managedFields"][0]["manager"] == "modelship"

    # the typed API, as a target calls it: apply again with the same spec changes nothing
    body = manifests(cluster, name)[2]
    again = apps.patch_namespaced_deployment(
        name, ns, body, field_manager="modelship", _content_type="application/apply-patch+yaml"
    )
    assert again.metadata.generation == 1

    def available() -> Any:
        d = apps.read_namespaced_deployment_status(name, ns)
        ok = (
            d.status.observed_generation == d.metadata.generation
            and (d.status.available_replicas or 0) == 1
        )
        return d if ok else None

    ready = wait_until(available, 60)
    assert ready is not None, core.list_namespaced_pod(
        ns, label_selector=f"modelship.deployment={name}"
    )
    conditions = {c.type: c for c in ready.status.conditions}
    assert conditions["Available"].status == "True"
    assert conditions["Progressing"].reason == "NewReplicaSetAvailable"

    pods = core.list_namespaced_pod(
        ns, label_selector=f"modelship.deployment={name},modelship.managed=true"
    )
    assert len(pods.items) == 1
    pod = pods.items[0]
    assert pod.metadata.name.startswith(f"{name}-") and "pod-template-hash" in pod.metadata.labels

    # the services proxy: Authorization is dropped, other headers travel
    raw = core.connect_get_namespaced_service_proxy_with_path(
        f"{name}:http",
        ns,
        "echo/x",
        _preload_content=False,
        _headers={"X-Modelship-Key": "sk-test"},
    )
    reply = json.loads(raw.data)
    assert reply["path"] == "/echo/x"
    assert reply["headers"]["x-modelship-key"] == "sk-test"
    assert "authorization" not in reply["headers"]
    assert cluster.emulator.proxied_headers and all(
        "authorization" not in {k.lower() for k in h} for h in cluster.emulator.proxied_headers
    )
    # env from a Secret, the Secret volume as a file, non-root, read-only root, writable /tmp
    assert (
        reply["version"] == "1"
        and reply["token"] == f"sk-{name}"
        and reply["key_file"] == f"sk-{name}"
    )
    assert (
        reply["uid"] == 10001 and reply["root_writable"] is False and reply["tmp_writable"] is True
    )

    logs = core.read_namespaced_pod_log(pod.metadata.name, ns, container="server", tail_lines=5)
    assert "request GET /echo/x" in logs

    # scale with the scale subresource, watched by label
    watcher = kubernetes.watch.Watch()
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        for event in watcher.stream(
            core.list_namespaced_pod,
            ns,
            label_selector=f"modelship.deployment={name}",
            timeout_seconds=30,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if sum(1 for kind, _ in seen if kind == "ADDED") >= 2:
                watcher.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    scale = apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 2}})
    assert scale.spec.replicas == 2
    assert wait_until(
        lambda: (apps.read_namespaced_deployment(name, ns).status.ready_replicas or 0) == 2, 60
    )
    thread.join(30)
    assert not thread.is_alive()
    assert [kind for kind, _ in seen].count("ADDED") == 2, seen  # the first pod, then the new one

    # the pods proxy reaches one given pod (each pod keeps its own captured requests):
    # POD:PORT, the query kept, Authorization dropped, other headers travel
    names = sorted(
        p.metadata.name
        for p in core.list_namespaced_pod(ns, label_selector=f"modelship.deployment={name}").items
    )
    assert len(names) == 2
    for pod_name in names:
        raw = core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod_name}:8080",
            ns,
            "capture",
            _preload_content=False,
            _headers={"X-Modelship-Key": "sk-test"},
        )
        reply = json.loads(raw.data)
        assert reply["host"] == pod_name and reply["path"] == "/capture"
        assert reply["headers"]["x-modelship-key"] == "sk-test"
        assert "authorization" not in reply["headers"]
    # a query travels (the client's path2 parameter is one)
    raw = core.connect_get_namespaced_pod_proxy_with_path(
        f"{names[0]}:8080", ns, "capture", path2="x", _preload_content=False
    )
    assert json.loads(raw.data)["path"] == "/capture?path=x"
    with pytest.raises(ApiException) as refused:  # a port the pod does not serve
        core.connect_get_namespaced_pod_proxy_with_path(f"{names[0]}:9999", ns, "capture")
    assert refused.value.status == 503
    cluster.emulator.deny("get", "pods/proxy")
    try:
        with pytest.raises(ApiException) as forbidden:
            core.connect_get_namespaced_pod_proxy_with_path(f"{names[0]}:8080", ns, "capture")
        assert forbidden.value.status == 403
        assert json.loads(forbidden.value.body)["kind"] == "Status"
    finally:
        cluster.emulator.allow("get", "pods/proxy")

    # server-side apply: replicas now belong to the scaler, so applying 1 again conflicts
    # (as on a real cluster) unless forced
    with pytest.raises(ApiException) as conflict:
        ssa(api_client, cluster, manifests(cluster, name)[2])
    assert conflict.value.status == 409
    assert ".spec.replicas" in json.loads(conflict.value.body)["message"]

    # errors are Status objects the client raises as ApiException
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", ns)
    assert missing.value.status == 404
    status = json.loads(missing.value.body)
    assert (status["kind"], status["reason"]) == ("Status", "NotFound")
    assert status["message"] == 'deployments.apps "nope" not found'

    # RBAC: a denied verb is both reported by a SelfSubjectAccessReview and refused
    cluster.emulator.deny("create", "horizontalpodautoscalers", "autoscaling")
    try:
        auth = kubernetes.client.AuthorizationV1Api(api_client)
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": ns,
                    "verb": "create",
                    "group": "autoscaling",
                    "resource": "horizontalpodautoscalers",
                }
            },
        }
        assert auth.create_self_subject_access_review(review).status.allowed is False
        review["spec"]["resourceAttributes"]["verb"] = "get"
        assert auth.create_self_subject_access_review(review).status.allowed is True
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 1,
                "maxReplicas": 3,
            },
        }
        with pytest.raises(ApiException) as forbidden:
            kubernetes.client.AutoscalingV2Api(
                api_client
            ).create_namespaced_horizontal_pod_autoscaler(ns, hpa)
        assert forbidden.value.status == 403
        assert json.loads(forbidden.value.body)["reason"] == "Forbidden"
    finally:
        cluster.emulator.allow("create", "horizontalpodautoscalers", "autoscaling")

    # teardown by label: the Deployment, then its pods and containers go
    selector = f"modelship.deployment={name}"
    apps.delete_collection_namespaced_deployment(ns, label_selector=selector)
    core.delete_collection_namespaced_service(ns, label_selector=selector)
    core.delete_collection_namespaced_secret(ns, label_selector=selector)
    assert wait_until(lambda: not core.list_namespaced_pod(ns, label_selector=selector).items, 30)
    assert not core.list_namespaced_secret(ns, label_selector=selector).items
    assert wait_until(lambda: not cluster.emulator.leftovers(), 10)


def test_unauthenticated_requests_get_401_status(cluster: Cluster) -> None:
    import requests

    r = requests.get(f"{cluster.api_url}/api/v1/namespaces", timeout=5, verify=str(cluster.ca_file))
    assert r.status_code == 401
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


# ------------------------------------------------------------------ kubectl


def kubectl_binary() -> str | None:
    """kubectl on PATH, or MODELSHIP_KUBECTL (e.g. to try Debian's 1.20 kubernetes-client)."""
    return os.environ.get("MODELSHIP_KUBECTL") or shutil.which("kubectl")


def kubectl(
    cluster: Cluster, *args: str, timeout: float = 90, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed (Debian package kubernetes-client)")
    result = subprocess.run(
        [
            binary,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--context",
            cluster.context,
            "--cache-dir",
            str(cluster.kubeconfig.parent / "kube-cache"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}{result.stdout}"
    return result


def test_kubectl_apply_rollout_logs_scale_watch_delete(cluster: Cluster, tmp_path: Path) -> None:
    name = "kc-echo"
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(manifests(cluster, name)))
    out = kubectl(
        cluster, "apply", "--server-side", "--field-manager=modelship", "-f", str(path)
    ).stdout
    assert f"deployment.apps/{name} serverside-applied" in out
    assert "secret/kc-echo-key serverside-applied" in out

    rollout = kubectl(cluster, "rollout", "status", f"deployment/{name}", "--timeout=60s").stdout
    assert f'deployment "{name}" successfully rolled out' in rollout

    table = kubectl(cluster, "get", "pods", "-l", f"modelship.deployment={name}").stdout
    assert table.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table.split("\n")[1].split()[1:4] == ["1/1", "Running", "0"]
    kubectl(
        cluster,
        "get",
        "--raw",
        f"/api/v1/namespaces/{cluster.namespace}/services/{name}:http/proxy/hello",
    )
    logs = kubectl(cluster, "logs", f"deployment/{name}", "--tail=3").stdout
    assert "request GET /hello" in logs

    # watch pods by label while scaling to 2: the new pod shows up
    watch = subprocess.Popen(
        [
            kubectl_binary() or "kubectl",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--cache-dir",
            str(cluster.kubeconfig.parent / "kube-cache"),
            "get",
            "pods",
            "-l",
            f"modelship.deployment={name}",
            "--watch",
            "-o",
            "name",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        assert "scaled" in kubectl(cluster, "scale", f"deployment/{name}", "--replicas=2").stdout
        kubectl(cluster, "rollout", "status", f"deployment/{name}", "--timeout=60s")
        names = kubectl(
            cluster, "get", "pods", "-l", f"modelship.deployment={name}", "-o", "name"
        ).stdout.split()
        assert len(names) == 2
        deadline = time.monotonic() + 15
        lines: list[str] = []
        while time.monotonic() < deadline and not set(names) <= set(lines):
            line = watch.stdout.readline().strip()  # type: ignore[union-attr]
            if line:
                lines.append(line)
        assert set(names) <= set(lines), lines
    finally:
        watch.terminate()
        watch.wait(10)

    replicas = kubectl(
        cluster, "get", f"deployment/{name}", "-o", "jsonpath={.status.readyReplicas}"
    ).stdout
    assert replicas == "2"
    cluster.emulator.deny("delete", "secrets")
    try:
        refused = kubectl(cluster, "auth", "can-i", "delete", "secrets", check=False)
        assert (refused.returncode, refused.stdout.strip()) == (1, "no")
    finally:
        cluster.emulator.allow("delete", "secrets")
    assert kubectl(cluster, "auth", "can-i", "delete", "secrets").stdout.strip() == "yes"
    deleted = kubectl(
        cluster, "delete", "deployment,service,secret", "-l", f"modelship.deployment={name}"
    ).stdout
    assert f'deployment.apps "{name}" deleted' in deleted
    assert wait_until(
        lambda: (
            not kubectl(
                cluster, "get", "pods", "-l", f"modelship.deployment={name}", "-o", "name"
            ).stdout.strip()
        ),
        30,
    )
    missing = kubectl(cluster, "get", f"deployment/{name}", check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


# ------------------------------------------------------------------ failures and rollouts


def pod_status(cluster: Cluster, name: str) -> dict:
    pods, _ = cluster.emulator.store.list(
        __import__("tests.emulators.kubernetes.resources", fromlist=["PODS"]).PODS,
        cluster.namespace,
        f"modelship.deployment={name}",
    )
    return pods[0]["status"] if pods else {}


def waiting_reason(cluster: Cluster, name: str) -> str:
    statuses = pod_status(cluster, name).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason", "")


def test_crash_loop_image_pull_and_unschedulable(cluster: Cluster, tmp_path: Path) -> None:
    crash = manifests(cluster, "crash", command=["sh", "-c", "echo boom: no model; exit 3"])
    crash[2]["spec"]["progressDeadlineSeconds"] = 3
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump_all(crash))
    kubectl(cluster, "apply", "--server-side", "--field-manager=modelship", "-f", str(path))
    assert wait_until(lambda: waiting_reason(cluster, "crash") == "CrashLoopBackOff", 30), (
        pod_status(cluster, "crash")
    )
    statuses = pod_status(cluster, "crash")["containerStatuses"][0]
    assert statuses["lastState"]["terminated"]["exitCode"] == 3
    assert wait_until(
        lambda: pod_status(cluster, "crash")["containerStatuses"][0]["restartCount"] >= 2, 30
    )
    pod = kubectl(
        cluster, "get", "pods", "-l", "modelship.deployment=crash", "-o", "name"
    ).stdout.strip()
    assert "boom: no model" in kubectl(cluster, "logs", pod, "--tail=5").stdout
    failed = kubectl(cluster, "rollout", "status", "deployment/crash", "--timeout=30s", check=False)
    assert failed.returncode != 0 and "exceeded its progress deadline" in failed.stderr

    pull = manifests(cluster, "nopull")
    pull[2]["spec"]["template"]["spec"]["containers"][0]["image"] = (
        f"{cluster.registry}/modelship/missing:v1"
    )
    path.write_text(yaml.safe_dump_all(pull))
    kubectl(cluster, "apply", "--server-side", "--field-manager=modelship", "-f", str(path))
    assert wait_until(
        lambda: waiting_reason(cluster, "nopull") in {"ErrImagePull", "ImagePullBackOff"}, 30
    )
    assert wait_until(lambda: waiting_reason(cluster, "nopull") == "ImagePullBackOff", 30)
    big = manifests(cluster, "toobig", resources={"requests": {"cpu": "64", "memory": "1Gi"}})
    path.write_text(yaml.safe_dump_all(big))
    kubectl(cluster, "apply", "--server-side", "--field-manager=modelship", "-f", str(path))

    def unschedulable() -> str:
        conditions = pod_status(cluster, "toobig").get("conditions") or []
        return next((c["message"] for c in conditions if c.get("reason") == "Unschedulable"), "")

    assert "1 Insufficient cpu" in (wait_until(unschedulable, 20) or "")
    for name in ("crash", "nopull", "toobig"):
        kubectl(
            cluster, "delete", "deployment,service,secret", "-l", f"modelship.deployment={name}"
        )


def test_rolling_update_through_the_services_proxy_fails_no_request(
    cluster: Cluster, k8s: Any
) -> None:
    kubernetes, api_client = k8s
    apps, core = kubernetes.client.AppsV1Api(api_client), kubernetes.client.CoreV1Api(api_client)
    ns, name = cluster.namespace, "roll"
    for manifest in manifests(cluster, name, version="1", replicas=2):
        ssa(api_client, cluster, manifest)
    assert wait_until(
        lambda: (apps.read_namespaced_deployment(name, ns).status.available_replicas or 0) == 2, 60
    )

    versions: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                raw = core.connect_get_namespaced_service_proxy_with_path(
                    f"{name}:80", ns, "v", _preload_content=False
                )
                versions.append(json.loads(raw.data)["version"])
            except Exception as exc:  # every failure is the finding
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        ssa(api_client, cluster, manifests(cluster, name, version="2", replicas=2)[2])
        deployment = apps.read_namespaced_deployment(name, ns)
        assert deployment.metadata.generation == 2

        def rolled() -> bool:
            d = apps.read_namespaced_deployment(name, ns)
            s = d.status
            return (
                s.observed_generation == 2
                and s.updated_replicas == 2
                and s.replicas == 2
                and (s.available_replicas or 0) == 2
            )

        assert wait_until(rolled, 90)
        time.sleep(1)
    finally:
        stop.set()
        thread.join(10)
    assert not failures, failures[:5]
    assert versions[0] == "1" and versions[-1] == "2", versions
    apps.delete_namespaced_deployment(name, ns)
    assert wait_until(
        lambda: (
            not core.list_namespaced_pod(ns, label_selector=f"modelship.deployment={name}").items
        ),
        30,
    )


# ------------------------------------------------------------------ KServe, with the fixture


def test_kserve_inferenceservice_in_raw_mode(
    kubernetes_emulator: Cluster, docker_client, echo_image
) -> None:
    """The function-scoped fixture (its teardown proves nothing is left); KServe's API is
    served only once switched on, and a custom predictor container runs and gets a URL."""
    import requests

    cluster = kubernetes_emulator
    headers = {"Authorization": f"Bearer {cluster.token}"}

    def groups() -> list[str]:
        r = requests.get(
            f"{cluster.api_url}/apis", headers=headers, verify=str(cluster.ca_file), timeout=5
        )
        return [g["name"] for g in r.json()["groups"]]

    assert "serving.kserve.io" not in groups()
    cluster.emulator.kserve = True
    assert "serving.kserve.io" in groups()
    cluster.image = cluster.push(docker_client, echo_image, "modelship/echo", "v1")
    ns = cluster.namespace
    manifest = manifests(cluster, "isvc")
    for secret in manifest[:2]:
        kubectl(
            cluster,
            "apply",
            "--server-side",
            "--field-manager=modelship",
            "-f",
            "-",
            stdin=json.dumps(secret),
        )
    pod_spec = manifest[2]["spec"]["template"]["spec"]
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "isvc",
            "labels": {"modelship.managed": "true", "modelship.deployment": "isvc"},
            "annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"},
        },
        "spec": {"predictor": {"minReplicas": 1, **pod_spec}},
    }
    out = kubectl(
        cluster,
        "apply",
        "--server-side",
        "--field-manager=modelship",
        "-f",
        "-",
        stdin=json.dumps(isvc),
    )
    assert "inferenceservice.serving.kserve.io/isvc serverside-applied" in out.stdout

    def ready() -> dict | None:
        got = json.loads(kubectl(cluster, "get", "inferenceservice/isvc", "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        return got if conditions.get("Ready") == "True" else None

    got = wait_until(ready, 60)
    assert got is not None
    assert got["status"]["url"] == f"http://isvc-predictor.{ns}.svc.cluster.local"
    proxied = kubectl(
        cluster, "get", "--raw", f"/api/v1/namespaces/{ns}/services/isvc-predictor:80/proxy/v2"
    )
    assert json.loads(proxied.stdout)["path"] == "/v2"

    kubectl(cluster, "delete", "inferenceservice/isvc")
    assert wait_until(
        lambda: (
            not kubectl(
                cluster,
                "get",
                "pods,deployments,services",
                "-l",
                "modelship.deployment=isvc",
                "-o",
                "name",
            ).stdout.strip()
        ),
        30,
    )
    assert wait_until(lambda: not cluster.emulator.leftovers(), 10)
