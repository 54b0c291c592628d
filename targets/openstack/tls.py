"""TLS for the VM's endpoint: the deployment's self-made certificate (pinned by the
client) and the client that connects to the recorded address while naming the host."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
from typing import Any

from app.endpoint.client import EndpointClient


def make_certificate(
    address: str | list[str], deployment: str, names: list[str] | None = None
) -> tuple[bytes, bytes, str]:
    """(cert PEM, key PEM, SHA-256 fingerprint) of a self-made certificate for the VM.

    The client pins the fingerprint, so no CA is involved; the SAN names every address
    (IPv4, IPv6, floating) and DNS name (``endpoint_host``) the endpoint is reached by
    anyway, so tools that check names (curl --pinnedpubkey) work too.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"modelship-{deployment}"[:64])])
    sans: list[x509.GeneralName] = [x509.DNSName(f"modelship-{deployment}"[:63])]
    sans += [x509.DNSName(n) for n in dict.fromkeys(names or [])]
    for a in dict.fromkeys([address] if isinstance(address, str) else address):
        with contextlib.suppress(ValueError):
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    from app.endpoint.client import fingerprint

    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        fingerprint(der),
    )


class VmEndpointClient(EndpointClient):
    """Connects to ``connect_to`` (the address the deploy reached and smoke-tested)
    while the URL names the endpoint: the name goes into SNI and Host, the pinned
    certificate is checked as always. If the address refuses, the name is looked up
    (bwCloud: an instance's public address may change; its name stays)."""

    def __init__(self, url: str, *, connect_to: str | None = None, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.connect_to = connect_to

    def _connection(self, timeout: float) -> tuple[Any, bool]:
        conn, absolute = super()._connection(timeout)
        address = self.connect_to
        if not address or address == self._host or not isinstance(conn, _https_type()):
            return conn, absolute
        if getattr(conn, "_tunnel_host", None):  # through a proxy: the proxy resolves
            return conn, absolute
        return _addressed_https(self._host, self._port, address, conn), absolute


def _https_type() -> type:
    import http.client

    return http.client.HTTPSConnection


def _addressed_https(host: str, port: int, address: str, template: Any) -> Any:
    """An HTTPSConnection to ``host`` (SNI, Host header) whose socket goes to
    ``address`` first, then to ``host`` by DNS if the address does not answer."""
    import http.client
    import socket

    class Addressed(http.client.HTTPSConnection):
        def connect(self) -> None:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
            except OSError:
                sock = socket.create_connection((self.host, self.port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    return Addressed(host, port, timeout=template.timeout, context=template._context)
