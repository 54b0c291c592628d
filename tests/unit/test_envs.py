"""app.model.envs without the network: when a match matters, what goes in, how errors read."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model import envs


def test_only_pickles_with_other_versions_need_a_match() -> None:
    here = envs.installed_version("scikit-learn")
    assert envs.mismatch("sklearn", "joblib", {"scikit-learn": here}) is None
    assert envs.mismatch("xgboost", "xgboost-json", {"xgboost": "1.7.6"}) is None
    assert envs.mismatch("lightgbm", "lightgbm-txt", {"lightgbm": "3.3.5"}) is None
    found = envs.mismatch("sklearn", "pickle", {"scikit-learn": "1.5.2"})
    assert found is not None and found.differing == {"scikit-learn": here}
    # a library the file uses without a version comes at ModelShip's own release
    found = envs.mismatch("lightgbm", "joblib", {"scikit-learn": "1.5.2", "lightgbm": ""})
    assert found is not None
    assert found.wanted == {"scikit-learn": "1.5.2", "lightgbm": envs.installed_version("lightgbm")}


def test_the_key_follows_what_decides_the_content() -> None:
    a = envs.EnvSpec.of({"scikit-learn": "1.5.2", "xgboost": "2.1.4"}, "3.11")
    b = envs.EnvSpec.of({"xgboost": "2.1.4", "scikit-learn": "1.5.2"}, "3.11")
    assert a.key() == b.key()
    assert a.key() != envs.EnvSpec.of({"scikit-learn": "1.5.2"}, "3.11").key()
    assert a.key() != envs.EnvSpec.of(dict(a.libraries), "3.12").key()
    reqs = a.requirements()
    assert "scikit-learn==1.5.2" in reqs and "skl2onnx" in reqs and "onnxmltools" in reqs
    assert any(r.startswith("xgboost") and r.endswith("==2.1.4") for r in reqs)
    assert envs.EnvSpec.of({"xgboost": "1.7.6"}, "3.11").requirements()[0] == "xgboost==1.7.6"
    assert a.words() == "scikit-learn 1.5.2 and xgboost 2.1.4"


def test_the_cache_folder_can_be_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHIP_ENV_CACHE", str(tmp_path / "c"))
    assert envs.cache_root() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert envs.find_env(envs.EnvSpec.of({"scikit-learn": "1.5.2"}, "3.11")) is None


def test_pip_failures_read_as_what_to_do() -> None:
    net = envs._pip_error(
        "WARNING: Retrying ... NewConnectionError: Connection refused\n"
        "ERROR: No matching distribution found for scikit-learn==1.5.2",
        "https://user:secret@mirror.example/simple",
        ["scikit-learn==1.5.2"],
    )
    assert "Could not reach the package index at https://***@mirror.example/simple" in net.message
    assert "HTTPS_PROXY" in net.hint and "PIP_INDEX_URL" in net.hint
    assert "secret" not in str(net)
    gone = envs._pip_error(
        "ERROR: No matching distribution found for scikit-learn==0.9.9",
        envs.DEFAULT_INDEX,
        ["scikit-learn==0.9.9"],
    )
    assert "has no scikit-learn==0.9.9" in gone.message and gone.exit_code == 3


def test_the_xgboost_release_is_read_from_a_pickled_booster(tmp_path: Path) -> None:
    import joblib
    import numpy as np
    import xgboost as xgb

    X = np.random.RandomState(0).rand(40, 3)
    model = xgb.XGBClassifier(n_estimators=2, max_depth=2).fit(X, (X[:, 0] > 0.5).astype(int))
    here = ".".join(xgb.__version__.split(".")[:3])
    for compress in (0, 3):
        path = tmp_path / f"m{compress}.joblib"
        joblib.dump(model, path, compress=compress)
        found = envs.recorded_versions(path, "joblib", {"xgboost": ""})
        assert found["xgboost"] == here
    assert envs.recorded_versions(path, "xgboost-json", {"xgboost": ""}) == {"xgboost": ""}


def test_a_library_the_file_records_no_release_of_gets_the_newest_supported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A base install without CatBoost (or torch): a .cbm or a torch file records no
    release, so the environment gets the newest release ModelShip's converters support
    (issue 20), and the words say that it is needed, not that it was 'saved with' it."""
    have = {"catboost": "", "torch": "", "onnxscript": ""}
    real = envs.installed_version
    monkeypatch.setattr(envs, "installed_version", lambda d: have.get(d, real(d)))
    found = envs.mismatch("catboost", "catboost-cbm", {})
    assert found is not None
    assert found.wanted == {"catboost": envs.NEWEST_SUPPORTED["catboost"]}
    assert found.picked == found.wanted and found.differing == {"catboost": ""}
    words = found.words("churn.cbm")
    assert "needs catboost" in words and "saved with" not in words
    assert envs.spec_for(found, "3.11").requirements()[0] == (
        f"catboost=={envs.NEWEST_SUPPORTED['catboost']}"
    )
    torch = envs.mismatch("pytorch", "torchscript", {})
    assert torch is not None and set(torch.wanted) == {"torch", "onnxscript"}
    # what ModelShip has needs nothing
    monkeypatch.setattr(envs, "installed_version", real)
    assert envs.mismatch("catboost", "catboost-cbm", {}) is None or not real("catboost")
    assert envs.mismatch("onnx", "onnx", {}) is None
