"""Conformance harness: the docker target (real images and containers on the Engine)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.harnesses.base import Harness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def harness_docker(docker_client, base_image) -> Iterator[Harness]:
    from app.run import versions_dir
    from app.store.profile import Profile

    def profile(model: Path, name: str):
        return Profile.model_validate(
            {
                "schema": 1,
                "name": name,
                "model": {"path": str(model)},
                "target": {"kind": "docker", "settings": {"port": _free_port()}},
                "image": {"base_image": base_image},
            }
        )

    def leftovers(name: str) -> list[str]:
        label = ["modelship.managed=true", f"modelship.deployment={name}"]
        out = [
            f"container {c.name}"
            for c in docker_client.containers.list(
                ignore_removed=True, all=True, filters={"label": label}
            )
        ]
        out += [
            f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)
        ]
        if versions_dir(name).exists():
            out.append(f"folder {versions_dir(name)}")
        return out

    os.environ.setdefault("MODELSHIP_TEST_BASE_IMAGE", base_image)
    yield Harness(kind="docker", profile=profile, leftovers=leftovers, timeout=600)
