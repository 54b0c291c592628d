"""The openstack target beyond the conformance suite, on the emulated cloud.

The cloud is the OpenStack emulator (the real openstacksdk on the wire); its servers
are the local OpenSSH server with this machine's Docker Engine as the VM's Docker.
`modelship deploy PROFILE` (the CLI's own code, in this process so the in-memory
keyring holds the keys) reaching a smoke-tested HTTPS endpoint whose certificate is
pinned; a provider-network region (no floating IP) and a floating-IP region; a changed
host key refused; quota problems explained before anything is created; the layer-aware
transfer measured; credentials imported into the keyring. One end-to-end test boots a
real VM (QEMU, cloud-init, Docker) behind the emulator.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import socket
import ssl
import time
from pathlib import Path

import pytest

from app.cli import main
from app.run import run_deploy, teardown
from app.store.profile import Profile, save_profile
from targets import get_target
from tests.conformance.harnesses.openstack import (
    API_KEY_REF,
    cloud_leftovers,
    openstack_profile,
    use_clouds_yaml,
    vm_leftovers,
)
from tests.conformance.test_conformance import _train  # the same small classifier

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("openstack-models")
    return _train(folder / "clf.joblib", 3), _train(folder / "clf-b.joblib", 4)


@pytest.fixture
def cloud(openstack_vm_emulator, tmp_path, monkeypatch, memory_keyring):
    from app.store.secrets import set_secret

    use_clouds_yaml(openstack_vm_emulator, tmp_path, monkeypatch)
    set_secret(API_KEY_REF, "integration-key-0123456789")
    return openstack_vm_emulator


def _served_fingerprint(url: str) -> str:
    from app.endpoint.client import fingerprint

    host, port = url.split("//")[1].rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=10) as sock,
        ctx.wrap_socket(sock) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return fingerprint(der)


@pytest.mark.slow
def test_cli_deploy_reaches_a_pinned_https_endpoint_on_the_provider_network(
    cloud, sshd_host, docker_client, base_image, models, capsys
) -> None:
    """Freiburg: the server sits on public-belwue, so no floating IP is made."""
    name = "os-cli"
    profile = openstack_profile(
        models[0], name, base_image, sshd_host.port, region="Freiburg", network=None
    )
    save_profile(profile)
    port = profile.target.settings.port
    try:
        code = main(["deploy", name])
        out, err = capsys.readouterr()
        assert code == 0, err
        url = f"https://127.0.0.1:{port}"
        assert url in out
        listing = cloud.listing("Freiburg")
        assert listing["floating_ips"] == []
        [server] = listing["servers"]
        assert server["metadata"]["modelship.deployment"] == name
        # only SSH and the endpoint port, only from allowed_cidr
        rules = {
            (r["port_range_min"], r["remote_ip_prefix"])
            for r in listing["security_group_rules"]
            if r["direction"] == "ingress"
        }
        assert rules == {(sshd_host.port, "127.0.0.0/8"), (port, "127.0.0.0/8")}
        assert b"docker" in (cloud.user_data(server["id"], "Freiburg") or b"")
        # the certificate served is the one pinned in the record
        from app.store.records import load_record

        record = load_record(name)
        endpoint = record.endpoint_obj()
        assert endpoint.url == url and endpoint.tls_sha256
        assert _served_fingerprint(url) == endpoint.tls_sha256
        # the key is needed; the smoke test ran over HTTPS through the pinned client
        import urllib.error
        import urllib.request

        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/predict", data=b"{}", timeout=10, context=insecure)
        assert refused.value.code == 401
        # a client pinning another fingerprint refuses the endpoint
        from app.endpoint.client import EndpointClient

        with pytest.raises(OSError):
            EndpointClient(url, tls_sha256="00" * 32).ping()
        assert main(["status", name, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert "ACTIVE" in json.dumps(status)
        assert main(["logs", name]) == 0
        # the API key sits in a file only the container's user can read, never in env
        inspect = docker_client.api.inspect_container(f"modelship-{name}-v1")
        env = " ".join(inspect["Config"]["Env"])
        assert "integration-key" not in env and "MODELSHIP_API_KEY_FILE" in env
        assert any(m["Destination"] == "/run/modelship" and not m["RW"] for m in inspect["Mounts"])
    finally:
        assert main(["teardown", name]) == 0
    assert cloud_leftovers(cloud) == []
    assert vm_leftovers(docker_client, name) == []


def _layers_new_in(docker_client, v1, v2) -> int:
    """How many of v2's layer stacks v1's image does not have."""
    from targets.openstack.vm import chain_ids

    def chains(record) -> list[str]:
        image = docker_client.images.get(record.version().image["id"])
        return chain_ids(image.attrs["RootFS"]["Layers"])

    old = set(chains(v1))
    return len([c for c in chains(v2) if c not in old])


@pytest.mark.slow
def test_floating_ip_region_redeploy_ships_only_the_model_layer_and_a_changed_key_is_refused(
    cloud, sshd_host, docker_client, base_image, models
) -> None:
    """Karlsruhe's private network: a floating IP (127.0.0.1) is made and removed."""
    from app.errors import TargetError
    from app.store.records import load_record

    name = "os-fip"
    first = openstack_profile(models[0], name, base_image, sshd_host.port)
    try:
        v1 = run_deploy(first)
        [fip] = cloud.listing("Karlsruhe")["floating_ips"]
        assert fip["floating_ip_address"] == "127.0.0.1"
        assert any(r.kind == "floating_ip" for r in v1.resources())
        second = first.model_copy(deep=True)
        second.model.path = models[1]
        started = time.monotonic()
        v2 = run_deploy(second)
        redeploy_s = time.monotonic() - started
        [shipped] = [r for r in v2.version(2).resource_objects() if r.kind == "vm_image"]
        sent = shipped.data["shipment"]
        # Only the layers v1 lacks are sent: the model layer when the build reused its
        # layer cache. (Other test sessions on a shared Engine may drop that cache between
        # the two builds; then the rebuilt dependency layers differ and go too.)
        new_layers = _layers_new_in(docker_client, v1, v2)
        assert 1 <= sent["layers_sent"] <= new_layers < sent["layers_total"], sent
        if new_layers == 1:
            assert sent["bytes_sent"] < 1_000_000, sent
        print(f"\nmodel-only redeploy (sshd VM): {sent} total {redeploy_s:.1f} s")
        # same VM, same URL, same certificate
        assert v2.url == v1.url and v2.endpoint_obj().tls_sha256 == v1.endpoint_obj().tls_sha256
        assert len(cloud.listing("Karlsruhe")["servers"]) == 1
        # a changed host key: the pinned one is replaced by another key -> refused
        record = load_record(name)
        server = next(r for r in record.endpoint["resources"] if r["kind"] == "server")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        other = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        server["data"]["host_keys"] = [other]
        from app.domain import DeploymentRecord

        tampered = DeploymentRecord.from_dict(record.to_dict())
        with pytest.raises(TargetError, match="host key"):
            get_target("openstack").logs(tampered)
    finally:
        teardown(name)
    assert cloud_leftovers(cloud) == []
    assert vm_leftovers(docker_client, name) == []


