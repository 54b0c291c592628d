"""pytest fixtures: moto for AWS control planes, the SageMaker emulator, a contract image.

Use them from a conftest.py::

    from tests.emulators.sagemaker_runtime.fixtures import (  # noqa: F401
        moto_server, sagemaker_emulator, sagemaker_echo_image,
    )

``moto_server`` points every AWS service at moto through ``AWS_ENDPOINT_URL`` (fake
credentials, one attempt, no shared config files); ``sagemaker_emulator`` points the
``sagemaker`` and ``sagemaker-runtime`` services at the emulator through
``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. Code under
test needs no endpoint_url of its own. Servers live for the session; moto is reset and
the emulator's containers and pulled images removed after every test.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

from .emulator import Emulator
from .server import EmulatorServer, MotoServer

REGION = "us-east-1"

#: Environment that every AWS test gets (values for moto; never real credentials).
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_RETRY_MODE": "standard",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
}
#: Variables that could send a test to real AWS or to someone's own settings.
AWS_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="session")
def _moto_session() -> Iterator[MotoServer]:
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def moto_server(
    _moto_session: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[MotoServer]:
    """moto on 127.0.0.1 behind ``AWS_ENDPOINT_URL``, empty at the start of each test."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(name)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_session.url)
    _moto_session.reset()
    yield _moto_session
    _moto_session.reset()


@pytest.fixture(scope="session")
def _sagemaker_emulator_session(_moto_session: MotoServer) -> Iterator[EmulatorServer]:
    emulator = Emulator(_moto_session.url)
    server = EmulatorServer(emulator).start()
    yield server
    server.stop()
    emulator.close()


