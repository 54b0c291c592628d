"""Before a deploy: the addresses the key would go to, the account, the app's name
and stack, rate limit, dyno size and timings (``check``), warnings and the plan."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from app.domain import DeploymentRecord
from app.errors import CredentialError, TargetError
from app.nextstep import rename, run_command, say, set_secret
from targets.base import PlanItem, Problem
from targets.heroku import pricing
from targets.heroku.client import (
    LOW_RATE_LIMIT,
    HerokuAPIError,
    HerokuClient,
    check_api_url,
    find_api_key,
)
from targets.heroku.errors import ERROR_CODES
from targets.heroku.settings import HerokuSettings
from targets.heroku.shared import (
    BOOT_LIMIT_S,
    KIND_CONFIG,
    KIND_RELEASE,
    NAME,
    PROCESS,
    REQUEST_LIMIT_S,
    live,
    settings_of,
)

if TYPE_CHECKING:
    from app.store.profile import Profile


def suggest_name(deployment: str) -> str:
    """An app name made from the deployment's: Heroku's rules (lower case, 3-30)."""
    base = re.sub(r"[^a-z0-9-]+", "-", deployment.lower()).strip("-")
    base = re.sub(r"-+", "-", base)
    if not base or not base[0].isalpha():
        base = "ms-" + base
    return base[:30].rstrip("-").ljust(3, "0")


def host_problems(settings: HerokuSettings) -> list[Problem]:
    """The addresses the account key would go to that are neither Heroku's nor
    confirmed on this computer (checked before any traffic)."""
    return [
        Problem(exc.message, exc.hint or "", "setting", exc.setting)
        for exc in settings.address_errors()
    ]


def check(profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
    s = settings_of(profile)
    # first, before any traffic: the addresses the account key would go to
    hosts = host_problems(s)
    if hosts:
        return hosts
    problems: list[Problem] = []
    if s.api_key:
        from app.store.secrets import has_secret

        if not has_secret(s.api_key):
            problems.append(
                Problem(
                    f"The keyring has no endpoint API key named {s.api_key!r}.",
                    say(
                        "Store the key callers will send: ",
                        set_secret(s.api_key, form="or_wizard"),
                        ".",
                    ),
                    kind="credential",
                    setting="api_key",
                )
            )
    try:
        key, _ = find_api_key(s.account_key, s.api_url)
    except CredentialError as exc:
        return [Problem(exc.message, exc.hint or "", "credential", "account_key"), *problems]
    with HerokuClient(s.api_url, key, timeout=20) as api:
        try:
            api.account()
        except CredentialError as exc:
            return [
                Problem(exc.message, exc.hint or "", "credential", "account_key"),
                *problems,
            ]
        except TargetError as exc:
            return [Problem(exc.message, exc.hint or "", "environment", "api_url"), *problems]
        problems += app_problems(api, profile, previous)
        left = api.rate_limit_remaining
        if left is not None and left < LOW_RATE_LIMIT:
            problems.append(
                Problem(
                    f"Only {left} Heroku API calls are left this hour; a deploy needs a few dozen.",
                    "Wait a few minutes (Heroku refills the limit gradually).",
                    kind="quota",
                )
            )
    if s.dyno_size.lower() not in pricing.DYNO_PRICES:
        problems.append(
            Problem(
                f"Unknown dyno size {s.dyno_size!r}.",
                f"Choose one of: {', '.join(pricing.DYNO_PRICES)} (dyno_size).",
                kind="setting",
                setting="dyno_size",
            )
        )
    problems += timing_problems(previous)
    return problems


def app_problems(
    api: HerokuClient, profile: Profile, previous: DeploymentRecord | None
) -> list[Problem]:
    s = settings_of(profile)
    if not s.app:
        name = free_name(api, profile.name)
        return [
            Problem(
                "The profile names no Heroku app; ModelShip needs the name to find the "
                "app again on the next deploy, status and teardown.",
                f'Name the app: {name} is free now (the "App name" setting; app = '
                f'"{name}" under [target.settings] in a profile), or give an app of yours '
                "on the container stack.",
                kind="setting",
                setting="app",
            )
        ]
    old = live(previous, KIND_RELEASE, s.app) or live(previous, KIND_CONFIG, s.app)
    if previous is not None and previous.target == NAME and old is None:
        running = (previous.endpoint or {}).get("data", {}).get("app")
        return [
            Problem(
                f"{profile.name!r} runs on Heroku app {running!r}; deploying it to "
                f"{s.app!r} would leave that app running (and billed).",
                say(
                    "Tear it down first (",
                    run_command("teardown", profile.name, quote=""),
                    "), or deploy under another ",
                    rename(),
                    ".",
                ),
                kind="setting",
                setting="app",
            )
        ]
    try:
        app = api.app(s.app)
    except HerokuAPIError as exc:
        if exc.status == 403:
            return [
                Problem(
                    f"The app name {s.app!r} belongs to another Heroku account.",
                    f'Choose another name (app = "{free_name(api, profile.name)}").',
                    kind="setting",
                    setting="app",
                )
            ]
        return [Problem(exc.message, exc.hint or "", "environment")]
    if app is not None and (app.get("stack") or {}).get("name") != "container":
        stack = (app.get("stack") or {}).get("name")
        return [
            Problem(
                f"The app {s.app!r} runs on the {stack} stack; images run only on the "
                "container stack.",
                f"Switch it (heroku stack:set container -a {s.app}) or name another app.",
                kind="setting",
                setting="app",
            )
        ]
    return []


def free_name(api: HerokuClient, deployment: str) -> str:
    base = suggest_name(f"modelship-{deployment}")
    for i in range(20):
        name = base if i == 0 else f"{base[:26].rstrip('-')}-{i + 1}"
        try:
            if api.app(name) is None:
                return name
        except TargetError:
            continue
    return base


def timing_problems(previous: DeploymentRecord | None) -> list[Problem]:
    """Heroku's 60 s boot and 30 s request limits, from what the last deploy measured
    (the conversion proof records no timings; a first deploy measures them)."""
    if previous is None or previous.target != NAME:
        return []
    boot = ((previous.endpoint or {}).get("data") or {}).get("boot_seconds")
    slowest = (previous.smoke or {}).get("latency_ms_max")
    out = []
    if isinstance(boot, int | float) and boot > BOOT_LIMIT_S * 0.75:
        out.append(
            Problem(
                f"The last release took {boot:.0f} s to start; Heroku stops a server that "
                f"does not listen within {BOOT_LIMIT_S:.0f} s (R10).",
                ERROR_CODES["R10"][1],
                kind="environment",
                setting="dyno_size",
            )
        )
    if isinstance(slowest, int | float) and slowest > REQUEST_LIMIT_S * 1000 * 0.5:
        out.append(
            Problem(
                f"The sample took {slowest / 1000:.1f} s to answer; Heroku ends requests "
                f"after {REQUEST_LIMIT_S:.0f} s (H12).",
                ERROR_CODES["H12"][1],
                kind="environment",
                setting="dyno_size",
            )
        )
    return out


def warnings(profile: Profile) -> list[str]:
    s = settings_of(profile)
    out = []
    if not s.api_key:
        out.append(
            f"The Heroku app {s.app or ''} will answer anyone on the internet: no "
            "endpoint API key (api_key) is set."
        )
    return out


def plan(profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
    s = settings_of(profile)
    app = s.app or "(name it: app = ...)"
    exists: bool | None = None
    if live(previous, KIND_RELEASE, app) or live(previous, KIND_CONFIG, app):
        exists = True
    elif s.app:
        exists = _exists(s)
    where = f"stack container, region {s.region}" + (f", team {s.team}" if s.team else "")
    if exists is None:
        items = [PlanItem("create", "Heroku app", app, where + "; reused if it is yours")]
    else:
        items = [PlanItem("reuse" if exists else "create", "Heroku app", app, where)]
    names = ["MODELSHIP_API_KEY (the endpoint's key)"] if s.api_key else []
    names.append("MODELSHIP_WORKERS")
    if s.capture_rate > 0:
        names.append(f"MODELSHIP_CAPTURE_* (capture {s.capture_rate:g} of the requests)")
    items.append(PlanItem("set", "config vars", app, ", ".join(names)))
    items.append(
        PlanItem(
            "release",
            "web dyno",
            f"{app} {PROCESS}.1",
            f"1 x {s.dyno_size} ({pricing.DYNO_PRICES.get(s.dyno_size.lower(), ('', '?'))[1]})",
            cost=pricing.cost(s.dyno_size),
        )
    )
    url = (
        f"https://{app}.herokuapp.com"
        if s.api_url.rstrip("/") == "https://api.heroku.com"
        else "the app's web_url"
    )
    items.append(PlanItem("serve", "endpoint", url, "bearer key" if s.api_key else ""))
    return items


def _exists(s: HerokuSettings) -> bool | None:
    """Whether the app exists; None when Heroku cannot say now (a plan is words)."""
    try:
        check_api_url(s.api_url)
        key = find_api_key(s.account_key, s.api_url)[0]
        with HerokuClient(s.api_url, key, timeout=10) as api:
            return api.app(str(s.app)) is not None
    except Exception:
        return None
