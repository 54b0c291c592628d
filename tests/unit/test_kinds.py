"""Each target package's Kind says the truth about its implementation: the capabilities
it declares are the methods the class overrides, the long waits it declares are the ones
its code announces, and name / Settings / ships are declared once (on the Kind)."""

from __future__ import annotations

import ast
import datetime as _dt
from pathlib import Path

import pytest

from targets.base import Target
from targets.catalog import CATALOG
from targets.cost import Cost

ROOT = Path(__file__).resolve().parents[2]

# capability -> the base-class methods a kind with it overrides (and one without it not)
CHECKED = {"logs": ("logs",), "stop_start": ("stop", "start")}


@pytest.mark.parametrize("name", list(CATALOG))
def test_declared_capabilities_are_what_the_class_overrides(name: str) -> None:
    kind = CATALOG[name]
    cls = kind.load()
    for capability, methods in CHECKED.items():
        overridden = [getattr(cls, m) is not getattr(Target, m) for m in methods]
        declared = capability in kind.capabilities
        assert all(overridden) == declared and any(overridden) == declared, (
            f"{name}: declares {capability!r}: {declared}; overrides {methods}: {overridden}"
        )


@pytest.mark.parametrize("name", list(CATALOG))
def test_the_class_takes_name_settings_and_ships_from_its_kind(name: str) -> None:
    kind = CATALOG[name]
    cls = kind.load()
    assert cls.kind is kind
    assert (cls.name, cls.Settings, cls.ships) == (kind.name, kind.Settings, kind.ships)
    # declared once: on the Kind, never again on the class
    for attribute in ("name", "Settings", "ships"):
        source = Path(__import__(cls.__module__, fromlist=["x"]).__file__).read_text()
        tree = ast.parse(source)
        [node] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
        assigned = {
            t.id
            for stmt in node.body
            if isinstance(stmt, ast.Assign | ast.AnnAssign)
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
            if isinstance(t, ast.Name)
        }
        assert attribute not in assigned, f"{cls.__name__} declares {attribute} again"


@pytest.mark.parametrize("name", [n for n in CATALOG if CATALOG[n].waits])
def test_every_declared_long_wait_is_announced_by_the_target(name: str) -> None:
    """A wait the kind declares is sent with ``long_wait(progress, WAIT, message)``
    somewhere in its package (the deploy page shows it; no text is matched)."""
    from targets import kind as kinds_module

    module = __import__(f"targets.{name}.kind", fromlist=["KIND"])
    declared = {
        attr: value
        for attr, value in vars(module).items()
        if isinstance(value, kinds_module.LongWait)
    }
    assert set(declared.values()) == set(CATALOG[name].waits)
    announced: set[str] = set()
    for path in (ROOT / "targets" / name).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "long_wait"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Name)
            ):
                announced.add(node.args[1].id)
    assert announced == set(declared), (name, announced, set(declared))


def test_the_long_wait_travels_typed_through_the_pipelines_progress() -> None:
    from app.progress import RecordingProgress, long_wait
    from app.run.events import EventProgress, ProgressEvents
    from targets.openstack.kind import VM_BOOT

    events: list = []
    long_wait(EventProgress(events.append, "deploy"), VM_BOOT, "Creating server ms-x")
    [event] = events
    assert event.kind == "progress" and event.message == "Creating server ms-x"
    assert event.data["wait"] is VM_BOOT
    assert VM_BOOT.words == "Starting the virtual machine: this usually takes 1–3 minutes."
    # the CLI (and any plain progress) sees the message exactly as before
    plain = RecordingProgress()
    long_wait(plain, VM_BOOT, "Creating server ms-x")
    ProgressEvents(plain)(event)
    assert plain.events == [("update", (None, "Creating server ms-x"))] * 2


def test_one_cost_type_formatted_in_one_place() -> None:
    from targets.heroku import choices as heroku
    from targets.sagemaker import choices as sagemaker

    assert heroku.Cost is Cost and sagemaker.Cost is Cost
    assert Cost(0.125, 90.0, "w").headline() == "$0.12 per hour — about $90 per month"
    assert Cost(None, 5.0, "w").headline() == "about $5 per month"
    assert Cost(None, None, "Billed per request.").headline() == "Billed per use"
    assert Cost(None, None, "Billed per request.", detail="d").explanation() == (
        "Billed per request."
    )
    assert Cost(1.0, 720.0, "words", detail="one dyno").explanation() == "one dyno"


def test_plans_and_statuses_carry_a_cost_not_words() -> None:
    """A plan item's and a status's cost is a Cost, formatted by Cost.line() alone."""
    import dataclasses
    import typing

    from targets.base import PlanItem, TargetStatus
    from targets.heroku import pricing

    for cls in (PlanItem, TargetStatus):
        hints = typing.get_type_hints(cls)
        assert hints["cost"] == Cost | None, cls
        assert {f.name: f.default for f in dataclasses.fields(cls)}["cost"] is None
    line = Cost(0.056, 40.32, "", detail="1 × ml.t2.medium", when="while it runs").line()
    assert line == "$0.056 per hour (1 × ml.t2.medium), about $40.32 per month while it runs"
    spent = Cost(2.0, None, "", spent=3.5, since="since deploy", note="table of 2025-01")
    assert spent.line() == "$2.00 per hour; about $3.50 since deploy (table of 2025-01)"
    assert Cost.said("free.").line() == "free"
    assert str(PlanItem("create", "app", "a", cost=Cost.said("free"))) == "create app a [free]"
    assert TargetStatus(True, cost=Cost.said("free")).to_dict()["cost"] == "free"
    eco = pricing.cost("eco").line()
    assert eco == "$5.00 per month (for the account's Eco hours) (prices of 2025-01)"
    so_far = pricing.cost_so_far(
        "basic", "2025-01-01T00:00:00Z", _dt.datetime(2025, 1, 1, 10, tzinfo=_dt.UTC)
    )
    assert so_far.spent is not None and abs(so_far.spent - 7.0 / 72) < 1e-9
    assert "; about $0.097 so far (10.0 h since 2025-01-01T00:00 UTC)" in so_far.line()


def test_costs_come_from_the_kinds() -> None:
    from app.endpoint.dashboard import cost_words

    assert CATALOG["local"].estimate(CATALOG["local"].Settings()) is None
    heroku = CATALOG["heroku"]
    cost = heroku.estimate(heroku.Settings(app="toy-app", dyno_size="basic", api_key="toy-key"))
    assert cost is not None and cost.per_month == 7.0
    assert cost_words("heroku", True, "") == "See your provider's bill."
    assert cost_words("heroku", True, "$1 so far", stopped=True) == (
        "Nothing while stopped (no dyno runs). Before: $1 so far"
    )
    assert cost_words("docker", False, "") == "Nothing: it runs on this computer."


def test_the_host_key_flag_is_for_the_kinds_whose_settings_take_it(tmp_path) -> None:
    """``--accept-host-key`` names no kind itself: the kinds' settings say who takes it."""
    import argparse

    from app.cli.commands.deploy import _apply_overrides, _kinds_with_setting
    from app.errors import UsageError
    from app.store.profile import new_profile

    assert _kinds_with_setting("accept_host_key") == ["openstack"]
    args = argparse.Namespace(
        name=None, target=None, port=None, base_image=None, accept_host_key="SHA256:abc"
    )
    with pytest.raises(UsageError) as info:
        _apply_overrides(new_profile(tmp_path / "m.onnx", name="m"), args)
    assert info.value.message == "--accept-host-key is for the openstack target only."
