"""Settings of the ``sagemaker`` target (no SDK, no target code: see targets.settings).

No AWS key is ever here: ``aws_profile`` names a profile of ``~/.aws`` (SSO and
environment credentials work through boto3's own chain); service addresses follow
botocore's standard settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from targets.settings import (
    TargetSettings,
    capture_max_mb_field,
    capture_rate_field,
    start_timeout_field,
)

if TYPE_CHECKING:  # pragma: no cover
    from app.store.trust import UntrustedHostError

# ECR's documented registry hosts: ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]
ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def check_registry(host: str, region: str) -> None:
    """Refuse a ``registry`` override that is neither ECR in ``region`` nor confirmed on
    this computer: it would receive the ECR password (the account's push rights)."""
    from app.store.trust import require_host

    def documented(origin: str) -> bool:
        match = ECR_HOST.match(origin.removeprefix("https://"))  # ECR: port 443 only
        return match is not None and match.group(1) == region

    require_host(
        host,
        setting="registry",
        service="ECR",
        sends="your ECR login (a password to push to your account's repositories)",
        documented=documented,
    )


class SageMakerSettings(TargetSettings):
    aws_profile: str | None = Field(
        None, title="AWS profile", description="A profile from ~/.aws (empty: the default)."
    )
    region: str = Field(
        "eu-central-1", title="Region", description="AWS region, e.g. eu-central-1 (Frankfurt)."
    )
    mode: Literal["realtime", "serverless"] = Field(
        "realtime",
        title="Mode",
        description="realtime: instances that run (and bill) all the time; serverless: "
        "billed per request, with cold starts.",
    )
    instance_type: str = Field(
        "ml.t2.medium", title="Instance type", description="Real-time only; sets the price."
    )
    instance_count: int = Field(1, ge=1, le=100, title="Instances", description="At the start.")
    min_instances: int = Field(1, ge=1, le=100, title="Fewest instances (autoscaling)")
    max_instances: int = Field(
        1, ge=1, le=100, title="Most instances (autoscaling)", description="= fewest: no scaling."
    )
    target_invocations_per_instance: int = Field(
        100, ge=1, title="Calls per instance per minute", description="Where autoscaling adds one."
    )
    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(
        2048, title="Memory (serverless)", description="Serverless memory size in MB."
    )
    max_concurrency: int = Field(
        5, ge=1, le=200, title="Concurrent calls (serverless)", description="Serverless only."
    )
    role_arn: str | None = Field(
        None,
        title="Execution role",
        description="An IAM role ARN for SageMaker (empty: ModelShip creates a "
        "least-privilege one).",
    )
    ecr_repository: str | None = Field(
        None, title="ECR repository", description="Default: modelship/<deployment name>."
    )
    registry: str | None = Field(
        None,
        title="Registry host",
        description="Override of the ECR registry host (a mirror; tests). Empty: your "
        "account's ECR.",
    )
    start_timeout: float = start_timeout_field(
        1800.0, "Seconds to wait for the endpoint to be InService.", le=7200
    )
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()

    @field_validator("role_arn")
    @classmethod
    def _an_arn(cls, v: str | None) -> str | None:
        if v and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", v):
            raise ValueError("must be an IAM role ARN such as arn:aws:iam::123456789012:role/x")
        return v or None

    @model_validator(mode="after")
    def _scaling_range(self) -> SageMakerSettings:
        if self.max_instances < self.min_instances:
            raise ValueError("max_instances must not be below min_instances")
        return self

    def address_errors(self) -> list[UntrustedHostError]:
        from app.store.trust import UntrustedHostError

        if not self.registry:
            return []  # the account's own ECR
        try:
            check_registry(self.registry, self.region)
        except UntrustedHostError as exc:
            return [exc]
        return []


__all__ = ["ECR_HOST", "SageMakerSettings", "check_registry"]
