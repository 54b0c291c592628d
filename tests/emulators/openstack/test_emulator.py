"""The OpenStack emulator, driven by the real openstacksdk through clouds.yaml only."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import openstack
import openstack.exceptions
import paramiko
import pytest
import requests
import yaml

from tests.emulators.openstack import NullBackend, OpenStackEmulator
from tests.emulators.openstack.fixtures import APP_CRED_CLOUD, PASSWORD_CLOUD, CloudsYaml

REPO = Path(__file__).resolve().parents[3]
HOST_KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
HOST_KEYS_END = "-----END SSH HOST KEY KEYS-----"


def connect(
    cloud: str = PASSWORD_CLOUD, region: str = "Karlsruhe"
) -> openstack.connection.Connection:
    return openstack.connect(cloud=cloud, region_name=region)


def ed25519_keypair() -> tuple[paramiko.Ed25519Key, str]:
    """A fresh ed25519 key (as the target makes one per deployment) and its public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    return key, f"{key.get_name()} {key.get_base64()} modelship"


def host_keys_from_console(console: str) -> list[tuple[str, str]]:
    """(type, base64) pairs between cloud-init's BEGIN/END SSH HOST KEY KEYS markers."""
    if HOST_KEYS_BEGIN not in console:
        return []
    block = console.split(HOST_KEYS_BEGIN, 1)[1].split(HOST_KEYS_END, 1)[0]
    return [tuple(line.split()[:2]) for line in block.strip().splitlines() if line.strip()]


def wait_for_console_keys(conn, server_id: str, timeout: float = 10) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = host_keys_from_console(conn.get_server_console(server_id) or "")
        if keys:
            return keys
        time.sleep(0.1)
    raise AssertionError("no host keys on the console")


def create_server(conn, name: str, network: str, **kwargs):
    return conn.create_server(
        name,
        image="Debian 12",
        flavor="m1.small",
        network=network,
        wait=True,
        auto_ip=True,
        timeout=30,
        **kwargs,
    )


# -- Keystone ------------------------------------------------------------------------------


def test_password_auth_gives_a_catalog_per_region(clouds_yaml: CloudsYaml, openstack_emulator):
    for region in ("Freiburg", "Karlsruhe"):
        conn = connect(PASSWORD_CLOUD, region)
        conn.authorize()
        endpoint = conn.compute.get_endpoint()
        assert f"/{region.lower()}/compute/v2.1" in endpoint
        assert conn.network.get_endpoint().startswith(openstack_emulator.url)
        assert conn.image.find_image("Debian 12").name == "Debian 12"
        assert conn.compute.find_flavor("m1.tiny").ram == 1024
    assert openstack_emulator.requests("POST", r"/identity/v3/auth/tokens$")[0].status == 201


def test_application_credential_auth_by_id_and_by_name(clouds_yaml, openstack_emulator):
    conn = connect(APP_CRED_CLOUD, "Freiburg")
    assert conn.image.find_image("Ubuntu 24.04") is not None
    c = openstack_emulator.creds
    by_name = openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": openstack_emulator.auth_url,
            "application_credential_name": c.application_credential_name,
            "application_credential_secret": c.application_credential_secret,
            "username": c.username,
            "user_domain_name": c.user_domain_name,
        },
        region_name="Karlsruhe",
    )
    assert by_name.compute.find_flavor("m1.small") is not None
    methods = [t["methods"] for t in openstack_emulator.tokens.values()]
    assert methods == [["application_credential"], ["application_credential"]]


@pytest.mark.parametrize("cloud", [PASSWORD_CLOUD, APP_CRED_CLOUD])
def test_bad_credentials_are_refused_with_401(clouds_yaml: CloudsYaml, openstack_emulator, cloud):
    config = yaml.safe_load(clouds_yaml.path.read_text())
    auth = config["clouds"][cloud]["auth"]
    secret = "password" if "password" in auth else "application_credential_secret"
    auth[secret] = "wrong"
    clouds_yaml.path.write_text(yaml.safe_dump(config))
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        connect(cloud).authorize()
    assert [c.status for c in openstack_emulator.requests("POST", "auth/tokens")] == [401]


