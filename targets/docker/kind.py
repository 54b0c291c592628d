"""The ``docker`` kind, as the catalog lists it (no target code: see targets.kind)."""

from __future__ import annotations

from targets.docker.settings import DockerSettings
from targets.kind import CostModel, Kind, WizardHooks

KIND = Kind(
    name="docker",
    title="Docker on this computer",
    summary="Build a serving image and run it as a container on this computer's Docker "
    "Engine; the same image can go to any server or cloud that runs containers.",
    Settings=DockerSettings,
    implementation="targets.docker.target:DockerTarget",
    ships="image",
    capabilities=frozenset({"logs", "stop_start"}),
    cost=CostModel(running="Nothing: it runs on this computer."),
    wizard=WizardHooks(card_health="wizards.health:docker_engine", icon="docker"),
)
