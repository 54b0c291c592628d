"""The ``sagemaker`` kind, as the catalog lists it, and the long wait its deploy
announces (no target code: see targets.kind)."""

from __future__ import annotations

from targets.kind import CostModel, Kind, LongWait, WizardHooks
from targets.sagemaker.settings import SageMakerSettings

ENDPOINT_START = LongWait(
    "SageMaker is starting the endpoint (until it is “InService”)",
    "this usually takes 5–10 minutes",
)

KIND = Kind(
    name="sagemaker",
    title="AWS SageMaker",
    summary="An AWS endpoint that scales past one machine (or serverless, billed per "
    "request). ModelShip states the cost before it creates anything.",
    Settings=SageMakerSettings,
    implementation="targets.sagemaker.target:SageMakerTarget",
    ships="image",
    billing=True,
    remote=True,
    capabilities=frozenset({"logs", "autoscaling"}),
    call="sigv4",
    cost=CostModel(estimate="targets.sagemaker.choices:estimate"),
    waits=(ENDPOINT_START,),
    wizard=WizardHooks(
        card_health="wizards.health:aws_profile", form="wizards.forms.sagemaker:SageMakerForm"
    ),
)
