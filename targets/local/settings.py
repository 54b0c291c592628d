"""Settings of the ``local`` target (no SDK, no target code: see targets.settings)."""

from __future__ import annotations

from pydantic import Field

from targets.settings import (
    SecretRef,
    TargetSettings,
    api_key_field,
    capture_max_mb_field,
    capture_rate_field,
    start_timeout_field,
)


class LocalSettings(TargetSettings):
    port: int = Field(
        8080, ge=1, le=65535, title="Port", description="Port on 127.0.0.1 to answer on."
    )
    # rarely changed: the wizard shows these under "Show more settings"
    workers: int = Field(
        1,
        ge=1,
        le=64,
        title="Worker processes",
        description="Server processes to run.",
        json_schema_extra={"advanced": True},
    )
    api_key: SecretRef | None = api_key_field(
        "API key (keyring entry)",
        "Name of a keyring entry holding an API key that callers must send "
        "as 'Authorization: Bearer KEY'. Empty: no key needed.",
    )
    start_timeout: float = start_timeout_field(
        60.0, "Seconds to wait for the server to load the model and answer.", advanced=True
    )
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()


__all__ = ["LocalSettings"]
