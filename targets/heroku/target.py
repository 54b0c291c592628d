"""The ``heroku`` target: the serving image as a Heroku app on the container stack.

The flow is the Heroku CLI's own (``container:push`` / ``container:release``): the app
must exist before its registry takes a push, so :meth:`HerokuTarget.prepare` creates it
(stack ``container``) in the pipeline's push step; the pipeline pushes
``REGISTRY/APP/web`` (Docker manifest v2 schema 2, verified by
:class:`targets.registry.V2Registry`); :meth:`HerokuTarget.deploy` sets the config vars
and releases the image by its config digest with ``PATCH /apps/APP/formation`` under
the ``3.docker-releases`` variant, then waits for the release and the web dyno.

What ModelShip owns, and so removes: the app only if it created it (journaled before
the create, with the new app's id once known, so an app of the same name that is not
ours is never deleted); otherwise only the config vars it added and the web formation
(scaled to 0). A redeploy is a new release: Heroku starts the new dyno and swaps when it
is up, so the endpoint keeps answering. A failed redeploy releases the previous image
again. The profile must name the app (``app``): re-runs and teardown find it by that
name; preflight suggests a free one when it is empty.

The endpoint's own API key reaches the server as the ``MODELSHIP_API_KEY`` config var:
that is Heroku's only way to hand a secret to a dyno.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, PushedImage, Resource, now_iso
from app.errors import CredentialError, TargetError
from app.nextstep import rename, run_command, say, set_secret
from app.progress import NullProgress, Progress, long_wait
from app.waiting import WaitFailed, wait_until
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus
from targets.heroku import pricing
from targets.heroku.client import (
    LOW_RATE_LIMIT,
    HerokuAPIError,
    HerokuClient,
    api_key,
    check_api_url,
    check_registry,
    find_api_key,
)
from targets.heroku.kind import KIND, RELEASE
from targets.heroku.settings import HerokuSettings
from targets.kind import Kind
from targets.registry import V2Registry

if TYPE_CHECKING:
    from app.profile import Profile

PROCESS = "web"  # the only process type that receives HTTP traffic
BOOT_LIMIT_S = 60.0  # Heroku's R10: $PORT bound within 60 s of launch
REQUEST_LIMIT_S = 30.0  # Heroku's H12: a response within 30 s
KIND_APP = "heroku_app"
KIND_CONFIG = "heroku_config_vars"
KIND_RELEASE = "heroku_release"
KINDS = {KIND_APP, KIND_CONFIG, KIND_RELEASE}
UNNAMED = "app-not-named"

# Heroku's error codes (devcenter.heroku.com/articles/error-codes) in plain words, with
# the next step for a ModelShip deployment.
ERROR_CODES: dict[str, tuple[str, str]] = {
    "R10": (
        "Boot timeout: the server did not listen on $PORT within 60 seconds of starting",
        "A large model loads slowly: serve the int8 model (quantize = true) or choose a "
        "larger dyno (dyno_size = standard-2x); `modelship serve MODEL` shows how long it "
        "takes to start on this computer.",
    ),
    "R14": (
        "Memory quota exceeded: the dyno used more memory than its size allows",
        "Choose a dyno with more memory (dyno_size = standard-2x or performance-m), or "
        "serve the int8 model (quantize = true).",
    ),
    "R15": (
        "Memory quota vastly exceeded: Heroku killed the dyno",
        "Choose a dyno with more memory (dyno_size), or serve the int8 model.",
    ),
    "R12": (
        "Exit timeout: the server did not stop within 30 seconds of SIGTERM",
        "Deploy again; if it happens again, send `modelship logs NAME` with a bug report.",
    ),
    "H10": (
        "App crashed: the web process exited, so Heroku has nothing to send requests to",
        "Read the server's last log lines (`modelship logs NAME`); `modelship serve MODEL` "
        "reproduces it on this computer.",
    ),
    "H12": (
        "Request timeout: a request took longer than 30 seconds",
        "Send fewer rows per request, or choose a larger dyno (dyno_size).",
    ),
    "H13": (
        "Connection closed without response: the server dropped a request",
        "Read the log (`modelship logs NAME`); the server may be running out of memory.",
    ),
    "H14": (
        "No web dynos running",
        "Deploy again; ModelShip releases one web dyno.",
    ),
    "H20": (
        "App boot timeout: the router gave up waiting for the dyno to start",
        "Serve the int8 model or choose a larger dyno (dyno_size).",
    ),
}
_CODE = re.compile(r"(?:Error (R\d\d)\b|code=(H\d\d)\b)")


def explain(lines: list[str]) -> tuple[str, str, str] | None:
    """(code, what it means, next step) of the last Heroku error code in log lines."""
    for line in reversed(lines):
        match = _CODE.search(line)
        if match:
            code = match.group(1) or match.group(2)
            if code in ERROR_CODES:
                return code, *ERROR_CODES[code]
            return code, f"Heroku error {code}", "See devcenter.heroku.com/articles/error-codes."
    return None


def suggest_name(deployment: str) -> str:
    """An app name made from the deployment's: Heroku's rules (lower case, 3-30)."""
    base = re.sub(r"[^a-z0-9-]+", "-", deployment.lower()).strip("-")
    base = re.sub(r"-+", "-", base)
    if not base or not base[0].isalpha():
        base = "ms-" + base
    return base[:30].rstrip("-").ljust(3, "0")


# ---- the registry -------------------------------------------------------------------------


class HerokuRegistry(V2Registry):
    """Heroku's registry for one app (``REGISTRY/APP/web``).

    Images go with the app: once the app is deleted there is nothing left to remove (and
    the registry refuses any call for an app that does not exist).
    """

    def __init__(self, repository: str, *, app: str, api: Callable[[], HerokuClient], **kw: Any):
        super().__init__(repository, **kw)
        self.app = app
        self._api = api

    def remove(
        self, pushed: PushedImage, progress: Progress | None = None, keep: Collection[str] = ()
    ) -> bool:
        with self._api() as api:
            if api.app(self.app) is None:
                return False  # deleted with its app
        return super().remove(pushed, progress, keep)


# ---- helpers --------------------------------------------------------------------------------


def _settings(profile: Profile) -> HerokuSettings:
    return profile.target.settings  # type: ignore[no-any-return]


def _client(api_url: str, entry: str, progress: Progress | None = None) -> HerokuClient:
    """A client for ``api_url`` with the account key: refused before the key is read
    when ``api_url`` is neither Heroku's nor confirmed on this computer."""
    check_api_url(api_url)
    return HerokuClient(api_url, api_key(entry, api_url, progress))


