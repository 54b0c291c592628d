"""Conformance harness: the openstack target on the emulated cloud (sshd as the VM).

The cloud is the OpenStack emulator (real openstacksdk on the wire); its servers are
the local OpenSSH server, whose Docker is this machine's Engine. Region Karlsruhe with
the private network, so the floating-IP path runs too. ``leftovers(name)`` lists what
the emulator still holds, the deployment's containers/images/network/folder on the
"VM"'s Docker, and its keyring entries.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.harnesses.base import Harness

API_KEY_REF = "conformance/openstack-api-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openstack_profile(
    model: Path,
    name: str,
    base_image: str,
    ssh_port: int,
    *,
    cloud: str = "bwcloud-appcred",
    region: str = "Karlsruhe",
    network: str | None = "private",
    port: int | None = None,
    ssh_user: str = "root",
    **settings,
):
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 1,
            "name": name,
            "model": {"path": str(model)},
            "target": {
                "kind": "openstack",
                "settings": {
                    "cloud": cloud,
                    "region": region,
                    "network": network,
                    "flavor": "m1.small",
                    "image": "Debian 12",
                    "ssh_user": ssh_user,
                    "ssh_port": ssh_port,
                    "port": port or _free_port(),
                    "allowed_cidr": "127.0.0.0/8",
                    "api_key": API_KEY_REF,
                    "start_timeout": 120,
                    **settings,
                },
            },
            "image": {"base_image": base_image},
        }
    )


def vm_leftovers(docker_client, name: str) -> list[str]:
    """What of deployment ``name`` is on the "VM" (this machine's Docker and disk)."""
    from app.run import versions_dir
    from app.store.secrets import has_secret
    from targets.openstack.names import VM_ROOT, ssh_key_secret

    label = ["modelship.managed=true", f"modelship.deployment={name}"]
    out = [
        f"container {c.name}"
        for c in docker_client.containers.list(
            ignore_removed=True, all=True, filters={"label": label}
        )
    ]
    out += [f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)]
    out += [
        f"image tag {t}"
        for img in docker_client.images.list(name=f"modelship-vm/{name}")
        for t in img.tags
    ]
    out += [
        f"network {n.name}"
        for n in docker_client.networks.list(names=[f"modelship-{name}"])
        if n.name == f"modelship-{name}"
    ]
    if Path(f"{VM_ROOT}/{name}").exists():
        out.append(f"folder {VM_ROOT}/{name} on the VM")
    if versions_dir(name).exists():
        out.append(f"folder {versions_dir(name)}")
    if has_secret(ssh_key_secret(name)):
        out.append("SSH key in the keyring")
    return out


def cloud_leftovers(emulator) -> list[str]:
    return [
        f"{kind}: {item.get('name') or item.get('id')}"
        for kind, items in emulator.leftovers().items()
        for item in items
    ]


def vm_power(backend, docker_client):
    """What powering the "VM" off and on does to what runs on it: the Engine is shared
    with this computer, so the deployment's containers (by their label) stop at os-stop
    and, like ``--restart unless-stopped`` containers at a real VM's boot, start again
    at os-start."""

    def power(server_id: str, on: bool) -> None:
        request = backend.requests.get(server_id)
        name = (request.metadata if request else {}).get("modelship.deployment")
        if not name:
            return
        label = f"modelship.deployment={name}"
        for c in docker_client.containers.list(all=True, filters={"label": label}):
            if on and c.status != "running":
                c.start()
            elif not on and c.status in {"running", "restarting"}:
                c.stop(timeout=5)

    return power


@pytest.fixture
def harness_openstack(
    openstack_vm_emulator,
    sshd_backend,
    sshd_host,
    docker_client,
    base_image,
    memory_keyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    from app.store.secrets import set_secret

    emulator = openstack_vm_emulator
    use_clouds_yaml(emulator, tmp_path, monkeypatch)
    sshd_backend.on_power = vm_power(sshd_backend, docker_client)
    set_secret(API_KEY_REF, "conformance-key-0123456789")

    def profile(model: Path, name: str):
        # the key may have been removed by a teardown's keyring clean-up of another test
        set_secret(API_KEY_REF, "conformance-key-0123456789")
        return openstack_profile(model, name, base_image, sshd_host.port)

    def leftovers(name: str) -> list[str]:
        return cloud_leftovers(emulator) + vm_leftovers(docker_client, name)

    def fault(method: str, path: str, status: int, body=None):
        @contextlib.contextmanager
        def make() -> Iterator[None]:
            emulator.inject(method, path, status, body, times=1)
            try:
                yield
            finally:
                emulator.clear_faults()

        return make

    @contextlib.contextmanager
    def server_error() -> Iterator[None]:
        emulator.fail_next_servers()
        yield

    faults = {
        "keypair refused (500)": fault("POST", r"/os-keypairs$", 500),
        "security group over quota (403)": fault(
            "POST",
            r"/security-groups$",
            403,
            {
                "NeutronError": {
                    "type": "OverQuota",
                    "message": "Quota exceeded for resources: ['security_group'].",
                    "detail": "",
                }
            },
        ),
        "security group rule conflict (409)": fault("POST", r"/security-group-rules$", 409),
        "server over quota (403)": fault(
            "POST",
            r"/servers$",
            403,
            {
                "forbidden": {
                    "code": 403,
                    "message": "Quota exceeded for instances: Requested 1, "
                    "but already used 10 of 10 instances",
                }
            },
        ),
        "server goes to ERROR": server_error,
        "floating IP refused (500)": fault("POST", r"/floatingips$", 500),
        # (a 5xx on the console is retried while waiting; a refusal is not)
        "console output refused (403)": fault("POST", r"/servers/[^/]+/action$", 403),
    }
    os.environ.setdefault("MODELSHIP_TEST_BASE_IMAGE", base_image)
    yield Harness(
        kind="openstack", profile=profile, leftovers=leftovers, faults=faults, timeout=600
    )


def use_clouds_yaml(emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """clouds.yaml for an emulator, selected through OS_CLIENT_CONFIG_FILE."""
    from tests.emulators.openstack.fixtures import write_clouds_yaml

    written = write_clouds_yaml(emulator, tmp_path / "openstack")
    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(written.path))
    return written


__all__ = ["harness_openstack", "openstack_profile", "use_clouds_yaml", "vm_leftovers"]
