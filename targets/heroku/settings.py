"""Settings of the ``heroku`` target (no SDK, no target code: see targets.settings).

``account_key`` (your Heroku account's key) and ``api_key`` (the key callers of the
endpoint send, as on every target) name keyring entries. The Platform API and the
registry are settings with Heroku's defaults; another address (a compatible service, a
test double) is used only once confirmed on this computer (``modelship hosts allow``),
because the account key is sent there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from targets.settings import (
    KeyRequired,
    SecretRef,
    api_key_field,
    capture_max_mb_field,
    capture_rate_field,
    require_api_key_field,
    start_timeout_field,
)

if TYPE_CHECKING:  # pragma: no cover
    from app.store.trust import UntrustedHostError

# Heroku's documented addresses: the account key goes there without asking.
HEROKU_API_URL = "https://api.heroku.com"
HEROKU_REGISTRY = "registry.heroku.com"


def check_api_url(api_url: str) -> None:
    """Refuse an ``api_url`` that is neither Heroku's nor confirmed on this computer."""
    from app.store.trust import require_host

    require_host(
        api_url,
        setting="api_url",
        service="Heroku's Platform API",
        sends="your Heroku API key",
        documented=(HEROKU_API_URL,),
    )


def check_registry(registry: str) -> None:
    """Refuse a ``registry`` that is neither Heroku's nor confirmed on this computer."""
    from app.store.trust import require_host

    require_host(
        registry if "://" in registry else registry.split("/", 1)[0],
        setting="registry",
        service="Heroku's registry",
        sends="your Heroku API key (the registry login)",
        documented=(f"https://{HEROKU_REGISTRY}",),
    )


class HerokuSettings(KeyRequired):
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
    account_key: SecretRef = Field(
        "heroku-api-key",
        title="Heroku API key",
        description="Keyring entry of your Heroku API key (imported from ~/.netrc or "
        "HEROKU_API_KEY on first use).",
    )
    api_url: str = Field(
        HEROKU_API_URL,
        title="Platform API",
        description="Heroku's API address (another one must be confirmed on this computer).",
    )
    registry: str = Field(
        HEROKU_REGISTRY,
        title="Registry",
        description="Heroku's container registry (another one must be confirmed on this computer).",
    )
    api_key: SecretRef | None = api_key_field(
        "Endpoint API key",
        "Keyring entry of the key callers must send (Authorization: Bearer).",
    )
    require_api_key: bool = require_api_key_field(
        "Turn off only for an endpoint anyone on the internet may call."
    )
    start_timeout: float = start_timeout_field(300.0, "Seconds to wait for the release.")
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()

    open_to: ClassVar[str] = "anyone on the internet"

    def address_errors(self) -> list[UntrustedHostError]:
        from app.store.trust import UntrustedHostError

        out = []
        for check, value in ((check_api_url, self.api_url), (check_registry, self.registry)):
            try:
                check(value)
            except UntrustedHostError as exc:
                out.append(exc)
        return out


__all__ = ["HEROKU_API_URL", "HEROKU_REGISTRY", "HerokuSettings", "check_api_url", "check_registry"]
