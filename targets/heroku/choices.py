"""What the wizard asks Heroku while the analyst fills in the form: where the API key
is, and whether an app name is free.

Plain functions, no Qt; the address is only ever the profile's ``api_url`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from targets.cost import Cost
from targets.heroku import client as hc
from targets.heroku import pricing

KeySource = Literal["keyring", "environment", "netrc", "none"]


def key_source(entry: str, api_url: str) -> tuple[KeySource, str]:
    """Where the Heroku API key would come from, and that place in words; never the key."""
    from app.errors import CredentialError

    try:
        _key, where = hc.find_api_key(entry, api_url)
    except CredentialError:
        return "none", ""
    if where == "keyring":
        return "keyring", "your system keyring"
    if where == "HEROKU_API_KEY":
        return "environment", "the HEROKU_API_KEY environment variable"
    return "netrc", where


AppState = Literal["free", "yours", "taken", "invalid", "unknown"]


@dataclass(frozen=True)
class AppCheck:
    name: str
    state: AppState
    words: str  # plain words for the form


def check_app_name(name: str, entry: str, api_url: str, timeout: float = 10.0) -> AppCheck:
    """Is the app name free (404), one of yours (200) or someone else's (403)?

    Raises CredentialError when there is no key or Heroku refuses it. Worker thread only.
    """
    import re

    from app.errors import TargetError

    if not re.match(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$", name or ""):
        return AppCheck(
            name,
            "invalid",
            "App names are 3 to 30 lower-case letters, digits and dashes, starting with a letter.",
        )
    key, _where = hc.find_api_key(entry, api_url)
    with hc.HerokuClient(api_url, key, timeout=timeout) as api:
        try:
            app = api.app(name)
        except hc.HerokuAPIError as exc:
            if exc.status == 403:
                return AppCheck(name, "taken", "Taken by someone else: choose another name.")
            raise
        except TargetError:
            raise
    if app is None:
        return AppCheck(name, "free", "Free: ModelShip will create this app.")
    return AppCheck(
        name, "yours", "Yours: ModelShip will deploy into this app and replace what runs there."
    )


def estimate(settings: Any) -> Cost:
    """What the dyno costs while it runs (from the dated table in ``pricing``)."""
    size = settings.dyno_size
    month = pricing.monthly(size)
    note = f"prices of {pricing.PRICES_AS_OF}; heroku.com/pricing has the current ones"
    if month is None:
        return Cost(None, None, pricing.cost(size).line() + ".", note)
    if size.lower() == "eco":
        return Cost(None, month, f"${month:.2f} per month for your account's Eco hours.", note)
    hour = month / pricing.HOURS_PER_MONTH
    return Cost(
        hour,
        month,
        f"${hour:.4f} per hour, ${month:.2f} per month at most ({size} dyno) while it runs.",
        note,
        f"One {size} dyno while it runs; Heroku bills by the second, at most ${month:.2f} a month.",
    )


DYNO_SIZES = list(pricing.DYNO_PRICES)


def dyno_choices() -> list[tuple[str, str]]:
    """(size, label with its price)."""
    return [
        (size, f"{size}: ${price:.0f} per month ({memory})")
        for size, (price, memory) in pricing.DYNO_PRICES.items()
    ]


__all__ = ["AppCheck", "Cost", "check_app_name", "dyno_choices", "estimate", "key_source"]
