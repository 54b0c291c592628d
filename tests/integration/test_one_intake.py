"""One path per job (issue 21): a deploy reads the model once, hashes it once, and asks
the MLflow tracking server to resolve a ``models:/`` URI once.

Real deploys to the local target (a real converter, a real server process, a real
file-based MLflow tracking store); the functions are only counted, never replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.run import run_deploy, teardown
from app.store.profile import new_profile
from tests.integration.test_local_target import (  # noqa: F401 - fixtures
    assert_nothing_left,
    free_port,
    iris_model,
)
from tests.unit import mlflow_models as mm

pytestmark = pytest.mark.slow


def spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple]:
    """Count the calls of ``module.name`` wherever it was imported to (the real one runs)."""
    real = getattr(module, name)
    calls: list[tuple] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    for mod in list(sys.modules.values()):
        ours = getattr(mod, "__name__", "").startswith(("app", "targets"))
        if ours and mod.__dict__.get(name) is real:
            monkeypatch.setattr(mod, name, counting)
    return calls


def _on(path: Path) -> Callable[[tuple], bool]:
    return lambda args: bool(args) and Path(args[0]).resolve() == path.resolve()


def test_a_local_deploy_reads_and_hashes_the_model_once(
    iris_model: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.hashing
    import app.model.intake

    hashed = spy(monkeypatch, app.hashing, "sha256_file")
    read = spy(monkeypatch, app.model.intake, "inspect_model")
    port = free_port()
    profile = new_profile(iris_model, name="once", settings={"port": port})
    try:
        record = run_deploy(profile)
        assert record.smoke and record.smoke["passed"]
        assert len([c for c in hashed if _on(iris_model)(c)]) == 1, hashed
        assert len([c for c in read if _on(iris_model)(c)]) == 1, read
    finally:
        teardown("once")
    assert_nothing_left("once", port)


def test_modelship_build_converts_reading_and_hashing_the_model_once(
    iris_model: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`modelship build` converts through convert_for_profile without a deploy's intake."""
    import app.hashing
    import app.model.intake
    from app.progress import CancelToken, NullProgress
    from app.run import convert_for_profile

    hashed = spy(monkeypatch, app.hashing, "sha256_file")
    read = spy(monkeypatch, app.model.intake, "inspect_model")
    profile = new_profile(iris_model, name="built")
    out = tmp_path / "model.onnx"
    converted = convert_for_profile(profile, out, NullProgress(), CancelToken())
    assert converted.complete() and converted.conversion_key
    assert len([c for c in hashed if _on(iris_model)(c)]) == 1, hashed
    assert len([c for c in read if _on(iris_model)(c)]) == 1, read


_LOG = (
    "import mlflow, sys\n"
    "with mlflow.start_run() as run:\n"
    "    mlflow.log_artifacts(sys.argv[1], artifact_path='churn_model')\n"
    "v = mlflow.register_model(f'runs:/{run.info.run_id}/churn_model', 'churn')\n"
    "mlflow.MlflowClient().set_registered_model_alias('churn', 'champion', v.version)\n"
)

# in its own process, as `modelship deploy` runs: MLflow keeps a thread pool for
# downloads. The counts are printed as the last line.
_DEPLOY = """
import json, sys
from pathlib import Path
import app.hashing, app.model.mlflowmodel
import mlflow.artifacts
from app.store.profile import new_profile
from app.run import run_deploy, teardown

counts = {"resolve": 0, "download": 0, "hash": []}
real_resolve = app.model.mlflowmodel.resolve_uri
real_download = mlflow.artifacts.download_artifacts
real_hash = app.hashing.sha256_file

def resolve(uri):
    counts["resolve"] += 1
    return real_resolve(uri)

def download(*a, **k):
    counts["download"] += 1
    return real_download(*a, **k)

def hashing(path):
    counts["hash"].append(str(Path(path).resolve()))
    return real_hash(path)

app.model.mlflowmodel.resolve_uri = resolve
mlflow.artifacts.download_artifacts = download
for mod in list(sys.modules.values()):
    if getattr(mod, "__name__", "").startswith(("app", "targets")):
        if mod.__dict__.get("sha256_file") is real_hash:
            mod.sha256_file = hashing
record = run_deploy(new_profile(sys.argv[1], settings={"port": int(sys.argv[2])}))
passed = bool(record.smoke and record.smoke["passed"])
# the model folder the URI downloaded to, each time it was hashed whole
folders = {p: counts["hash"].count(p) for p in set(counts["hash"]) if Path(p).is_dir()}
teardown(record.name)
print(json.dumps({"resolve": counts["resolve"], "download": counts["download"],
                  "folders": folders, "passed": passed}))
"""


def test_a_models_uri_is_resolved_once_per_deploy(tmp_path: Path) -> None:
    import json

    folder = mm.mlflow_sklearn(tmp_path / "churn-mlflow")
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    logged = subprocess.run(
        [sys.executable, "-c", _LOG, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert logged.returncode == 0, logged.stderr
    port = free_port()
    ran = subprocess.run(
        [sys.executable, "-c", _DEPLOY, "models:/churn@champion", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ran.returncode == 0, ran.stderr
    counts = json.loads(ran.stdout.strip().splitlines()[-1])
    assert counts["passed"]
    # the alias is resolved against the tracking server once, the version downloaded once
    assert counts["resolve"] == 1, counts
    assert counts["download"] == 1, counts
    # and the downloaded model folder hashed once
    assert list(counts["folders"].values()) == [1], counts
    assert_nothing_left("churn", port)
