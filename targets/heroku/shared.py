"""What the heroku modules share: resource kinds, Heroku's limits, a client for an
app (its account key checked first), what resources keep, and the config vars."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.domain import DeploymentRecord, Resource
from app.progress import Progress
from targets.common import API_KEY_ENV, CAPTURE_DIR_IN_CONTAINER, capture_env, endpoint_key_value
from targets.heroku import pricing
from targets.heroku.client import (
    HerokuClient,
    api_key,
    check_api_url,
)
from targets.heroku.settings import HerokuSettings

if TYPE_CHECKING:
    from app.store.profile import Profile


NAME = "heroku"
PROCESS = "web"  # the only process type that receives HTTP traffic


BOOT_LIMIT_S = 60.0  # Heroku's R10: $PORT bound within 60 s of launch


REQUEST_LIMIT_S = 30.0  # Heroku's H12: a response within 30 s


KIND_APP = "heroku_app"


KIND_CONFIG = "heroku_config_vars"


KIND_RELEASE = "heroku_release"


KINDS = {KIND_APP, KIND_CONFIG, KIND_RELEASE}


UNNAMED = "app-not-named"


def settings_of(profile: Profile) -> HerokuSettings:
    return profile.target.settings  # type: ignore[no-any-return]


def client(api_url: str, entry: str, progress: Progress | None = None) -> HerokuClient:
    """A client for ``api_url`` with the account key: refused before the key is read
    when ``api_url`` is neither Heroku's nor confirmed on this computer."""
    check_api_url(api_url)
    return HerokuClient(api_url, api_key(entry, api_url, progress))


def client_for(data: dict[str, Any], progress: Progress | None = None) -> HerokuClient:
    """The client for a resource's app (its ``api_url`` and account key entry)."""
    # records written before the rename keep the account key's entry as "api_key"
    entry = data.get("account_key") or data.get("api_key") or "heroku-api-key"
    return client(data["api_url"], str(entry), progress)


def resource_data(settings: HerokuSettings, app: str, **extra: Any) -> dict[str, Any]:
    """What every resource keeps to find its app again: never a secret (``account_key``
    is the keyring entry's name)."""
    return {"app": app, "api_url": settings.api_url, "account_key": settings.account_key, **extra}


def live(record: DeploymentRecord | None, kind: str, app: str) -> Resource | None:
    if record is None or record.target != "heroku":
        return None
    for r in record.resources():
        if r.kind == kind and r.data.get("app") == app:
            return r
    return None


def config_vars(settings: HerokuSettings) -> dict[str, str | None]:
    """What the server needs: its API key (None: remove it), ModelShip's settings for
    the dyno size (workers that fit its memory), and capture's (None while it is off).
    Captured requests stay on the dyno's own file system, which a restart empties."""
    workers = pricing.WORKERS.get(settings.dyno_size.lower(), 1)
    out: dict[str, str | None] = {
        API_KEY_ENV: endpoint_key_value(settings),
        "MODELSHIP_WORKERS": str(workers),
    }
    out.update(dict.fromkeys(CAPTURE_KEYS))
    out.update(capture_env(settings, CAPTURE_DIR_IN_CONTAINER))
    return out


CAPTURE_KEYS = ("MODELSHIP_CAPTURE_RATE", "MODELSHIP_CAPTURE_MAX_MB", "MODELSHIP_CAPTURE_DIR")
