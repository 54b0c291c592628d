"""Conformance harness: the kubernetes target against the Kubernetes API emulator.

The emulator (tests/emulators/kubernetes) serves the API over HTTPS with a bearer token,
runs pods as Docker containers and pulls from an authenticated registry, so "nothing
left" is checked there: objects labelled with the deployment's name, pod containers;
and on this computer: images the pipeline built, the model files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.harnesses.base import Harness

ENDPOINT_KEY = "conformance-k8s-endpoint-key"
PULL_KEY = "conformance-k8s-registry"


def kubernetes_profile(cluster: Any, model: Path, name: str, base_image: str, **settings: Any):
    """A deployable kubernetes profile for the emulated ``cluster``."""
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 2,
            "name": name,
            "model": {"path": str(model)},
            "target": {
                "kind": "kubernetes",
                "settings": {
                    "kubeconfig": str(cluster.kubeconfig),
                    "context": cluster.context,
                    "namespace": cluster.namespace,
                    "mode": "deployment",
                    "registry": f"{cluster.registry}/modelship",
                    "pull_secret": PULL_KEY,
                    "api_key": ENDPOINT_KEY,
                    "start_timeout": 180,
                    **settings,
                },
            },
            "image": {"base_image": base_image},
        }
    )


def store_keys(cluster: Any) -> None:
    from app.store.secrets import set_secret

    auth = cluster.registry_auth
    set_secret(PULL_KEY, f"{auth['username']}:{auth['password']}")
    set_secret(ENDPOINT_KEY, "conformance-secret-0123456789")


def kubernetes_leftovers(cluster: Any, docker_client: Any, name: str) -> list[str]:
    """Everything of deployment ``name`` left in the emulated cluster and here."""
    from app.run import versions_dir
    from targets.kubernetes.names import DEPLOYMENT_LABEL, label_value

    wanted = label_value(name)
    out = [
        f"{key[0]} {key[2]}"
        for key, entry in list(cluster.emulator.store.objects.items())
        if (entry.obj["metadata"].get("labels") or {}).get(DEPLOYMENT_LABEL) == wanted
    ]
    out += [f"pod container {c}" for c in cluster.emulator.leftovers()]
    label = ["modelship.managed=true", f"modelship.deployment={name}"]
    out += [f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)]
    if versions_dir(name).exists():
        out.append(f"folder {versions_dir(name)}")
    return out


FaultSwitch = Callable[[], contextlib.AbstractContextManager[Any]]


def kubernetes_faults(emulator: Any) -> dict[str, FaultSwitch]:
    """The API server failing at each stage of a deploy: applying the Deployment (after the
    Secrets exist), applying the Service (the Deployment's pods are starting by then), and listing
    the pods while the rollout is watched (an etcd timeout)."""

    def fault(method: str, path: str, code: int, reason: str, message: str) -> FaultSwitch:
        @contextlib.contextmanager
        def active() -> Iterator[None]:
            injected = emulator.inject(method, path, code, reason, message, times=1)
            try:
                yield
            finally:
                emulator.clear_faults()
            assert injected.hits == 1, f"the fault on {method} {path} never fired"

        return active

    ns = r"/namespaces/[^/]+"
    return {
        "Deployment apply fails (500)": fault(
            "PATCH",
            rf"^/apis/apps/v1{ns}/deployments/[^/]+$",
            500,
            "InternalError",
            "Internal error occurred: failed calling webhook: context deadline exceeded",
        ),
        "Service apply refused, API server overloaded (503)": fault(
            "PATCH",
            rf"^/api/v1{ns}/services/[^/]+$",
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        "pods list times out during the rollout (500, etcd)": fault(
            "GET",
            rf"^/api/v1{ns}/pods$",
            500,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out",
        ),
    }


@pytest.fixture
def harness_kubernetes(kubernetes_emulator, docker_client, base_image) -> Iterator[Harness]:
    store_keys(kubernetes_emulator)

    def profile(model: Path, name: str):
        store_keys(kubernetes_emulator)
        return kubernetes_profile(kubernetes_emulator, model, name, base_image)

    os.environ.setdefault("MODELSHIP_TEST_BASE_IMAGE", base_image)
    yield Harness(
        kind="kubernetes",
        profile=profile,
        leftovers=lambda name: kubernetes_leftovers(kubernetes_emulator, docker_client, name),
        faults=kubernetes_faults(kubernetes_emulator.emulator),
        timeout=600,
    )
