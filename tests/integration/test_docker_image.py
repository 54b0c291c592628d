"""The serving image, built and run on the real Docker Engine (issue 4, item 2).

One image is built for the module and shared; a second model version checks that a
rebuild reuses the dependency layers. Runs on the locally built test base image
(a debootstrap of Debian bookworm), since nothing can be pulled here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import pytest

from app.errors import BuildError, Cancelled
from app.progress import CancelToken, RecordingProgress
from tests.integration.conftest import deployment_name, free_port, http, leftovers

pytestmark = pytest.mark.integration

NAME = deployment_name("image")


def built_model(built):
    """The model the module's image was built from (its build context's copy)."""
    return built[0].path / "model" / "model.onnx"


@pytest.fixture(scope="module")
def built(builder, rf_model):
    progress = RecordingProgress()
    ctx, image = builder.build(NAME, rf_model, progress=progress)
    return ctx, image, progress


@pytest.fixture(scope="module")
def sagemaker_container(docker_client, built) -> Iterator[tuple[object, str]]:
    """The image run the way SageMaker runs it: ``docker run IMAGE serve``, port 8080."""
    _, image, _ = built
    port = free_port()
    container = docker_client.containers.run(
        image.id,
        command=["serve"],
        detach=True,
        ports={"8080/tcp": ("127.0.0.1", port)},
        labels={"modelship.managed": "true", "modelship.deployment": NAME},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http("GET", url + "/ping")[0] == 200:
                    break
            except OSError:
                pass
            container.reload()
            assert container.status == "running", container.logs().decode()[-2000:]
            assert time.monotonic() < deadline, "the container never answered /ping"
            time.sleep(0.2)
        yield container, url
    finally:
        container.remove(force=True)


def test_image_has_labels_tag_and_a_small_size(built, rf_model) -> None:
    _, image, _ = built
    sha = hashlib.sha256(rf_model.onnx_path.read_bytes()).hexdigest()
    assert image.tag == f"modelship/{NAME}:{sha[:12]}"
    assert image.labels["modelship.managed"] == "true"
    assert image.labels["modelship.deployment"] == NAME
    assert image.labels["modelship.profile"] == NAME
    assert image.labels["modelship.model.sha256"] == sha
    assert image.labels["modelship.version"]
    # issue 4 item 9: under 120 MB over the base image for the reference model
    assert image.size_over_base is not None
    assert 0 < image.size_over_base < 120_000_000, image.size_over_base


def test_sagemaker_style_ping_invocations_and_predict(sagemaker_container, rf_model) -> None:
    _, url = sagemaker_container
    proof = json.loads(rf_model.proof_path.read_text())
    rows = proof["rows"][:5]
    expected = proof["predictions"][:5]
    status, _, body = http(
        "POST", url + "/predict", json.dumps(rows).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, body
    assert json.loads(body)["predictions"] == expected
    status, _, body = http(
        "POST",
        url + "/invocations",
        json.dumps(rows).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    assert json.loads(body)["predictions"] == expected


def test_runs_as_non_root_without_wheels_or_pip(sagemaker_container, docker_client, built) -> None:
    container, _ = sagemaker_container
    _, image, _ = built
    assert docker_client.api.inspect_image(image.id)["Config"]["User"] == "10001:10001"
    code, out = container.exec_run(["id", "-u"])
    assert code == 0 and out.decode().strip() == "10001"
    # the wheelhouse stayed in the build stage; pip was removed from the venv
    code, _ = container.exec_run(["ls", "/tmp/wheels"])
    assert code != 0
    code, _ = container.exec_run(["python", "-c", "import pip"])
    assert code != 0
    history = " ".join(h.get("CreatedBy", "") for h in docker_client.api.history(image.id))
    assert "wheels" not in history
    # the server's files cannot be changed by the server's user
    code, _ = container.exec_run(["sh", "-c", "echo x >> /opt/modelship/model/model.onnx"])
    assert code != 0


def test_new_model_rebuild_reuses_dependency_and_server_layers(
    builder, built, rf_model_b, docker_client
) -> None:
    # Build version A again first (all cached unless app/serving changed since the
    # module's build, e.g. while someone edits it), then B right after it.
    _, image_a = builder.build(NAME, built_model(built))
    progress = RecordingProgress()
    start = time.monotonic()
    _, image_b = builder.build(NAME, rf_model_b, progress=progress)
    seconds = time.monotonic() - start
    assert image_b.tag != image_a.tag and image_b.id != image_a.id
    log = [v for k, v in progress.events if k == "log"]
    # every step before the model copy came from the cache
    copy_model = next(i for i, ln in enumerate(log) if "COPY model/" in str(ln))
    steps_before = [ln for ln in log[:copy_model] if str(ln).startswith("Step ")]
    assert image_b.cached_steps >= len(steps_before) - 2  # FROM lines have no cache line
    assert not any("Running in" in str(ln) and "pip" in str(ln) for ln in log)
    layers_a = docker_client.api.inspect_image(image_a.id)["RootFS"]["Layers"]
    layers_b = docker_client.api.inspect_image(image_b.id)["RootFS"]["Layers"]
    assert len(layers_a) == len(layers_b)
    assert layers_a[:-1] == layers_b[:-1], "only the model layer may differ"
    assert layers_a[-1] != layers_b[-1]
    assert seconds < 10, f"a new model version took {seconds:.1f} s to build"


def test_push_to_registry_gives_a_docker_v2_manifest(docker_client, built, registry) -> None:
    """Heroku's registry rejects OCI indexes: the pushed manifest must be Docker v2."""
    from app.image.image import push_image

    _, image, _ = built
    repository = f"{registry}/modelship-test/{NAME}"
    progress = RecordingProgress()
    digest = push_image(docker_client, image.id, repository, "v1", progress=progress)
    assert digest.startswith("sha256:")
    status, headers, body = http(
        "GET",
        f"http://{registry}/v2/modelship-test/{NAME}/manifests/v1",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.index.v1+json, "
            "application/vnd.docker.distribution.manifest.list.v2+json"
        },
    )
    assert status == 200, body
    assert headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads(body)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert "manifests" not in manifest  # not an index: no attestation manifests
    assert headers["Docker-Content-Digest"] == digest
    # the registry tag was only for the push: nothing extra stays on this machine
    tags = docker_client.images.get(image.id).tags
    assert not any(t.startswith(registry) for t in tags), (tags, progress.events[-3:])
    # clean the registry too
    http(
        "DELETE",
        f"http://{registry}/v2/modelship-test/{NAME}/manifests/{digest}",
    )


