"""Settings of the ``heroku`` target (no SDK, no target code: see targets.settings).

``api_key`` and ``endpoint_api_key`` name keyring entries. The Platform API and the
registry are settings with Heroku's defaults, so a compatible service (or a test double)
stands in without code changes.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from targets.settings import SecretRef, TargetSettings


class HerokuSettings(TargetSettings):
    app: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$",
        title="App name",
        description="Created when missing (empty: a free name is suggested).",
    )
    region: str = Field("eu", title="Region", description="us or eu (new apps only).")
    team: str | None = Field(None, title="Team", description="Create the app in this team.")
    dyno_size: str = Field(
        "basic", title="Dyno size", description="eco, basic, standard-1x, standard-2x, ..."
    )
    api_key: SecretRef = Field(
        "heroku-api-key",
        title="Heroku API key",
        description="Keyring entry of your Heroku API key (imported from ~/.netrc or "
        "HEROKU_API_KEY on first use).",
    )
    api_url: str = Field(
        "https://api.heroku.com", title="Platform API", description="Heroku's API address."
    )
    registry: str = Field(
        "registry.heroku.com", title="Registry", description="Heroku's container registry."
    )
    endpoint_api_key: SecretRef | None = Field(
        None,
        title="Endpoint API key",
        description="Keyring entry of the key callers must send (Authorization: Bearer).",
    )
    require_endpoint_api_key: bool = Field(
        True,
        title="Require an API key",
        description="Turn off only for an endpoint anyone on the internet may call.",
    )
    start_timeout: float = Field(
        300.0, gt=0, le=3600, title="Start timeout", description="Seconds to wait for the release."
    )

    @model_validator(mode="after")
    def _key_unless_off(self) -> HerokuSettings:
        if self.require_endpoint_api_key and not self.endpoint_api_key:
            raise ValueError(
                "endpoint_api_key must name a keyring entry (or set "
                "require_endpoint_api_key = false to let anyone on the internet call it)"
            )
        return self


__all__ = ["HerokuSettings"]
