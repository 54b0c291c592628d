"""pytest fixtures for the Heroku emulator.

Use from a conftest: ``from tests.emulators.heroku.fixtures import heroku_emulator``.
Function-scoped on purpose: each test starts from an empty platform and its teardown
proves the emulator's threads, containers, pulled images and registry are gone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import docker_available, require
from tests.emulators.confirm import confirm_hosts

from .emulator import HerokuEmulator
from .registry import registry_available


@pytest.fixture
def heroku_emulator() -> Iterator[HerokuEmulator]:
    """A started emulator: ``api_url``, ``registry`` (host:port), ``api_key``, helpers.

    Its addresses are confirmed on this test's computer (``modelship hosts allow``), as a
    person would confirm a Heroku-compatible service before ModelShip sends it a key.

    Short timeouts for tests: 10 s boot (R10), 5 s per request (H12); tests may change
    ``boot_timeout`` / ``request_timeout`` / ``release_shape`` (how releases name their
    image: "artifacts", "description" or "generic", see ``HerokuEmulator``) on the
    object at any time.
    """
    require(docker_available(), "Docker Engine")
    require(registry_available(), "docker-registry and htpasswd (docker-registry, apache2-utils)")
    emulator = HerokuEmulator(boot_timeout=10.0, request_timeout=5.0)
    emulator.start()
    try:
        confirm_hosts(emulator.api_url, emulator.registry)
        yield emulator
    finally:
        emulator.stop()