def test_service_calls_need_a_valid_token(openstack_emulator):
    url = f"{openstack_emulator.url}/karlsruhe/compute/v2.1/servers/detail"
    assert requests.get(url, timeout=5).status_code == 401
    bad = requests.get(url, headers={"X-Auth-Token": "nope"}, timeout=5)
    assert bad.status_code == 401 and "unauthorized" in bad.json()
    network = f"{openstack_emulator.url}/karlsruhe/network/v2.0/networks"
    assert requests.get(network, timeout=5).status_code == 401
    # version documents need no token (keystoneauth discovers before authenticating)
    assert requests.get(f"{openstack_emulator.url}/karlsruhe/network/", timeout=5).ok


# -- Nova: keypairs, flavors, limits -------------------------------------------------------


def test_keypairs_create_get_conflict_delete(clouds_yaml):
    conn = connect()
    _, public = ed25519_keypair()
    kp = conn.compute.create_keypair(name="churn", public_key=public)
    assert kp.fingerprint and kp.public_key == public
    assert conn.compute.get_keypair("churn").name == "churn"
    with pytest.raises(openstack.exceptions.ConflictException, match="already exists"):
        conn.compute.create_keypair(name="churn", public_key=public)
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.compute.create_keypair(name="bad", public_key="ssh-ed25519 not-base64!")
    assert [k.name for k in conn.compute.keypairs()] == ["churn"]
    conn.compute.delete_keypair("churn")
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_keypair("churn")
    assert conn.compute.find_keypair("churn") is None


def test_unknown_flavor_image_network_are_not_found(clouds_yaml):
    conn = connect()
    assert conn.compute.find_flavor("m9.huge") is None
    assert conn.image.find_image("Windows 11") is None
    assert conn.network.find_network("nope") is None
    with pytest.raises(openstack.exceptions.ResourceNotFound):
        conn.compute.get_server("00000000-0000-0000-0000-000000000000")


# -- Neutron -------------------------------------------------------------------------------


def test_networks_as_on_bwcloud(clouds_yaml):
    freiburg, karlsruhe = connect(region="Freiburg"), connect(region="Karlsruhe")
    assert [n.name for n in freiburg.network.networks()] == ["public-belwue"]
    ext = karlsruhe.network.find_network("public-belwue")
    assert ext.is_router_external and ext.is_shared
    assert {n.name for n in karlsruhe.network.networks()} == {"public-belwue", "private"}
    assert [r.name for r in karlsruhe.network.routers()] == ["router"]
    assert list(freiburg.network.routers()) == []


def test_default_security_group_opens_only_ssh(clouds_yaml):
    conn = connect()
    default = conn.get_security_group("default")
    ingress = [r for r in default.security_group_rules if r["direction"] == "ingress"]
    opened = [(r["port_range_min"], r["remote_ip_prefix"]) for r in ingress if r["protocol"]]
    assert opened == [(22, "0.0.0.0/0")]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_security_group(default.id)


def test_security_group_rules_tags_conflicts(clouds_yaml, openstack_emulator):
    conn = connect()
    sg = conn.create_security_group("churn", "ModelShip deployment churn")
    conn.network.set_tags(sg, ["modelship", "deployment=churn"])
    rule = conn.create_security_group_rule(
        sg.id,
        port_range_min=8443,
        port_range_max=8443,
        protocol="tcp",
        remote_ip_prefix="192.0.2.0/24",
    )
    assert rule.port_range_min == 8443
    with pytest.raises(openstack.exceptions.ConflictException, match="already exists"):
        conn.create_security_group_rule(
            sg.id,
            port_range_min=8443,
            port_range_max=8443,
            protocol="tcp",
            remote_ip_prefix="192.0.2.0/24",
        )
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.create_security_group_rule(
            sg.id, port_range_min=9000, port_range_max=8000, protocol="tcp"
        )
    found = list(conn.network.security_groups(tags="deployment=churn"))
    assert [g.id for g in found] == [sg.id]
    listed = openstack_emulator.listing("Karlsruhe")
    assert [g["name"] for g in listed["security_groups"]] == ["churn"]
    assert len(listed["security_group_rules"]) == 3  # two default egress rules + ours
    conn.delete_security_group(sg.id)
    assert openstack_emulator.leftovers() == {}


# -- servers -------------------------------------------------------------------------------


