"""Which address the openstack target reaches a VM by, on clouds whose regions differ
(issue 22): bwCloud regions with no IPv4 ingress (a private IPv4 address behind SNAT and
a public IPv6 one) and regions without floating IPs.

The emulator's Mannheim region puts servers on a network with a private IPv4 subnet and
an IPv6 subnet, with no floating IPs; its servers get ``::1``, where the sshd stand-in
listens, and the "VM"'s Docker publishes the endpoint on ``[::]``. Freiburg has only a
provider network and no floating IPs. Each deploy reaches a smoke-tested HTTPS endpoint
(the pinned client over IPv6 and through a DNS name it cannot resolve) and tears down
clean.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from app.run import plan, run_deploy, teardown
from app.store.profile import Profile
from targets import get_target
from tests.conformance.harnesses.openstack import (
    API_KEY_REF,
    cloud_leftovers,
    openstack_profile,
    use_clouds_yaml,
    vm_leftovers,
)
from tests.conformance.test_conformance import _train

pytestmark = [pytest.mark.integration]

BOTH = "127.0.0.0/8, ::1/128"  # this computer over IPv4 and IPv6


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("openstack-addresses")
    return _train(folder / "clf.joblib", 5), _train(folder / "clf-b.joblib", 6)


@pytest.fixture
def cloud(openstack_vm_emulator, tmp_path, monkeypatch, memory_keyring):
    from app.store.secrets import set_secret
    from tests.emulators.openstack.sshd import ipv6_loopback

    assert ipv6_loopback(), "this machine's loopback has no ::1 (IPv6 tests need it)"
    use_clouds_yaml(openstack_vm_emulator, tmp_path, monkeypatch)
    set_secret(API_KEY_REF, "integration-key-0123456789")
    return openstack_vm_emulator


def _san(url_host: str, address: str, port: int) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the certificate served at ``address``:``port``."""
    from cryptography import x509

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=url_host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    ]


def _plan_words(profile: Profile) -> str:
    return "\n".join(f"{i.action} {i.kind} {i.name} {i.detail}" for i in plan(profile))


@pytest.mark.slow
def test_an_ipv6_only_region_is_reached_over_ipv6_by_its_name(
    cloud, sshd_host, docker_client, base_image, models
) -> None:
    """Mannheim: no floating IPs, private IPv4 only: the server's IPv6 address, SSH and
    HTTPS over ``::1``; the URL names ``endpoint_host``, which the certificate holds."""
    name = "os-v6"
    profile = openstack_profile(
        models[0],
        name,
        base_image,
        sshd_host.port,
        region="Mannheim",
        network="public-belwue",
        allowed_cidr=BOTH,
        endpoint_host="{server_id}.ma.bw-cloud-instance.org",
    )
    port = profile.target.settings.port
    words = _plan_words(profile)
    assert "reach address IPv6" in words and "no IPv4 ingress in Mannheim" in words, words
    assert "floating-IP quota in Mannheim is 0" in words, words
    try:
        v1 = run_deploy(profile)
        assert v1.smoke["passed"]
        listing = cloud.listing("Mannheim")
        assert listing["floating_ips"] == []
        [server] = listing["servers"]
        endpoint = v1.endpoint_obj()
        host = f"{server['id']}.ma.bw-cloud-instance.org"
        assert endpoint.url == f"https://{host}:{port}"
        assert endpoint.data["address"] == "::1" and endpoint.data["reached_by"] == "IPv6"
        srv = next(r for r in v1.resources() if r.kind == "server")
        assert srv.data["host"] == "::1"
        # the private IPv4 address is never used; the certificate names all that is used
        names, addresses = _san(host, "::1", port)
        assert host in names and "::1" in addresses and "10.0.0.10" not in addresses
        # rules for both ethertypes, each with its own range
        rules = {
            (r["ethertype"], r["port_range_min"], r["remote_ip_prefix"])
            for r in listing["security_group_rules"]
            if r["direction"] == "ingress"
        }
        assert rules == {
            (e, p, c)
            for e, c in (("IPv4", "127.0.0.0/8"), ("IPv6", "::1/128"))
            for p in (sshd_host.port, port)
        }
        # the pinned client: to [::1] by the name it cannot resolve, and by the address
        target = get_target("openstack")
        client = target.client(endpoint, profile)
        assert client.ping()
        from app.endpoint.client import EndpointClient

        by_address = EndpointClient(f"https://[::1]:{port}", tls_sha256=endpoint.tls_sha256)
        assert by_address.ping()
        # a redeploy reuses the VM, its name, address and certificate
        second = profile.model_copy(deep=True)
        second.model.path = models[1]
        v2 = run_deploy(second)
        assert v2.smoke["passed"] and v2.url == v1.url
        assert v2.endpoint_obj().tls_sha256 == endpoint.tls_sha256
        assert target.status(v2).running
    finally:
        teardown(name)
    assert cloud_leftovers(cloud) == []
    assert vm_leftovers(docker_client, name) == []


@pytest.mark.slow
def test_a_region_without_floating_ips_uses_the_public_ipv4_address(
    cloud, sshd_host, docker_client, base_image, models
) -> None:
    """Freiburg: Public address = always, but the region has no floating IPs: that is no
    error, the network's public IPv4 address serves (and the plan says so)."""
    name = "os-nofip"
    profile = openstack_profile(
        models[0],
        name,
        base_image,
        sshd_host.port,
        region="Freiburg",
        network=None,
        floating_ip="always",
    )
    port = profile.target.settings.port
    words = _plan_words(profile)
    assert "reach address public IPv4" in words and "no floating IP" in words, words
    try:
        v1 = run_deploy(profile)
        assert v1.smoke["passed"]
        assert cloud.listing("Freiburg")["floating_ips"] == []
        assert not any(r.kind == "floating_ip" for r in v1.resources())
        endpoint = v1.endpoint_obj()
        assert endpoint.url == f"https://127.0.0.1:{port}"
        assert endpoint.data["reached_by"] == "public IPv4"
        _, addresses = _san("127.0.0.1", "127.0.0.1", port)
        assert addresses == ["127.0.0.1"]
    finally:
        teardown(name)
    assert cloud_leftovers(cloud) == []
    assert vm_leftovers(docker_client, name) == []


def test_preflight_says_what_limits_a_region_in_plain_words(
    cloud, sshd_host, base_image, models
) -> None:
    """No reachable address at all, and an IPv6-only region with IPv4-only ranges: found
    before anything is created, each with what to do."""
    target = get_target("openstack")
    never = openstack_profile(
        models[0],
        "os-never",
        base_image,
        sshd_host.port,
        region="Karlsruhe",
        network="private",
        floating_ip="never",
    )
    [problem] = [p for p in target.check(never, None) if p.setting == "network"]
    assert "gives no address your computer can reach" in problem.message
    assert "private (behind NAT)" in problem.message and "floating" in problem.fix
    # network left empty: the shared project-side network, not the external one
    # (which Mannheim does not share with projects)
    v4_only = openstack_profile(
        models[0], "os-v4only", base_image, sshd_host.port, region="Mannheim", network=None
    )
    [problem] = [p for p in target.check(v4_only, None) if p.setting == "allowed_cidr"]
    assert "names only IPv4 ranges" in problem.message and "IPv6" in problem.fix
    assert cloud_leftovers(cloud) == []
