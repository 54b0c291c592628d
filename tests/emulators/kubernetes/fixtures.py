"""pytest fixtures for the Kubernetes emulator.

Use from a conftest: tests/conftest.py lists this module in ``pytest_plugins``.
Function-scoped on purpose: each test starts from an empty cluster, and its teardown
proves the emulator's threads, containers, pulled images and registry are gone.
``running_emulator`` is the same thing as a context manager, for a module-scoped
fixture where tests can share one cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import docker_available, require
from tests.emulators.confirm import confirm_hosts
from tests.emulators.heroku.registry import RegistryProcess, registry_available

from .emulator import KubernetesEmulator
from .kubelet import LABEL

CONTEXT = "emulator"


class Cluster:
    """A started emulator with its kubeconfig and an authenticated registry.

    ``kubeconfig`` (a file: server, bearer token, context ``emulator`` whose namespace is
    ``namespace``), ``context``, ``namespace``, ``api_url``, ``token``, ``registry``
    (host:port the kubelet pulls from), ``registry_auth`` (username/password; the registry
    refuses anonymous pulls), ``emulator`` (the KubernetesEmulator: ``deny(verb,
    resource, group)``, ``kserve``, ``store``, ``proxied_headers``, ``leftovers()``,
    ``controllers.cpu_percent``: the pods' CPU use the HPA controller sees, None = no
    metrics server),
    ``pull_secret()`` (a kubernetes.io/dockerconfigjson Secret manifest), ``push()``.
    """

    def __init__(
        self, emulator: KubernetesEmulator, registry: RegistryProcess, kubeconfig: Path
    ) -> None:
        self.emulator = emulator
        self.registry_process = registry
        self.kubeconfig = kubeconfig
        self.context = CONTEXT
        self.namespace = emulator.namespace
        self.api_url = emulator.api_url
        self.token = emulator.token
        self.registry = f"127.0.0.1:{registry.port}"
        self.registry_auth = {"username": "_", "password": registry.api_keys[0]}
        self.image = ""  # set by tests that push one
        self.ca_file = kubeconfig.parent / "ca.crt"  # the API server's CA, for plain HTTPS clients
        self.ca_file.write_bytes(emulator.ca_pem)

    def pull_secret(self, name: str = "registry") -> dict:
        user, password = self.registry_auth["username"], self.registry_auth["password"]
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        config = {"auths": {self.registry: {"username": user, "password": password, "auth": auth}}}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        }

    def push(self, docker_client, image_id: str, repository: str, tag: str) -> str:  # type: ignore[no-untyped-def]
        """Push a local image as REGISTRY/REPOSITORY:TAG (then untag it locally)."""
        reference = f"{self.registry}/{repository}"
        docker_client.images.get(image_id).tag(reference, tag)
        try:
            lines = list(
                docker_client.images.push(
                    reference, tag=tag, auth_config=self.registry_auth, stream=True, decode=True
                )
            )
        finally:
            docker_client.images.remove(f"{reference}:{tag}")
        errors = [line["error"] for line in lines if "error" in line]
        assert not errors, errors
        return f"{reference}:{tag}"


@contextlib.contextmanager
def running_emulator(folder: Path, kserve: bool = False) -> Iterator[Cluster]:
    """Start registry + emulator; on exit stop both and prove nothing is left."""
    require(docker_available(), "Docker Engine")
    require(registry_available(), "docker-registry and htpasswd (docker-registry, apache2-utils)")
    threads_before = set(threading.enumerate())
    registry = RegistryProcess([secrets.token_hex(16)])
    registry.start()
    emulator = KubernetesEmulator(kserve=kserve)
    try:
        emulator.start()
        kubeconfig = emulator.write_kubeconfig(folder / "kubeconfig", CONTEXT)
        yield Cluster(emulator, registry, kubeconfig)
    finally:
        emulator.stop()
        registry.stop()
    import docker

    client = docker.from_env()
    try:
        left = client.containers.list(all=True, filters={"label": f"{LABEL}={emulator.instance}"})
        assert not left, f"kubernetes emulator left containers: {[c.name for c in left]}"
        pulled = [
            t
            for image in client.images.list()
            for t in image.tags
            if t.startswith(f"127.0.0.1:{registry.port}/")
        ]
        assert not pulled, f"kubernetes emulator left pulled images: {pulled}"
    finally:
        client.close()
    assert registry.process is None or registry.process.poll() is not None, "registry still running"
    extra = [
        t.name
        for t in threading.enumerate()
        if t not in threads_before and t.name.startswith("k8s-emu")
    ]
    assert not extra, f"kubernetes emulator left threads: {extra}"


@pytest.fixture
def kubernetes_emulator() -> Iterator[Cluster]:
    """A started, empty cluster (see ``Cluster``); its addresses confirmed on this test's
    computer (``modelship hosts allow``) as a person would confirm a cluster's API server
    and registry. Set ``kubernetes_emulator.emulator.kserve = True`` to serve KServe."""
    with (
        tempfile.TemporaryDirectory(prefix="k8s-emu-") as folder,
        running_emulator(Path(folder)) as cluster,
    ):
        confirm_hosts(cluster.api_url, cluster.registry)
        yield cluster
