"""pytest fixtures for the OpenStack emulator (import them into a conftest.py).

- `openstack_emulator`: a fresh emulated cloud per test (NullBackend: API only),
  served by uvicorn from a thread on a free 127.0.0.1 port, stopped and joined at
  teardown (the suite fails tests that leave threads running).
- `sshd_host` (session): the local OpenSSH server standing in for VMs.
- `sshd_backend` / `openstack_vm_emulator`: the emulator whose servers are that sshd
  (keypair public key -> authorized_keys; its host keys on the console log).
- `clouds_yaml`: writes clouds.yaml for an emulator and returns what the SDK (or a
  subprocess) needs: `OS_CLIENT_CONFIG_FILE` and the cloud names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import require

from .backends import SshdBackend
from .emulator import OpenStackEmulator
from .sshd import SshdServer, sshd_available

PASSWORD_CLOUD = "bwcloud"
APP_CRED_CLOUD = "bwcloud-appcred"


@dataclass(frozen=True)
class CloudsYaml:
    """A written clouds.yaml: its path and the environment that selects it."""

    path: Path
    clouds: dict[str, dict] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """Environment for the SDK or a subprocess (`openstack`, `modelship`)."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.path)}


def write_clouds_yaml(
    emulator: OpenStackEmulator,
    directory: Path,
    region: str | None = None,
    password_cloud: str = PASSWORD_CLOUD,
    app_cred_cloud: str = APP_CRED_CLOUD,
) -> CloudsYaml:
    """Write clouds.yaml with a password entry and an application-credential entry."""
    clouds = {
        password_cloud: emulator.cloud_config("password", region),
        app_cred_cloud: emulator.cloud_config("application_credential", region),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    return CloudsYaml(path, clouds)


@pytest.fixture
def openstack_emulator() -> Iterator[OpenStackEmulator]:
    """An emulated cloud with nothing behind its servers (API tests)."""
    emulator = OpenStackEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, "the emulator failed:\n" + "\n".join(emulator.errors)


@pytest.fixture
def clouds_yaml(
    openstack_emulator: OpenStackEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> CloudsYaml:
    """clouds.yaml for `openstack_emulator`, selected through OS_CLIENT_CONFIG_FILE."""
    written = write_clouds_yaml(openstack_emulator, tmp_path / "openstack")
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)  # a developer's own OS_* must not leak into the tests
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(written.path))
    return written


@pytest.fixture(scope="session")
def sshd_host() -> Iterator[SshdServer]:
    """The local OpenSSH server on 127.0.0.1 (its own keys, port and authorized_keys)."""
    require(sshd_available(), "OpenSSH server (/usr/sbin/sshd, Debian openssh-server)")
    server = SshdServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sshd_backend(sshd_host: SshdServer) -> Iterator[SshdBackend]:
    """Servers backed by `sshd_host`; host keys appear on the console after 0.3 s."""
    backend = SshdBackend(sshd_host, boot_delay=0.0, console_delay=0.3)
    try:
        yield backend
    finally:
        backend.close()
        sshd_host.revoke_all()


@pytest.fixture
def openstack_vm_emulator(sshd_backend: SshdBackend) -> Iterator[OpenStackEmulator]:
    """An emulated cloud whose servers are the local sshd (SSH port: sshd_host.port)."""
    emulator = OpenStackEmulator(backend=sshd_backend).start()
    try:
        yield emulator
    finally:
        emulator.stop()
    assert not emulator.errors, "the emulator failed:\n" + "\n".join(emulator.errors)
