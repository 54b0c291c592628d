"""Test-wide setup: no display, no real keyring, no stray threads, isolated homes."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

# Qt must never look for a display in tests (a missing one aborts the process).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
import keyring.backend
import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The cloud emulators' fixtures (tests/emulators/*/fixtures.py), for every test folder.
pytest_plugins = [
    "tests.emulators.heroku.fixtures",
    "tests.emulators.kubernetes.fixtures",
    "tests.emulators.openstack.fixtures",
    "tests.emulators.sagemaker_runtime.fixtures",
]
REPO = Path(__file__).resolve().parent.parent


def require(available: bool, what: str) -> None:
    """Skip when a component is missing on a developer machine; fail in CI.

    In CI everything the tests need is installed and started by .ci/run, so a
    missing component is a broken CI setup, not a reason to skip.
    """
    if available:
        return
    message = f"{what} is not available (run .ci/test to install and start it)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """In-memory keyring so no test ever touches a real credential store."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        import keyring.errors

        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def modelship_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """Profiles, records and caches of each test live in a fresh folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MODELSHIP_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_dangling_threads() -> Iterator[None]:
    """A test that leaves a thread running fails (after napari's _dangling_qthreads)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        extra = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, f"test left threads running: {[t.name for t in extra]}"


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_client():
    """A client for the real Docker Engine (started by .ci/services)."""
    require(docker_available(), "Docker Engine")
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The locally built Debian bookworm + python3 base image (no pulls possible)."""
    name = os.environ.get("MODELSHIP_TEST_BASE_IMAGE", "modelship-test-base:bookworm")
    import docker.errors

    try:
        docker_client.images.get(name)
    except docker.errors.ImageNotFound:
        require(False, f"base image {name} (built by .ci/services)")
    return name
