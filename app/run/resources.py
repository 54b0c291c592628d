"""Removing what a run created: each resource by its owner.

The pipeline owns three kinds itself (``app.domain.PIPELINE_KINDS``): the converted
model files, images it built on the local Engine, and images it pushed to a target's
registry. Every other kind belongs to the target that journaled it.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

from app.domain import PushedImage, Resource
from app.errors import TargetError
from app.progress import Progress


def remove(
    resource: Resource,
    target: str,
    profile: Any,
    progress: Progress,
    *,
    version: tuple[str, int] | None = None,
    keep_tags: Collection[str] | None = None,
    keep_images: Collection[str] | None = None,
) -> bool:
    """Remove one resource; True if something was removed, False if it was gone.

    ``target`` is the kind that made it (or whose registry holds it); ``profile`` the
    profile (object or dict) it was made with, which a registry needs to log in.
    ``version`` = (deployment, version number) when removing a recorded version's
    resource: other versions' claims on a shared image are honoured. ``keep_tags`` are
    the pushed tags still needed and ``keep_images`` the image ids (default: every other
    recorded version's; a teardown that removes all versions passes none).
    """
    if resource.kind == "files":
        path = Path(resource.id)
        if not path.exists():
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    if resource.kind == "image":
        return _remove_image(resource, progress, version, keep_images)
    if resource.kind == "pushed_image":
        return _remove_pushed(resource, target, profile, progress, keep_tags)
    from targets.catalog import get_target

    return get_target(target).destroy(resource, progress)


def _remove_image(
    resource: Resource,
    progress: Progress,
    version: tuple[str, int] | None,
    keep: Collection[str] | None,
) -> bool:
    """Remove a built image unless something still needs it.

    Rebuilding an unchanged model gives the same image as the version being replaced,
    so an image still used by a container (even a stopped one kept for ``resume``) or
    by another recorded version stays.
    """
    from app.image.image import connect, remove_image

    client = connect()
    try:
        import docker.errors

        ref = str(resource.data.get("id") or resource.id)
        try:
            ident = str(client.api.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return False
        users = client.containers.list(ignore_removed=True, all=True, filters={"ancestor": ident})
        if users:
            progress.log(f"Keeping image {resource.id}: container {users[0].name} uses it")
            return False
        needed = ident in keep if keep is not None else recorded_image_uses(ident, version)
        if needed:
            progress.log(f"Keeping image {resource.id}: another deployed version uses it")
            return False
        progress.update(None, f"Removing image {resource.id}")
        return remove_image(client, ident)
    finally:
        client.close()


def recorded_image_uses(image_id: str, except_version: tuple[str, int] | None) -> int:
    """How many recorded versions (of any deployment) run this image."""
    from app.store.records import list_records

    count = 0
    for record in list_records():
        for v in record.version_objects():
            if except_version == (record.name, v.version):
                continue
            if (v.image or {}).get("id") == image_id:
                count += 1
    return count


def _remove_pushed(
    resource: Resource,
    target: str,
    profile: Any,
    progress: Progress,
    keep_tags: Collection[str] | None,
) -> bool:
    from targets.catalog import get_target

    registry = get_target(target).registry(_profile(profile)) if profile is not None else None
    if registry is None:
        raise TargetError(
            f"Cannot reach the registry holding {resource.describe()} (its profile is unknown).",
            "Remove the image in the registry's own console.",
        )
    pushed = PushedImage.from_dict(resource.data)
    if keep_tags is None:
        keep_tags = recorded_pushed_tags(pushed.repository, except_version=None)
    progress.update(None, f"Removing {resource.describe()}")
    return registry.remove(pushed, progress, keep=keep_tags)


def recorded_pushed_tags(repository: str, *, except_version: tuple[str, int] | None) -> set[str]:
    """Tags in ``repository`` that recorded versions (of any deployment) still run."""
    from app.store.records import list_records

    tags = set()
    for record in list_records():
        for v in record.version_objects():
            pushed = v.pushed or {}
            if (
                except_version != (record.name, v.version)
                and pushed.get("repository") == repository
            ):
                tags.add(str(pushed.get("tag")))
    return tags


def _profile(profile: Any) -> Any:
    if isinstance(profile, dict):
        from app.store.profile import Profile

        return Profile.model_validate(profile)
    return profile
