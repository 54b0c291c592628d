"""Issue 15 follow-up, without the network: deployment names of the newer model files
and MLflow folders/URIs, profiles that keep an MLflow URI, and which files need a
matching environment (skops files, MLflow pins, newer native files) with what loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ProfileError
from app.model import envs
from app.store.profile import default_name, load_profile, new_profile, parse_profile, save_profile
from tests.unit import mlflow_models as mm


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("churn.skops", "churn"),
        ("Churn Model.cbm", "churn-model"),
        ("net.pt2", "net"),
        ("churn-1.8.0.skops", "churn-1-8-0"),
        ("models:/churn/3", "churn"),
        ("models:/churn@champion", "churn"),
        ("models:/churn/Production", "churn"),
        ("runs:/0a1b2c/churn_rf", "churn_rf"),
    ],
)
def test_default_names_drop_the_model_suffix(given: str, name: str) -> None:
    assert default_name(given) == name


def test_an_mlflow_folder_is_named_as_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "churn.model"  # a suffix that a file would lose
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    assert default_name(folder) == "churn-model"
    real = mm.mlflow_sklearn(tmp_path / "Churn RF")
    assert new_profile(real).name == "churn-rf"


def test_a_profile_keeps_an_mlflow_uri_as_it_is(tmp_path: Path) -> None:
    p = new_profile("models:/churn/Production")
    assert p.model.path == "models:/churn/Production" and p.name == "churn"
    saved = save_profile(p, tmp_path / "elsewhere" / "churn.toml")  # an export
    assert 'path = "models:/churn/Production"' in saved.read_text(encoding="utf-8")
    again = load_profile(saved)
    assert again.model.path == "models:/churn/Production"  # not made a file path
    # a file next to the profile still becomes absolute
    text = 'schema = 1\nname = "c"\n[model]\npath = "{}"\n[target]\nkind = "local"\n'
    assert parse_profile(text.format("m.joblib"), source=tmp_path / "c.toml").model.path == (
        tmp_path / "m.joblib"
    )


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("runs:/abc", "RUN_ID/ARTIFACT_PATH"),
        ("runs:/abc/../x", "'..'"),
        ("runs:/abc//model", "empty"),
        ("models://host/churn/1", "with a host"),
        ("models:/churn/1/extra", "models:/NAME/VERSION"),
        ("models:/churn/1 2", "spaced"),
    ],
)
def test_a_malformed_mlflow_uri_is_refused_naming_the_key(uri: str, words: str) -> None:
    with pytest.raises(ProfileError) as err:
        new_profile(uri)
    assert "model.path" in err.value.message and words in err.value.message


def test_skops_files_and_mlflow_pins_need_a_matching_environment() -> None:
    here = envs.installed_version("scikit-learn")
    skops_here = envs.installed_version("skops")
    assert envs.mismatch("sklearn", "skops", {"scikit-learn": here, "skops": "0.1"}) is None
    found = envs.mismatch("sklearn", "skops", {"scikit-learn": "1.8.0", "skops": skops_here})
    assert found is not None and found.differing == {"scikit-learn": here}
    # the environment can read the file: skops comes along, at the release that wrote it
    assert found.wanted == {"scikit-learn": "1.8.0", "skops": skops_here}
    spec = envs.spec_for(found, "3.11")
    assert f"skops=={skops_here}" in spec.requirements()
    # a pickled CatBoost model inside a scikit-learn pipeline: CatBoost comes along
    found = envs.mismatch("sklearn", "pickle", {"scikit-learn": "1.8.0", "catboost": ""})
    assert found is not None
    assert found.wanted["catboost"] == envs.installed_version("catboost")
    found = envs.mismatch("catboost", "pickle", {"scikit-learn": "1.8.0"})
    assert found is not None and "catboost" in found.wanted


def test_native_files_need_a_match_only_from_a_newer_release() -> None:
    assert envs.mismatch("xgboost", "xgboost-ubj", {"xgboost": "1.7.6"}) is None
    assert envs.mismatch("lightgbm", "lightgbm-txt", {"lightgbm": "3.3.5"}) is None
    found = envs.mismatch("xgboost", "xgboost-json", {"xgboost": "99.0.0"})
    assert found is not None and found.wanted == {"xgboost": "99.0.0"}
    assert envs.mismatch("onnx", "onnx", {"scikit-learn": "1.0.0"}) is None


def test_an_mlflow_folder_pinning_another_sklearn_records_it(tmp_path: Path) -> None:
    """The requirements' pin reaches the artifact; an unchanged file still says its own."""
    from app.model.intake import inspect_model

    folder = mm.mlflow_sklearn(tmp_path / "m", "cloudpickle")
    art = inspect_model(folder)
    assert envs.mismatch(art.kind, art.format, art.libraries) is None
    reqs = folder / "requirements.txt"
    reqs.write_text(reqs.read_text().replace(envs.installed_version("scikit-learn"), "1.8.0"))
    art = inspect_model(folder)
    # the pickle's own _sklearn_version wins over the pin
    assert art.libraries["scikit-learn"] == envs.installed_version("scikit-learn")
