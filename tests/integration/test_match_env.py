"""Matching conversion environments (app/model/envs.py), for real: built from the package index.

A model is trained with a scikit-learn release other than ModelShip's own, inside an
environment that app.model.envs itself makes; `modelship convert --match-env` then makes (or
finds) the matching environment, converts there, and the proof passes; a second
conversion reuses it. Environments are cached in ``MODELSHIP_ENV_CACHE`` (CI points it
at a folder that outlives the run, so the download happens once) or else in
``.ci/.state/envs``. Nothing here is mocked: pip really talks to the index, and the
unreachable index is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from app.cli import main
from app.model import envs
from app.paths import profiles_dir
from app.store.profile import load_profile
from tests.conftest import REPO, require
from tests.integration.test_local_target import (  # noqa: F401 - fixtures
    assert_nothing_left,
    free_port,
    iris_model,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _other_sklearn() -> str:
    """A scikit-learn release with wheels for this Python, other than ModelShip's own."""
    import sklearn

    return "1.6.1" if sklearn.__version__.startswith("1.7.") else "1.7.2"


OTHER = _other_sklearn()
# The training environment: the model's library and pandas, no converters (so its key
# differs from the conversion environment's, which --match-env makes on its own).
TRAINING = envs.EnvSpec(
    libraries=(("scikit-learn", OTHER),), python_version=PY, converters=("pandas",)
)


def _index_reachable() -> bool:
    url = os.environ.get("PIP_INDEX_URL") or envs.DEFAULT_INDEX
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/pip/", timeout=15) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture
def env_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = Path(os.environ.get("MODELSHIP_ENV_CACHE") or REPO / ".ci" / ".state" / "envs")
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("MODELSHIP_ENV_CACHE", str(cache))
    return cache


@pytest.fixture
def old_model(env_cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A Pipeline fitted on a DataFrame with scikit-learn OTHER, and sample rows."""
    require(_index_reachable(), "The Python package index")
    python = envs.ensure_env(TRAINING)
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import joblib, numpy as np, pandas as pd
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            rng = np.random.RandomState(0)
            X = pd.DataFrame(rng.rand(300, 3), columns=["age", "income", "tenure"])
            y = (X["age"] + X["income"] > 1).astype(int)
            model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
            joblib.dump(model, sys.argv[1])
            X.head(50).to_csv(sys.argv[2], index=False)
            """
        )
    )
    model, rows = tmp_path / "churn.joblib", tmp_path / "rows.csv"
    subprocess.run([python, str(script), str(model), str(rows)], check=True, timeout=300)
    return model, rows


def test_a_model_from_another_sklearn_converts_in_a_matching_environment(
    old_model: tuple[Path, Path], env_cache: Path, tmp_path: Path, capsys
) -> None:
    model, rows = old_model
    # without --match-env: refused, naming both versions and the way on
    assert main(["convert", str(model), "-o", str(tmp_path / "no.onnx")]) == 3
    err = capsys.readouterr().err
    assert f"scikit-learn {OTHER}" in err and "--match-env" in err and "Traceback" not in err
    assert not (tmp_path / "no.onnx").exists()

    out = tmp_path / "m.onnx"
    assert main(["convert", str(model), "-o", str(out), "--sample", str(rows), "--match-env"]) == 0
    printed = capsys.readouterr()
    assert "within the tolerance" in printed.out and "NOT within" not in printed.out
    assert f"matching environment with scikit-learn {OTHER}" in printed.out
    spec = envs.spec_for(envs.mismatch("sklearn", "joblib", {"scikit-learn": OTHER}))
    python = envs.find_env(spec)
    assert python and Path(python).is_relative_to(env_cache)
    marker = env_cache / spec.key() / "modelship-env.json"
    made = marker.stat().st_mtime_ns
    assert not list(env_cache.glob(".building-*"))

    # the second conversion reuses the environment: nothing is made again
    again = tmp_path / "again.onnx"
    assert main(["convert", str(model), "-o", str(again), "--match-env"]) == 0
    printed = capsys.readouterr()
    assert "Making a conversion environment" not in printed.err
    assert "Using the matching environment" in printed.err
    assert marker.stat().st_mtime_ns == made
    assert "within the tolerance" in printed.out


def test_deploy_with_match_env_stores_it_and_passes_its_proof(
    old_model: tuple[Path, Path],
) -> None:
    model, _rows = old_model
    port = free_port()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "deploy",
            str(model),
            "--name",
            "old",
            "--port",
            str(port),
            "--match-env",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    try:
        assert res.returncode == 0, res.stderr
        assert "Smoke test: The endpoint answered" in res.stdout
        assert load_profile(str(profiles_dir() / "old.toml")).model.match_env is True
    finally:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "teardown", "old"], capture_output=True, timeout=300
        )
    assert_nothing_left("old", port)