def test_quota_problems_are_explained_before_anything_is_created(
    cloud, sshd_host, base_image, models, capsys
) -> None:
    name = "os-quota"
    cloud.set_compute_quota(ram=1024, instances=1)
    cloud.set_network_quota("Karlsruhe", floatingip=0)
    profile = openstack_profile(models[0], name, base_image, sshd_host.port)
    problems = get_target("openstack").check(profile, None)
    text = " ".join(str(p) for p in problems)
    assert any(p.kind == "quota" for p in problems)
    assert "MB of memory" in text and "floating IP" in text and "public-belwue" in text
    save_profile(profile)
    assert main(["deploy", name]) == 7
    err = capsys.readouterr().err
    assert "quota" in err.lower()
    assert cloud_leftovers(cloud) == []


def test_names_that_do_not_exist_get_close_suggestions(
    cloud, sshd_host, base_image, models
) -> None:
    profile = openstack_profile(
        models[0], "os-names", base_image, sshd_host.port, image="Debian12", flavor="m1.smal"
    )
    text = " ".join(str(p) for p in get_target("openstack").check(profile, None))
    assert "'Debian 12'" in text and "'m1.small'" in text


def test_wrong_credentials_are_a_credential_problem(cloud, sshd_host, base_image, models) -> None:
    import yaml

    path = Path(os.environ["OS_CLIENT_CONFIG_FILE"])
    data = yaml.safe_load(path.read_text())
    data["clouds"]["bwcloud-appcred"]["auth"]["application_credential_secret"] = "wrong"
    path.write_text(yaml.safe_dump(data))
    profile = openstack_profile(models[0], "os-auth", base_image, sshd_host.port)
    [problem] = [p for p in get_target("openstack").check(profile, None) if p.setting == "cloud"]
    assert problem.kind == "credential" and "application credential" in problem.fix


