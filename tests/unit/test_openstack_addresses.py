"""How the openstack target picks the address a VM is reached by, names the endpoint
and calls it (issue 22); decided from what the cloud reports, never from ranges."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from targets.openstack.cloud import Facts, choose
from targets.openstack.settings import OpenStackSettings, endpoint_host_hint
from targets.openstack.tls import VmEndpointClient, make_certificate


def _s(**kw) -> OpenStackSettings:
    return OpenStackSettings(require_api_key=False, **kw)


def _facts(public_v4=False, ipv6=False, floating=False, why="quota is 0") -> Facts:
    return Facts("net", "Mannheim", public_v4, ipv6, floating, "" if floating else why)


def test_floating_where_asked_and_available_else_public_ipv4_else_ipv6() -> None:
    assert choose(_s(), _facts(floating=True)).how == "floating IP"
    assert choose(_s(), _facts(public_v4=True, floating=True)).how == "public IPv4"
    assert choose(_s(floating_ip="always"), _facts(public_v4=True, floating=True)).how == (
        "floating IP"
    )
    # no floating IP here is no error when another address serves
    fallback = choose(_s(floating_ip="always"), _facts(public_v4=True))
    assert fallback.how == "public IPv4" and "no floating IP: quota is 0" in fallback.why
    v6 = choose(_s(), _facts(ipv6=True))
    assert v6.how == "IPv6" and "no IPv4 ingress in Mannheim" in v6.why
    assert choose(_s(floating_ip="never"), _facts(ipv6=True, floating=True)).how == "IPv6"
    none = choose(_s(), _facts())
    assert none.how is None and "no address your computer can reach" in none.why
    assert "floating" in none.fix


def test_allowed_ranges_of_both_families_and_the_endpoint_name_template() -> None:
    assert [str(c) for c in _s().cidrs()] == ["0.0.0.0/0", "::/0"]
    two = _s(allowed_cidr="132.230.0.0/16; 2001:7c0::/32")
    assert two.allowed_cidr == "132.230.0.0/16, 2001:7c0::/32"
    assert [c.version for c in two.cidrs()] == [4, 6]
    assert [str(c) for c in _s(allowed_cidr="10.1.0.0/16").cidrs()] == ["10.1.0.0/16"]
    with pytest.raises(ValidationError):
        _s(allowed_cidr="everyone")
    ok = _s(endpoint_host="{server_id}.MA.bw-cloud-instance.org")
    assert ok.endpoint_host == "{server_id}.ma.bw-cloud-instance.org"
    for bad in ("{uuid}.ma.bw-cloud-instance.org", "not a name", "{server_id}"):
        with pytest.raises(ValidationError):
            _s(endpoint_host=bad)
    assert endpoint_host_hint("Mannheim") == "{server_id}.ma.bw-cloud-instance.org"
    assert endpoint_host_hint("elsewhere") is None


def test_the_certificate_names_every_address_and_name() -> None:
    from cryptography import x509

    pem, _, _ = make_certificate(["::1", "127.0.0.1"], "demo", ["abc.ma.bw-cloud-instance.org"])
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "modelship-demo",
        "abc.ma.bw-cloud-instance.org",
    ]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["::1", "127.0.0.1"]


def test_the_client_connects_to_the_address_and_sends_the_name(tmp_path: Path) -> None:
    """A name that does not resolve: the client reaches [::1] and sends the name as SNI
    and Host; the pin is checked; a wrong pin is refused."""
    from tests.emulators.openstack.sshd import ipv6_loopback

    assert ipv6_loopback()
    name = "0f1e2d3c.ma.bw-cloud-instance.invalid"
    cert, key, fp = make_certificate("::1", "demo", [name])
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    seen: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["host"] = self.headers["Host"]
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = __import__("socket").AF_INET6

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    ctx.sni_callback = lambda sock, server_name, _ctx: seen.__setitem__("sni", server_name)
    server = Server(("::1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="tls-v6", daemon=True)
    thread.start()
    try:
        client = VmEndpointClient(f"https://{name}:{port}", tls_sha256=fp, connect_to="::1")
        assert client.ping()
        assert seen == {"sni": name, "host": f"{name}:{port}"}
        wrong = VmEndpointClient(f"https://{name}:{port}", tls_sha256="00" * 32, connect_to="::1")
        with pytest.raises(OSError):
            wrong.ping()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