def test_push_failure_is_an_error_not_silence(docker_client, built) -> None:
    """images.push never raises; a refused push must still fail loudly."""
    from app.errors import TargetError
    from app.image.image import push_image

    _, image, _ = built
    with pytest.raises(TargetError, match="Pushing the image"):
        push_image(docker_client, image.id, f"127.0.0.1:{free_port()}/nothing/here", "v1")
    assert not any("nothing/here" in t for t in docker_client.images.get(image.id).tags)


def test_missing_base_image_is_a_build_error_with_nothing_left(
    builder, rf_model, docker_client
) -> None:
    name = deployment_name("badbase")
    # a registry address on this machine that answers nothing: no traffic leaves it
    base = f"127.0.0.1:{free_port()}/modelship-test/no-such-base:1"
    with pytest.raises(BuildError) as info:
        builder.build(name, rf_model, base_image=base)
    err = info.value
    assert "could not be built" in err.message
    assert "base image" in (err.hint or "")
    assert err.details
    assert leftovers(docker_client, name) == []


def test_cancel_mid_build_stops_it_and_leaves_no_image(
    builder, rf_model, docker_client, base_image
) -> None:
    name = deployment_name("cancel")
    cancel = CancelToken()

    class CancelOnInstall(RecordingProgress):
        def log(self, line: str) -> None:
            super().log(line)
            if "pip install" in line:
                cancel.cancel()

    before = {c.id for c in docker_client.containers.list(ignore_removed=True, all=True)}
    with pytest.raises(Cancelled):
        builder.build(name, rf_model, progress=CancelOnInstall(), cancel=cancel, nocache=True)
    assert leftovers(docker_client, name) == []
    # The Engine abandons the build: every container it started for the build's steps
    # goes away (it may finish the step in flight first). The session fixture
    # no_new_build_cache_left removes the uncached dependency stage it may have made.
    deadline = time.monotonic() + 60
    while True:
        building = [
            c.short_id
            for c in docker_client.containers.list(ignore_removed=True, all=True)
            if c.id not in before
        ]
        if not building or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not building, f"the cancelled build kept running: containers {building}"


def test_build_command_prints_tag_and_size_over_base(
    rf_model, base_image, docker_client, capsys, tmp_path
) -> None:
    """`modelship build MODEL` end to end (convert, context, image), then remove it."""
    from app.cli import main
    from app.image.image import remove_image

    name = deployment_name("cli")
    rc = main(
        [
            "build",
            str(rf_model.source),
            "--name",
            name,
            "--base-image",
            base_image,
            "--context",
            str(tmp_path / "ctx"),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    result = json.loads(out)
    try:
        assert result["tag"].startswith(f"modelship/{name}:")
        assert 0 < result["size_over_base"] < 120_000_000
        assert result["base_image"] == base_image
        assert (tmp_path / "ctx" / "Dockerfile").is_file()
        assert docker_client.api.inspect_image(result["tag"])["Id"] == result["id"]
    finally:
        remove_image(docker_client, result["id"])
    assert leftovers(docker_client, name) == []


def test_build_command_without_docker_is_one_clear_line(rf_model, monkeypatch, capsys) -> None:
    from app.cli import main

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    rc = main(["build", str(rf_model.source), "--name", deployment_name("nodocker")])
    err = capsys.readouterr().err
    assert rc == 7
    assert "error: The Docker Engine is not reachable." in err
    assert "Traceback" not in err and "docker group" in err
