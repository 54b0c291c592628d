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