def _client_for(data: dict[str, Any], progress: Progress | None = None) -> HerokuClient:
    """The client for a resource's app (its ``api_url`` and account key entry)."""
    # records written before the rename keep the account key's entry as "api_key"
    entry = data.get("account_key") or data.get("api_key") or "heroku-api-key"
    return _client(data["api_url"], str(entry), progress)


def _registry_password(settings: HerokuSettings) -> str:
    """The registry login (the account key): only for Heroku's registry or a confirmed
    one, checked before the key is read."""
    check_registry(settings.registry)
    return find_api_key(settings.account_key, settings.api_url)[0]


def host_problems(settings: HerokuSettings) -> list[Problem]:
    """The addresses the account key would go to that are neither Heroku's nor
    confirmed on this computer (checked before any traffic)."""
    return [
        Problem(exc.message, exc.hint or "", "setting", exc.setting)
        for exc in settings.address_errors()
    ]


def _data(settings: HerokuSettings, app: str, **extra: Any) -> dict[str, Any]:
    """What every resource keeps to find its app again: never a secret (``account_key``
    is the keyring entry's name)."""
    return {"app": app, "api_url": settings.api_url, "account_key": settings.account_key, **extra}


def _live(record: DeploymentRecord | None, kind: str, app: str) -> Resource | None:
    if record is None or record.target != "heroku":
        return None
    for r in record.resources():
        if r.kind == kind and r.data.get("app") == app:
            return r
    return None


def _endpoint_key(settings: HerokuSettings) -> str | None:
    if not settings.api_key:
        return None
    from app.secrets import get_secret

    return get_secret(settings.api_key)


def _config_vars(settings: HerokuSettings) -> dict[str, str | None]:
    """What the server needs: its API key (None: remove it) and ModelShip's settings
    for the dyno size (workers that fit its memory)."""
    workers = pricing.WORKERS.get(settings.dyno_size.lower(), 1)
    return {"MODELSHIP_API_KEY": _endpoint_key(settings), "MODELSHIP_WORKERS": str(workers)}


