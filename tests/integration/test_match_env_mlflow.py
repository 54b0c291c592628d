"""Issue 15 follow-up: an MLflow scikit-learn folder saved with another scikit-learn
(1.8.0) is offered a matching environment, and converts in it with its proof passing.

The model is trained with scikit-learn 1.8.0 inside an environment that app.model.envs makes
(with skops, to save it the way MLflow's sklearn flavor does); the folder around it is
written by MLflow itself here (MLmodel, signature, input example), then holds the 1.8.0
model file and pins scikit-learn 1.8.0 in requirements.txt, as a folder logged from that
environment would. The conversion environment must carry skops to read the file.
Environments are cached as in test_match_env (MODELSHIP_ENV_CACHE, or .ci/.state/envs).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.cli import main
from app.model import envs
from app.model.intake import inspect_model
from tests.conftest import require
from tests.integration.test_match_env import _index_reachable, env_cache  # noqa: F401
from tests.unit import mlflow_models as mm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PY = f"{sys.version_info.major}.{sys.version_info.minor}"
OLD = "1.8.0"
SKOPS = envs.installed_version("skops")
TRAINING = envs.EnvSpec(
    libraries=(("scikit-learn", OLD), ("skops", SKOPS)), python_version=PY, converters=("pandas",)
)


@pytest.fixture
def old_mlflow_folder(env_cache: Path, tmp_path: Path) -> Path:  # noqa: F811
    require(_index_reachable(), "The Python package index")
    if envs.installed_version("scikit-learn") == OLD:
        pytest.skip(f"ModelShip's own scikit-learn is {OLD}: nothing to match")
    python = envs.ensure_env(TRAINING)
    X, y = mm.frame()
    data = tmp_path / "train.csv"
    X.assign(label=y).to_csv(data, index=False)
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import pandas as pd, skops.io as sio
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            df = pd.read_csv(sys.argv[1])
            X, y = df.drop(columns="label"), df["label"]
            sio.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), sys.argv[2])
            """
        )
    )
    folder = mm.mlflow_sklearn(tmp_path / "churn-mlflow")  # skops format: model.skops
    subprocess.run(
        [python, str(script), str(data), str(folder / "model.skops")], check=True, timeout=300
    )
    reqs = folder / "requirements.txt"
    here = envs.installed_version("scikit-learn")
    reqs.write_text(reqs.read_text().replace(f"scikit-learn=={here}", f"scikit-learn=={OLD}"))
    return folder


def test_an_mlflow_folder_from_another_sklearn_converts_with_match_env(
    old_mlflow_folder: Path,
    env_cache: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    art = inspect_model(old_mlflow_folder)
    assert art.format == "skops" and art.libraries["scikit-learn"] == OLD
    found = envs.mismatch(art.kind, art.format, art.libraries)
    assert found is not None and found.wanted == {"scikit-learn": OLD, "skops": SKOPS}

    # without --match-env: refused, offering it
    assert main(["convert", str(old_mlflow_folder), "-o", str(tmp_path / "no.onnx")]) == 3
    err = capsys.readouterr().err
    assert f"scikit-learn {OLD}" in err and "--match-env" in err and "Traceback" not in err

    out = tmp_path / "m.onnx"
    assert main(["convert", str(old_mlflow_folder), "-o", str(out), "--match-env"]) == 0
    printed = capsys.readouterr()
    assert "within the tolerance" in printed.out and "NOT within" not in printed.out
    assert f"scikit-learn {OLD} and skops {SKOPS}" in printed.out + printed.err
    python = envs.find_env(envs.spec_for(found))
    assert python and Path(python).is_relative_to(env_cache)
    versions = subprocess.run(
        [python, "-c", "import sklearn, skops; print(sklearn.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions == [OLD]
