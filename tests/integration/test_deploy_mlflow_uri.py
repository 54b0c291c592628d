"""Issue 15 follow-up: `modelship deploy runs:/...` and `models:/...` deploy end to end to
the local target from a real (file-based) MLflow tracking store: the profile keeps the
URI as it is, the pipeline downloads it into the cache (once per run or version) and the
smoke test passes; without a tracking server the error says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.store.profile import load_profile, profile_path
from tests.integration.test_deploy_cli import modelship
from tests.integration.test_local_target import assert_nothing_left, free_port, predict
from tests.unit import mlflow_models as mm

pytestmark = pytest.mark.slow

ROW = {"age": 61.0, "income": 48.5, "score": 0.7}

_LOG = (
    "import mlflow, sys\n"
    "with mlflow.start_run() as run:\n"
    "    mlflow.log_artifacts(sys.argv[1], artifact_path='churn_model')\n"
    "uri = f'runs:/{run.info.run_id}/churn_model'\n"
    "v = mlflow.register_model(uri, 'churn')\n"
    "mlflow.MlflowClient().set_registered_model_alias('churn', 'champion', v.version)\n"
    "print(run.info.run_id)\n"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A folder logged to a file tracking store (a real MLflow backend) and registered."""
    d = tmp_path_factory.mktemp("mlflow-uri")
    folder = mm.mlflow_sklearn(d / "churn-mlflow")
    env = {
        "MLFLOW_TRACKING_URI": (d / "mlruns").as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true",
    }
    # in its own process: MLflow's artifact repository keeps a thread pool
    logged = subprocess.run(
        [sys.executable, "-c", _LOG, str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert logged.returncode == 0, logged.stderr
    return {**env, "run_id": logged.stdout.split()[-1]}


@pytest.mark.parametrize(
    ("uri", "name"),
    [("runs:/{run_id}/churn_model", "churn_model"), ("models:/churn@champion", "churn")],
)
def test_deploy_an_mlflow_uri_to_the_local_target(
    store: dict[str, str], monkeypatch: pytest.MonkeyPatch, uri: str, name: str
) -> None:
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(key, store[key])
    uri = uri.format(run_id=store["run_id"])
    port = free_port()
    res = modelship("deploy", uri, "--port", str(port), "--json")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["name"] == name  # named by the artifact folder / the registered model
    assert record["smoke"]["passed"] is True, record["smoke"]
    saved = load_profile(profile_path(name))
    assert saved.model.path == uri  # kept as the URI, not made a file path
    assert 'path = "' + uri + '"' in profile_path(name).read_text(encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    try:
        assert predict(url, [ROW])["predictions"][0] in {"no", "yes"}
        # a re-run finds the same download and the same conversion: nothing to redo
        again = modelship("deploy", name, "--json")
        assert again.returncode == 0, again.stderr
        assert "reusing its conversion" in again.stderr or "unchanged" in again.stderr
    finally:
        gone = modelship("teardown", name)
        assert gone.returncode == 0, gone.stderr
    assert_nothing_left(name, port)


def test_deploy_an_mlflow_uri_without_a_tracking_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = modelship("deploy", "runs:/0123abcd/model", "--port", str(free_port()))
    assert res.returncode != 0
    assert "no MLflow tracking server is configured" in res.stderr
    assert "MLFLOW_TRACKING_URI" in res.stderr
    assert not profile_path("model").exists()


def test_deploy_an_mlflow_uri_from_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    res = modelship("deploy", "models:/churn/Production", "--port", str(free_port()))
    assert res.returncode != 0
    assert "could not be downloaded from the MLflow tracking server" in res.stderr
    assert not profile_path("churn").exists()


def test_a_profile_keeps_a_uri_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    from app.errors import ProfileError
    from app.store.profile import parse_profile

    text = 'schema = 1\nname = "c"\n[model]\npath = "{}"\n[target]\nkind = "local"\n'
    p = parse_profile(text.format("models:/churn/3"), source=tmp_path / "c.toml")
    assert p.model.path == "models:/churn/3"
    with pytest.raises(ProfileError) as err:
        parse_profile(text.format("runs:/abc"), source=tmp_path / "c.toml")
    assert "model.path" in err.value.message and "RUN_ID" in err.value.message
