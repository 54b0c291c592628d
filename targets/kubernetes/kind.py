"""The ``kubernetes`` kind, as the catalog lists it, and the long wait its deploy
announces (no target code: see targets.kind)."""

from __future__ import annotations

from targets.kind import CostModel, Kind, LongWait, WizardHooks
from targets.kubernetes.settings import KubernetesSettings

ROLLOUT = LongWait("The cluster is starting the pods", "pods starting, usually under a minute")

KIND = Kind(
    name="kubernetes",
    title="Kubernetes (your own cluster)",
    summary="Run the model as a Deployment (or a KServe InferenceService) on a "
    "Kubernetes cluster you can sign in to; reached through the cluster's API server "
    "or at its own address.",
    Settings=KubernetesSettings,
    implementation="targets.kubernetes.target:KubernetesTarget",
    ships="image",
    billing=False,
    remote=True,
    capabilities=frozenset({"logs", "stop_start", "autoscaling"}),
    cost=CostModel(
        running="Your cluster's own cost; ModelShip adds none.",
        stopped="Nothing of the pods while stopped (scaled to 0).",
    ),
    call="kubernetes",
    waits=(ROLLOUT,),
    wizard=WizardHooks(card_health="wizards.health:kubernetes_config"),
)