# Cedar container releases name their images in the description only, by the image id's
# first 12 hex digits: "Deployed web (142013fe2b5c)", "Deployed web (…), worker (…)".
_DEPLOYED = re.compile(r"\bDeployed\b")
_SHORT_ID = re.compile(r"\(([0-9a-f]{12})\)")


def _release_image(release: dict[str, Any]) -> str | None:
    """The image a release names: the full id from ``artifacts`` when the platform lists
    one, else the 12-digit short id from a Cedar container release's description."""
    for artifact in release.get("artifacts") or []:
        if isinstance(artifact, dict) and artifact.get("id"):
            return str(artifact["id"])
    shorts = _described_images(release)
    return shorts[0] if shorts else None


def _described_images(release: dict[str, Any]) -> list[str]:
    description = str(release.get("description") or "")
    if not _DEPLOYED.search(description):
        return []
    return _SHORT_ID.findall(description)


def _short(image: str) -> str:
    return image.split(":", 1)[-1][:12]


def _names_image(release: dict[str, Any], image: str) -> tuple[bool | None, str]:
    """Whether ``release`` is the release of ``image``, and by which documented rule:
    (True/False, "artifacts") when it lists artifacts; (True/False, "description") when
    its description names image ids; (None, "none") when it says nothing either way."""
    ids = [
        str(a["id"]) for a in release.get("artifacts") or [] if isinstance(a, dict) and a.get("id")
    ]
    if ids:
        return image in ids, "artifacts"
    shorts = _described_images(release)
    if shorts:
        return _short(image) in shorts, "description"
    return None, "none"


RULE_WORDS = {
    "artifacts": "its artifacts list the image",
    "description": "its description names the image id",
    "none": "it is the first release after the formation update (Heroku names no image)",
}


def _find_release(
    releases: list[dict[str, Any]], last: int, image: str
) -> tuple[dict[str, Any], str] | None:
    """The release the formation update made, by what Heroku documents, in this order:
    ``artifacts`` naming ``image``; else the description naming its short id; else the
    first release newer than ``last`` (the newest before the update) that names no other
    image — the Heroku CLI's own rule (``container:release`` takes the newest release
    once its id differs from the one before the PATCH)."""
    newer = sorted(
        (r for r in releases if int(r.get("version") or 0) > last), key=lambda r: int(r["version"])
    )
    for rule in ("artifacts", "description"):
        for r in newer:
            named, how = _names_image(r, image)
            if named and how == rule:
                return r, rule
    unnamed = next((r for r in newer if _names_image(r, image)[0] is None), None)
    return (unnamed, "none") if unnamed is not None else None


class _Output:
    """Release output read in a daemon thread; the waiting thread says the lines, so
    every progress call stays on the caller's thread."""

    def __init__(self, api: HerokuClient, url: str | None) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread: threading.Thread | None = None
        if url:
            self._thread = threading.Thread(
                target=self._read, args=(api, url), name="heroku-release-output", daemon=True
            )
            self._thread.start()

    def _read(self, api: HerokuClient, url: str) -> None:
        with contextlib.suppress(Exception):  # the output is a courtesy, not the outcome
            for line in api.stream_lines(url, timeout=60):
                self.lines.put(line)

    def flush(self, progress: Progress) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            self.seen.append(line)
            progress.log(f"heroku: {line}")

    def close(self, progress: Progress) -> None:
        if self._thread is not None:
            self._thread.join(2)
        self.flush(progress)


# ---- the target -------------------------------------------------------------------------------


