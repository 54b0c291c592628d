"""The deployment's history: the record a successful run writes, and pruning old versions."""

from __future__ import annotations

import contextlib
from typing import Any

from app.domain import (
    BuiltImage,
    ConvertedModel,
    DeploymentRecord,
    Endpoint,
    ModelVersion,
    PushedImage,
)
from app.progress import Progress
from app.run import resources
from app.run.steps import file_sha256
from app.store.profile import Profile

KEEP_VERSIONS = 3  # versions kept for rollback (model files, images)


def record_version(
    profile: Profile,
    previous: DeploymentRecord | None,
    endpoint: Endpoint,
    version: int,
    model: ConvertedModel,
    image: BuiltImage | None,
    pushed: PushedImage | None,
    report: Any,
    created: list[Any],
) -> DeploymentRecord:
    """Make (or update) the record: the new endpoint and version become current.

    ``created`` are the resources this run journaled; those that are not part of the
    live endpoint (model files, images) belong to the version and stay until it is
    pruned, so a rollback can use them.
    """
    record = previous or DeploymentRecord(
        name=profile.name, target=profile.target.kind, profile=profile.to_dict()
    )
    record.target = profile.target.kind
    record.profile = profile.to_dict()
    record.profile_path = str(profile.source) if profile.source else None
    record.endpoint = endpoint.to_dict()
    live = {r.key for r in endpoint.resources}
    mv = ModelVersion(
        version=version,
        model_path=str(model.onnx_path),
        source_model=str(profile.model.path),
        target=profile.target.kind,
        profile=profile.to_dict(),
        model_sha256=file_sha256(model.onnx_path),
        image=image.to_dict() if image is not None else None,
        pushed=pushed.to_dict() if pushed is not None else None,
        resources=[r.to_dict() for r in created if r.key not in live],
        conversion=model.summary,
        conversion_key=model.conversion_key,
        smoke=report.to_dict() if report is not None else None,
    )
    others = [v for v in record.version_objects() if v.version != version]
    record.versions = [*(v.to_dict() for v in others), mv.to_dict()]
    record.current_version = version
    record.state = "running"
    record.smoke = report.to_dict() if report is not None else None
    return record


def prune(record: DeploymentRecord, progress: Progress) -> list[str]:
    """Drop versions beyond KEEP_VERSIONS (oldest first), removing their resources."""
    versions = sorted(record.version_objects(), key=lambda v: v.version)
    keep = {v.version for v in versions[-KEEP_VERSIONS:]} | {record.current_version}
    kept = [v for v in versions if v.version in keep]
    kept_tags = {str(v.pushed.get("tag")) for v in kept if v.pushed}
    kept_images = {str(v.image.get("id")) for v in kept if v.image}
    removed = []
    for v in versions:
        if v.version in keep:
            continue
        for r in reversed(v.resource_objects()):
            with contextlib.suppress(Exception):
                target = v.target or record.target
                profile = v.profile or record.profile
                version = (record.name, v.version)
                if resources.remove(
                    r, target, profile, progress,
                    version=version, keep_tags=kept_tags, keep_images=kept_images,
                ):  # fmt: skip
                    removed.append(r.describe())
    record.versions = [v.to_dict() for v in versions if v.version in keep]
    return removed
