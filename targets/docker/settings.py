"""Settings of the ``docker`` target (no SDK, no target code: see targets.settings)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from targets.settings import (
    SecretRef,
    TargetSettings,
    api_key_field,
    capture_max_mb_field,
    capture_rate_field,
    start_timeout_field,
)


class DockerSettings(TargetSettings):
    port: int = Field(
        8080, ge=1, le=65535, title="Port", description="Port on this computer to answer on."
    )
    bind_host: str = Field(
        "127.0.0.1",
        title="Listen address",
        description="Address the port is published on. 127.0.0.1 keeps it to this computer; "
        "0.0.0.0 exposes it to the network (choose that only on purpose).",
        json_schema_extra={"advanced": True},  # under "Show more settings"
    )
    restart_policy: Literal["no", "on-failure", "unless-stopped", "always"] = Field(
        "unless-stopped",
        title="Restart policy",
        description="Whether Docker restarts the container after a crash or a reboot.",
        json_schema_extra={"advanced": True},  # under "Show more settings"
    )
    memory_limit: str | None = Field(
        None,
        pattern=r"^[0-9]+[bkmgBKMG]?$",
        title="Memory limit",
        description="Most memory the container may use, e.g. 512m or 2g (empty: no limit).",
        json_schema_extra={"advanced": True},  # under "Show more settings"
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        title="Worker processes",
        description="Server processes in the container (empty: one per CPU it may use).",
        json_schema_extra={"advanced": True},  # under "Show more settings"
    )
    api_key: SecretRef | None = api_key_field(
        description="Keyring entry holding an API key clients must send (empty: no key)."
    )
    start_timeout: float = start_timeout_field(
        60.0,
        "Seconds to wait for the container to load the model and answer.",
        advanced=True,  # under "Show more settings"
    )
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()

    @field_validator("bind_host")
    @classmethod
    def _an_address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return v


__all__ = ["DockerSettings"]
