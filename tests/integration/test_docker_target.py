"""The docker target on the real Engine: deploy, status, teardown, and failures.

The happy path goes through the real pipeline (``run_deploy``: convert, build, run,
smoke test) so it is what ``modelship deploy --target docker`` does. Failures are
injected where they happen and must leave no container or image of ours behind.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from app.domain import ConvertedModel
from app.errors import TargetError, UsageError
from app.progress import RecordingProgress
from app.store.journal import Journal
from targets.base import DeployContext
from targets.docker.target import DockerTarget
from tests.integration.conftest import (
    deployment_name,
    docker_profile,
    free_port,
    http,
    leftovers,
)

pytestmark = pytest.mark.integration


def test_deploy_status_redeploy_teardown_leaves_nothing(
    docker_client, base_image, rf_model, rf_model_b, tmp_path: Path
) -> None:
    from app.run import run_deploy, teardown
    from app.store.records import find_record

    name = deployment_name("e2e")
    port = free_port()
    model = tmp_path / "model.joblib"
    model.write_bytes(rf_model.source.read_bytes())
    profile = docker_profile(name, base_image, model, port=port)
    target = DockerTarget()
    assert target.check(profile, None) == []
    try:
        record = run_deploy(profile)
        assert record.url == f"http://127.0.0.1:{port}"
        assert record.smoke and record.smoke["passed"]
        status, _, _ = http("GET", record.url + "/ping")
        assert status == 200
        state = target.status(record)
        assert state.running and state.data["status"] == "running"
        container = docker_client.containers.get(state.data["container_id"])
        assert container.labels["modelship.deployment"] == name
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        bindings = container.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        first_image = record.version().image["id"]

        # a new model version replaces it in place, on the same port
        model.write_bytes(rf_model_b.source.read_bytes())
        record = run_deploy(profile)
        assert record.current_version == 2 and record.smoke["passed"]
        assert record.version().image["id"] != first_image
        running = docker_client.containers.list(
            ignore_removed=True, filters={"label": f"modelship.deployment={name}"}
        )
        assert [c.name for c in running] == [f"modelship-{name}-v2"]
        # the old version's image stays for a rollback
        assert docker_client.api.inspect_image(first_image)
    finally:
        try:
            removed = teardown(name)
        except UsageError:  # the first deploy failed and rolled back: nothing to remove
            removed = []
    assert any(r.startswith("container") for r in removed)
    assert any(r.startswith("image") for r in removed)
    assert find_record(name) is None
    assert leftovers(docker_client, name) == []
    assert http_refused(f"http://127.0.0.1:{port}/ping")


def http_refused(url: str) -> bool:
    try:
        http("GET", url)
    except OSError:
        return True
    return False


def test_port_in_use_is_found_before_anything_is_built(base_image, rf_model) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        profile = docker_profile(deployment_name("port"), base_image, rf_model.source, port=port)
        problems = DockerTarget().check(profile, None)
    assert len(problems) == 1
    assert f"Port {port}" in problems[0].message and "--port" in problems[0].fix


def test_missing_base_image_is_found_by_check(rf_model, docker_client) -> None:
    base = f"127.0.0.1:{free_port()}/modelship-test/absent:1"
    profile = docker_profile(deployment_name("nobase"), base, rf_model.source, port=free_port())
    problems = DockerTarget().check(profile, None)
    assert any(base in p.message and "--base-image" in p.fix for p in problems)


def test_container_that_crashes_on_start_is_a_clean_error(
    builder, docker_client, base_image, tmp_path: Path, rf_model
) -> None:
    """A model file the runtime cannot load: the container exits; we say why and clean up."""
    name = deployment_name("crash")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not an ONNX model")
    (tmp_path / "model.signature.json").write_text(rf_model.signature_path.read_text())
    _, image = builder.build(name, bad)
    profile = docker_profile(name, base_image, bad, port=free_port(), start_timeout=60)
    journal = Journal.create(name)
    ctx = DeployContext(
        profile=profile,
        name=name,
        model=ConvertedModel(bad),
        journal=journal,
        image=image,
        progress=RecordingProgress(),
    )
    target = DockerTarget()
    with pytest.raises(TargetError) as info:
        target.deploy(ctx)
    err = info.value
    assert "stopped while starting" in err.message
    assert err.details  # the container's last log lines
    # what the pipeline's rollback does: destroy every journaled resource
    resources = journal.resources()
    assert [r.kind for r in resources] == ["container"]
    for r in reversed(resources):
        target.destroy(r, RecordingProgress())
    target.destroy(resources[0], RecordingProgress())  # idempotent
    assert [x for x in leftovers(docker_client, name) if x.startswith("container")] == []


def test_build_error_through_the_pipeline_rolls_back(
    docker_client, rf_model, tmp_path: Path, registry
) -> None:
    """A base image the registry does not have: check() stops it before anything is made."""
    from app.errors import ModelShipError
    from app.run import run_deploy
    from app.store.records import find_record

    name = deployment_name("pipefail")
    base = f"{registry}/modelship-test/not-pushed:1"
    profile = docker_profile(name, base, rf_model.source, port=free_port())
    with pytest.raises(ModelShipError) as info:
        run_deploy(profile)
    assert base in info.value.message
    assert find_record(name) is None
    assert leftovers(docker_client, name) == []


def test_status_of_a_removed_container_says_so(base_image, rf_model) -> None:
    from app.domain import Endpoint, Resource
    from app.store.records import DeploymentRecord

    name = deployment_name("gone")
    ep = Endpoint(
        url="http://127.0.0.1:1",
        target="docker",
        resources=[Resource("container", f"modelship-{name}-v1", data={"container_id": None})],
    )
    record = DeploymentRecord(
        name=name, target="docker", profile={}, endpoint=json.loads(json.dumps(ep.to_dict()))
    )
    state = DockerTarget().status(record)
    assert not state.running and "gone" in state.detail


def test_the_api_key_reaches_the_container_as_a_read_only_file_not_its_environment(
    docker_client, base_image, rf_model, tmp_path: Path
) -> None:
    import json

    from app.run import run_deploy, teardown
    from app.store import secrets

    name = deployment_name("key")
    port = free_port()
    key = "docker-key-" + "k" * 24
    secrets.set_secret("docker-test-key", key)
    model = tmp_path / "model.joblib"
    model.write_bytes(rf_model.source.read_bytes())
    profile = docker_profile(name, base_image, model, port=port, api_key="docker-test-key")
    try:
        record = run_deploy(profile)  # the smoke test sends the key: the server read the file
        assert record.smoke["passed"]
        container = docker_client.containers.get(record.resources()[0].data["container_id"])
        inspected = json.dumps(container.attrs)
        assert key not in inspected, "docker inspect shows the API key"
        env = container.attrs["Config"]["Env"]
        assert "MODELSHIP_API_KEY_FILE=/run/modelship/api_key" in env
        assert not [e for e in env if e.startswith("MODELSHIP_API_KEY=")]
        code, out = container.exec_run(["stat", "-c", "%a %u", "/run/modelship/api_key"])
        assert code == 0 and out.decode().split()[0] == "400"
        assert out.decode().split()[1] == str(container.attrs["Config"]["User"]).split(":")[0]
        code, _ = container.exec_run(["sh", "-c", "echo x > /run/modelship/api_key"])
        assert code != 0, "the server's user can change its own key file"
        body = json.dumps([[0.0] * 20]).encode()
        status, _, _ = http("POST", record.url + "/predict", body,
                            {"Content-Type": "application/json"})  # fmt: skip
        assert status == 401
        status, _, _ = http(
            "POST",
            record.url + "/predict",
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        assert status == 200
        # the key lives on a tmpfs: not in the writable layer, so not in docker export
        code, out = container.exec_run(["cat", "/proc/mounts"])
        assert code == 0 and " /run/modelship tmpfs " in out.decode(), out.decode()
        names = _exported_names_without(container, key.encode())
        assert names and not [n for n in names if "run/modelship/api_key" in n], names
        # a stop and start empties the tmpfs: ModelShip's Start hands the key over again
        from app.progress import NullProgress

        DockerTarget().stop(record, NullProgress())
        DockerTarget().start(record, NullProgress())
        good = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 60
        status = 0
        while status != 200:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
            try:
                status = http("POST", record.url + "/predict", body, good)[0]
            except OSError:  # still starting: docker's proxy drops the connection
                status = 0
        assert http("POST", record.url + "/predict", body,
                    {"Content-Type": "application/json"})[0] == 401  # fmt: skip
        assert key not in json.dumps(docker_client.containers.get(container.id).attrs)
    finally:
        teardown(name)
    assert leftovers(docker_client, name) == []


def _exported_names_without(container, secret: bytes) -> list[str]:
    """The paths in ``docker export`` of the container, read as a stream; fails if the
    secret's bytes appear anywhere in it."""
    import tarfile

    chunks = container.export()

    class Stream:
        tail = b""

        def read(self, n: int = -1) -> bytes:
            data = next(chunks, b"")
            assert secret not in self.tail + data, "docker export carries the API key"
            self.tail = data[-len(secret) :]
            return data

    names = []
    with tarfile.open(fileobj=Stream(), mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            names.append(member.name)
    return names
