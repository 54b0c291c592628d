"""The packaged executable reads MLflow model folders and skops files with what it
carries (PyYAML, skops), and sends CatBoost, which it does not carry, to a Python that
has it (issue 15)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from tests.frozen.test_frozen_app import exe, run  # noqa: F401 - the fixture
from tests.integration.test_match_env import _index_reachable, env_cache  # noqa: F401
from tests.unit import mlflow_models as mm

pytestmark = [pytest.mark.integration, pytest.mark.frozen]


def test_mlflow_folder_inside_the_bundle(exe: Path, tmp_path: Path) -> None:  # noqa: F811
    folder = mm.mlflow_sklearn(tmp_path / "churn-model")  # skops, MLflow's default
    inspected = run(exe, "inspect", str(folder), "--json")
    assert inspected.returncode == 0, inspected.stderr
    art = json.loads(inspected.stdout)
    assert (art["kind"], art["format"]) == ("sklearn", "skops")
    assert art["mlflow"]["flavor"] == "sklearn"

    out = tmp_path / "churn.onnx"
    converted = run(exe, "convert", str(folder), "-o", str(out), "--json")
    assert converted.returncode == 0, converted.stderr[-3000:]
    result = json.loads(converted.stdout)
    assert result["report"]["passed"] is True and result["report"]["rows_from"] == "example"
    assert [c["name"] for c in result["signature"]["columns"]] == mm.COLUMNS


def test_catboost_needs_an_external_python_and_works_with_one(
    exe: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    model = mm.catboost_files(tmp_path / "cb")["cbm"]
    out = tmp_path / "cb.onnx"
    refused = run(exe, "convert", str(model), "-o", str(out))
    assert refused.returncode != 0
    assert "--python" in refused.stderr and "Traceback" not in refused.stderr
    # the test environment's Python has catboost: the user's training environment
    converted = run(exe, "convert", str(model), "-o", str(out), "--python", sys.executable)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert out.is_file()


def test_catboost_converts_with_match_env_in_the_bundle(
    exe: Path,  # noqa: F811
    env_cache: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The bundle carries no CatBoost and a .cbm records no release: --match-env makes
    an environment with the newest CatBoost ModelShip's converters support (issue 20)."""
    require(_index_reachable(), "The Python package index")
    model = mm.catboost_files(tmp_path / "cb")["cbm"]
    out = tmp_path / "cb.onnx"
    refused = run(exe, "convert", str(model), "-o", str(out))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--match-env" in refused.stderr and "pip install" not in refused.stderr
    converted = run(exe, "convert", str(model), "-o", str(out), "--match-env", "--json")
    assert converted.returncode == 0, converted.stderr[-3000:]
    result = json.loads(converted.stdout)
    assert result["report"]["passed"] is True
    assert any("catboost 1.2" in w for w in result["report"]["warnings"]), result["report"]
