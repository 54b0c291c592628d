"""The packaged app converts with --match-env: having no interpreter of its own, it makes
(or finds) the matching environment with a Python 3.10+ on the PATH, converts there and
the proof passes; with no such Python on the PATH it says what to install (issue 15).

The model comes from test_match_env's fixture (trained with another scikit-learn in an
environment app.model.envs makes); environments are shared through MODELSHIP_ENV_CACHE as
there, so a cached one is used and only the PATH's Python decides its key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.frozen.test_frozen_app import exe, run  # noqa: F401 - the fixture
from tests.integration.test_match_env import OTHER, env_cache, old_model  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.frozen, pytest.mark.slow]

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # what run() gives the bundle


def _system_python() -> str | None:
    for name in ("python3.13", "python3.12", "python3.11", "python3.10", "python3"):
        found = shutil.which(name, path=SYSTEM_PATH)
        if found:
            return found
    return None


def test_match_env_uses_a_python_from_the_path(
    exe: Path,  # noqa: F811
    old_model: tuple[Path, Path],  # noqa: F811
    env_cache: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    require(_system_python() is not None, f"a python3 on {SYSTEM_PATH}")
    model, rows = old_model
    cache = {"MODELSHIP_ENV_CACHE": str(env_cache)}
    refused = run(exe, "convert", str(model), "-o", str(tmp_path / "no.onnx"), **cache)
    assert refused.returncode == 3, refused.stderr
    assert f"scikit-learn {OTHER}" in refused.stderr and "--match-env" in refused.stderr

    out = tmp_path / "m.onnx"
    args = ("convert", str(model), "-o", str(out), "--sample", str(rows), "--match-env")
    converted = run(exe, *args, timeout=900, **cache)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "within the tolerance" in converted.stdout and "NOT within" not in converted.stdout
    assert f"matching environment with scikit-learn {OTHER}" in converted.stdout
    assert out.is_file() and "Traceback" not in converted.stderr


def test_match_env_without_a_python_says_what_to_install(
    exe: Path,  # noqa: F811
    old_model: tuple[Path, Path],  # noqa: F811
    env_cache: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    model, _rows = old_model
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"MODELSHIP_ENV_CACHE": str(env_cache), "PATH": str(empty)}
    full_env = dict(os.environ, **env)
    assert shutil.which("python3", path=full_env["PATH"]) is None
    # run() pins PATH to the system folders; this one must have no Python at all
    res = subprocess.run(
        [str(exe), "convert", str(model), "-o", str(tmp_path / "m.onnx"), "--match-env"],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in full_env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode != 0
    assert "needs Python 3.10 or newer" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "m.onnx").exists()
