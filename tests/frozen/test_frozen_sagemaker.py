"""The packaged executable deploys to SageMaker (issue 12): boto3 and its data are bundled.

moto and the SageMaker emulator run as their own processes, as the bundle would meet
AWS: over HTTP only, addressed through botocore's standard settings
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SAGEMAKER[_RUNTIME]``). The bundle carries
botocore's data for the services the target uses only (build/bundle.py AWS_SERVICES):
a service missing from it fails here with botocore's UnknownServiceError.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, require
from tests.emulators.sagemaker_runtime.fixtures import (
    AWS_TEST_ENV,
    AWS_UNSET,
    emulator_state,
    registry_address,
    registry_available,
)
from tests.frozen.test_frozen_app import EXE, run

pytestmark = [pytest.mark.integration, pytest.mark.frozen]


@pytest.fixture(scope="module")
def exe() -> Path:
    require(EXE.is_file(), f"the packaged executable {EXE} (python build/build.py)")
    return EXE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def aws_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto and the SageMaker emulator as processes; the environment the bundle gets."""
    from tests.conftest import docker_available

    require(docker_available(), "Docker Engine")
    require(registry_available(registry_address()), f"the local registry {registry_address()}")
    moto_port, emu_port = _free_port(), _free_port()
    moto_url, emu_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{emu_port}"
    moto_cmd = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1"]
    moto_env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    procs = [
        subprocess.Popen(
            [*moto_cmd, "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=moto_env,
        )
    ]
    emu_cmd = [sys.executable, "-m", "tests.emulators.sagemaker_runtime", "--moto-url", moto_url]
    emu_cmd += ["--port", str(emu_port)]
    try:
        _wait_http(f"{moto_url}/moto-api/")
        procs.append(subprocess.Popen(emu_cmd, cwd=REPO, stdout=subprocess.DEVNULL))
        _wait_http(f"{emu_url}/__emulator__/health")
        for name in AWS_UNSET:
            monkeypatch.delenv(name, raising=False)
        env = {
            **AWS_TEST_ENV,
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": emu_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": emu_url,
        }
        for key, value in env.items():  # for this process's boto3 checks too
            monkeypatch.setenv(key, value)
        yield {**env, "emulator": emu_url}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_headless_deploy_to_sagemaker_invoke_status_teardown(
    exe: Path, aws_processes: dict[str, str], base_image: str, tmp_path: Path
) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from app.store.profile import save_profile
    from tests.conformance.harnesses.sagemaker import (
        aws_leftovers,
        registry_tags,
        sagemaker_profile,
    )

    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    model = tmp_path / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), model)
    name = "frozen-sm"
    save_profile(sagemaker_profile(model, name, base_image))
    env = {k: v for k, v in aws_processes.items() if k != "emulator"}
    # the local registry stands in for ECR: confirmed with the bundle's own command
    allowed = run(exe, "hosts", "allow", registry_address())
    assert allowed.returncode == 0, allowed.stderr

    deployed = run(exe, "deploy", name, "--json", timeout=900, **env)
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    record = json.loads(deployed.stdout)
    assert record["smoke"]["passed"] is True
    assert record["endpoint"]["auth"] == "sigv4"
    assert "SageMaker bills the realtime endpoint" in deployed.stderr
    state = emulator_state(aws_processes["emulator"])
    assert [e["status"] for e in state["endpoints"]] == ["InService"], state

    rows = tmp_path / "rows.csv"
    rows.write_text("f0,f1,f2,f3\n1.0,0.0,0.0,0.0\n-1.0,0.0,0.0,0.0\n")
    invoked = run(exe, "invoke", name, "--csv", str(rows), **env)
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    assert len(invoked.stdout.strip().splitlines()) == 3
    status = run(exe, "status", name, **env)
    assert status.returncode == 0 and "per hour" in status.stdout, status.stderr

    torn = run(exe, "teardown", name, **env)
    assert torn.returncode == 0, torn.stderr[-3000:]

    class _Remote:  # aws_leftovers asks the emulator for its containers
        @staticmethod
        def containers() -> list[str]:
            return list(emulator_state(aws_processes["emulator"]).get("containers") or [])

    assert aws_leftovers(name, _Remote()) == []
    assert registry_tags(f"modelship/{name}") == []


def test_missing_credentials_exit_6(exe: Path, aws_processes: dict[str, str], tmp_path) -> None:
    from app.store.profile import save_profile
    from tests.conformance.harnesses.sagemaker import sagemaker_profile

    model = tmp_path / "m.onnx"
    model.write_bytes(b"not used: preflight stops first")
    save_profile(sagemaker_profile(model, "frozen-sm-nocreds", "unused:latest"))
    env = {k: v for k, v in aws_processes.items() if k != "emulator"}
    assert run(exe, "hosts", "allow", registry_address()).returncode == 0
    env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_SESSION_TOKEN="")
    result = run(exe, "deploy", "frozen-sm-nocreds", **env)
    assert result.returncode == 6, result.stderr[-3000:]
    assert "aws configure" in result.stderr and "Traceback" not in result.stderr