def test_server_on_the_provider_network_gets_no_floating_ip(clouds_yaml, openstack_emulator):
    conn = connect(region="Freiburg")
    _, public = ed25519_keypair()
    conn.compute.create_keypair(name="churn", public_key=public)
    user_data = "#cloud-config\npackages: [docker.io]\n"
    server = create_server(
        conn,
        "churn",
        "public-belwue",
        key_name="churn",
        userdata=user_data,
        meta={"modelship": "churn"},
    )
    assert server.status == "ACTIVE"
    assert server.public_v4 == "127.0.0.1"
    assert server.addresses["public-belwue"][0]["OS-EXT-IPS:type"] == "fixed"
    assert list(conn.network.ips()) == []
    assert not openstack_emulator.requests("POST", "floatingips")
    assert openstack_emulator.user_data("churn") == user_data.encode()
    assert conn.compute.get_server_metadata(server.id).metadata == {"modelship": "churn"}
    # the request sequence the SDK uses for names: 404 by id, then a filtered list
    statuses = [(c.method, c.status) for c in openstack_emulator.requests(path_regex="flavors")]
    assert statuses[:2] == [("GET", 404), ("GET", 200)]


def test_server_on_a_private_network_gets_a_floating_ip(clouds_yaml, openstack_emulator):
    conn = connect(region="Karlsruhe")
    server = create_server(conn, "churn", "private")
    fips = list(conn.network.ips())
    assert len(fips) == 1 and fips[0].floating_ip_address == "127.0.0.1"
    assert fips[0].port_id in [p.id for p in conn.network.ports(device_id=server.id)]
    # create_server returns Nova's record after the attach; the cloud layer's
    # get_server works out the public address from it
    assert conn.get_server(server.id).public_v4 == "127.0.0.1"
    kinds = {a["OS-EXT-IPS:type"] for a in server.addresses["private"]}
    assert kinds == {"fixed", "floating"}
    conn.delete_server(server.id, wait=True, delete_ips=True)
    assert openstack_emulator.leftovers() == {}


def test_auto_network_is_ambiguous_with_two_networks(clouds_yaml):
    conn = connect(region="Karlsruhe")
    with pytest.raises(openstack.exceptions.ConflictException, match="Multiple possible"):
        conn.create_server("x", image="Debian 12", flavor="m1.small", wait=False)


def test_server_stop_and_start_as_nova_does(clouds_yaml):
    """os-stop/os-start: 202, SHUTOFF (vm_state stopped, power_state 4) with the
    addresses kept; starting an active server or stopping a stopped one is a 409."""
    import openstack.exceptions

    conn = connect(region="Freiburg")
    server = create_server(conn, "sleepy", "public-belwue")
    with pytest.raises(openstack.exceptions.ConflictException, match="vm_state active"):
        conn.compute.start_server(server.id)
    conn.compute.stop_server(server.id)
    stopped = conn.compute.get_server(server.id)
    assert (stopped.status, stopped.vm_state, stopped.power_state) == ("SHUTOFF", "stopped", 4)
    assert stopped.addresses["public-belwue"]
    with pytest.raises(openstack.exceptions.ConflictException, match="vm_state stopped"):
        conn.compute.stop_server(server.id)
    conn.compute.start_server(server.id)
    again = conn.compute.get_server(server.id)
    assert (again.status, again.vm_state, again.power_state) == ("ACTIVE", "active", 1)


def test_server_tags_and_lookup_by_tag(clouds_yaml):
    conn = connect(region="Freiburg")
    server = create_server(conn, "churn", "public-belwue")
    conn.compute.get_server(server.id).add_tag(conn.compute, "modelship:churn")
    found = list(conn.compute.servers(tags="modelship:churn"))
    assert [s.id for s in found] == [server.id]
    assert conn.compute.get_server(server.id).tags == ["modelship:churn"]
    assert list(conn.compute.servers(tags="other")) == []


def test_build_then_active_and_console_after_a_delay():
    with OpenStackEmulator(backend=NullBackend(boot_delay=0.6, console_delay=1.2)) as cloud:
        conn = openstack.connect(
            auth=cloud.cloud_config()["auth"], region_name="Freiburg", identity_api_version=3
        )
        net = conn.network.find_network("public-belwue")
        server = conn.compute.create_server(
            name="slow",
            image_id=conn.image.find_image("Debian 12").id,
            flavor_id=conn.compute.find_flavor("m1.tiny").id,
            networks=[{"uuid": net.id}],
        )
        assert conn.compute.get_server(server.id).status == "BUILD"
        with pytest.raises(openstack.exceptions.ConflictException):
            conn.compute.get_server_console_output(server.id)
        time.sleep(0.7)
        assert conn.compute.get_server(server.id).status == "ACTIVE"
        assert HOST_KEYS_BEGIN not in conn.get_server_console(server.id)
        time.sleep(0.6)
        assert HOST_KEYS_BEGIN in conn.get_server_console(server.id)
        conn.compute.delete_server(server.id)
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn.compute.get_server(server.id)


