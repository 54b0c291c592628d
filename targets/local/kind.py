"""The ``local`` kind, as the catalog lists it (no target code: see targets.kind)."""

from __future__ import annotations

from targets.kind import CostModel, Kind, WizardHooks
from targets.local.settings import LocalSettings

KIND = Kind(
    name="local",
    title="This computer",
    summary="Run the model as a background process on this computer (127.0.0.1); "
    "no Docker needed. Good for trying it out and for edge devices.",
    Settings=LocalSettings,
    implementation="targets.local.target:LocalTarget",
    ships="files",
    capabilities=frozenset({"logs", "stop_start"}),
    cost=CostModel(running="Nothing: it runs on this computer."),
    wizard=WizardHooks(icon="local"),
)
