"""Profiles: strict TOML, errors that name the key and its line, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ProfileError
from app.store.profile import (
    DEFAULT_BASE_IMAGE,
    Profile,
    key_lines,
    list_profiles,
    load_profile,
    new_profile,
    save_profile,
)
from targets.local.settings import LocalSettings

GOOD = """\
schema = 1
name = "iris"

[model]
path = "models/iris.joblib"
tolerance = 0.001

[target]
kind = "local"

[target.settings]
port = 8123

[smoke]
timeout = 30
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_profile_loads_with_typed_target_settings(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, GOOD))
    assert p.name == "iris"
    assert isinstance(p.target.settings, LocalSettings)
    assert p.target.settings.port == 8123
    assert p.model.tolerance == 0.001
    assert p.smoke.timeout == 30
    assert p.image.base_image == DEFAULT_BASE_IMAGE
    # relative paths are relative to the profile file, not the working directory
    assert p.model.path == (tmp_path / "models" / "iris.joblib").resolve()


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("tolerance = 0.001", "tolerance = 0.001\ntolerence = 0.01")
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    assert "unknown key 'model.tolerence'" in err.value.message
    assert "line 7" in err.value.message


def test_unknown_target_setting_is_named_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("port = 8123", "port = 8123\nhostname = 'x'")
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    assert "target.settings.hostname" in err.value.message
    assert "line 13" in err.value.message


def test_wrong_type_names_key_line_and_problem(tmp_path: Path) -> None:
    text = GOOD.replace("port = 8123", 'port = "eighty"')
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    msg = err.value.message
    assert "'target.settings.port'" in msg and "line 12" in msg
    # plain words, not pydantic's ("Input should be a valid integer")
    assert "must be a port number from 1 to 65535 (you gave 'eighty')" in msg
    assert "Input should" not in msg


def test_out_of_range_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"port.*line 12"):
        load_profile(write(tmp_path, GOOD.replace("port = 8123", "port = 70000")))


def test_unknown_section_and_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"unknown key 'extras' .*line 17"):
        load_profile(write(tmp_path, GOOD + "\n[extras]\nx = 1\n"))
    no_path = GOOD.replace('path = "models/iris.joblib"\n', "")
    with pytest.raises(ProfileError, match=r"missing key 'path' in \[model\] .*line 4"):
        load_profile(write(tmp_path, no_path))


def test_unknown_target_kind_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, GOOD.replace('kind = "local"', 'kind = "mars"')))
    assert "mars" in err.value.message and "local" in err.value.message
    assert "line 9" in err.value.message


def test_schema_versions(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="newer than this ModelShip"):
        load_profile(write(tmp_path, GOOD.replace("schema = 1", "schema = 3")))
    # schema 1 and 2 load; what is saved is the current schema
    assert load_profile(write(tmp_path, GOOD)).schema_version == 2
    assert load_profile(write(tmp_path, GOOD.replace("schema = 1", "schema = 2"))).name == "iris"
    with pytest.raises(ProfileError, match="no 'schema' key"):
        load_profile(write(tmp_path, GOOD.replace("schema = 1\n", "")))
    with pytest.raises(ProfileError, match="schema 0 is not supported"):
        load_profile(write(tmp_path, GOOD.replace("schema = 1", "schema = 0")))


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"not valid TOML.*line 5"):
        load_profile(write(tmp_path, GOOD.replace('path = "models/iris.joblib"', "path = ")))


def test_bad_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"'name': must be lower-case letters.*line 2"):
        load_profile(write(tmp_path, GOOD.replace('"iris"', '"Iris Model!"')))


def test_a_secret_cannot_be_put_in_a_profile(tmp_path: Path) -> None:
    """No key takes a secret value: a pasted password is an unknown key, and a
    keyring-entry field (SecretRef) only takes a name, not a token."""
    text = GOOD.replace("port = 8123", 'port = 8123\npassword = "hunter2"')
    with pytest.raises(ProfileError, match=r"unknown key 'target\.settings\.password'"):
        load_profile(write(tmp_path, text))
    text = GOOD.replace("port = 8123", 'port = 8123\napi_key = "dG9rZW4gdmFsdWU+Lw=="')
    with pytest.raises(
        ProfileError,
        match=r"'target\.settings\.api_key': must be the NAME of a keyring entry.*line 13",
    ):
        load_profile(write(tmp_path, text))
    text = GOOD.replace("port = 8123", 'port = 8123\napi_key = "iris-api-key"')
    p = load_profile(write(tmp_path, text))
    assert p.target.settings.api_key == "iris-api-key"  # the NAME of a keyring entry
    saved = save_profile(p).read_text()
    assert 'api_key = "iris-api-key"' in saved


def test_save_load_round_trip_and_list(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, GOOD))
    path = save_profile(p)
    assert path.name == "iris.toml"
    again = load_profile("iris")  # by name, from the saved-profiles folder
    assert again.to_dict() == p.to_dict()
    listed = list_profiles()
    assert [(i.name, i.target, i.error) for i in listed] == [("iris", "local", None)]
    path.with_name("broken.toml").write_text("schema = 1\nname = 3\n")
    broken = {i.name: i for i in list_profiles()}["broken"]
    assert broken.error and "name" in broken.error


