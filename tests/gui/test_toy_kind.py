"""The recipe "Adding a target" (targets/catalog.py), proven: a toy kind defined in this
test and registered into the catalog appears on the wizard's target cards (with its own
card check), gets the generated settings form, shows its cost on the Review page and is
in the dashboard's data, with no other edit anywhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from app.domain import Endpoint
from targets.base import PlanItem, Problem, Target, TargetStatus
from targets.cost import Cost
from targets.kind import CostModel, Kind, WizardHooks
from targets.settings import TargetSettings
from tests.gui.helpers import wait_idle


class ToySettings(TargetSettings):
    size: str = Field("small", title="Toy size", description="How big the toy is.")


def estimate(settings: ToySettings) -> Cost:
    """The toy's price table."""
    return Cost(
        0.5, 360.0, "$0.50 per hour while it runs.", "toy prices of today", "One toy while it runs."
    )


def card_health() -> Any:
    from wizards.health import Health

    return Health(True, "The toy box is open.")


TOY = Kind(
    name="toy",
    title="A toy cloud",
    summary="Deploys nowhere; it proves the recipe for adding a target.",
    Settings=ToySettings,
    implementation=f"{__name__}:ToyTarget",
    ships="files",
    billing=True,
    remote=True,
    capabilities=frozenset({"logs"}),
    cost=CostModel(running="The toy bills in marbles.", estimate=f"{__name__}:estimate"),
    wizard=WizardHooks(card_health=f"{__name__}:card_health"),
)


class ToyTarget(Target):
    kind: ClassVar[Kind] = TOY

    def check(self, profile: Any, previous: Any) -> list[Problem]:
        return []

    def plan(self, profile: Any, previous: Any) -> list[PlanItem]:
        return [
            PlanItem(
                "create",
                "toy",
                profile.name,
                "in the toy box",
                cost=Cost(0.5, None, "", detail="one toy"),
            )
        ]

    def deploy(self, ctx: Any) -> Endpoint:
        raise NotImplementedError("the toy deploys nowhere")

    def destroy(self, resource: Any, progress: Any) -> bool:
        return False

    def status(self, record: Any) -> TargetStatus:
        return TargetStatus(True, "the toy runs")

    def logs(self, record: Any, lines: int = 100) -> str:
        return "toy: hello"

    def manifests(self, profile: Any, previous: Any) -> str | None:
        """A toy of size "small" has no document; any other size has two objects."""
        if profile.target.settings.size == "small":
            return None
        return (
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: toy-{profile.name}-key\n"
            "stringData:\n  key: REDACTED\n---\napiVersion: apps/v1\nkind: Deployment\n"
            f"metadata:\n  name: toy-{profile.name}\nspec:\n  replicas: 1\n"
        )


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Kind:
    """The one catalog line of the recipe, as a test makes it."""
    from targets.catalog import CATALOG

    monkeypatch.setitem(CATALOG, "toy", TOY)
    return TOY


def test_the_implementation_is_the_kinds_and_derives_its_declarations(toy: Kind) -> None:
    from targets import get_target

    target = get_target("toy")
    assert isinstance(target, ToyTarget) and target.kind is TOY
    assert (target.name, target.Settings, target.ships) == ("toy", ToySettings, "files")
    assert target.title == "A toy cloud"


def test_a_toy_kind_gets_a_card_with_its_health(toy: Kind, window, qtbot) -> None:
    window.go("target")
    page = window.pages["target"]
    assert "toy" in page.cards
    card = page.cards["toy"]
    assert card.radio.text() == TOY.title and card.summary.text() == TOY.summary
    qtbot.waitUntil(lambda: card.health.isVisibleTo(page), timeout=30_000)
    assert "The toy box is open." in card.health.text()
    page.choose("toy")
    assert window.state.target_name == "toy"
    wait_idle(qtbot, page, 30_000)


def test_a_toy_kind_gets_its_form_and_its_cost_on_review(
    toy: Kind, window, qtbot, tmp_path: Path
) -> None:
    model = tmp_path / "toy.onnx"
    model.write_bytes(b"x")
    window.state.model_path = model
    window.state.name = "toy-demo"
    window.state.target_name = "toy"
    window.state.settings = {"size": "large"}
    window.go("settings")
    settings = window.pages["settings"]
    wait_idle(qtbot, settings, 30_000)
    assert "size" in settings.editors and settings.target_form is None  # the generated form
    window.go("review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    wait_idle(qtbot, review, 30_000)
    assert review.cost.isVisible()
    text = review.cost.label.text()
    assert "Cost: $0.50 per hour — about $360 per month" in text
    assert "One toy while it runs." in text and "toy prices of today" in text
    assert "A toy cloud bills it until you tear it down" in text
    rows = [review.plan.item(r, 1).text() for r in range(review.plan.rowCount())]
    assert "toy toy-demo" in rows


def test_a_toy_kind_is_in_the_dashboards_data(toy: Kind) -> None:
    from app.domain import DeploymentRecord, Resource
    from app.endpoint.dashboard import snapshot
    from app.store.records import save_record

    record = DeploymentRecord(
        name="toy-demo",
        target="toy",
        profile={"name": "toy-demo", "target": {"kind": "toy", "settings": {}}},
    )
    record.endpoint = Endpoint("http://127.0.0.1:9", "toy", [Resource("toy", "t1")]).to_dict()
    save_record(record)
    snap = snapshot("toy-demo")
    assert snap.title == "A toy cloud" and snap.running and not snap.can_stop
    assert snap.billing and snap.cost == "The toy bills in marbles."
    assert snap.logs == "toy: hello"


def _review(window: Any, qtbot: Any, tmp_path: Path, size: str) -> Any:
    model = tmp_path / "toy.onnx"
    model.write_bytes(b"x")
    window.state.model_path = model
    window.state.name = "toy-demo"
    window.state.target_name = "toy"
    window.state.settings = {"size": size}
    window.go("review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok, timeout=30_000)
    wait_idle(qtbot, review, 30_000)
    return review


def test_review_shows_a_targets_exact_objects_collapsed_with_copy(
    toy: Kind, window, qtbot, tmp_path: Path
) -> None:
    from PySide6.QtWidgets import QApplication

    window.resize(800, 600)
    review = _review(window, qtbot, tmp_path, "large")
    assert review.objects_box.isVisible()
    assert not review.objects.isVisible()  # collapsed until asked for
    assert "Show the exact objects" in review.objects_toggle.text()
    assert review.objects.isReadOnly()
    text = review.objects.toPlainText()
    assert "kind: Secret" in text and "name: toy-toy-demo-key" in text and "REDACTED" in text
    review.objects_toggle.click()
    assert review.objects.isVisible()
    review.objects_copy.click()
    assert QApplication.clipboard().text() == text
    review.objects.ensureCursorVisible()
    shot = Path(os.environ.get("MODELSHIP_TOY_SHOT", str(tmp_path / "review-objects.png")))
    assert window.grab().save(str(shot))


def test_review_hides_the_objects_of_a_target_without_them(
    toy: Kind, window, qtbot, tmp_path: Path
) -> None:
    review = _review(window, qtbot, tmp_path, "small")
    assert not review.objects_box.isVisible()
    assert review.objects.toPlainText() == ""