def test_server_error_shows_the_fault(clouds_yaml, openstack_emulator):
    openstack_emulator.fail_next_servers("No valid host was found.")
    conn = connect(region="Freiburg")
    with pytest.raises(openstack.exceptions.SDKException, match="No valid host was found"):
        create_server(conn, "churn", "public-belwue")
    server = conn.compute.find_server("churn")
    assert server.status == "ERROR" and server.fault["message"] == "No valid host was found."


# -- quotas --------------------------------------------------------------------------------


def test_quotas_limits_and_over_quota(clouds_yaml, openstack_emulator):
    openstack_emulator.set_compute_quota("Freiburg", instances=1, cores=1, ram=2048)
    conn = connect(region="Freiburg")
    limits = conn.get_compute_limits()
    assert (limits.max_total_instances, limits.total_instances_used) == (1, 0)
    assert (limits.max_total_cores, limits.max_total_ram_size) == (1, 2048)
    project = openstack_emulator.creds.project_id
    quotas = conn.get_compute_quotas(project)
    assert quotas.instances == 1
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Quota exceeded for cores"):
        conn.create_server("big", image="Debian 12", flavor="m1.medium", network="public-belwue")
    create_server(conn, "one", "public-belwue")
    with pytest.raises(
        openstack.exceptions.ForbiddenException, match="Quota exceeded for instances"
    ):
        create_server(conn, "two", "public-belwue")
    assert conn.get_compute_limits().total_instances_used == 1
    network_quota = conn.network.get_quota(project, details=True)
    assert network_quota.floating_ips["limit"] == 0  # Freiburg: no floating IPs
    ext = conn.network.find_network("public-belwue")
    with pytest.raises(openstack.exceptions.ConflictException, match="Quota exceeded"):
        conn.network.create_ip(floating_network_id=ext.id)


# -- fault injection -----------------------------------------------------------------------


def test_injected_faults_make_the_sdk_raise(clouds_yaml, openstack_emulator):
    conn = connect(region="Freiburg")
    openstack_emulator.inject("POST", r"/compute/v2.1/servers$", 500)
    with pytest.raises(openstack.exceptions.HttpException) as failure:
        create_server(conn, "churn", "public-belwue")
    assert failure.value.status_code == 500
    assert openstack_emulator.leftovers() == {}
    openstack_emulator.inject(
        "POST",
        r"/v2.0/security-groups$",
        409,
        body={"NeutronError": {"type": "Conflict", "message": "injected", "detail": ""}},
    )
    with pytest.raises(openstack.exceptions.ConflictException, match="injected"):
        conn.create_security_group("churn", "x")
    conn.create_security_group("churn", "x")  # times=1: the next call passes
    openstack_emulator.inject("*", r"/identity/v3/auth/tokens", 503, times=None)
    with pytest.raises(openstack.exceptions.SDKException, match="503"):
        connect(region="Freiburg").authorize()
    openstack_emulator.clear_faults()
    connect(region="Freiburg").authorize()
    assert [c.status for c in openstack_emulator.requests() if c.injected][:2] == [500, 409]


def test_control_api_over_http(clouds_yaml, openstack_emulator):
    base = f"{openstack_emulator.url}/__emulator__"
    r = requests.post(
        f"{base}/inject",
        json={"method": "GET", "path_regex": "/v2/images", "status": 500},
        timeout=5,
    )
    assert r.status_code == 201
    conn = connect(region="Freiburg")
    with pytest.raises(openstack.exceptions.HttpException):
        conn.image.find_image("Debian 12")
    requests.post(
        f"{base}/quotas", json={"region": "Freiburg", "compute": {"instances": 0}}, timeout=5
    )
    with pytest.raises(openstack.exceptions.ForbiddenException):
        create_server(conn, "churn", "public-belwue")
    assert requests.get(f"{base}/listing", timeout=5).json()["servers"] == []
    assert requests.get(f"{base}/requests", timeout=5).json()["calls"]