def test_a_downloaded_clouds_yaml_and_openrc_move_their_secrets_to_the_keyring(
    openstack_emulator, tmp_path, monkeypatch, memory_keyring
) -> None:
    import yaml

    from app.store.secrets import get_secret
    from targets.openstack.client import connect, import_credentials

    for key in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    download = tmp_path / "clouds.yaml"
    entry = openstack_emulator.cloud_config("application_credential", "Freiburg")
    download.write_text(yaml.safe_dump({"clouds": {"openstack": entry}}))
    target = tmp_path / "config" / "clouds.yaml"
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(target))
    done = import_credentials(download)
    secret = openstack_emulator.creds.application_credential_secret
    assert done.cloud == "openstack" and done.clouds_yaml == target
    assert secret not in target.read_text()
    assert get_secret(done.secrets[0]) == secret
    conn = connect("openstack", "Freiburg")  # the secret comes back from the keyring
    conn.close()
    # an openrc file (password asked at `source` time) plus the password given here
    rc = tmp_path / "analyst-openrc.sh"
    c = openstack_emulator.creds
    rc.write_text(
        "#!/usr/bin/env bash\n"
        f"export OS_AUTH_URL={openstack_emulator.auth_url}\n"
        f"export OS_USERNAME={shlex.quote(c.username)}\n"
        'echo "Please enter your OpenStack Password: "\n'
        "read -sr OS_PASSWORD_INPUT\n"
        'export OS_PASSWORD="$OS_PASSWORD_INPUT"\n'
        f"export OS_PROJECT_NAME={c.project_name}\n"
        f"export OS_PROJECT_ID={c.project_id}\n"
        "export OS_USER_DOMAIN_NAME=Default\n"
        "export OS_PROJECT_DOMAIN_ID=default\n"
        "export OS_REGION_NAME=Karlsruhe\n"
        "export OS_INTERFACE=public\n"
        "export OS_IDENTITY_API_VERSION=3\n"
    )
    done = import_credentials(rc, cloud="bwcloud-rc", secret=c.password)
    assert c.password not in target.read_text() and done.region == "Karlsruhe"
    conn = connect("bwcloud-rc", "Karlsruhe")
    conn.close()