@pytest.fixture
def sagemaker_emulator(
    moto_server: MotoServer,
    _sagemaker_emulator_session: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Emulator]:
    """The SageMaker emulator behind ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``..._RUNTIME``.

    Yields the :class:`Emulator` (``.url`` is its address): inject faults, inspect
    endpoints and containers, or shorten its timeouts for a test. Afterwards every
    container it started and every image it pulled is removed and its settings are
    restored.
    """
    server = _sagemaker_emulator_session
    emulator = server.emulator
    emulator.url = server.url
    saved = (
        emulator.startup_timeout_s,
        emulator.invocation_timeout_s,
        emulator.max_payload_bytes,
        emulator.max_serverless_payload_bytes,
        dict(emulator.credentials),
        emulator.runner.ping_timeout_s,
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    emulator.reset()
    try:
        yield emulator
    finally:
        emulator.reset()
        (
            emulator.startup_timeout_s,
            emulator.invocation_timeout_s,
            emulator.max_payload_bytes,
            emulator.max_serverless_payload_bytes,
            emulator.credentials,
            emulator.runner.ping_timeout_s,
        ) = saved


# ---------------------------------------------------------------- contract image

#: A model server that keeps SageMaker's container contract and nothing else:
#: ``serve`` answers GET /ping and POST /invocations on port 8080. Behaviour per
#: container from the environment (ECHO_MODE: ok | crash | unhealthy; ECHO_VERSION;
#: ECHO_READY_AFTER seconds), per request from a JSON body ({"status": 400} answers
#: that status, {"sleep": 2} waits first).
ECHO_SERVE = r"""#!/usr/bin/env python3
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# SageMaker runs `docker run IMAGE serve`: this file is `serve` on the PATH.
if os.path.basename(sys.argv[0]) != "serve" or sys.argv[1:]:
    sys.exit(f"usage: serve (got {sys.argv})")
MODE = os.environ.get("ECHO_MODE", "ok")
if MODE == "crash":
    print("echo: crashing on purpose", flush=True)
    sys.exit(3)
START = time.time()
READY_AFTER = float(os.environ.get("ECHO_READY_AFTER", "0"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/ping":
            return self.send(404, b"{}")
        ready = MODE != "unhealthy" and time.time() - START >= READY_AFTER
        self.send(200 if ready else 503, b"{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            return self.send(404, b"{}")
        try:
            cmd = json.loads(body) if body[:1] == b"{" else {}
        except ValueError:
            cmd = {}
        if cmd.get("sleep"):
            time.sleep(float(cmd["sleep"]))
        if cmd.get("status"):
            why = str(cmd.get("why", "boom")).encode()
            return self.send(int(cmd["status"]), b"bad input: " + why, "text/plain")
        custom = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        answer = {
            "version": os.environ.get("ECHO_VERSION", ""),
            "bytes": len(body),
            "content_type": self.headers.get("Content-Type"),
            "accept": self.headers.get("Accept"),
            "custom": custom,
            "hostname": os.uname().nodename,
        }
        extra = {"X-Amzn-SageMaker-Custom-Attributes": "echo=" + custom} if custom else {}
        self.send(200, json.dumps(answer).encode(), extra=extra)


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


@dataclass(frozen=True)
class PushedImage:
    """An image in the test registry: ``uri`` is what a SageMaker model names."""

    uri: str
    registry: str
    repository: str
    tag: str
    local_tag: str


def registry_address() -> str:
    return os.environ.get("MODELSHIP_TEST_REGISTRY", "127.0.0.1:5055")


def registry_available(addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{addr}/v2/", timeout=5) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def delete_from_registry(addr: str, repository: str, tag: str) -> None:
    """Delete a pushed manifest (by digest, the only way the registry API allows)."""
    accept = ", ".join(
        [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
        ]
    )
    req = urllib.request.Request(
        f"http://{addr}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            digest = resp.headers["Docker-Content-Digest"]
        req = urllib.request.Request(
            f"http://{addr}/v2/{repository}/manifests/{digest}", method="DELETE"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except (OSError, urllib.error.URLError):
        pass


def push(docker_client, local: str, remote_repo: str, tag: str) -> None:
    """Tag and push; ``images.push`` never raises, so every streamed line is checked."""
    image = docker_client.images.get(local)
    image.tag(remote_repo, tag)
    for line in docker_client.images.push(remote_repo, tag=tag, stream=True, decode=True):
        if line.get("error"):
            raise RuntimeError(f"push of {remote_repo}:{tag} failed: {line['error']}")


@pytest.fixture(scope="session")
def sagemaker_echo_image(docker_client, base_image: str, tmp_path_factory) -> Iterator[PushedImage]:
    """A tiny SageMaker-contract image, pushed to the local registry as the test's "ECR".

    Built FROM the local base image (no pulls possible) under a repository name unique
    to this run; the local tags and the registry manifest are removed afterwards.
    """
    addr = registry_address()
    require(registry_available(addr), f"the local image registry at {addr}")
    run = uuid.uuid4().hex[:10]
    ctx = tmp_path_factory.mktemp("echo-image")
    serve = ctx / "serve"
    serve.write_text(ECHO_SERVE)
    serve.chmod(0o755)
    (ctx / "Dockerfile").write_text(
        f"FROM {base_image}\nCOPY serve /usr/local/bin/serve\nEXPOSE 8080\n"
    )
    local = f"modelship-test-sm-echo:{run}"
    repository = f"modelship-test-{run}/sm-echo"
    remote = f"{addr}/{repository}"
    image, _ = docker_client.images.build(
        path=str(ctx), tag=local, rm=True, forcerm=True, labels={"modelship.test": "sm-echo"}
    )
    try:
        push(docker_client, local, remote, "v1")
        yield PushedImage(f"{remote}:v1", addr, repository, "v1", local)
    finally:
        delete_from_registry(addr, repository, "v1")
        for ref in (f"{remote}:v1", local):
            with contextlib.suppress(Exception):
                docker_client.images.remove(ref)
        with contextlib.suppress(Exception):
            docker_client.images.remove(image.id)


def emulator_state(url: str) -> dict:
    """``GET /__emulator__/state`` of an emulator running elsewhere (another process)."""
    with urllib.request.urlopen(f"{url}/__emulator__/state", timeout=10) as resp:
        return json.loads(resp.read())


def emulator_inject(url: str, operation: str, **spec: object) -> dict:
    """``POST /__emulator__/faults`` of an emulator running elsewhere."""
    req = urllib.request.Request(
        f"{url}/__emulator__/faults",
        data=json.dumps({"operation": operation, **spec}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())