class HerokuTarget(Target):
    kind: ClassVar[Kind] = KIND
    # Heroku starts the new release's dyno and swaps when it is up.
    replacement: ClassVar = "platform"

    def platforms(self, profile: Profile) -> tuple[Any, ...]:
        return ("linux/amd64",)  # Heroku runs nothing else

    def registry(self, profile: Profile) -> HerokuRegistry:
        s = _settings(profile)
        app = s.app or UNNAMED
        return HerokuRegistry(
            f"{s.registry.rstrip('/')}/{app}/{PROCESS}",
            app=app,
            api=lambda: _client(s.api_url, s.account_key),
            username="_",
            password=lambda: _registry_password(s),
            words=f"Heroku's registry for app {app} ({s.registry})",
        )

    def secret_headers(self, profile: Profile) -> dict[str, str]:
        """The endpoint's own key (``api_key``); ``account_key`` is Heroku's."""
        key = _endpoint_key(_settings(profile))
        return {"Authorization": f"Bearer {key}"} if key else {}

    # ---- before ---------------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        s = _settings(profile)
        # first, before any traffic: the addresses the account key would go to
        hosts = host_problems(s)
        if hosts:
            return hosts
        problems: list[Problem] = []
        if s.api_key:
            from app.secrets import has_secret

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
            problems += self._app_problems(api, profile, previous)
            left = api.rate_limit_remaining
            if left is not None and left < LOW_RATE_LIMIT:
                problems.append(
                    Problem(
                        f"Only {left} Heroku API calls are left this hour; a deploy needs "
                        "a few dozen.",
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
        problems += self._timing_problems(previous)
        return problems

    def _app_problems(
        self, api: HerokuClient, profile: Profile, previous: DeploymentRecord | None
    ) -> list[Problem]:
        s = _settings(profile)
        if not s.app:
            name = self._free_name(api, profile.name)
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
        old = _live(previous, KIND_RELEASE, s.app) or _live(previous, KIND_CONFIG, s.app)
        if previous is not None and previous.target == self.name and old is None:
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
                        f'Choose another name (app = "{self._free_name(api, profile.name)}").',
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

    def _free_name(self, api: HerokuClient, deployment: str) -> str:
        base = suggest_name(f"modelship-{deployment}")
        for i in range(20):
            name = base if i == 0 else f"{base[:26].rstrip('-')}-{i + 1}"
            try:
                if api.app(name) is None:
                    return name
            except TargetError:
                continue
        return base

    def _timing_problems(self, previous: DeploymentRecord | None) -> list[Problem]:
        """Heroku's 60 s boot and 30 s request limits, from what the last deploy measured
        (the conversion proof records no timings; a first deploy measures them)."""
        if previous is None or previous.target != self.name:
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

    def warnings(self, profile: Profile) -> list[str]:
        s = _settings(profile)
        out = []
        if not s.api_key:
            out.append(
                f"The Heroku app {s.app or ''} will answer anyone on the internet: no "
                "endpoint API key (api_key) is set."
            )
        return out

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        s = _settings(profile)
        app = s.app or "(name it: app = ...)"
        exists: bool | None = None
        if _live(previous, KIND_RELEASE, app) or _live(previous, KIND_CONFIG, app):
            exists = True
        elif s.app:
            exists = self._exists(s)
        where = f"stack container, region {s.region}" + (f", team {s.team}" if s.team else "")
        if exists is None:
            items = [PlanItem("create", "Heroku app", app, where + "; reused if it is yours")]
        else:
            items = [PlanItem("reuse" if exists else "create", "Heroku app", app, where)]
        names = ["MODELSHIP_API_KEY (the endpoint's key)"] if s.api_key else []
        names.append("MODELSHIP_WORKERS")
        items.append(PlanItem("set", "config vars", app, ", ".join(names)))
        items.append(
            PlanItem(
                "release",
                "web dyno",
                f"{app} {PROCESS}.1",
                f"1 x {s.dyno_size} ({pricing.DYNO_PRICES.get(s.dyno_size.lower(), ('', '?'))[1]})",
                cost=pricing.cost_words(s.dyno_size),
            )
        )
        url = (
            f"https://{app}.herokuapp.com"
            if s.api_url.rstrip("/") == "https://api.heroku.com"
            else "the app's web_url"
        )
        items.append(PlanItem("serve", "endpoint", url, "bearer key" if s.api_key else ""))
        return items

    def _exists(self, s: HerokuSettings) -> bool | None:
        """Whether the app exists; None when Heroku cannot say now (a plan is words)."""
        try:
            check_api_url(s.api_url)
            key = find_api_key(s.account_key, s.api_url)[0]
            with HerokuClient(s.api_url, key, timeout=10) as api:
                return api.app(str(s.app)) is not None
        except Exception:
            return None

    # ---- deploy -------------------------------------------------------------------------
    def prepare(self, ctx: DeployContext) -> None:
        """The push step: state the cost, then make sure the app exists (created and
        journaled when missing), because Heroku's registry takes pushes only for apps."""
        s: HerokuSettings = ctx.settings
        ctx.progress.update(
            None, f"Heroku bills the {s.dyno_size} dyno while it runs: "
            f"{pricing.cost_words(s.dyno_size)}"
        )  # fmt: skip
        with _client(s.api_url, s.account_key, ctx.progress) as api:
            self._ensure_app(api, ctx)

    def _ensure_app(self, api: HerokuClient, ctx: DeployContext) -> dict[str, Any]:
        s: HerokuSettings = ctx.settings
        name = self._app_name(s)
        app = api.app(name)
        if app is not None:
            stack = (app.get("stack") or {}).get("name")
            if stack != "container":
                raise TargetError(
                    f"The app {name!r} runs on the {stack} stack, not on the container stack.",
                    f"Switch it (heroku stack:set container -a {name}) or name another app.",
                )
            return app
        resource = Resource(
            KIND_APP,
            name,
            name=f"Heroku app {name}",
            data=_data(s, name, created=True, id=None, region=s.region, team=s.team),
        )
        ctx.journal.record(resource)
        ctx.cancel.raise_if_cancelled()
        ctx.progress.update(None, f"Creating Heroku app {name} (region {s.region})")
        try:
            app = api.create_app(name, s.region, s.team)
        except HerokuAPIError as exc:
            if exc.status == 422:  # refused (name taken, invalid): nothing of ours exists
                resource.data["created"] = False
                ctx.journal.update(resource)
            raise
        resource.data["id"] = app.get("id")
        ctx.journal.update(resource)
        return app

    def _app_name(self, s: HerokuSettings) -> str:
        if not s.app:
            raise TargetError(
                "The profile names no Heroku app.",
                say(
                    "Set app = NAME under [target.settings]; ",
                    run_command("deploy"),
                    " suggests a free one.",
                ),
            )
        return s.app

    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: HerokuSettings = ctx.settings
        pushed = ctx.pushed
        if pushed is None or not pushed.config_digest:
            raise TargetError(
                "There is no pushed image to release.", "Deploy again; the push step makes it."
            )
        name = self._app_name(s)
        with _client(s.api_url, s.account_key, ctx.progress) as api:
            app = self._ensure_app(api, ctx)
            resources: list[Resource] = []
            ours = next(
                (r for r in ctx.journal.resources() if r.kind == KIND_APP and r.id == name), None
            ) or _live(ctx.previous, KIND_APP, name)
            if ours is not None:
                resources.append(ours)
            ctx.cancel.raise_if_cancelled()
            resources.append(self._set_config_vars(api, ctx, name))
            ctx.cancel.raise_if_cancelled()
            release, boot = self._release(api, ctx, name, pushed.config_digest)
            resources.append(release)
        if ctx.previous is None or ctx.previous.target != self.name:
            ctx.progress.log(
                f"Started in {boot:.0f} s (Heroku allows {BOOT_LIMIT_S:.0f} s; the proof "
                "records no timings, so this first release measured it)"
            )
        since = ((ctx.previous.endpoint or {}).get("data") or {}).get("since") if (
            ctx.previous is not None and ctx.previous.target == self.name
        ) else None  # fmt: skip
        return Endpoint(
            url=str(app.get("web_url") or f"https://{name}.herokuapp.com/").rstrip("/"),
            target=self.name,
            resources=resources,
            auth="bearer" if s.api_key else "none",
            data={
                "app": name,
                "release": release.data.get("version"),
                "image": pushed.config_digest,
                "dyno_size": s.dyno_size,
                "boot_seconds": round(boot, 1),
                "since": since or now_iso(),
                "app_created_by_modelship": ours is not None,
            },
        )

    def _set_config_vars(self, api: HerokuClient, ctx: DeployContext, app: str) -> Resource:
        """Set only what changed (each change is a release that restarts the dyno); journal
        the names this run adds, so an undo removes exactly those."""
        s: HerokuSettings = ctx.settings
        wanted = _config_vars(s)
        current = api.config_vars(app)
        changes = {
            k: v
            for k, v in wanted.items()
            if current.get(k) != v and (v is not None or k in current)
        }
        added = sorted(k for k, v in wanted.items() if v is not None and k not in current)
        before = _live(ctx.previous, KIND_CONFIG, app)
        keys = sorted({*(before.data.get("keys", []) if before else []), *added})
        keys = [k for k in keys if wanted.get(k, "") is not None]
        if added:
            ctx.journal.record(
                Resource(KIND_CONFIG, app, name=f"config vars of Heroku app {app}",
                         data=_data(s, app, keys=added))
            )  # fmt: skip
        if changes:
            ctx.progress.update(None, f"Setting config vars {', '.join(sorted(changes))} on {app}")
            api.set_config_vars(app, changes)
        return Resource(
            KIND_CONFIG, app, name=f"config vars of Heroku app {app}", data=_data(s, app, keys=keys)
        )

    def _release(
        self, api: HerokuClient, ctx: DeployContext, app: str, image: str
    ) -> tuple[Resource, float]:
        """Release ``image`` to the web process and wait for it and its dyno."""
        s: HerokuSettings = ctx.settings
        before = _live(ctx.previous, KIND_RELEASE, app)
        restore = before.data.get("image") if before else None
        resource = Resource(
            KIND_RELEASE,
            f"{app}/{PROCESS}",
            name=f"release of {image[7:19]} on Heroku app {app}",
            data=_data(s, app, image=image, restore_image=restore, release=None, version=None),
        )
        ctx.journal.record(resource)
        ctx.cancel.raise_if_cancelled()
        newest = api.releases(app, 1)
        last = int(newest[0]["version"]) if newest else 0
        long_wait(
            ctx.progress, RELEASE, f"Releasing {image[:19]} to {app} ({s.dyno_size} web dyno)"
        )
        started = time.monotonic()
        api.update_formation(
            app,
            [{"type": PROCESS, "docker_image": image, "quantity": 1, "size": s.dyno_size}],
        )
        found = wait_until(
            lambda: _find_release(api.releases(app, 5), last, image),
            bool,
            timeout=30,
            cancel=ctx.cancel,
            what=f"Heroku to list the release on {app}",
        )
        assert found is not None
        release, rule = found
        ctx.progress.log(f"Heroku release v{release['version']} is ours: {RULE_WORDS[rule]}")
        resource.data.update(release=release["id"], version=release["version"], matched_by=rule)
        ctx.journal.update(resource)
        self._wait_release(api, ctx, app, release, s.start_timeout)
        self._wait_dyno(api, ctx, app, int(release["version"]), s.start_timeout)
        return resource, time.monotonic() - started

    def _wait_release(
        self,
        api: HerokuClient,
        ctx: DeployContext,
        app: str,
        release: dict[str, Any],
        timeout: float,
    ) -> None:
        output = _Output(api, release.get("output_stream_url"))
        version = release["version"]

        def probe() -> str:
            output.flush(ctx.progress)
            return str(api.release(app, release["id"]).get("status"))

        try:
            wait_until(
                probe,
                lambda status: status == "succeeded",
                lambda status: "Heroku marked it failed" if status == "failed" else None,
                timeout=timeout,
                cancel=ctx.cancel,
                progress=ctx.progress,
                what=f"release v{version} of {app}",
                describe=lambda status: f"Release v{version} {status}",
                hint="Raise start_timeout in the settings for a large model.",
                interval=0.2,
                max_interval=2.0,
            )
        except WaitFailed as exc:
            output.close(ctx.progress)
            raise self._failure(api, app, output.seen, exc) from None
        output.close(ctx.progress)

    def _failure(
        self, api: HerokuClient, app: str, output: list[str], exc: TargetError
    ) -> TargetError:
        """The release failed: say why in Heroku's words and in plain ones."""
        lines = list(output)
        with contextlib.suppress(TargetError):
            lines += api.log_lines(app, 100)
        found = explain(lines)
        details = "\n".join(lines[-40:]) or None
        if found is None:
            crashed = next((line for line in reversed(lines) if "before binding" in line), None)
            words = f": {crashed.split(': ', 1)[-1]}" if crashed else ""
            return TargetError(
                f"Heroku could not start the release on {app}{words}.",
                ERROR_CODES["H10"][1],
                details=details,
            )
        code, meaning, fix = found
        return TargetError(
            f"Heroku could not start the release on {app}: {code} ({meaning}).",
            fix,
            details=details,
        )

    def _wait_dyno(
        self, api: HerokuClient, ctx: DeployContext, app: str, version: int, timeout: float
    ) -> None:
        def probe() -> str:
            for dyno in api.dynos(app):
                if (
                    dyno.get("type") == PROCESS
                    and (dyno.get("release") or {}).get("version") == version
                ):
                    return str(dyno.get("state"))
            return "not started"

        try:
            wait_until(
                probe,
                lambda state: state == "up",
                lambda state: state if state in {"crashed", "down"} else None,
                timeout=timeout,
                cancel=ctx.cancel,
                progress=ctx.progress,
                what=f"the web dyno of {app}",
                describe=lambda state: f"Dyno {PROCESS}.1 {state}",
                interval=0.2,
                max_interval=2.0,
            )
        except WaitFailed as exc:
            raise self._failure(api, app, [], exc) from None

    # ---- later ------------------------------------------------------------------------
    def status(self, record: DeploymentRecord) -> TargetStatus:
        endpoint = record.endpoint_obj()
        data = endpoint.data if endpoint else {}
        app = data.get("app")
        release = _live(record, KIND_RELEASE, str(app))
        if not app or release is None:
            return TargetStatus(False, "no Heroku app recorded")
        size = str(data.get("dyno_size") or "basic")
        cost = pricing.cost_so_far(size, str(data.get("since") or record.created))
        try:
            with _client_for(release.data) as api:
                info = api.app(app)
                if info is None:
                    return TargetStatus(False, f"Heroku app {app} is gone", cost=cost)
                current = next((r for r in api.releases(app, 10) if r.get("current")), {})
                dynos = [d for d in api.dynos(app) if d.get("type") == PROCESS]
        except TargetError as exc:
            return TargetStatus(False, exc.message, cost=cost)
        states = ", ".join(f"{d.get('name')} {d.get('state')}" for d in dynos) or "no web dyno"
        detail = (
            f"Heroku app {app}: release v{current.get('version')} ({current.get('status')}), "
            f"{states} ({size}), {info.get('web_url')}"
        )
        return TargetStatus(
            any(d.get("state") == "up" for d in dynos),
            detail,
            {
                "app": app,
                "release": current.get("version"),
                "image": _release_image(current) if current else None,
                "dynos": [{"name": d.get("name"), "state": d.get("state")} for d in dynos],
                "web_url": info.get("web_url"),
            },
            cost=cost,
        )

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        release = next((r for r in record.resources() if r.kind in KINDS), None)
        if release is None:
            return ""
        with _client_for(release.data) as api:
            return "\n".join(api.log_lines(str(release.data["app"]), lines))

    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        """Remove one journaled thing. An app only if ModelShip made it (same id); config
        vars: only the names it set; a release: the previous image again when it replaced
        one (a failed redeploy), else the web formation scaled to 0."""
        progress = progress or NullProgress()
        if resource.kind not in KINDS:
            return False
        d = resource.data
        app = str(d.get("app") or resource.id.split("/")[0])
        with _client_for(d) as api:
            info = api.app(app)
            if info is None:
                return False
            if resource.kind == KIND_APP:
                return self._delete_app(api, info, d, progress)
            if resource.kind == KIND_CONFIG:
                return self._unset(api, app, d.get("keys") or [], progress)
            if d.get("restore_image"):
                return self._restore(api, app, str(d["restore_image"]), progress)
            return self._scale_down(api, app, progress)

    def _delete_app(
        self, api: HerokuClient, info: dict[str, Any], d: dict[str, Any], progress: Progress
    ) -> bool:
        if not d.get("created"):
            return False
        if d.get("id") and info.get("id") != d["id"]:
            progress.log(f"Leaving Heroku app {info.get('name')}: it is not the one ModelShip made")
            return False
        progress.update(None, f"Deleting Heroku app {info.get('name')}")
        return api.delete_app(str(info.get("name")))

    def _unset(self, api: HerokuClient, app: str, keys: list[str], progress: Progress) -> bool:
        present = [k for k in keys if k in api.config_vars(app)]
        if not present:
            return False
        progress.update(None, f"Removing config vars {', '.join(present)} from {app}")
        api.set_config_vars(app, dict.fromkeys(present))
        return True

    def _scale_down(self, api: HerokuClient, app: str, progress: Progress) -> bool:
        formation = api.formation(app, PROCESS)
        if formation is None or not formation.get("quantity"):
            return False
        progress.update(None, f"Scaling the web dynos of {app} to 0")
        api.update_formation(app, [{"type": PROCESS, "quantity": 0}])
        # Heroku stops dynos after answering; "removed" means nothing runs (or bills).
        wait_until(
            lambda: [d for d in api.dynos(app) if d.get("type") == PROCESS],
            lambda dynos: not dynos,
            timeout=60,
            progress=progress,
            what=f"the web dynos of {app} to stop",
            interval=0.2,
            max_interval=2.0,
        )
        return True

    def _restore(self, api: HerokuClient, app: str, image: str, progress: Progress) -> bool:
        current = next((r for r in api.releases(app, 10) if r.get("current")), None)
        if current is not None and _names_image(current, image)[0]:
            return False  # the failed release never became current
        long_wait(progress, RELEASE, f"Releasing the previous image {image[:19]} to {app} again")
        newest = api.releases(app, 1)
        last = int(newest[0]["version"]) if newest else 0
        api.update_formation(app, [{"type": PROCESS, "docker_image": image, "quantity": 1}])

        def probe() -> str:
            mine = [r for r in api.releases(app, 5) if int(r["version"]) > last]
            return str(mine[0].get("status")) if mine else "pending"

        wait_until(
            probe,
            lambda status: status == "succeeded",
            lambda status: "Heroku marked it failed" if status == "failed" else None,
            timeout=300,
            progress=progress,
            what=f"the previous release of {app}",
            interval=0.2,
            max_interval=2.0,
        )
        return True

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """The app if ModelShip created it (its images and config go with it); otherwise
        the web formation scaled to 0 and the config vars ModelShip set removed."""
        removed: list[str] = []
        resources = [r for r in record.all_resources(self.name) if r.kind in KINDS]
        gone: set[str] = set()
        for r in resources:
            if r.kind == KIND_APP and self.destroy(r, progress):
                removed.append(r.describe())
                gone.add(r.id)
        # Scale down before removing config vars: on a running app each config change is
        # a release that starts a new dyno.
        order = {KIND_RELEASE: 0, KIND_CONFIG: 1}
        for r in sorted(resources, key=lambda r: order.get(r.kind, 2)):
            app = str(r.data.get("app"))
            if r.kind == KIND_APP or app in gone:
                continue
            with _client_for(r.data) as api:
                if api.app(app) is None:
                    continue
                if r.kind == KIND_CONFIG and self._unset(
                    api, app, r.data.get("keys") or [], progress
                ):
                    removed.append(r.describe())
                if r.kind == KIND_RELEASE and self._scale_down(api, app, progress):
                    removed.append(f"web dynos of Heroku app {app} (scaled to 0)")
        return removed

    # ---- stop and start -------------------------------------------------------------
    def _release_of(self, record: DeploymentRecord) -> Resource:
        release = next((r for r in record.resources() if r.kind == KIND_RELEASE), None)
        if release is None:
            raise TargetError(f"{record.name!r} has no Heroku release recorded.", "Deploy again.")
        return release

    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """Scale the web formation to 0 (no dyno runs or bills); the app, its release
        and config stay, so ``start`` needs no new release."""
        r = self._release_of(record)
        with _client_for(r.data, progress) as api:
            self._scale_down(api, str(r.data["app"]), progress)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Scale the web formation back to 1 (the current release boots); same URL."""
        r = self._release_of(record)
        app = str(r.data["app"])
        with _client_for(r.data, progress) as api:
            if api.app(app) is None:
                raise TargetError(f"The Heroku app {app} is gone.", "Deploy it again.")
            progress.update(None, f"Scaling the web dynos of {app} to 1")
            api.update_formation(app, [{"type": PROCESS, "quantity": 1}])
        return None

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Another target took the name over: nothing of it may keep running (and billing)."""
        return self.teardown(record, progress)


__all__ = ["ERROR_CODES", "HerokuRegistry", "HerokuTarget", "explain", "suggest_name"]
