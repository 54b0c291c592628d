"""The pipeline's journal and rollback logic, with a tiny but real target.

``ScratchTarget`` creates real files (its "resources") and journals each one before
creating it, like a real target; the pipeline, journal and rollback code run unmocked.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from app.cli.commands._console import ConsoleProgress
from app.errors import SmokeTestError, TargetError
from app.paths import data_dir
from app.run import Event, ProgressEvents, plan, run_deploy, steps_for
from app.store.journal import Journal, open_journals
from app.store.profile import new_profile
from app.store.records import find_record
from targets import CATALOG, Kind
from targets.base import (
    DeployContext,
    Endpoint,
    PlanItem,
    Problem,
    Registry,
    Resource,
    Target,
    TargetSettings,
    TargetStatus,
)


class ScratchSettings(TargetSettings):
    folder: str = Field(description="where to create the files")
    files: int = 2
    fail_after: int | None = None  # raise after creating this many files
    problem: str | None = None


SCRATCH = Kind(
    name="scratch",
    title="Scratch folder",
    summary="Creates files; for tests.",
    Settings=ScratchSettings,
    implementation=f"{__name__}:ScratchTarget",
)


class ScratchTarget(Target):
    kind: ClassVar[Kind] = SCRATCH
    destroyed: ClassVar[list[str]] = []

    def check(self, profile, previous) -> list[Problem]:
        s = profile.target.settings
        return [Problem(s.problem, "fix it like this")] if s.problem else []

    def plan(self, profile, previous) -> list[PlanItem]:
        return [PlanItem("create", "file", f"f{i}") for i in range(profile.target.settings.files)]

    def deploy(self, ctx: DeployContext) -> Endpoint:
        s = ctx.settings
        resources = []
        for i in range(s.files):
            ctx.cancel.raise_if_cancelled()
            path = Path(s.folder) / f"f{i}"
            res = ctx.journal.record(Resource("file", str(path), name=f"file f{i}"))
            if s.fail_after is not None and i == s.fail_after:
                raise TargetError(f"could not create f{i}", "try again")
            path.write_text("x")
            resources.append(res)
        return Endpoint("http://127.0.0.1:9", self.name, resources)  # nothing listens there

    def status(self, record) -> TargetStatus:
        return TargetStatus(all(Path(r.id).exists() for r in record.resources()))

    def destroy(self, resource: Resource, progress) -> bool:
        type(self).destroyed.append(Path(resource.id).name)
        existed = Path(resource.id).exists()
        Path(resource.id).unlink(missing_ok=True)
        return existed


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(CATALOG, "scratch", SCRATCH)
    ScratchTarget.destroyed = []
    folder = tmp_path / "scratch"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ONNX regressor (ONNX input: the fast path through intake and convert)."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    path = tmp_path_factory.mktemp("onnx") / "lin.onnx"
    path.write_bytes(to_onnx(model, X[:1]).SerializeToString())
    return path


def profile_for(model: Path, folder: Path, **settings):
    p = new_profile(
        model, name="scratchy", target="scratch", settings={"folder": str(folder), **settings}
    )
    p.smoke.timeout = 0.3
    return p


def test_failure_rolls_back_everything_in_reverse_order(onnx_model: Path, scratch: Path) -> None:
    events: list[Event] = []
    profile = profile_for(onnx_model, scratch, files=3, fail_after=2)
    with pytest.raises(TargetError) as err:
        run_deploy(profile, on_event=events.append)
    # f2 was journaled before creation failed: rollback still visits it (idempotently)
    assert ScratchTarget.destroyed == ["f2", "f1", "f0"]
    assert list(scratch.iterdir()) == []
    msg = err.value.message
    assert msg.startswith("could not create f2 Rolled back. Removed: file f2, file f1, file f0")
    assert "files of version 1" in msg
    assert not (data_dir() / "models" / "scratchy" / "v1").exists()
    assert find_record("scratchy") is None
    assert open_journals("scratchy") == []
    [journal_path] = (data_dir() / "journals" / "scratchy").glob("*.jsonl")
    assert Journal(journal_path).outcome == "rolled_back"
    kinds = [(e.kind, e.step) for e in events if e.kind != "progress" and e.kind != "log"]
    assert kinds[:6] == [
        ("step_started", "intake"),
        ("step_finished", "intake"),
        ("step_started", "convert"),
        ("step_finished", "convert"),
        ("step_started", "deploy"),
        ("step_failed", "deploy"),
    ]
    assert [e.message for e in events if e.kind == "rollback"][:3] == [
        "Removed file f2",
        "Removed file f1",
        "Removed file f0",
    ]


def test_unhealthy_endpoint_fails_the_smoke_test_and_rolls_back(
    onnx_model: Path, scratch: Path
) -> None:
    profile = profile_for(onnx_model, scratch, files=2)
    with pytest.raises(SmokeTestError) as err:
        run_deploy(profile)
    assert "never became healthy" in err.value.message
    assert ScratchTarget.destroyed == ["f1", "f0"]
    assert list(scratch.iterdir()) == []
    assert find_record("scratchy") is None


def test_preflight_problem_stops_before_anything_is_created(
    onnx_model: Path, scratch: Path
) -> None:
    profile = profile_for(onnx_model, scratch, problem="the scratch disk is full")
    with pytest.raises(TargetError) as err:
        run_deploy(profile)
    assert err.value.message == "Not ready to deploy to Scratch folder: the scratch disk is full"
    assert err.value.hint == "fix it like this"
    assert not (data_dir() / "journals" / "scratchy").exists()


def test_steps_and_plan(onnx_model: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = profile_for(onnx_model, scratch, files=2)
    assert steps_for(profile) == ["intake", "convert", "deploy", "smoke"]
    monkeypatch.setattr(ScratchTarget, "ships", "image")
    assert steps_for(profile) == ["intake", "convert", "build", "deploy", "smoke"]
    words = [str(i) for i in plan(profile)]
    assert any(w.startswith("build image modelship/scratchy (linux/amd64, from ") for w in words)

    class Shelf(Registry):
        repository = "127.0.0.1:9/scratch/scratchy"

        def describe(self) -> str:
            return "the scratch shelf"

        def push(self, image, tag, progress, cancel):  # never called by a plan
            raise AssertionError("a plan pushes nothing")

        def remove(self, pushed, progress) -> bool:
            raise AssertionError("a plan removes nothing")

    monkeypatch.setattr(ScratchTarget, "registry", lambda self, profile: Shelf())
    assert steps_for(profile) == ["intake", "convert", "build", "push", "deploy", "smoke"]
    words = [str(i) for i in plan(profile)]
    assert "push image 127.0.0.1:9/scratch/scratchy (the scratch shelf)" in words
    assert words[0].startswith("convert model ")
    assert "create file f0" in words and "create file f1" in words
    assert words[-1] == "run smoke test scratchy (predictions vs the proof)"


def test_events_become_console_lines() -> None:
    out = io.StringIO()
    feed = ProgressEvents(ConsoleProgress(stream=out, verbose=True))
    feed(Event("step_started", "deploy", message="Deploying to This computer"))
    feed(Event("progress", "deploy", message="Starting the server"))
    feed(Event("log", "deploy", message="uvicorn running"))
    feed(Event("rollback", "rollback", message="Removed process p1"))
    assert out.getvalue().splitlines() == [
        "==> Deploying to This computer",
        "    Starting the server",
        "    | uvicorn running",
        "    Removed process p1",
    ]


def test_one_command_at_a_time_per_deployment(onnx_model: Path, scratch: Path) -> None:
    from app.run import deployment_lock

    profile = profile_for(onnx_model, scratch)
    with deployment_lock("scratchy"), pytest.raises(TargetError, match="Another ModelShip"):
        run_deploy(profile)
    assert ScratchTarget.destroyed == []  # refused before anything started
    assert not (data_dir() / "journals" / "scratchy").exists()
