"""Settings of the ``openstack`` target (no SDK, no target code: see targets.settings).

The cloud's own credentials are never here: ``cloud`` names an entry of the user's
``clouds.yaml`` (as the ``openstack`` command line uses it; ``OS_CLIENT_CONFIG_FILE``
and ``OS_*`` variables work too). Secrets found in an imported clouds.yaml or openrc
file move to the keyring.
"""

from __future__ import annotations

import ipaddress
import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from targets.settings import (
    KeyRequired,
    SecretRef,
    api_key_field,
    capture_max_mb_field,
    capture_rate_field,
    require_api_key_field,
    start_timeout_field,
)

HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)


class OpenStackSettings(KeyRequired):
    cloud: str = Field(
        "openstack",
        min_length=1,
        title="Cloud",
        description="The entry in your clouds.yaml (bwCloud's download names it 'openstack').",
    )
    region: str | None = Field(
        None, title="Region", description="e.g. Freiburg, Karlsruhe, Mannheim or Ulm on bwCloud."
    )
    image: str = Field("Debian 12", min_length=1, title="Image", description="The VM's system.")
    flavor: str = Field(
        "m1.small", min_length=1, title="Size (flavor)", description="CPUs and memory of the VM."
    )
    network: str | None = Field(
        None,
        title="Network",
        description="Network to attach the VM to (empty: the cloud's only or public one).",
    )
    floating_ip: Literal["auto", "always", "never"] = Field(
        "auto",
        title="Public address",
        description="auto: a floating IP only when the network gives no public IPv4 "
        "address; always: one wherever the region has them; never: the network's own "
        "public IPv4 or IPv6 address.",
    )
    endpoint_host: str | None = Field(
        None,
        title="Endpoint name",
        description="A DNS name for the endpoint, with {server_id}, {region} or {name} "
        "filled in, e.g. {server_id}.ma.bw-cloud-instance.org on bwCloud (Mannheim). It "
        "goes into the URL and the certificate.",
    )
    ssh_user: str = Field(
        "debian", min_length=1, title="SSH user", description="The image's login user."
    )
    ssh_port: int = Field(22, ge=1, le=65535, title="SSH port", description="Usually 22.")
    port: int = Field(
        443, ge=1, le=65535, title="Port", description="The HTTPS port the endpoint answers on."
    )
    allowed_cidr: str = Field(
        "0.0.0.0/0",
        title="Who may call it",
        description="Address ranges allowed to reach the endpoint (and SSH), comma-separated, "
        "e.g. 132.230.0.0/16, 2001:7c0::/32. 0.0.0.0/0 (anyone) opens IPv6 (::/0) too.",
    )
    api_key: SecretRef | None = api_key_field()
    require_api_key: bool = require_api_key_field(
        "Turn off only for an endpoint anyone who can reach it may call."
    )
    accept_host_key: str | None = Field(
        None,
        pattern=r"^SHA256:[A-Za-z0-9+/]{43}$",
        title="Accepted SSH host key",
        description="Only for images that print no host keys on the console: the VM's key "
        "fingerprint you checked (SHA256:...).",
    )
    start_timeout: float = start_timeout_field(
        900.0, "Seconds to wait for the VM to boot and the endpoint to answer.", le=7200
    )
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()

    open_to: ClassVar[str] = "anyone who can reach the VM"

    @field_validator("allowed_cidr")
    @classmethod
    def _a_network(cls, v: str) -> str:
        parts = [p.strip() for p in v.replace(";", ",").split(",") if p.strip()]
        try:
            if not parts:
                raise ValueError
            return ", ".join(str(ipaddress.ip_network(p, strict=False)) for p in parts)
        except ValueError:
            raise ValueError(
                "must be address ranges such as 0.0.0.0/0, 10.1.0.0/16 or 2001:db8::/32"
            ) from None

    @field_validator("endpoint_host")
    @classmethod
    def _a_host_template(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip().lower()
        try:
            sample = v.format(server_id="0" * 8, region="region", name="name")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "may use only {server_id}, {region} and {name}, e.g. "
                "{server_id}.ma.bw-cloud-instance.org"
            ) from None
        if not HOST.match(sample):
            raise ValueError("must be a DNS name such as {server_id}.ma.bw-cloud-instance.org")
        return v

    def cidrs(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The ranges of ``allowed_cidr``; the whole IPv4 internet brings ::/0 along
        (anyone means anyone, over either protocol)."""
        out = [ipaddress.ip_network(p.strip()) for p in self.allowed_cidr.split(",")]
        if any(n.version == 4 and n.prefixlen == 0 for n in out) and not any(
            n.version == 6 for n in out
        ):
            out.append(ipaddress.ip_network("::/0"))
        return out


# bwCloud names every instance <instance-uuid>.<region code>.bw-cloud-instance.org
# (wiki.bwcloud-os.de, Networks: "ma" for Mannheim; the dashboard's instance details
# show the name); its public addresses "cannot be guaranteed" to persist.
BWCLOUD_REGION_CODES = {"freiburg": "fr", "karlsruhe": "ka", "mannheim": "ma", "ulm": "ul"}


def endpoint_host_hint(region: str | None) -> str | None:
    """The ``endpoint_host`` template for a bwCloud region (None elsewhere)."""
    code = BWCLOUD_REGION_CODES.get((region or "").strip().lower())
    return f"{{server_id}}.{code}.bw-cloud-instance.org" if code else None


__all__ = ["BWCLOUD_REGION_CODES", "OpenStackSettings", "endpoint_host_hint"]
