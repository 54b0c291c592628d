"""Preflight of the ``sagemaker`` target: what would make a deploy fail, before anything
is created, each with its fix and the setting to change.

SageMaker's limits are found here rather than in production: the request size (6 MB
real-time, 4 MB serverless; the sample rows the smoke test sends must fit), a model so
large that it would not load within the health window, an instance type ModelShip has
no price for, an autoscaling range that excludes the starting count, a role that does
not exist.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import CredentialError, TargetError
from targets.base import Problem
from targets.sagemaker import prices
from targets.sagemaker.client import AWS, error_code, is_not_found
from targets.sagemaker.settings import SageMakerSettings

if TYPE_CHECKING:
    from app.store.profile import Profile

MAX_PAYLOAD = {"realtime": 6 * 1024 * 1024, "serverless": 4 * 1024 * 1024}
# SageMaker gives a new container this long to answer /ping (real-time; configurable up
# to an hour with ContainerStartupHealthCheckTimeoutInSeconds, which we set).
HEALTH_WINDOW_S = 600
# A rough measure of how long the serving runtime needs to load a model: Python and
# onnxruntime start in a few seconds, then the file is read and the session built.
WARMUP_BASE_S = 5.0
WARMUP_BYTES_PER_S = 50 * 1024 * 1024


def scaling(settings: SageMakerSettings) -> bool:
    return settings.mode == "realtime" and settings.min_instances != settings.max_instances


def initial_count(settings: SageMakerSettings) -> int:
    if scaling(settings):
        return min(max(settings.instance_count, settings.min_instances), settings.max_instances)
    return settings.instance_count


def setting_problems(profile: Profile) -> list[Problem]:
    s: SageMakerSettings = profile.target.settings
    problems: list[Problem] = []
    if s.mode == "realtime" and s.instance_type not in prices.INSTANCE_TYPES:
        offered = ", ".join(sorted(prices.INSTANCE_TYPES))
        problems.append(
            Problem(
                f"Instance type {s.instance_type!r} is not one ModelShip offers.",
                f"Choose one of: {offered}.",
                kind="setting",
                setting="instance_type",
            )
        )
    if scaling(s) and not s.min_instances <= s.instance_count <= s.max_instances:
        problems.append(
            Problem(
                f"{s.instance_count} instance(s) at the start is outside the autoscaling "
                f"range {s.min_instances}-{s.max_instances}.",
                "Set instance_count between min_instances and max_instances.",
                kind="setting",
                setting="instance_count",
            )
        )
    if s.mode == "serverless" and s.capture_rate > 0:
        problems.append(
            Problem(
                "SageMaker serverless endpoints do not offer Data Capture, where ModelShip "
                "keeps captured requests on SageMaker.",
                "Set capture_rate to 0, or use mode realtime to capture requests.",
                kind="setting",
                setting="capture_rate",
            )
        )
    size = sample_payload_bytes(profile.model.sample_csv)
    limit = MAX_PAYLOAD[s.mode]
    if size is not None and size > limit:
        problems.append(
            Problem(
                f"The sample rows make a request of {size / 2**20:.1f} MB; SageMaker "
                f"{s.mode} endpoints take at most {limit // 2**20} MB per request.",
                "Use fewer sample rows (a smaller sample CSV); send large batches in "
                "several requests.",
                kind="setting",
            )
        )
    warmup = warmup_seconds(profile.model.path)
    if warmup is not None and warmup > HEALTH_WINDOW_S:
        problems.append(
            Problem(
                f"The model is large enough that loading it may take about "
                f"{warmup / 60:.0f} minutes, longer than SageMaker waits for a new "
                f"container to answer ({HEALTH_WINDOW_S // 60} minutes).",
                "Quantize the model (quantize = true) or choose a smaller one.",
                kind="setting",
            )
        )
    return problems


def role_problems(aws: AWS, s: SageMakerSettings) -> list[Problem]:
    iam = aws.client("iam")
    if s.role_arn:
        try:
            iam.get_role(RoleName=s.role_arn.rsplit("/", 1)[-1])
        except Exception as exc:
            if is_not_found(exc):
                return [
                    Problem(
                        f"The execution role {s.role_arn} does not exist.",
                        "Check role_arn, or leave it empty and ModelShip creates one.",
                        kind="setting",
                        setting="role_arn",
                    )
                ]
            if error_code(exc) in {"AccessDenied", "AccessDeniedException"}:
                return []  # may still pass it (iam:PassRole) without reading it
            try:
                with aws.errors("checking the execution role"):
                    raise exc
            except (TargetError, CredentialError) as err:
                return [Problem(err.message, err.hint or "", kind="environment")]
    return []


def sample_payload_bytes(sample_csv: Path | None) -> int | None:
    """Size of the JSON request the smoke test sends for the sample rows."""
    if sample_csv is None:
        return None
    try:
        text = Path(sample_csv).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    rows = [[_number(v) for v in row] for row in list(csv.reader(io.StringIO(text)))[1:]]
    return len(json.dumps(rows).encode())


def _number(value: str) -> float | str:
    """Numbers travel as JSON numbers (the smoke test sends them so)."""
    try:
        return float(value)
    except ValueError:
        return value


def warmup_seconds(model: Path | None) -> float | None:
    try:
        size = Path(model).stat().st_size if model is not None else None
    except OSError:
        return None
    return None if size is None else WARMUP_BASE_S + size / WARMUP_BYTES_PER_S
