"""The QEMU backend boots a real VM that a deployment can trust and use.

One boot (2-3 minutes under TCG): cloud-init from the NoCloud seed creates users with
the test's keys, the host keys read from the serial console are the only ones paramiko
accepts, Docker runs in the guest, an endpoint port answers on 127.0.0.1 with the same
number as in the guest, and delete() leaves no qemu and no overlay behind.
"""

from __future__ import annotations

import io
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import require
from tests.emulators.openstack.backends import Backend, BackendError, BackendServer, ServerRequest
from tests.emulators.openstack.qemu import (
    ACTIVE,
    BUILD,
    DELETED,
    ERROR,
    HOST,
    CapacityError,
    QemuBackend,
    QemuServer,
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


@pytest.mark.slow
def test_vm_boots_with_cloud_init_pinned_host_keys_and_docker(
    backend: QemuBackend, endpoint: int, tmp_path: Path
) -> None:
    user_key, user_pub = ed25519()
    nova_key, nova_pub = ed25519()  # the Nova keypair: meta-data public-keys, user debian
    user_data = f"""#cloud-config
users:
  - default
  - name: modelship
    groups: [docker]
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys: [{user_pub}]
ssh_pwauth: false
runcmd:
  - [systemctl, enable, --now, docker]
"""
    t0 = time.monotonic()
    server = backend.create(request(user_data, nova_pub))
    assert isinstance(server, QemuServer)
    assert server.host_port(22) == server.ssh_port and server.host_port(endpoint) == endpoint
    times: dict[str, float] = {}
    try:
        assert server.state() == BUILD
        times["sshd banner"] = server.wait_active(timeout=900)
        pid = server.pid
        assert pid is not None
        keys = server.wait_host_keys(timeout=600)
        times["host keys on console"] = time.monotonic() - t0
        assert keys and any(k.startswith("ssh-ed25519 ") for k in keys), keys
        assert server.state() == ACTIVE and server.fault() is None

        known = tmp_path / "known_hosts"
        known.write_text("".join(f"[{HOST}]:{server.ssh_port} {k}\n" for k in keys))
        client = connect(server.ssh_port, "modelship", user_key, known)
        seen = client.get_transport().get_remote_server_key()  # type: ignore[union-attr]
        assert f"{seen.get_name()} {seen.get_base64()}" in keys

        # a host key other than the console's is refused, and so is an unknown host
        other = tmp_path / "other_hosts"
        other.write_text(f"[{HOST}]:{server.ssh_port} {ed25519()[1]}\n")
        with pytest.raises(paramiko.BadHostKeyException):
            connect(server.ssh_port, "modelship", user_key, other)
        (empty := tmp_path / "empty_hosts").write_text("")
        with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
            connect(server.ssh_port, "modelship", user_key, empty)
        # a client key the user-data did not name is refused
        with pytest.raises(paramiko.AuthenticationException):
            connect(server.ssh_port, "modelship", nova_key, known)

        rc, out = run(client, "cloud-init status --wait --long")
        times["cloud-init done"] = time.monotonic() - t0
        assert rc == 0 and "status: done" in out, out
        # the Nova keypair went to the image's default user through the seed's meta-data
        connect(server.ssh_port, "debian", nova_key, known).close()
        rc, out = run(client, "hostname; cat /run/cloud-init/instance-data.json")
        assert rc == 0 and out.startswith("test-qemu-vm\n"), out
        assert SERVER_ID in out and "dep-7f3a" in out

        rc, out = run(client, "docker info --format '{{.ServerVersion}} {{.Driver}}'")
        assert rc == 0 and out.strip(), out
        docker = out.strip()

        # the endpoint port: same number in the guest and on the host's 127.0.0.1
        rc, out = run(
            client,
            f"mkdir -p /tmp/www && echo vm-endpoint > /tmp/www/index.html && "
            f"(nohup python3 -m http.server {endpoint} -d /tmp/www >/dev/null 2>&1 &)",
        )
        assert rc == 0, out
        body = b""
        for _ in range(60):
            try:
                body = urllib.request.urlopen(f"http://{HOST}:{endpoint}/", timeout=5).read()
                break
            except OSError:
                time.sleep(1)
        assert body == b"vm-endpoint\n"
        client.close()
        assert "SSH HOST KEY" in server.console_text(length=200)
    finally:
        t_delete = time.monotonic()
        backend.delete(SERVER_ID)  # returns at once; close() waits for the VM to stop
        backend.close()
        times["delete"] = time.monotonic() - t_delete

    assert server.status() == DELETED
    assert not server.directory.exists()
    assert server.process.returncode is not None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    assert b"qemu" not in cmdline
    assert not backend.servers
    print(f"\nVM timings (s): {times} | docker {docker}")
