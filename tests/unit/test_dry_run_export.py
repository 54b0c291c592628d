"""`modelship deploy PROFILE --dry-run` and `modelship export NAME --kubernetes DIR`, read
through the Target's ``manifests`` hook only: a toy kind registered in the catalog (the
recipe of targets/catalog.py) whose manifests() gives two objects, and the real local
target, which has none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from app.cli import main
from app.domain import Endpoint
from app.store.profile import new_profile, save_profile
from targets.base import PlanItem, Problem, Registry, Target, TargetStatus
from targets.kind import Kind
from targets.settings import TargetSettings

CALLS: list[str] = []

DOCUMENT = """apiVersion: v1
kind: Secret
metadata:
  name: modelship-{name}-key
stringData:
  key: REDACTED
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: modelship-{name}
spec:
  replicas: 1
"""


class ToySettings(TargetSettings):
    broken: bool = False


TOY = Kind(
    name="toyk8s",
    title="A toy cluster",
    summary="Deploys nowhere; it has manifests.",
    Settings=ToySettings,
    implementation=f"{__name__}:ToyTarget",
    ships="image",
)


class ToyRegistry(Registry):
    repository = "127.0.0.1:5999/toy"

    def describe(self) -> str:
        return "the toy registry"

    def push(self, image: Any, tag: str, progress: Any, cancel: Any) -> Any:
        CALLS.append("push")
        raise AssertionError("a dry run pushes nothing")

    def remove(self, pushed: Any, progress: Any, keep: Any = ()) -> bool:
        CALLS.append("remove")
        return False


class ToyTarget(Target):
    kind: ClassVar[Kind] = TOY

    def registry(self, profile: Any) -> Registry | None:
        return ToyRegistry()

    def check(self, profile: Any, previous: Any) -> list[Problem]:
        if profile.target.settings.broken:
            return [Problem("The toy cluster is broken.", "Mend it.", kind="credential")]
        return []

    def plan(self, profile: Any, previous: Any) -> list[PlanItem]:
        return [PlanItem("create", "deployment", f"modelship-{profile.name}", "1 replica")]

    def manifests(self, profile: Any, previous: Any) -> str | None:
        return DOCUMENT.format(name=profile.name)

    def prepare(self, ctx: Any) -> None:
        CALLS.append("prepare")

    def deploy(self, ctx: Any) -> Endpoint:
        CALLS.append("deploy")
        raise AssertionError("a dry run deploys nothing")

    def destroy(self, resource: Any, progress: Any) -> bool:
        return False

    def status(self, record: Any) -> TargetStatus:
        return TargetStatus(True, "ok")


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Kind:
    from targets.catalog import CATALOG

    monkeypatch.setitem(CATALOG, TOY.name, TOY)
    CALLS.clear()
    return TOY


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "iris.onnx"
    model.write_bytes(b"not really a model")
    return model


def _saved(tmp_path: Path, kind: str, **settings: Any) -> str:
    profile = new_profile(_model(tmp_path), name="iris", target=kind, settings=settings)
    save_profile(profile)
    return profile.name


def _files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()}


def test_dry_run_prints_plan_and_objects_and_creates_nothing(
    toy: Kind, tmp_path: Path, modelship_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "toyk8s")
    before = _files(modelship_home)
    assert main(["deploy", name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was created" in out
    assert "build image modelship/iris" in out and "push image 127.0.0.1:5999/toy" in out
    assert "create deployment modelship-iris (1 replica)" in out
    assert "kind: Secret" in out and "name: modelship-iris-key" in out
    assert CALLS == []  # nothing prepared, deployed or pushed
    assert _files(modelship_home) == before  # no record, journal, version or conversion
    from app.store.journal import journals_dir
    from app.store.records import find_record

    assert find_record("iris") is None
    assert not journals_dir().exists() or not any(journals_dir().iterdir())


def test_dry_run_json_has_the_plan_and_the_document(
    toy: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "toyk8s")
    assert main(["deploy", name, "--dry-run", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "iris" and data["target"] == "toyk8s"
    assert [p["action"] for p in data["plan"]] == ["convert", "build", "push", "create", "run"]
    assert data["manifests"] == DOCUMENT.format(name="iris")


def test_dry_run_a_failing_check_exits_as_a_deploy_would(
    toy: Kind, tmp_path: Path, modelship_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "toyk8s", broken=True)
    before = _files(modelship_home)
    assert main(["deploy", name, "--dry-run"]) == 6  # CredentialError's exit code
    captured = capsys.readouterr()
    assert "The toy cluster is broken." in captured.err and "Mend it." in captured.err
    assert "Dry run" not in captured.out
    assert _files(modelship_home) == before and CALLS == []


def test_dry_run_of_a_model_file_saves_no_profile(
    toy: Kind, tmp_path: Path, modelship_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(tmp_path)
    assert main(["deploy", str(model), "--target", "toyk8s", "--dry-run"]) == 0
    assert "kind: Deployment" in capsys.readouterr().out
    assert _files(modelship_home) == set()


def test_dry_run_of_a_target_without_objects_prints_only_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "local", port=18999)
    assert main(["deploy", name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dry run: nothing was created" in out and "exact objects" not in out


def test_export_writes_one_file_per_object_and_a_readme(
    toy: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "toyk8s")
    dest = tmp_path / "out"
    assert main(["export", name, "--kubernetes", str(dest)]) == 0
    files = sorted(p.name for p in dest.iterdir())
    assert files == [
        "01-secret-modelship-iris-key.yaml",
        "02-deployment-modelship-iris.yaml",
        "README.txt",
    ]
    import yaml

    secret = yaml.safe_load((dest / files[0]).read_text(encoding="utf-8"))
    assert secret["kind"] == "Secret" and secret["stringData"]["key"] == "REDACTED"
    readme = (dest / "README.txt").read_text(encoding="utf-8")
    assert "ModelShip" in readme and "redacted" in readme and "kubectl apply" in readme
    assert "placeholder" in readme
    assert "02-deployment-modelship-iris.yaml" in capsys.readouterr().out


def test_export_of_a_deployment_uses_its_current_profile(
    toy: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.domain import DeploymentRecord
    from app.store.records import save_record

    profile = new_profile(_model(tmp_path), name="live", target="toyk8s")
    save_record(DeploymentRecord(name="live", target="toyk8s", profile=profile.to_dict()))
    dest = tmp_path / "live"
    assert main(["export", "live", "--kubernetes", str(dest)]) == 0
    assert (dest / "02-deployment-modelship-live.yaml").is_file()


def test_export_never_writes_into_a_folder_with_files(
    toy: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "toyk8s")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.yaml").write_text("mine", encoding="utf-8")
    assert main(["export", name, "--kubernetes", str(dest)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in dest.iterdir()) == ["keep.yaml"]
    assert (dest / "keep.yaml").read_text(encoding="utf-8") == "mine"


def test_export_refuses_a_target_without_objects_and_names_those_with(
    toy: Kind, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _saved(tmp_path, "local", port=18998)
    dest = tmp_path / "out"
    assert main(["export", name, "--kubernetes", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "has no objects to export" in err and "A toy cluster" in err
    assert not dest.exists()


def test_export_refuses_an_unknown_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "nobody", "--kubernetes", str(tmp_path / "x")]) == 2
    assert "No deployment or saved profile named 'nobody'" in capsys.readouterr().err


def test_split_objects_keeps_each_objects_text_and_skips_empty_documents() -> None:
    from app.cli.commands.export import split_objects

    document = "---\n# the key\n" + DOCUMENT.format(name="a b") + "---\n\n"
    files = split_objects(document)
    assert [f for f, _ in files] == [
        "01-secret-modelship-a-b-key.yaml",
        "02-deployment-modelship-a-b.yaml",
    ]
    assert files[0][1].startswith("# the key\napiVersion: v1\nkind: Secret\n")
    assert files[1][1] == DOCUMENT.format(name="a b").split("---\n")[1]
