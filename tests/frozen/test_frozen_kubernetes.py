"""The packaged executable deploys to a Kubernetes cluster (issue 23): the official
``kubernetes`` client is bundled (build/bundle.py) though the target imports it lazily.

The API emulator runs as its own process (``python -m tests.emulators.kubernetes``), as
the bundle would meet a cluster: over HTTPS, addressed by the kubeconfig it writes
(``KUBECONFIG``); the image goes to the test registry and the emulator's kubelet pulls
it from there. The endpoint is reached through the API server's services proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, docker_available, require
from tests.frozen.test_frozen_app import EXE, run

pytestmark = [pytest.mark.integration, pytest.mark.frozen]


@pytest.fixture(scope="module")
def exe() -> Path:
    require(EXE.is_file(), f"the packaged executable {EXE} (python build/build.py)")
    return EXE


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    require(docker_available(), "Docker Engine")
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.kubernetes", "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.terminate()
        proc.wait(60)


def _left(kubeconfig: str, namespace: str) -> list[str]:
    """What of ModelShip's is still in the namespace, and any pod at all."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    try:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        mine = "modelship.managed=true"
        left = [f"pod {p.metadata.name}" for p in core.list_namespaced_pod(namespace).items]
        left += [
            f"deployment {d.metadata.name}"
            for d in apps.list_namespaced_deployment(namespace, label_selector=mine).items
        ]
        left += [
            f"service {s.metadata.name}"
            for s in core.list_namespaced_service(namespace, label_selector=mine).items
        ]
        left += [
            f"secret {s.metadata.name}"
            for s in core.list_namespaced_secret(namespace, label_selector=mine).items
        ]
        return left
    finally:
        api.close()


def test_headless_deploy_to_kubernetes_through_the_proxy_then_teardown(
    exe: Path, cluster: dict, base_image: str, tmp_path: Path
) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from app.store.profile import Profile, save_profile

    registry = os.environ.get("MODELSHIP_TEST_REGISTRY", "127.0.0.1:5055")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    model = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model)
    save_profile(
        Profile.model_validate(
            {
                "schema": 2,
                "name": "frozen-k8s",
                "model": {"path": str(model)},
                "target": {
                    "kind": "kubernetes",
                    "settings": {
                        "namespace": cluster["namespace"],
                        "mode": "deployment",
                        "registry": f"{registry}/frozen",
                        "start_timeout": 180,
                    },
                },
                "image": {"base_image": base_image},
            }
        )
    )
    # the cluster's API server and the registry are confirmed with the bundle's own
    # command, as a person would before ModelShip sends them a credential
    for address in (cluster["api_url"], registry):
        allowed = run(exe, "hosts", "allow", address)
        assert allowed.returncode == 0, allowed.stderr
    env = {"KUBECONFIG": cluster["kubeconfig"]}

    dry = run(exe, "deploy", "frozen-k8s", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert "kind: Deployment" in dry.stdout and "modelship.deployment: frozen-k8s" in dry.stdout
    assert _left(cluster["kubeconfig"], cluster["namespace"]) == []  # a dry run made nothing

    deployed = run(exe, "deploy", "frozen-k8s", "--json", timeout=600, **env)
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    record = json.loads(deployed.stdout)
    assert record["smoke"]["passed"] is True
    assert "/services/" in record["endpoint"]["url"] and "/proxy" in record["endpoint"]["url"]

    status = run(exe, "status", "frozen-k8s", "--json", **env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["answering"] is True
    torn = run(exe, "teardown", "frozen-k8s", **env)
    assert torn.returncode == 0, torn.stderr
    assert _left(cluster["kubeconfig"], cluster["namespace"]) == []