def test_unknown_profile_name_says_what_exists(tmp_path: Path) -> None:
    save_profile(load_profile(write(tmp_path, GOOD)))
    with pytest.raises(ProfileError, match=r"No profile named 'nope'.* Saved profiles: iris\."):
        load_profile("nope")


def test_new_profile_from_a_model_file(tmp_path: Path) -> None:
    model = tmp_path / "Iris RF.v2.joblib"
    model.write_bytes(b"x")
    p = new_profile(model, settings={"port": 9001})
    assert p.name == "iris-rf-v2"  # the version stays part of the name
    assert p.target.settings.port == 9001
    assert p.model.path == model.resolve()
    with pytest.raises(ProfileError, match="name"):
        new_profile(model, name="Bad Name")
    with pytest.raises(ProfileError, match="port"):
        new_profile(model, settings={"port": 0})


def test_key_lines_handles_dotted_keys_and_inline_tables() -> None:
    text = (
        'schema = 1\n[model]\n  "path" = "x" # c\nimage.base_image = "y"\n'
        "[target.settings]\nport=1\n"
    )
    lines = key_lines(text)
    assert lines[("model", "path")] == 3
    assert lines[("model", "image", "base_image")] == 4
    assert lines[("target", "settings", "port")] == 6


def test_profile_model_is_strict_in_code_too() -> None:
    with pytest.raises(Exception, match="Extra inputs"):
        Profile.model_validate({"schema": 1, "name": "a", "model": {"path": "x"}, "oops": 1})


def test_export_next_to_the_model_writes_relative_paths(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "models").mkdir(parents=True)
    p = load_profile(write(share, GOOD))
    out = save_profile(p, share / "exported.toml")
    assert 'path = "models/iris.joblib"' in out.read_text()
    moved = tmp_path / "elsewhere"
    share.rename(moved)
    again = load_profile(moved / "exported.toml")
    assert again.model.path == (moved / "models" / "iris.joblib").resolve()
    assert str(save_profile(again).read_text()).count(str(moved)) == 1  # saved: absolute


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("Iris RF.joblib", "iris-rf"),
        ("churn-sklearn-1.8.0.joblib", "churn-sklearn-1-8-0"),
        ("tiny.torchscript.pt", "tiny"),
        ("model.joblib.gz", "model"),
        ("my.model.v2.onnx", "my-model-v2"),
    ],
)
def test_default_name_drops_only_model_suffixes(file: str, name: str) -> None:
    from app.store.profile import default_name

    assert default_name(file) == name


HEROKU_V1 = """\
schema = 1
name = "churn"

[model]
path = "churn.joblib"
trusted_sha256 = "{sha}"

[target]
kind = "heroku"

[target.settings]
app = "churn-app"
api_key = "my-heroku-account"
endpoint_api_key = "churn-callers"
require_endpoint_api_key = true
"""


def test_schema_1_heroku_profile_migrates_to_the_new_names(tmp_path: Path) -> None:
    """Schema 1's Heroku ``api_key`` was the account's key: it becomes ``account_key``,
    and ``api_key`` is the endpoint's key, as on every target; saving writes schema 2."""
    path = write(tmp_path, HEROKU_V1.format(sha="0" * 64))
    profile = load_profile(path)
    s = profile.target.settings
    assert (s.account_key, s.api_key, s.require_api_key) == (
        "my-heroku-account",
        "churn-callers",
        True,
    )
    # trust in a profile is never honoured: dropped on load, with a note that says so
    assert not hasattr(profile.model, "trusted_sha256")
    assert any("trusted_sha256" in n and "modelship trust" in n for n in profile.notes)
    saved = save_profile(profile, tmp_path / "out.toml").read_text(encoding="utf-8")
    assert "schema = 2" in saved
    assert 'account_key = "my-heroku-account"' in saved
    assert 'api_key = "churn-callers"' in saved
    assert "endpoint_api_key" not in saved and "trusted_sha256" not in saved
    again = load_profile(tmp_path / "out.toml")
    assert again.target.settings == s and again.notes == []


def test_schema_2_names_are_not_migrated_again(tmp_path: Path) -> None:
    text = HEROKU_V1.format(sha="0" * 64).replace("schema = 1", "schema = 2")
    with pytest.raises(ProfileError, match="endpoint_api_key"):
        load_profile(write(tmp_path, text))  # schema 2 knows only the new names
    text = (
        text.replace("endpoint_api_key", "api_key_x")
        .replace('api_key = "my-heroku-account"', 'account_key = "acct"')
        .replace("api_key_x", "api_key")
        .replace("require_endpoint_api_key", "require_api_key")
    )
    s = load_profile(write(tmp_path, text)).target.settings
    assert (s.account_key, s.api_key) == ("acct", "churn-callers")
