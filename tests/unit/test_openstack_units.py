"""The openstack target's pure parts: console host keys, chain IDs, trimmed save tars,
error translation, openrc parsing (no cloud, no SSH, no Docker)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from app.errors import CredentialError, TargetError
from targets.openstack.client import _parse_openrc, translate
from targets.openstack.vm import chain_ids, fingerprint, host_keys_from_console, trimmed_tar
from tests.emulators.openstack.backends import cloud_init_console

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_host_keys_come_only_from_the_marked_block() -> None:
    console = cloud_init_console("vm", [KEY + " root@vm"], 42.0)
    assert host_keys_from_console(console) == [KEY]
    assert host_keys_from_console(cloud_init_console("vm", None, 3.0)) == []
    # a key printed elsewhere on the console (e.g. by a user's script) is not trusted
    assert host_keys_from_console(f"{KEY}\nlogin:") == []


def test_fingerprint_is_openssh_sha256() -> None:
    blob = __import__("base64").b64decode(KEY.split()[1])
    expected = __import__("base64").b64encode(hashlib.sha256(blob).digest()).decode()
    assert fingerprint(KEY) == "SHA256:" + expected.rstrip("=")


def test_chain_ids_follow_dockers_definition() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    second = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, second]


def _save_tar(layers: list[bytes]) -> io.BytesIO:
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = [
        {
            "Config": "cfg.json",
            "RepoTags": ["x:1"],
            "Layers": [f"l{i}/layer.tar" for i in range(len(layers))],
        }
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files = [(f"l{i}/layer.tar", d) for i, d in enumerate(layers)]
        files += [("cfg.json", config), ("manifest.json", json.dumps(manifest).encode())]
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_trimmed_tar_leaves_out_the_layers_the_vm_has() -> None:
    layers = [b"base" * 1000, b"deps" * 1000, b"model"]
    diff_ids = ["sha256:" + hashlib.sha256(d).hexdigest() for d in layers]
    have = set(chain_ids(diff_ids[:2]))
    out = io.BytesIO()
    total, written = trimmed_tar(_save_tar(layers), have, out)
    assert (total, written) == (3, 1)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert sorted(tar.getnames()) == ["cfg.json", "l2/layer.tar", "manifest.json"]
    # a layer the VM has only on top of another base is not skipped (chains differ)
    out = io.BytesIO()
    assert trimmed_tar(_save_tar(layers), {diff_ids[1]}, out) == (3, 3)


class _Http(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status_code = status


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (_Http(401, "The request you have made requires authentication."), CredentialError,
         "refused the credentials"),
        (Exception("requires authentication. (HTTP 401)"), CredentialError, "credentials"),
        (_Http(403, "Quota exceeded for instances"), TargetError, "Over quota"),
        (_Http(413, "Quota exceeded for ram"), TargetError, "Over quota"),
        (_Http(404, "Image not found"), TargetError, "could not find"),
        (_Http(409, "Security group in use"), TargetError, "conflict"),
        (_Http(503, "Service Unavailable"), TargetError, "HTTP 503"),
    ],
)  # fmt: skip
def test_cloud_errors_become_errors_with_a_next_step(exc, kind, words) -> None:
    err = translate(exc, "creating the server")
    assert isinstance(err, kind) and words in err.message and err.hint


def test_openrc_values_and_prompts() -> None:
    env = _parse_openrc(
        "export OS_AUTH_URL=https://idm.bw-cloud.org:5000/v3\n"
        'export OS_USERNAME="a b"\n'
        "read -sr OS_PASSWORD_INPUT\n"
        'export OS_PASSWORD="$OS_PASSWORD_INPUT"\n'
        "export OS_REGION_NAME=Ulm\n"
    )
    assert env == {
        "OS_AUTH_URL": "https://idm.bw-cloud.org:5000/v3",
        "OS_USERNAME": "a b",
        "OS_REGION_NAME": "Ulm",
    }