# -- teardown ------------------------------------------------------------------------------


def test_teardown_leaves_nothing(clouds_yaml, openstack_emulator):
    conn = connect(region="Karlsruhe")
    _, public = ed25519_keypair()
    conn.compute.create_keypair(name="churn", public_key=public)
    sg = conn.create_security_group("churn", "x")
    conn.create_security_group_rule(sg.id, 22, 22, "tcp", "0.0.0.0/0")
    server = create_server(conn, "churn", "private", key_name="churn", security_groups=["churn"])
    assert set(openstack_emulator.leftovers()) == {
        "servers",
        "keypairs",
        "security_groups",
        "security_group_rules",
        "floating_ips",
        "ports",
    }
    with pytest.raises(openstack.exceptions.ConflictException, match="in use"):
        conn.network.delete_security_group(sg.id)
    conn.delete_server(server.id, wait=True, delete_ips=False)
    assert [f["port_id"] for f in openstack_emulator.listing()["floating_ips"]] == [None]
    for fip in conn.network.ips():
        conn.network.delete_ip(fip)
    conn.delete_security_group(sg.id)
    conn.compute.delete_keypair("churn")
    assert openstack_emulator.leftovers() == {}


# -- out of process ------------------------------------------------------------------------


def test_runs_as_a_process(tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.openstack", "--clouds-yaml", str(clouds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        conn = connect(APP_CRED_CLOUD, "Karlsruhe")
        assert conn.compute.find_flavor("m1.small") is not None
        requests.post(
            f"{info['url']}/__emulator__/inject",
            json={"method": "GET", "path_regex": "flavors", "status": 500},
            timeout=5,
        )
        with pytest.raises(openstack.exceptions.HttpException):
            conn.compute.find_flavor("m1.tiny")
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        process.stdout.close()


# -- SSH into the "VM" (the local sshd) ----------------------------------------------------


def ssh_connect(host_keys: list[tuple[str, str]], port: int, key, user: str = "root"):
    client = paramiko.SSHClient()
    for kind, blob in host_keys:
        client.get_host_keys().add(
            f"[127.0.0.1]:{port}",
            kind,
            paramiko.PKey.from_type_string(kind, base64.b64decode(blob)),
        )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=port,
        username=user,
        pkey=key,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def current_user() -> str:
    import getpass

    return getpass.getuser()


@pytest.mark.integration
def test_ssh_login_with_host_keys_from_the_console(
    openstack_vm_emulator, sshd_backend, tmp_path, monkeypatch
):
    from tests.emulators.openstack.fixtures import write_clouds_yaml

    written = write_clouds_yaml(openstack_vm_emulator, tmp_path)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(written.path))
    conn = connect(region="Karlsruhe")
    key, public = ed25519_keypair()
    conn.compute.create_keypair(name="churn", public_key=public)
    server = create_server(conn, "churn", "private", key_name="churn")
    assert conn.get_server(server.id).public_v4 == "127.0.0.1"
    keys = wait_for_console_keys(conn, server.id)
    assert {k for k, _ in keys} == {"ssh-ed25519", "ecdsa-sha2-nistp256"}
    port = sshd_backend.ssh_port
    with ssh_connect(keys, port, key, current_user()) as client:
        _, stdout, _ = client.exec_command("echo ready")
        assert stdout.read().strip() == b"ready"
    # a different pinned key is refused (a man in the middle, or a rebuilt VM)
    other = paramiko.Ed25519Key.from_private_key(io.StringIO(_another_private_key()))
    with pytest.raises(paramiko.BadHostKeyException):
        ssh_connect([(other.get_name(), other.get_base64())], port, key, current_user())
    # no key known at all: RejectPolicy refuses too
    with pytest.raises(paramiko.SSHException):
        ssh_connect([], port, key, current_user())
    conn.delete_server(server.id, wait=True, delete_ips=True)
    assert sshd_backend.sshd.authorized() == {}
    with pytest.raises(paramiko.AuthenticationException):
        ssh_connect(keys, port, key, current_user())
    conn.compute.delete_keypair("churn")
    assert openstack_vm_emulator.leftovers() == {}


def _another_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
