"""The resources of the ``sagemaker`` target, their names, and how each is removed.

Every resource carries its region and AWS profile in ``data`` so that ``destroy`` can
reach it with nothing else (after a crash, from a journal). Removal is idempotent:
"not found" is False, never an error. Order matters at teardown (:data:`TEARDOWN_ORDER`):
scaling before the endpoint, the endpoint before its configs and models, the role and
repository last, and those two only when ModelShip created them (``data["created"]``).
"""

from __future__ import annotations

from typing import Any

from app.domain import PIPELINE_KINDS, Resource
from app.errors import TargetError
from app.progress import Progress
from app.waiting import wait_until
from targets.sagemaker.capture import (
    BUCKET,
    bucket_policy_statement,
    delete_bucket,
)
from targets.sagemaker.client import AWS, is_not_found

VARIANT = "AllTraffic"
# Resource kinds (the pipeline owns files, image and pushed_image).
ROLE, MODEL, CONFIG, ENDPOINT = "iam_role", "sagemaker_model", "endpoint_config", "endpoint"
UPDATE, SCALABLE, POLICY = "endpoint_update", "scalable_target", "scaling_policy"
REPOSITORY = "ecr_repository"
# teardown order: what depends on something goes before it (the endpoint stops writing
# captured requests before their bucket is emptied)
TEARDOWN_ORDER = [POLICY, SCALABLE, ENDPOINT, UPDATE, CONFIG, MODEL, BUCKET, ROLE, REPOSITORY]


def trust_policy(account: str) -> dict[str, Any]:
    """Who may take on the execution role: SageMaker, and only on behalf of this account
    (``aws:SourceAccount``), so no other account's SageMaker can borrow the role (the
    confused deputy problem, as AWS's IAM guide calls it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def role_policy(
    region: str, account: str, repository: str, capture_bucket: str | None = None
) -> dict[str, Any]:
    """Only what an endpoint needs: pull its image from ECR and write its logs (and,
    with capture on, its captured requests into the capture bucket's prefix)."""
    policy: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": f"arn:aws:ecr:{region}:{account}:repository/{repository}",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*",
            },
            {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        ],
    }
    if capture_bucket:
        policy["Statement"].append(bucket_policy_statement(capture_bucket))
    return policy


def aws_name(text: str, limit: int = 63) -> str:
    """SageMaker names: letters, digits and single hyphens, at most 63 characters."""
    out = "".join(c if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:limit].rstrip("-")


def endpoint_name(deployment: str) -> str:
    return aws_name(f"modelship-{deployment}")


def role_name(deployment: str) -> str:
    return f"ModelShip-{deployment}"[:64]


def repository_name(profile: Any) -> str:
    s = profile.target.settings
    return s.ecr_repository or f"modelship/{profile.name}"


def aws_of(resource: Resource) -> AWS:
    return AWS(resource.data.get("aws_profile"), str(resource.data.get("region") or ""))


def destroy(resource: Resource, progress: Progress) -> bool:
    """Remove one resource of the target; False when it was already gone (or is not
    ModelShip's to remove: a repository or role the user made)."""
    kind = resource.kind
    if kind in PIPELINE_KINDS:
        return False
    aws = aws_of(resource)
    progress.update(None, f"Removing {resource.describe()}")
    if kind == REPOSITORY:
        if not resource.data.get("created"):
            return False  # the user's: never ours to delete
        from targets.sagemaker.ecr import delete_repository

        return delete_repository(aws, resource.id)
    if kind == ROLE:
        return delete_role(aws, resource) if resource.data.get("created") else False
    if kind == BUCKET:
        return delete_bucket(aws, resource)
    sm = aws.client("sagemaker")
    calls = {
        MODEL: lambda: sm.delete_model(ModelName=resource.id),
        CONFIG: lambda: sm.delete_endpoint_config(EndpointConfigName=resource.id),
        ENDPOINT: lambda: delete_endpoint(aws, resource.id),
        UPDATE: lambda: revert_update(aws, resource, progress),
        SCALABLE: lambda: aws.client("application-autoscaling").deregister_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource.id,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        ),
        POLICY: lambda: aws.client("application-autoscaling").delete_scaling_policy(
            PolicyName=resource.id,
            ServiceNamespace="sagemaker",
            ResourceId=str(resource.data.get("resource_id")),
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        ),
    }
    call = calls.get(kind)
    if call is None:
        raise TargetError(
            f"The SageMaker target does not know how to remove a {kind}.",
            "Remove it in the AWS console.",
        )
    try:
        result = call()
    except Exception as exc:
        if is_not_found(exc):
            return False
        with aws.errors(f"removing {resource.describe()}"):
            raise exc
    return result if isinstance(result, bool) else True


def describe_endpoint(aws: AWS, ep: str) -> dict[str, Any] | None:
    sm = aws.client("sagemaker")
    try:
        return dict(sm.describe_endpoint(EndpointName=ep))
    except Exception as exc:
        if is_not_found(exc):
            return None
        with aws.errors(f"looking up endpoint {ep}"):
            raise exc
    return None  # pragma: no cover


def delete_endpoint(aws: AWS, ep: str) -> bool:
    """Delete the endpoint and wait until SageMaker forgets it (billing stops there)."""
    sm = aws.client("sagemaker")
    sm.delete_endpoint(EndpointName=ep)
    wait_until(
        lambda: describe_endpoint(aws, ep),
        lambda d: d is None,
        timeout=600,
        what=f"endpoint {ep} to be deleted",
        interval=0.5,
        max_interval=10.0,
    )
    return True


def revert_update(aws: AWS, resource: Resource, progress: Progress) -> bool:
    """Undo a failed run's UpdateEndpoint: point the endpoint back at the config it ran,
    but only while it still runs the config this update set (never undo a later one)."""
    ep = str(resource.data["endpoint"])
    current = describe_endpoint(aws, ep)
    if current is None:
        return False
    if current.get("EndpointConfigName") != resource.data.get("config"):
        if current["EndpointStatus"] != "Updating":
            return False
        # still switching: wait for the outcome before deciding
        current = wait_until(
            lambda: describe_endpoint(aws, ep) or {"EndpointStatus": "Gone"},
            lambda d: d["EndpointStatus"] != "Updating",
            timeout=1800,
            what=f"endpoint {ep} to finish updating",
            interval=1.0,
            max_interval=10.0,
        )
        if current.get("EndpointConfigName") != resource.data.get("config"):
            return False
    previous = str(resource.data["previous_config"])
    progress.update(None, f"Pointing endpoint {ep} back at {previous}")
    aws.client("sagemaker").update_endpoint(EndpointName=ep, EndpointConfigName=previous)
    wait_until(
        lambda: describe_endpoint(aws, ep) or {"EndpointStatus": "Gone"},
        lambda d: d["EndpointStatus"] in {"InService", "Gone", "Failed"},
        timeout=1800,
        what=f"endpoint {ep} to run {previous} again",
        interval=1.0,
        max_interval=10.0,
    )
    return True


def delete_role(aws: AWS, resource: Resource) -> bool:
    iam = aws.client("iam")
    name = resource.id
    try:
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=name)
    except Exception as exc:
        if is_not_found(exc):
            return False
        with aws.errors(f"deleting IAM role {name}"):
            raise exc
    return True
