"""Issue 20: the analyst's first hour, in the core and the CLI without a server.

Scoring a labelled file (columns the model does not take are left out and named, a
missing one is named before anything is sent), a new model that changes a running
deployment's inputs (named, and refused without agreement), plain words for every
validation error with did-you-mean, a mistyped model path, a stopped or removed
deployment, the port held by one's own deployment, printed follow-up commands that run
as printed, and a failed demo that saves no profile.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from app.domain import DeploymentRecord, ModelVersion
from app.endpoint.batch import fit_columns, score_csv
from app.endpoint.client import EndpointError, error_words
from app.errors import ProfileError, TargetError, UsageError, closest
from app.run.replace import InputsChangeRefused, input_change
from app.store.profile import load_profile, new_profile, save_profile
from app.store.records import find_record, mark_removed, save_record


def _signature(folder: Path, columns: list[tuple[str, str]]) -> Path:
    """A model.onnx's signature file with these columns (name, dtype)."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / "model.onnx"
    onnx.write_bytes(b"onnx")
    sig = {
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, len(columns)]}],
        "outputs": [{"name": "label", "dtype": "int64", "shape": [None]}],
        "columns": [
            {"name": n, "dtype": d, "input": "input", "index": i}
            for i, (n, d) in enumerate(columns)
        ],
    }
    path = folder / "model.signature.json"
    path.write_text(json.dumps(sig))
    return path


def _record(tmp_path: Path, name: str, columns: list[tuple[str, str]], **kw) -> DeploymentRecord:
    _signature(tmp_path / name / "v1", columns)
    version = ModelVersion(
        version=1,
        model_path=str(tmp_path / name / "v1" / "model.onnx"),
        source_model="old.joblib",
        target="local",
    )
    port = kw.pop("port", 18999)
    profile = new_profile(tmp_path / "old.joblib", name=name, settings={"port": port}).to_dict()
    record = DeploymentRecord(
        name=name,
        target="local",
        profile=profile,
        endpoint={"url": f"http://127.0.0.1:{port}", "target": "local", "resources": []},
        versions=[version.to_dict()],
        current_version=1,
        **kw,
    )
    save_record(record)
    return record


FIVE = [("age", "float32"), ("tenure", "float32"), ("plan", "str"), ("region", "str"),
        ("membership", "str")]  # fmt: skip


# ---- item 4: no silent swap -----------------------------------------------------------


def test_input_change_names_removed_added_retyped_and_reordered(tmp_path: Path) -> None:
    record = _record(tmp_path, "churn", FIVE)
    three = _signature(tmp_path / "new3", FIVE[:3])
    change = input_change(record, three)
    assert change is not None and change.removed == ["region", "membership"]
    assert change.words() == (
        "inputs change: 'region', 'membership' removed; callers sending them will get errors"
    )
    more = _signature(tmp_path / "more", [*FIVE, ("score", "float64")])
    assert input_change(record, more).parts() == ["'score' added; callers must now send it"]
    retyped = _signature(tmp_path / "retyped", [("age", "str"), *FIVE[1:]])
    assert "'age' is now text (was a number)" in input_change(record, retyped).words()
    swapped = _signature(tmp_path / "swapped", [FIVE[1], FIVE[0], *FIVE[2:]])
    assert "another order" in input_change(record, swapped).words()


def test_same_inputs_are_no_change_even_in_double_precision(tmp_path: Path) -> None:
    """float32 -> float64 (a conversion kept in double precision) is the same number to
    every caller: a same-input new version deploys as before."""
    record = _record(tmp_path, "churn", FIVE)
    same = _signature(tmp_path / "same", FIVE)
    doubles = _signature(
        tmp_path / "doubles", [(n, "float64" if d == "float32" else d) for n, d in FIVE]
    )
    assert input_change(record, same) is None
    assert input_change(record, doubles) is None
    assert input_change(None, same) is None  # nothing runs under that name


def test_refusal_says_what_changes_and_that_nothing_changed(tmp_path: Path) -> None:
    record = _record(tmp_path, "churn", FIVE)
    change = input_change(record, _signature(tmp_path / "new3", FIVE[:3]))
    error = InputsChangeRefused(change)
    assert isinstance(error, UsageError) and error.exit_code == 2
    assert "'region', 'membership' removed; callers sending them will get errors" in (error.message)
    assert "still runs version 1" in error.message


