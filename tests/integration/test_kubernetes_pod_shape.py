"""The kubernetes target's pod, run on the real Docker Engine the way a kubelet runs it.

No cluster can run here, so the locked-down container the Deployment asks for is
started with Docker's equivalents of each field, read from the manifest itself: the
image's user (``runAsUser``/``runAsGroup``, ``fsGroup`` as a supplementary group), a
read-only root file system, every capability dropped, no privilege escalation, the
``/tmp`` emptyDir as a tmpfs, the key Secret as a read-only directory holding
``api_key`` with the volume's mode and the fsGroup as its group (as the kubelet writes
a Secret volume), the container's env, ports and limits. The server must start, pass
the probes' ``/ping`` and answer with the key only.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from targets.kubernetes import manifests as m
from targets.kubernetes.settings import KubernetesSettings, cpu_millicores, memory_bytes
from tests.integration.conftest import deployment_name, free_port, http, leftovers

pytestmark = pytest.mark.integration

KEY = "k8s-pod-key-" + "q" * 24


def test_the_deployments_pod_serves_under_its_security_context(
    docker_client, builder, rf_model, tmp_path: Path
) -> None:
    name = deployment_name("k8spod")
    _, image = builder.build(name, rf_model)
    settings = KubernetesSettings(registry="127.0.0.1:5055", api_key="pod-key", cpu="500m")
    objects = m.build(name, settings, image.id, flavour="deployment", key=KEY)
    (deployment,) = [x for x in objects if x["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    security, pod_security = box["securityContext"], pod["securityContext"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {v["name"]: v for v in box["volumeMounts"]}

    # the key Secret's volume, as the kubelet writes it: the item's file, the volume's
    # mode, the fsGroup as its group; the directory mounted read-only
    secret = volumes["api-key"]["secret"]
    (key_secret,) = [x for x in objects if x["metadata"]["name"] == secret["secretName"]]
    key_dir = tmp_path / "secret"
    key_dir.mkdir()
    for item in secret["items"]:
        path = key_dir / item["path"]
        path.write_bytes(base64.b64decode(key_secret["data"][item["key"]]))
        os.chown(path, 0, pod_security["fsGroup"])
        path.chmod(secret["defaultMode"])
    assert mounts["api-key"]["readOnly"] is True
    assert "emptyDir" in volumes[mounts["tmp"]["name"]]

    port = box["ports"][0]["containerPort"]
    host_port = free_port()
    limits = box["resources"]["limits"]
    container = docker_client.containers.run(
        image.id,
        detach=True,
        user=f"{security['runAsUser']}:{security['runAsGroup']}",
        group_add=[str(pod_security["fsGroup"])],
        read_only=security["readOnlyRootFilesystem"],
        cap_drop=security["capabilities"]["drop"],
        security_opt=["no-new-privileges"] if not security["allowPrivilegeEscalation"] else [],
        tmpfs={mounts["tmp"]["mountPath"]: ""},
        volumes={str(key_dir): {"bind": mounts["api-key"]["mountPath"], "mode": "ro"}},
        environment={e["name"]: e["value"] for e in box["env"]},
        ports={f"{port}/tcp": ("127.0.0.1", host_port)},
        nano_cpus=cpu_millicores(limits["cpu"]) * 1_000_000,
        mem_limit=memory_bytes(limits["memory"]),
        labels=deployment["metadata"]["labels"],
    )
    url = f"http://127.0.0.1:{host_port}"
    try:
        deadline = time.monotonic() + 90
        ping = box["readinessProbe"]["httpGet"]["path"]
        while True:
            try:
                if http("GET", url + ping)[0] == 200:
                    break
            except OSError:
                pass
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            assert time.monotonic() < deadline, container.logs().decode()[-3000:]
            time.sleep(0.3)
        body = json.dumps([[0.0] * 20]).encode()
        plain = {"Content-Type": "application/json"}
        assert http("POST", url + "/predict", body, plain)[0] == 401
        keyed = {**plain, "Authorization": f"Bearer {KEY}"}
        status, _, answer = http("POST", url + "/predict", body, keyed)
        assert status == 200, answer
        # the key is nowhere in the container's configuration, and its root is read-only
        assert KEY not in json.dumps(container.attrs)
        code, _ = container.exec_run(["sh", "-c", "echo x > /opt/modelship/x"])
        assert code != 0, "the root file system is writable"
        code, out = container.exec_run(["id", "-u"])
        assert out.decode().strip() == str(security["runAsUser"])
    finally:
        container.remove(force=True)
    # (the image goes with the builder fixture, at the module's end)
    assert not [x for x in leftovers(docker_client, name) if x.startswith("container")]