def test_deploy_stores_the_conversion_flags_in_its_profile(
    iris_model: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    import joblib
    import pandas as pd

    rows = tmp_path / "rows.csv"
    columns = list(joblib.load(iris_model).feature_names_in_)
    pd.DataFrame([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], columns=columns).to_csv(
        rows, index=False
    )
    port = free_port()
    args = ["deploy", str(iris_model), "--name", "flags", "--port", str(port)]
    args += ["--sample", str(rows), "--tolerance", "0.001", "--input-shape", "1,4"]
    args += ["--python", sys.executable, "--match-env"]
    res = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    try:
        assert res.returncode == 0, res.stderr
        saved = load_profile(str(profiles_dir() / "flags.toml")).model
        assert saved.sample_csv == rows.resolve() and saved.tolerance == 0.001
        assert saved.input_shape == [1, 4] and saved.match_env is True
        assert saved.python == str(Path(sys.executable).absolute())
        # the proof ran on the given rows, with the given tolerance
        assert "tolerance of 0.001" in res.stderr + res.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "teardown", "flags"],
            capture_output=True,
            timeout=300,
        )
    assert_nothing_left("flags", port)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_index_says_so_and_leaves_no_half_made_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import joblib
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression

    here = sklearn.__version__
    fake = "1.5.2"[: len(here)].ljust(len(here), "0")
    assert fake != here
    X = np.random.RandomState(0).rand(40, 2)
    good = tmp_path / "good.joblib"
    joblib.dump(LogisticRegression().fit(X, X[:, 0] > 0.5), good)
    model = tmp_path / "m.joblib"
    model.write_bytes(good.read_bytes().replace(here.encode(), fake.encode()))

    cache = tmp_path / "envs"
    index = f"http://127.0.0.1:{_closed_port()}/simple"
    monkeypatch.setenv("MODELSHIP_ENV_CACHE", str(cache))
    monkeypatch.setenv("PIP_INDEX_URL", index)
    monkeypatch.setenv("PIP_RETRIES", "1")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no find-links or index from pip.conf
    started = time.monotonic()
    assert main(["convert", str(model), "-o", str(tmp_path / "m.onnx"), "--match-env"]) == 3
    err = capsys.readouterr().err
    assert f"Could not reach the package index at {index}" in err, err
    assert "HTTPS_PROXY" in err and "PIP_INDEX_URL" in err and "Traceback" not in err
    # nothing half-made: only the lock file is left in the cache
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    assert not (tmp_path / "m.onnx").exists()
    assert time.monotonic() - started < 300


def test_a_pickled_xgboost_model_from_another_release_converts_in_a_matching_environment(
    env_cache: Path, tmp_path: Path, capsys
) -> None:
    """XGBoost records its release inside a pickled booster; app.model.envs reads it there."""
    import sklearn

    require(_index_reachable(), "The Python package index")
    here = envs.installed_version("xgboost")
    other = "3.1.3" if not here.startswith("3.1.") else "3.0.5"
    training = envs.EnvSpec(
        libraries=(("scikit-learn", sklearn.__version__), ("xgboost", other)),
        python_version=PY,
        converters=("pandas",),
    )
    python = envs.ensure_env(training)
    model = tmp_path / "xgb.joblib"
    script = (
        "import sys, joblib, numpy as np, xgboost as xgb\n"
        "rng = np.random.RandomState(0); X = rng.rand(200, 4).astype('float32')\n"
        "y = (X[:, 0] > 0.5).astype(int)\n"
        "joblib.dump(xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y), sys.argv[1])\n"
    )
    subprocess.run([python, "-c", script, str(model)], check=True, timeout=300)

    assert main(["convert", str(model), "-o", str(tmp_path / "no.onnx")]) == 3
    err = capsys.readouterr().err
    assert f"xgboost {other}" in err and "--match-env" in err

    assert main(["convert", str(model), "-o", str(tmp_path / "x.onnx"), "--match-env"]) == 0
    printed = capsys.readouterr()
    assert "within the tolerance" in printed.out and "NOT within" not in printed.out
    assert f"xgboost {other}" in printed.out


def test_a_cancelled_build_stops_pip_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from app.errors import Cancelled
    from app.progress import CancelToken

    require(_index_reachable(), "The Python package index")
    cache = tmp_path / "envs"
    monkeypatch.setenv("MODELSHIP_ENV_CACHE", str(cache))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")  # a real download, long enough to cancel
    cancel = CancelToken()
    seen: list[str] = []

    class Progress:
        def step(self, name: str) -> None:
            seen.append(name)

        def update(self, fraction: float | None = None, message: str | None = None) -> None:
            if message and message.startswith("Collecting"):
                cancel.cancel()  # pip is running: cancel now

        def log(self, line: str) -> None:
            pass

    spec = envs.EnvSpec.of({"scikit-learn": "1.5.2"}, PY)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        envs.ensure_env(spec, Progress(), cancel)
    assert time.monotonic() - started < 120
    assert seen and "Making a conversion environment" in seen[0]
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    assert not [t for t in threading.enumerate() if t.name == "modelship-pip"]
