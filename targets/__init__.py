"""Deployment targets, registered explicitly by name (no plugin magic).

The wizard lists :data:`REGISTRY` in this order; PyInstaller's hidden imports are fed
from the same dict. Adding a target: one module with a :class:`targets.base.Target`
subclass, one line here.
"""

from __future__ import annotations

from targets.base import Target
from targets.docker_target import DockerTarget
from targets.local import LocalTarget

REGISTRY: dict[str, type[Target]] = {
    "local": LocalTarget,
    "docker": DockerTarget,
}


def get_target(name: str) -> Target:
    """The target called ``name``; an unknown name is a UsageError naming the known ones."""
    from app.errors import UsageError

    try:
        return REGISTRY[name]()
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UsageError(
            f"Unknown target {name!r}.", f"Choose one of: {known} (--target NAME)."
        ) from None
