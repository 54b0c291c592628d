"""Settings of the ``openstack`` target (no SDK, no target code: see targets.settings).

The cloud's own credentials are never here: ``cloud`` names an entry of the user's
``clouds.yaml`` (as the ``openstack`` command line uses it; ``OS_CLIENT_CONFIG_FILE``
and ``OS_*`` variables work too). Secrets found in an imported clouds.yaml or openrc
file move to the keyring.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from targets.settings import SecretRef, TargetSettings


class OpenStackSettings(TargetSettings):
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
        description="auto: a floating IP only when the network gives no public address.",
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
        description="Addresses allowed to reach the endpoint (and SSH), e.g. 132.230.0.0/16.",
    )
    api_key: SecretRef | None = Field(
        None,
        title="API key",
        description="Keyring entry holding the key callers must send (Authorization: Bearer).",
    )
    require_api_key: bool = Field(
        True,
        title="Require an API key",
        description="Turn off only for an endpoint anyone who can reach it may call.",
    )
    accept_host_key: str | None = Field(
        None,
        pattern=r"^SHA256:[A-Za-z0-9+/]{43}$",
        title="Accepted SSH host key",
        description="Only for images that print no host keys on the console: the VM's key "
        "fingerprint you checked (SHA256:...).",
    )
    start_timeout: float = Field(
        900.0,
        gt=0,
        le=7200,
        title="Start timeout",
        description="Seconds to wait for the VM to boot and the endpoint to answer.",
    )

    @field_validator("allowed_cidr")
    @classmethod
    def _a_network(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_network(v, strict=False))
        except ValueError:
            raise ValueError("must be an address range such as 0.0.0.0/0 or 10.1.0.0/16") from None

    @model_validator(mode="after")
    def _key_unless_off(self) -> OpenStackSettings:
        if self.require_api_key and not self.api_key:
            raise ValueError(
                "api_key must name a keyring entry (or set require_api_key = false to let "
                "anyone who can reach the VM call it)"
            )
        return self


__all__ = ["OpenStackSettings"]
