"""The Heroku emulator against plain requests and the docker SDK, as a target will use it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from tests.conftest import REPO

from .emulator import HerokuEmulator

pytestmark = pytest.mark.integration

V3 = "application/vnd.heroku+json; version=3"
DOCKER_RELEASES = "application/vnd.heroku+json; version=3.docker-releases"
TEST_LABEL = "modelship.heroku-emulator.test"

SERVER = """
import json, os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(10)
        body = json.dumps({"path": self.path, "env": {
            k: os.environ.get(k) for k in ("PORT", "FOO", "DYNO")}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)

print("listening on", os.environ["PORT"], flush=True)
ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture(scope="session")
def images(docker_client, base_image, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Two tiny images: one that binds $PORT, one that never does. Removed by id at the end."""
    context = tmp_path_factory.mktemp("heroku-image")
    (context / "server.py").write_text(SERVER)
    built = {}
    for name, cmd in [
        ("good", 'CMD ["python3", "/srv/server.py"]'),
        ("silent", 'CMD ["sleep", "3600"]'),
    ]:
        (context / f"Dockerfile.{name}").write_text(
            f"FROM {base_image}\nCOPY server.py /srv/server.py\n{cmd}\n"
        )
        image, _ = docker_client.images.build(
            path=str(context),
            dockerfile=f"Dockerfile.{name}",
            tag=f"modelship-heroku-emulator-test:{name}",  # a tag keeps it while pushes untag
            labels={TEST_LABEL: name},
            rm=True,
            forcerm=True,
        )
        built[name] = image.id
    yield built
    for image_id in built.values():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.images.remove(image_id, force=True)


class Api:
    def __init__(self, emulator: HerokuEmulator, key: str | None = None) -> None:
        self.url = emulator.api_url
        self.headers = {"Accept": V3, "Authorization": f"Bearer {key or emulator.api_key}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def push(docker_client, emulator: HerokuEmulator, image_id: str, app: str) -> list[dict]:
    """Tag REGISTRY/APP/web, push as `_`, untag; returns the push's streamed lines."""
    repo = f"{emulator.registry}/{app}/web"
    docker_client.images.get(image_id).tag(repo, "latest")
    try:
        return list(
            docker_client.images.push(
                repo,
                tag="latest",
                auth_config={"username": "_", "password": emulator.api_key},
                stream=True,
                decode=True,
            )
        )
    finally:
        docker_client.images.remove(f"{repo}:latest")


def errors(lines: list[dict]) -> list[str]:
    return [line["error"] for line in lines if "error" in line]


def wait_release(api: Api, app: str, version: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release = api("GET", f"/apps/{app}/releases/{version}").json()
        if release["status"] != "pending":
            return release
        time.sleep(0.3)
    raise AssertionError(f"release v{version} still pending")


def log_text(api: Api, app: str) -> str:
    session = api("POST", f"/apps/{app}/log-sessions", json={"lines": 1500}).json()
    return requests.get(session["logplex_url"], timeout=10).text


def release_image(api: Api, app: str, image_id: str) -> requests.Response:
    return api(
        "PATCH",
        f"/apps/{app}/formation",
        json={"updates": [{"type": "web", "docker_image": image_id}]},
        headers={"Accept": DOCKER_RELEASES},
    )


def assert_nothing_left(emulator: HerokuEmulator, docker_client) -> None:
    assert emulator.state()["apps"] == {}
    assert emulator.containers() == []
    assert emulator.registry_contents() == {}


# ---- Platform API -----------------------------------------------------------------------


def test_auth_and_errors(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    account = api("GET", "/account")
    assert account.status_code == 200
    assert set(account.json()) >= {"id", "email", "created_at", "verified"}

    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": ""}):
        r = api("GET", "/account", headers=headers)
        assert r.status_code == 401
        assert r.json()["id"] == "unauthorized" and r.json()["message"]
    r = api("GET", "/account", headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json()["id"] == "missing_version"
    r = api("GET", "/apps/no-such-app")
    assert r.status_code == 404
    assert r.json() == {
        "id": "not_found",
        "message": "Couldn't find that app.",
        "resource": "app",
    }


def test_apps_lifecycle(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    r = api("POST", "/apps", json={"name": "ms-demo", "region": "eu", "stack": "container"})
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["name"] == "ms-demo"
    assert app["stack"]["name"] == "container" and app["build_stack"]["name"] == "container"
    assert app["region"]["name"] == "eu"
    assert app["created_at"].endswith("Z") and len(app["id"]) == 36
    assert app["web_url"].startswith("http://127.0.0.1:") and app["web_url"].endswith("/")
    assert api("GET", f"/apps/{app['id']}").json()["name"] == "ms-demo"
    assert [a["name"] for a in api("GET", "/apps").json()] == ["ms-demo"]

    taken = api("POST", "/apps", json={"name": "ms-demo"})
    assert taken.status_code == 422 and taken.json()["id"] == "invalid_params"
    bad = api("POST", "/apps", json={"name": "Bad_Name"})
    assert bad.status_code == 422 and "lowercase" in bad.json()["message"]
    generated = api("POST", "/apps", json={"stack": "container"}).json()["name"]

    team = api("POST", "/teams/apps", json={"name": "ms-team", "team": "modelship-team"})
    assert team.status_code == 201 and team.json()["team"]["name"] == "modelship-team"
    unknown = api("POST", "/teams/apps", json={"name": "ms-team2", "team": "nope"})
    assert unknown.status_code == 404

    # A new app has Heroku's two initial releases and no formation until an image is released.
    releases = api("GET", "/apps/ms-demo/releases").json()
    assert [(r["version"], r["status"]) for r in releases] == [(1, "succeeded"), (2, "succeeded")]
    assert api("GET", "/apps/ms-demo/formation").json() == []
    assert api("GET", "/apps/ms-demo/dynos").json() == []
    scale = api(
        "PATCH", "/apps/ms-demo/formation", json={"updates": [{"type": "web", "quantity": 1}]}
    )
    assert scale.status_code == 404 and scale.json()["id"] == "not_found"

    for name in ("ms-demo", generated, "ms-team"):
        deleted = api("DELETE", f"/apps/{name}")
        assert deleted.status_code == 200 and deleted.json()["name"] == name
    assert api("DELETE", "/apps/ms-demo").status_code == 404
    assert heroku_emulator.state()["apps"] == {}


def test_config_vars(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    api("POST", "/apps", json={"name": "ms-config", "stack": "container"})
    r = api("PATCH", "/apps/ms-config/config-vars", json={"FOO": "bar", "KEY": "secret"})
    assert r.status_code == 200 and r.json() == {"FOO": "bar", "KEY": "secret"}
    r = api("PATCH", "/apps/ms-config/config-vars", json={"KEY": None, "GONE": None})
    assert r.json() == {"FOO": "bar"}
    assert api("GET", "/apps/ms-config/config-vars").json() == {"FOO": "bar"}
    bad = api("PATCH", "/apps/ms-config/config-vars", json={"FOO": 1})
    assert bad.status_code == 422 and bad.json()["id"] == "invalid_params"
    descriptions = [r["description"] for r in api("GET", "/apps/ms-config/releases").json()]
    assert descriptions[-2:] == ["Set FOO, KEY config vars", "Remove KEY config vars"]
    assert heroku_emulator.state()["apps"]["ms-config"]["config_vars"] == {"FOO": "bar"}


def test_rate_limit(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    first = int(api("GET", "/account").headers["RateLimit-Remaining"])
    assert int(api("GET", "/account").headers["RateLimit-Remaining"]) == first - 1
    heroku_emulator.set_rate_limit(1)
    assert api("GET", "/account").headers["RateLimit-Remaining"] == "0"
    limited = api("GET", "/account")
    assert limited.status_code == 429
    assert limited.json()["id"] == "rate_limit"
    assert limited.headers["RateLimit-Remaining"] == "0"


def test_range_pagination(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    api("POST", "/apps", json={"name": "ms-range", "stack": "container"})
    for i in range(5):
        api("PATCH", "/apps/ms-range/config-vars", json={"N": str(i)})
    # 2 initial releases + 5 config releases = v1..v7
    seen, header = [], "version ..; order=desc, max=3"
    while True:
        r = api("GET", "/apps/ms-range/releases", headers={"Range": header})
        seen += [release["version"] for release in r.json()]
        assert r.headers["Accept-Ranges"] == "id, version"
        if r.status_code == 200:
            assert "Next-Range" not in r.headers
            break
        assert r.status_code == 206
        header = r.headers["Next-Range"]
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    latest = api(
        "GET", "/apps/ms-range/releases", headers={"Range": "version ..; max=1, order=desc"}
    )
    assert latest.status_code == 206 and latest.json()[0]["version"] == 7
    assert latest.headers["Content-Range"] == "version 7..7"
    assert api("GET", "/apps/ms-range/releases").status_code == 200  # default max 200
    bad = api("GET", "/apps/ms-range/releases", headers={"Range": "color ..; max=1"})
    assert bad.status_code == 400 and bad.json()["id"] == "bad_request"


def test_fault_injection(heroku_emulator: HerokuEmulator) -> None:
    api = Api(heroku_emulator)
    api("POST", "/apps", json={"name": "ms-fault", "stack": "container"})
    heroku_emulator.inject("GET", "/apps/*", status=503, times=1)
    failed = api("GET", "/apps/ms-fault")
    assert failed.status_code == 503 and set(failed.json()) == {"id", "message"}
    assert api("GET", "/apps/ms-fault").status_code == 200

    # pass_through: the call takes effect, the answer is lost (the hardest case for a client)
    heroku_emulator.inject(
        "PATCH",
        "/apps/ms-fault/config-vars",
        status=500,
        body={"id": "internal_server_error", "message": "boom"},
        pass_through=True,
    )
    r = api("PATCH", "/apps/ms-fault/config-vars", json={"A": "1"})
    assert r.status_code == 500 and r.json()["message"] == "boom"
    assert api("GET", "/apps/ms-fault/config-vars").json() == {"A": "1"}

    # out of process: the control endpoint
    r = requests.post(
        f"{heroku_emulator.api_url}/__emulator__/inject",
        json={"method": "DELETE", "path": "/apps/*", "status": 429, "times": 2},
        timeout=10,
    )
    assert r.status_code == 201
    assert api("DELETE", "/apps/ms-fault").status_code == 429
    assert api("DELETE", "/apps/ms-fault").status_code == 429
    assert api("DELETE", "/apps/ms-fault").status_code == 200
    state = requests.get(f"{heroku_emulator.api_url}/__emulator__/state", timeout=10).json()
    assert state["apps"] == {} and state["faults"] == []


# ---- registry, releases, dynos, router -------------------------------------------------


def test_registry_auth_oci_rejection_and_unknown_app(
    heroku_emulator: HerokuEmulator, docker_client, images
) -> None:
    registry = f"http://{heroku_emulator.registry}"
    assert requests.get(f"{registry}/v2/", timeout=10).status_code == 401
    assert requests.get(f"{registry}/v2/", auth=("_", "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{registry}/v2/", auth=("_", heroku_emulator.api_key), timeout=10).ok
    # The Heroku CLI sends ":KEY" (no user name): Heroku's registry takes any user.
    assert requests.get(f"{registry}/v2/", auth=("", heroku_emulator.api_key), timeout=10).ok

    Api(heroku_emulator)("POST", "/apps", json={"name": "ms-oci", "stack": "container"})
    for media_type in (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ):
        manifest = {"schemaVersion": 2, "mediaType": media_type, "manifests": []}
        r = requests.put(
            f"{registry}/v2/ms-oci/web/manifests/latest",
            data=json.dumps(manifest),
            headers={"Content-Type": media_type},
            auth=("_", heroku_emulator.api_key),
            timeout=10,
        )
        assert r.status_code == 400, media_type
        assert r.json()["errors"][0]["code"] == "MANIFEST_INVALID"
        assert "manifest v2 schema 2" in r.json()["errors"][0]["detail"]

    refused = push(docker_client, heroku_emulator, images["good"], "no-such-app")
    assert any("denied" in e for e in errors(refused)), refused
    assert heroku_emulator.registry_contents() == {}


def test_push_release_router_and_teardown(
    heroku_emulator: HerokuEmulator, docker_client, images
) -> None:
    api = Api(heroku_emulator)
    app = api("POST", "/apps", json={"name": "ms-web", "stack": "container"}).json()
    api("PATCH", "/apps/ms-web/config-vars", json={"FOO": "bar"})  # v3

    lines = push(docker_client, heroku_emulator, images["good"], "ms-web")
    assert errors(lines) == []
    assert heroku_emulator.registry_contents() == {"ms-web/web": ["latest"]}
    # What `heroku container:release` reads: the manifest's config digest.
    manifest = requests.get(
        f"http://{heroku_emulator.registry}/v2/ms-web/web/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        auth=("", heroku_emulator.api_key),
        timeout=10,
    ).json()
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    digest = manifest["config"]["digest"]
    assert digest == images["good"]

    plain = api(
        "PATCH",
        "/apps/ms-web/formation",
        json={"updates": [{"type": "web", "docker_image": digest}]},
    )
    assert plain.status_code == 422  # docker_image needs the docker-releases variant
    unknown = release_image(api, "ms-web", "sha256:" + "0" * 64)
    assert unknown.status_code == 422

    formation = release_image(api, "ms-web", digest)
    assert formation.status_code == 200, formation.text
    assert formation.json()[0]["type"] == "web" and formation.json()[0]["quantity"] == 1
    pending = api(
        "GET", "/apps/ms-web/releases", headers={"Range": "version ..; max=1, order=desc"}
    )
    assert pending.json()[0]["version"] == 4
    assert pending.json()[0]["description"] == f"Deployed web ({digest[7:19]})"
    output = requests.get(pending.json()[0]["output_stream_url"], timeout=30).text
    assert "Starting process with command `python3 /srv/server.py`" in output
    release = wait_release(api, "ms-web", 4)
    assert release["status"] == "succeeded" and release["current"] is True

    answer = requests.get(app["web_url"] + "hello?x=1", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["path"] == "/hello?x=1"
    assert body["env"]["FOO"] == "bar" and body["env"]["DYNO"] == "web.1"
    dynos = api("GET", "/apps/ms-web/dynos").json()
    assert [(d["name"], d["state"], d["release"]["version"]) for d in dynos] == [("web.1", "up", 4)]
    port = dynos and int(body["env"]["PORT"])
    assert port >= 10000
    first_container = heroku_emulator.containers()
    assert len(first_container) == 1 and first_container[0]["app"] == "ms-web"

    # A config change is a new release; the new dyno replaces the old once it is up.
    api("PATCH", "/apps/ms-web/config-vars", json={"FOO": "baz"})
    assert wait_release(api, "ms-web", 5)["status"] == "succeeded"
    assert requests.get(app["web_url"], timeout=10).json()["env"]["FOO"] == "baz"
    containers = heroku_emulator.containers()
    assert len(containers) == 1 and containers[0]["id"] != first_container[0]["id"]

    # Rollback to v4: its image and its config vars.
    rollback = api("POST", "/apps/ms-web/releases", json={"release": release["id"]})
    assert rollback.status_code == 201 and rollback.json()["description"] == "Rollback to v4"
    assert wait_release(api, "ms-web", 6)["status"] == "succeeded"
    assert requests.get(app["web_url"], timeout=10).json()["env"]["FOO"] == "bar"

    # Scale to 0: no web dynos (H14), then back.
    api("PATCH", "/apps/ms-web/formation", json={"updates": [{"type": "web", "quantity": 0}]})
    deadline = time.monotonic() + 20
    while heroku_emulator.containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert requests.get(app["web_url"], timeout=10).status_code == 503

    logs = log_text(api, "ms-web")
    assert "heroku[web.1]: State changed from starting to up" in logs
    assert 'heroku[router]: at=info method=GET path="/hello?x=1"' in logs
    assert "app[web.1]: listening on" in logs
    assert "heroku[router]: at=error code=H14" in logs

    assert api("DELETE", "/apps/ms-web").status_code == 200
    assert_nothing_left(heroku_emulator, docker_client)
    pulled = [t for t in docker_client.images.get(images["good"]).tags if "ms-web" in t]
    assert pulled == []


def test_boot_timeout_r10_and_forced_failure(
    heroku_emulator: HerokuEmulator, docker_client, images
) -> None:
    heroku_emulator.boot_timeout = 2
    api = Api(heroku_emulator)
    api("POST", "/apps", json={"name": "ms-silent", "stack": "container"})
    assert errors(push(docker_client, heroku_emulator, images["silent"], "ms-silent")) == []
    assert release_image(api, "ms-silent", images["silent"]).status_code == 200
    release = wait_release(api, "ms-silent", 3)
    assert release["status"] == "failed"
    output = requests.get(release["output_stream_url"], timeout=10).text
    assert "Error R10 (Boot timeout)" in output
    logs = log_text(api, "ms-silent")
    assert (
        "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT "
        "within 2 seconds of launch" in logs
    )
    assert "heroku[web.1]: State changed from starting to crashed" in logs
    assert heroku_emulator.containers() == []

    # The switch: a good image fails the next release at once.
    assert errors(push(docker_client, heroku_emulator, images["good"], "ms-silent")) == []
    heroku_emulator.fail_next_release()
    release_image(api, "ms-silent", images["good"])
    assert wait_release(api, "ms-silent", 4, timeout=20)["status"] == "failed"
    assert release_image(api, "ms-silent", images["good"]).status_code == 200
    assert wait_release(api, "ms-silent", 5)["status"] == "succeeded"
    api("DELETE", "/apps/ms-silent")
    assert_nothing_left(heroku_emulator, docker_client)


def test_router_h12_and_h10(heroku_emulator: HerokuEmulator, docker_client, images) -> None:
    heroku_emulator.request_timeout = 1
    api = Api(heroku_emulator)
    app = api("POST", "/apps", json={"name": "ms-router", "stack": "container"}).json()
    push(docker_client, heroku_emulator, images["good"], "ms-router")
    release_image(api, "ms-router", images["good"])
    assert wait_release(api, "ms-router", 3)["status"] == "succeeded"

    slow = requests.get(app["web_url"] + "slow", timeout=10)
    assert slow.status_code == 503 and "Application Error" in slow.text
    assert 'at=error code=H12 desc="Request timeout"' in log_text(api, "ms-router")

    docker_client.containers.get(heroku_emulator.containers()[0]["id"]).kill()
    crashed = requests.get(app["web_url"], timeout=10)
    assert crashed.status_code == 503
    assert api("GET", "/apps/ms-router/dynos").json()[0]["state"] == "crashed"
    logs = log_text(api, "ms-router")
    assert 'at=error code=H10 desc="App crashed"' in logs
    assert "heroku[web.1]: State changed from up to crashed" in logs


def test_runs_as_a_process(tmp_path: Path) -> None:
    from tests.conftest import require

    from .registry import registry_available

    require(registry_available(), "docker-registry and htpasswd")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.heroku", "--api-key", "k-process"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        headers = {"Accept": V3, "Authorization": "Bearer k-process"}
        assert requests.get(info["api_url"] + "/account", headers=headers, timeout=10).ok
        requests.post(
            info["api_url"] + "/__emulator__/inject",
            json={"method": "GET", "path": "/account", "status": 503},
            timeout=10,
        )
        r = requests.get(info["api_url"] + "/account", headers=headers, timeout=10)
        assert r.status_code == 503
        r = requests.get(f"http://{info['registry']}/v2/", auth=("_", "k-process"), timeout=10)
        assert r.ok
    finally:
        process.terminate()
        assert process.wait(30) == 0
