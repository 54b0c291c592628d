"""The QEMU backend: what can be checked without a boot.

A real boot is proven once, end to end, by the OpenStack target's real-VM test
(tests/integration/test_openstack_target.py: VM -> cloud-init -> pinned host keys ->
docker load -> HTTPS smoke test -> teardown); a second boot here only doubled CI's
slowest minutes. Here: a port QEMU cannot forward is a server fault, and nothing is
left behind.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import require
from tests.emulators.openstack.backends import Backend, BackendError, BackendServer, ServerRequest
from tests.emulators.openstack.qemu import (
    BUILD,
    ERROR,
    HOST,
    CapacityError,
    QemuBackend,
    free_port,
    missing,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

SERVER_ID = "3f1c2a9e-0000-4000-8000-000000000011"


def ed25519() -> tuple[paramiko.Ed25519Key, str]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), public.decode()


def connect(port: int, user: str, key: paramiko.PKey, known_hosts: Path) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        HOST, port=port, username=user, pkey=key,
        allow_agent=False, look_for_keys=False, timeout=20, banner_timeout=60, auth_timeout=60,
    )  # fmt: skip
    return client


def run(client: paramiko.SSHClient, command: str, timeout: float = 600) -> tuple[int, str]:
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
    return stdout.channel.recv_exit_status(), out


def request(user_data: str | None, public_key: str | None = None) -> ServerRequest:
    return ServerRequest(
        server_id=SERVER_ID, name="test_qemu vm",
        user_data=user_data.encode() if user_data is not None else None,
        public_key=public_key, image_name="debian-12", flavor={"ram": 1024, "vcpus": 1},
        metadata={"deployment": "dep-7f3a"},
    )  # fmt: skip


@pytest.fixture
def vm_ready() -> None:
    lacking = missing()
    require(not lacking, "a QEMU VM (" + ", ".join(lacking) + "; .ci/vm.sh builds the image)")


@pytest.fixture
def endpoint() -> int:
    return free_port()


@pytest.fixture
def backend(vm_ready: None, endpoint: int) -> Iterator[QemuBackend]:
    backend = QemuBackend(ports=[endpoint])
    yield backend
    backend.close()
    assert not backend.servers


def test_a_port_qemu_cannot_forward_is_a_fault_and_leaves_nothing(
    backend: QemuBackend, endpoint: int
) -> None:
    assert isinstance(backend, Backend)
    with socket.socket() as taken:
        taken.bind((HOST, endpoint))
        taken.listen()
        server = backend.create(request("#cloud-config\n{}\n"))
        assert isinstance(server, BackendServer)
        assert server.state() == BUILD  # create returns before qemu runs
        deadline = time.monotonic() + 60
        while server.state() == BUILD and time.monotonic() < deadline:
            time.sleep(0.2)
    assert server.state() == ERROR
    assert f"{endpoint}" in (server.fault() or ""), server.fault()
    backend.delete(SERVER_ID)
    backend.close()
    assert not server.directory.exists()
    assert server.pid is None or not Path(f"/proc/{server.pid}").exists()

    with pytest.raises(CapacityError):
        QemuBackend(max_servers=0).create(request(None))
    assert issubclass(CapacityError, BackendError)