# ---- item 3: scoring a labelled file ----------------------------------------------------


class Client:
    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    def predict_csv(self, text: str) -> str:
        table = list(csv.reader(io.StringIO(text)))
        self.sent.append(table[0])
        return "prediction\n" + "".join("yes\n" for _ in table[1:])


def test_fit_columns_leaves_out_the_id_and_label_and_names_a_missing_column() -> None:
    send, dropped = fit_columns(["id", "age", "plan", "churned"], ["plan", "age"])
    assert send == [2, 1] and dropped == ["id", "churned"]
    with pytest.raises(UsageError) as err:
        fit_columns(["id", "plan", "churned"], ["age", "plan"])
    assert err.value.message == "Your file has no column 'age', which the model needs."
    with pytest.raises(UsageError, match="'Age' is spelled differently: rename it to 'age'"):
        fit_columns(["Age", "plan"], ["age", "plan"])


def test_score_csv_refuses_a_missing_column_before_sending_anything(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("id,plan,churned\n1,basic,no\n")
    client = Client()
    with pytest.raises(UsageError, match="no column 'age', which the model needs"):
        score_csv(client, src, columns=["age", "plan"])
    assert client.sent == []  # nothing was sent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.csv"]
    src.write_text("id,age,plan,churned\n1,30,basic,no\n")
    result = score_csv(client, src, columns=["age", "plan"])
    assert client.sent == [["age", "plan"]] and result.dropped == ["id", "churned"]


def test_endpoint_errors_in_its_own_words_without_codes_or_json() -> None:
    said = error_words(EndpointError(422, json.dumps({"error": "Column 'age' is missing."})))
    assert said == "Column 'age' is missing."
    assert "422" not in said and "{" not in said
    assert "API key" in error_words(EndpointError(401, ""))
    assert "422" not in error_words(EndpointError(422, "<html>bad</html>"))


# ---- item 6: smaller things -------------------------------------------------------------


def test_validation_errors_in_plain_words_with_did_you_mean(tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    with pytest.raises(ProfileError) as err:
        new_profile(model, target="locl")
    assert "did you mean 'local'?" in err.value.message
    with pytest.raises(ProfileError) as err:
        new_profile(model, settings={"port": 80000})
    assert err.value.message == "--port: must be a port number from 1 to 65535 (you gave 80000)"
    with pytest.raises(ProfileError) as err:
        new_profile(model, settings={"workers": 0})
    assert "workers: must be 1 or more (you gave 0)" in err.value.message
    for message in (err.value.message, err.value.details or ""):
        assert "Input should" not in message and "pydantic" not in message
    assert closest("dokcer", ["local", "docker"]) == "docker"
    assert closest("zzz", ["local", "docker"]) is None


def test_an_unknown_key_in_a_profile_file_suggests_the_known_one(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        f'schema = 1\nname = "p"\n[model]\npath = "{tmp_path / "m.joblib"}"\n'
        '[target]\nkind = "local"\n[target.settings]\nprot = 8080\n'
    )
    with pytest.raises(
        ProfileError, match=r"unknown key 'target.settings.prot'.*did you mean 'port'"
    ):
        load_profile(path)


def test_a_mistyped_model_path_says_the_file_is_missing_and_what_is_near(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "churn.joblib").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProfileError) as err:
        load_profile("chrun.joblib")
    assert "No profile" not in err.value.message
    assert err.value.message == (
        f"There is no file 'chrun.joblib' in {tmp_path}. Did you mean 'churn.joblib'?"
    )
    with pytest.raises(ProfileError, match=r"Did you mean '.*/churn\.joblib'"):
        load_profile(str(tmp_path / "churn.jolib"))
    save_profile(new_profile(tmp_path / "churn.joblib", name="churn"))
    with pytest.raises(ProfileError, match=r"No profile named 'chrun'.*Did you mean 'churn'\?"):
        load_profile("chrun")


def test_a_stopped_deployment_says_how_to_start_it(tmp_path: Path) -> None:
    from app.cli import main
    from app.run import deployment_client

    _record(tmp_path, "quiet", FIVE, state="stopped", stopped_at="2026-12-06T03:40:00Z")
    with pytest.raises(TargetError) as err:
        deployment_client("quiet")
    assert "'quiet' is stopped (since 2026-12-06 03:40:00 UTC)" in err.value.message
    assert "modelship start quiet" in (err.value.hint or "")
    rows = tmp_path / "rows.csv"
    rows.write_text("age\n1\n")
    assert main(["invoke", "quiet", "--csv", str(rows)]) == 7


def test_a_second_teardown_says_when_it_was_removed(tmp_path: Path, capsys) -> None:
    from app.cli import main

    _record(tmp_path, "gone", FIVE)
    mark_removed("gone")
    assert main(["teardown", "gone"]) == 0
    out = capsys.readouterr().out
    assert "'gone' was already removed on " in out and " UTC; nothing of it is left" in out
    assert "No deployment named" not in out
    assert main(["invoke", "gone", "--json", str(tmp_path / "x.json")]) == 2
    assert "'gone' was removed on " in capsys.readouterr().err
    assert main(["teardown", "never-was"]) == 2  # unknown stays an error


def test_a_taken_port_names_the_deployment_that_holds_it(tmp_path: Path) -> None:
    from app.run.preflight import check_ready, preflight
    from targets.catalog import get_target

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        _record(tmp_path, "holder", FIVE, port=port)
        model = tmp_path / "m.joblib"
        model.write_bytes(b"x")
        profile = new_profile(model, name="newone", settings={"port": port})
        problems = [p for p in preflight(profile) if p.setting == "port"]
        assert problems[0].message == f"Port {port} is used by your deployment 'holder'."
        assert "modelship teardown holder" in problems[0].fix
        with pytest.raises(TargetError, match="used by your deployment 'holder'"):
            check_ready(get_target("local"), profile, None)


def test_a_new_model_for_a_running_deployment_keeps_its_port(tmp_path: Path) -> None:
    from app.cli import build_parser
    from app.cli.commands.deploy import resolve_profile

    _record(tmp_path, "churn", FIVE, port=18777)
    model = tmp_path / "other.joblib"
    model.write_bytes(b"x")
    args = build_parser("deploy").parse_args(["deploy", str(model), "--name", "churn"])
    profile, _ = resolve_profile(args)
    assert profile.target.kind == "local" and profile.target.settings.port == 18777
    args = build_parser("deploy").parse_args(
        ["deploy", str(model), "--name", "churn", "--port", "18778"]
    )
    assert resolve_profile(args)[0].target.settings.port == 18778  # the flag wins
    args = build_parser("deploy").parse_args(["deploy", str(model), "--name", "fresh"])
    assert resolve_profile(args)[0].target.settings.port == 8080  # nothing runs as fresh


def test_printed_commands_run_as_printed(tmp_path: Path, monkeypatch) -> None:
    from app.cli.commands._console import command_name

    bindir = tmp_path / ".venv" / "bin"
    bindir.mkdir(parents=True)
    prog = bindir / "modelship"
    prog.write_text("#!/bin/sh\n")
    prog.chmod(prog.stat().st_mode | stat.S_IEXEC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [".venv/bin/modelship", "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command_name() == ".venv/bin/modelship"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    assert command_name() == "modelship"


def test_a_failed_demo_saves_no_profile(tmp_path: Path, capsys) -> None:
    from app.cli import main
    from app.store.profile import profile_path

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 7
    assert f"Port {port}" in capsys.readouterr().err
    assert not profile_path("demo").exists()
    assert find_record("demo") is None


def test_a_mistyped_deployment_name_suggests_the_known_one(tmp_path: Path) -> None:
    from app.store.records import load_record

    _record(tmp_path, "churn", FIVE)
    with pytest.raises(UsageError, match=r"No deployment named 'chrun'\. Did you mean 'churn'\?"):
        load_record("chrun")


def test_a_mistyped_model_path_suggests_the_file_meant(tmp_path) -> None:
    """inspect/convert name the file in that folder a typo most likely meant (and only a
    close one: an unrelated name gets no guess)."""
    from app.errors import ModelError
    from app.model.intake import inspect_model

    (tmp_path / "churn.joblib").write_bytes(b"x")
    with pytest.raises(ModelError) as typo:
        inspect_model(tmp_path / "churn.jolib")
    assert "does not exist" in typo.value.message
    assert f"Did you mean '{tmp_path / 'churn.joblib'}'?" in typo.value.message
    with pytest.raises(ModelError) as other:
        inspect_model(tmp_path / "nothing.pkl")
    assert "Did you mean" not in other.value.message
