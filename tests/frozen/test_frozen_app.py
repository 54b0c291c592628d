"""The packaged executable does what the source app does (issue 6).

These run the real PyInstaller build (dist/modelship/modelship, made by
`python build/build.py`; .ci/test builds it before the tests). Locally they skip
when no build exists; in CI a missing build is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, require
from tests.unit import models

pytestmark = [pytest.mark.integration, pytest.mark.frozen]

EXE = Path(
    os.environ.get("MODELSHIP_FROZEN_EXE")
    or REPO / "dist" / "modelship" / ("modelship.exe" if sys.platform == "win32" else "modelship")
)


@pytest.fixture(scope="module")
def exe() -> Path:
    require(EXE.is_file(), f"the packaged executable {EXE} (python build/build.py)")
    return EXE


def run(exe: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **env)
    # The bundle must not lean on the test virtualenv or any Python on the machine.
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "MODELSHIP_PYTHON"):
        full_env.pop(var, None)
    full_env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


def test_version(exe: Path) -> None:
    from app import __version__

    result = run(exe, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"modelship {__version__}"


def test_wizard_starts_offscreen_to_its_first_page_and_closes(exe: Path) -> None:
    result = run(exe, QT_QPA_PLATFORM="offscreen", MODELSHIP_EXIT_AFTER_FIRST_PAGE="1", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "first page shown" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "make",
    [models.sklearn_pipeline_frame, models.xgboost_native, models.lightgbm_native],
    ids=["sklearn-pipeline", "xgboost-json", "lightgbm-txt"],
)
def test_inspect_and_convert_inside_the_bundle(exe: Path, tmp_path: Path, make) -> None:
    suffix = {"xgboost_native": ".json", "lightgbm_native": ".txt"}.get(make.__name__, ".joblib")
    model = make(tmp_path / f"model{suffix}")
    inspected = run(exe, "inspect", str(model), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["kind"] in {"sklearn", "xgboost", "lightgbm"}

    out = tmp_path / "model.onnx"
    converted = run(exe, "convert", str(model), "-o", str(out), "--json")
    assert converted.returncode == 0, converted.stderr[-3000:]
    report = json.loads(converted.stdout)["report"]
    assert report["passed"] is True
    assert report["rows"] >= 200
    assert out.is_file() and out.with_name("model.signature.json").is_file()


def test_pytorch_needs_an_external_python_and_works_with_one(exe: Path, tmp_path: Path) -> None:
    scripted, _ = models.torch_models(tmp_path)
    out = tmp_path / "net.onnx"
    refused = run(exe, "convert", str(scripted), "--input-shape", "1,3,8,8", "-o", str(out))
    assert refused.returncode != 0
    assert "--python" in refused.stderr
    assert "Traceback" not in refused.stderr

    # The test environment's Python has torch: the user's "training environment".
    converted = run(
        exe, "convert", str(scripted), "--input-shape", "1,3,8,8", "-o", str(out),
        "--python", sys.executable, "--json",
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert json.loads(converted.stdout)["report"]["passed"] is True


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def test_headless_deploy_of_the_sample_to_local_then_teardown(exe: Path) -> None:
    deployed = run(exe, "demo", "--name", "frozen-local", "--json")
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    record = json.loads(deployed.stdout)
    assert record["smoke"]["passed"] is True
    url = record["endpoint"]["url"]
    assert _get(url.rstrip("/") + "/ping") == 200

    status = run(exe, "status", "frozen-local", "--json")
    assert status.returncode == 0, status.stderr
    torn = run(exe, "teardown", "frozen-local")
    assert torn.returncode == 0, torn.stderr
    with pytest.raises(OSError):
        _get(url.rstrip("/") + "/ping")


def test_headless_deploy_of_the_sample_to_docker_then_teardown(
    exe: Path, docker_client, base_image: str
) -> None:
    deployed = run(
        exe, "demo", "--name", "frozen-docker", "--target", "docker",
        "--base-image", base_image, "--json", timeout=600,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    record = json.loads(deployed.stdout)
    assert record["smoke"]["passed"] is True
    assert _get(record["endpoint"]["url"].rstrip("/") + "/ping") == 200

    torn = run(exe, "teardown", "frozen-docker")
    assert torn.returncode == 0, torn.stderr
    ours = docker_client.containers.list(
        ignore_removed=True, all=True, filters={"label": "modelship.deployment=frozen-docker"}
    )
    assert ours == []


@pytest.fixture
def heroku_process(tmp_path: Path):
    """The Heroku emulator as its own process (`python -m tests.emulators.heroku`), as
    the bundle would meet a real platform: over HTTP only."""
    from tests.conftest import docker_available
    from tests.emulators.heroku.registry import registry_available

    require(docker_available(), "Docker Engine")
    require(registry_available(), "docker-registry and htpasswd")
    key = "frozen-heroku-key-0123456789"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.heroku", "--api-key", key,
         "--boot-timeout", "60", "--request-timeout", "30"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.terminate()
        proc.wait(60)


def test_headless_deploy_to_heroku_with_the_key_from_the_environment_then_teardown(
    exe: Path, heroku_process: dict, base_image: str, tmp_path: Path
) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from app.store.profile import Profile, save_profile

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    model = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model)
    save_profile(
        Profile.model_validate(
            {
                "schema": 2,
                "name": "frozen-heroku",
                "model": {"path": str(model)},
                "target": {
                    "kind": "heroku",
                    "settings": {
                        "app": "frozen-heroku",
                        "api_url": heroku_process["api_url"],
                        "registry": heroku_process["registry"],
                        "require_api_key": False,
                    },
                },
                "image": {"base_image": base_image},
            }
        )
    )
    # the emulator's addresses are confirmed with the bundle's own command, as a person
    # would confirm a Heroku-compatible service before ModelShip sends it the key
    for address in (heroku_process["api_url"], heroku_process["registry"]):
        allowed = run(exe, "hosts", "allow", address)
        assert allowed.returncode == 0, allowed.stderr
    # CI has no secure keyring: the key from HEROKU_API_KEY is used for the run only.
    key = {"HEROKU_API_KEY": heroku_process["api_key"]}
    deployed = run(exe, "deploy", "frozen-heroku", "--json", timeout=600, **key)
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    assert "Heroku bills the basic dyno" in deployed.stderr
    record = json.loads(deployed.stdout)
    assert record["smoke"]["passed"] is True
    assert _get(record["endpoint"]["url"].rstrip("/") + "/ping") == 200

    status = run(exe, "status", "frozen-heroku", "--json", **key)
    assert status.returncode == 0, status.stderr
    torn = run(exe, "teardown", "frozen-heroku", **key)
    assert torn.returncode == 0, torn.stderr
    with urllib.request.urlopen(heroku_process["api_url"] + "/__emulator__/state") as resp:
        state = json.loads(resp.read())
    assert state["apps"] == {} and state["containers"] == [] and state["registry"] == {}


@pytest.fixture
def openstack_process(tmp_path: Path):
    """The OpenStack emulator as its own process, its servers the local sshd
    (`python -m tests.emulators.openstack --sshd`), with a clouds.yaml it writes."""
    from tests.conftest import docker_available
    from tests.emulators.openstack.sshd import sshd_available

    require(docker_available(), "Docker Engine")
    require(sshd_available(), "OpenSSH server (/usr/sbin/sshd)")
    clouds = tmp_path / "clouds.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.openstack", "--sshd",
         "--console-delay", "0.3", "--clouds-yaml", str(clouds), "--region", "Freiburg"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        info["clouds_yaml"] = str(clouds)
        yield info
    finally:
        proc.terminate()
        proc.wait(60)


def test_headless_deploy_to_openstack_over_https_then_teardown(
    exe: Path, openstack_process: dict, base_image: str, tmp_path: Path
) -> None:
    """The bundle's openstacksdk and keystoneauth find their data and entry points (an
    application-credential cloud needs the v3applicationcredential plugin), paramiko
    logs in with the pinned host key, the endpoint answers HTTPS with the pinned
    certificate, and teardown leaves the emulated cloud and the "VM" empty.

    The deployment's SSH key must live in a secure keyring across the three commands:
    they run in one `dbus-run-session` with an unlocked gnome-keyring-daemon (the
    bundle's SecretService backend), as on a headless Linux machine."""
    import shutil
    import socket

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from app.store.profile import Profile, save_profile

    require(
        bool(shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
        "dbus-run-session and gnome-keyring-daemon (Debian dbus, gnome-keyring)",
    )
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    model = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    save_profile(
        Profile.model_validate(
            {
                "schema": 1,
                "name": "frozen-openstack",
                "model": {"path": str(model)},
                "target": {
                    "kind": "openstack",
                    "settings": {
                        "cloud": "bwcloud-appcred",
                        "region": "Freiburg",
                        "ssh_user": "root",
                        "ssh_port": openstack_process["ssh_port"],
                        "port": port,
                        "allowed_cidr": "127.0.0.0/8",
                        "require_api_key": False,
                    },
                },
                "image": {"base_image": base_image},
            }
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "run.sh"
    script.write_text(
        "set -u\n"
        "echo -n frozen-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n"
        f'"{exe}" deploy frozen-openstack --json >{out}/deploy.json 2>{out}/deploy.err\n'
        f"echo $? >{out}/deploy.rc\n"
        f'"{exe}" status frozen-openstack --json >{out}/status.json 2>{out}/status.err\n'
        f"echo $? >{out}/status.rc\n"
        f'"{exe}" teardown frozen-openstack >{out}/teardown.out 2>{out}/teardown.err\n'
        f"echo $? >{out}/teardown.rc\n"
    )
    env = dict(os.environ)
    for var in ("PYTHONPATH", "VIRTUAL_ENV", "MODELSHIP_PYTHON", "PYTHON_KEYRING_BACKEND"):
        env.pop(var, None)
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    env["OS_CLIENT_CONFIG_FILE"] = openstack_process["clouds_yaml"]
    env["HOME"] = str(tmp_path)
    subprocess.run(
        ["dbus-run-session", "--", "sh", str(script)],
        env=env, timeout=900, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip

    def rc(step: str) -> str:
        return (out / f"{step}.rc").read_text().strip() if (out / f"{step}.rc").exists() else "?"

    assert rc("deploy") == "0", (out / "deploy.err").read_text()[-4000:]
    record = json.loads((out / "deploy.json").read_text())
    assert record["smoke"]["passed"] is True
    assert record["endpoint"]["url"] == f"https://127.0.0.1:{port}"
    assert record["endpoint"]["tls_sha256"]
    assert rc("status") == "0", (out / "status.err").read_text()[-2000:]
    assert rc("teardown") == "0", (out / "teardown.err").read_text()[-2000:]
    with urllib.request.urlopen(openstack_process["url"] + "/__emulator__/listing") as resp:
        listing = json.loads(resp.read())
    assert all(not items for items in listing.values()), listing