def test_layer_aware_load_skips_layers_the_engine_has(
    sshd_host, docker_client, base_image, tmp_path, memory_keyring
) -> None:
    """moby's `docker load` never reads a layer whose chain exists: a tar without those
    layer files loads. Two images share all but their last layer; the second is removed
    and comes back from a tar that holds only its last layer."""
    import docker.errors
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from targets.openstack.vm import Ssh, remote_chains, ship_image

    tags = []
    for i in (1, 2):
        folder = tmp_path / f"ctx{i}"
        folder.mkdir()
        (folder / "model.bin").write_bytes(bytes([i]) * 300_000)
        (folder / "Dockerfile").write_text(
            f"FROM {base_image}\nCOPY model.bin /m\nLABEL modelship.test=layer-aware\n"
        )
        tag = f"modelship-layertest:{i}"
        docker_client.images.build(path=str(folder), tag=tag, rm=True)
        tags.append(tag)
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    sshd_host.authorize("layer-test", public)
    second = docker_client.images.get(tags[1])
    saved = io.BytesIO()
    for chunk in second.save(named=True):
        saved.write(chunk)
    try:
        ssh = Ssh(
            "127.0.0.1", sshd_host.port, "root", private,
            [k.public_line for k in sshd_host.host_keys],
        )  # fmt: skip
        with ssh:
            docker_client.images.remove(tags[1], force=True)
            with pytest.raises(docker.errors.ImageNotFound):
                docker_client.images.get(second.id)
            assert remote_chains(ssh)  # the base and the first image are there

            class Engine:  # ship_image saves from this; the image is gone from the Engine
                class images:
                    @staticmethod
                    def get(_ref):
                        class Saved:
                            def save(self, named=True):
                                yield saved.getvalue()

                        return Saved()

            shipment = ship_image(ssh, Engine, second.id, tags[1], tags[1])
        assert shipment.layers_sent == 1 < shipment.layers_total
        assert shipment.bytes_sent < 100_000  # 300 kB of one repeated byte, gzipped
        assert docker_client.images.get(tags[1]).id == second.id  # loaded back
    finally:
        sshd_host.revoke("layer-test")
        for tag in tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag, force=True)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_real_vm_end_to_end(tmp_path, monkeypatch, docker_client, base_image, models) -> None:
    """model -> a real Debian VM (QEMU, cloud-init, Docker) -> HTTPS smoke test -> teardown."""
    from tests.conftest import require
    from tests.emulators.openstack.emulator import OpenStackEmulator
    from tests.emulators.openstack.qemu import QemuBackend, free_port, missing

    require(not missing(), f"the cached VM image and QEMU ({', '.join(missing())})")
    from app.store.secrets import set_secret

    port, ssh_port = free_port(), free_port()
    backend = QemuBackend(ports=[port], ssh_port=ssh_port)
    emulator = OpenStackEmulator(backend=backend).start()
    name = "os-realvm"
    try:
        use_clouds_yaml(emulator, tmp_path, monkeypatch)
        set_secret(API_KEY_REF, "real-vm-key-0123456789")
        profile = openstack_profile(
            models[0], name, base_image, ssh_port, region="Freiburg", network=None,
            port=port, ssh_user="debian", start_timeout=900,
        )  # fmt: skip
        started = time.monotonic()
        record = run_deploy(profile)
        first_s = time.monotonic() - started
        assert record.smoke and record.smoke["passed"]
        assert record.url == f"https://127.0.0.1:{port}"
        assert _served_fingerprint(record.url) == record.endpoint_obj().tls_sha256
        [shipped] = [r for r in record.version(1).resource_objects() if r.kind == "vm_image"]
        print(f"\nreal VM first deploy: {first_s:.0f} s, {shipped.data['shipment']}")
        second = profile.model_copy(deep=True)
        second.model.path = models[1]
        started = time.monotonic()
        v2 = run_deploy(second)
        redeploy_s = time.monotonic() - started
        [shipped] = [r for r in v2.version(2).resource_objects() if r.kind == "vm_image"]
        print(f"real VM model-only redeploy: {redeploy_s:.1f} s, {shipped.data['shipment']}")
        assert shipped.data["shipment"]["bytes_sent"] < 1_000_000
        client = get_target("openstack").client(
            v2.endpoint_obj(), Profile.model_validate(v2.profile)
        )
        assert client.ping()
    finally:
        try:
            from app.errors import UsageError

            with contextlib.suppress(UsageError):  # a failed deploy rolled back already
                teardown(name)
        finally:
            leftovers = emulator.leftovers()
            emulator.stop()
            backend.close()
    assert leftovers == {}
