"""Conformance harness: the sagemaker target against moto + the SageMaker emulator.

Real boto3 calls throughout: STS, IAM, ECR and Application Auto Scaling go to moto
(``AWS_ENDPOINT_URL``); SageMaker and sagemaker-runtime to the emulator, which keeps
its records in moto and runs each endpoint's image as SageMaker does (``docker run
IMAGE serve``). The local registry stands in for ECR through the ``registry`` setting.
Autoscaling is on (1-2 instances) and so is capture (SageMaker's Data Capture to an S3
bucket) so that their resources are covered too.

``leftovers`` looks on the platform, never in ModelShip's records: models, endpoint
configs, endpoints, scalable targets and policies, the role and repository ModelShip
would create, the capture bucket, the emulator's containers, the registry's tags and
the local images.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.harnesses.base import Harness
from tests.emulators.confirm import confirm_hosts
from tests.emulators.sagemaker_runtime.fixtures import registry_address, registry_available

REGION = "us-east-1"


def sagemaker_profile(model: Path, name: str, base_image: str, **settings: object):
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 1,
            "name": name,
            "model": {"path": str(model)},
            "target": {
                "kind": "sagemaker",
                "settings": {
                    "region": REGION,
                    "registry": registry_address(),
                    "instance_type": "ml.t2.medium",
                    "instance_count": 1,
                    "min_instances": 1,
                    "max_instances": 2,
                    "start_timeout": 300,
                    **settings,
                },
            },
            "image": {"base_image": base_image},
        }
    )


def registry_tags(repository: str) -> list[str]:
    try:
        url = f"http://{registry_address()}/v2/{repository}/tags/list"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return list(json.loads(resp.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def aws_leftovers(name: str, emulator) -> list[str]:
    """What of deployment ``name`` exists in moto and the emulator, in words."""
    import boto3

    from targets.sagemaker.capture import bucket_name
    from targets.sagemaker.target import endpoint_name, role_name

    ep = endpoint_name(name)
    session = boto3.session.Session(region_name=REGION)
    sm = session.client("sagemaker")
    out = [
        f"model {m['ModelName']}"
        for m in sm.list_models(MaxResults=100)["Models"]
        if m["ModelName"].startswith(ep)
    ]
    out += [
        f"endpoint config {c['EndpointConfigName']}"
        for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
        if c["EndpointConfigName"].startswith(ep)
    ]
    out += [
        f"endpoint {e['EndpointName']}"
        for e in sm.list_endpoints(MaxResults=100)["Endpoints"]
        if e["EndpointName"] == ep
    ]
    aas = session.client("application-autoscaling")
    out += [
        f"scalable target {t['ResourceId']}"
        for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        if t["ResourceId"].startswith(f"endpoint/{ep}/")
    ]
    out += [
        f"scaling policy {p['PolicyName']}"
        for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        if p["ResourceId"].startswith(f"endpoint/{ep}/")
    ]
    iam = session.client("iam")
    out += [
        f"role {r['RoleName']}"
        for r in iam.list_roles()["Roles"]
        if r["RoleName"] == role_name(name)
    ]
    ecr = session.client("ecr")
    out += [
        f"repository {r['repositoryName']}"
        for r in ecr.describe_repositories()["repositories"]
        if r["repositoryName"] == f"modelship/{name}"
    ]
    account = session.client("sts").get_caller_identity()["Account"]
    s3 = session.client("s3")
    bucket = bucket_name(account, REGION, name)
    out += [f"S3 bucket {b['Name']}" for b in s3.list_buckets()["Buckets"] if b["Name"] == bucket]
    out += [f"emulator container {c[:12]}" for c in emulator.containers()]
    return out


def sagemaker_leftovers(name: str, emulator, docker_client) -> list[str]:
    """Everything of deployment ``name`` anywhere: moto, the emulator, the registry,
    local images and the version folders, in words."""
    from app.run import versions_dir

    out = aws_leftovers(name, emulator)
    out += [f"registry tag {t}" for t in registry_tags(f"modelship/{name}")]
    label = ["modelship.managed=true", f"modelship.deployment={name}"]
    out += [f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)]
    if versions_dir(name).exists():
        out.append(f"folder {versions_dir(name)}")
    return out


@pytest.fixture
def harness_sagemaker(docker_client, base_image, sagemaker_emulator) -> Iterator[Harness]:
    from tests.conftest import require

    require(registry_available(registry_address()), f"the local registry at {registry_address()}")
    confirm_hosts(registry_address())  # the local registry stands in for ECR: confirmed
    emulator = sagemaker_emulator

    def profile(model: Path, name: str):
        # capture on: the Data Capture bucket is journaled, removed on every failure
        # and cancel, kept across redeploys and rollbacks, and gone after teardown
        return sagemaker_profile(model, name, base_image, capture_rate=1.0)

    def leftovers(name: str) -> list[str]:
        return sagemaker_leftovers(name, emulator, docker_client)

    def fault(operation: str, **spec: object):
        @contextlib.contextmanager
        def active() -> Iterator[None]:
            emulator.inject(operation, **spec)
            try:
                yield
            finally:
                emulator.clear_faults()

        return active

    faults = {
        "CreateModel fails": fault("CreateModel", error_code="InternalServerError", status=500),
        "CreateModel denied": fault(
            "CreateModel", error_code="AccessDeniedException", status=400, message="not allowed"
        ),
        "CreateEndpointConfig fails": fault(
            "CreateEndpointConfig", error_code="ResourceLimitExceeded", status=400
        ),
        "DescribeEndpoint fails": fault("DescribeEndpoint", error_code="InternalServerError"),
        "CreateEndpoint throttled": fault(
            "CreateEndpoint", error_code="ThrottlingException", status=400
        ),
        "endpoint fails to start": fault(
            "CreateEndpoint",
            failure_reason="The primary container for production variant AllTraffic did not "
            "pass the ping health check. Please check CloudWatch logs for this endpoint.",
        ),
    }
    yield Harness(
        kind="sagemaker", profile=profile, leftovers=leftovers, faults=faults, timeout=900
    )
