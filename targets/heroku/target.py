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

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, Resource, now_iso
from app.errors import TargetError
from app.progress import NullProgress, Progress
from targets.base import DeployContext, Target, TargetStatus, capture_answer
from targets.common import PreflightModule, merge_capture
from targets.heroku import preflight, pricing
from targets.heroku.kind import KIND
from targets.heroku.registry import HerokuRegistry, registry_password
from targets.heroku.release import (
    app_name,
    delete_app,
    ensure_app,
    make_release,
    release_image,
    restore_previous,
    scale_down,
    set_config_vars,
    unset,
)
from targets.heroku.settings import HerokuSettings
from targets.heroku.shared import (
    BOOT_LIMIT_S,
    KIND_APP,
    KIND_CONFIG,
    KIND_RELEASE,
    KINDS,
    PROCESS,
    UNNAMED,
    client,
    client_for,
    live,
    settings_of,
)
from targets.kind import Kind

if TYPE_CHECKING:
    from app.endpoint.client import EndpointClient
    from app.store.profile import Profile

log = logging.getLogger("modelship.targets.heroku")
# GET /capture reaches one dyno the router picks at random: pulls per dyno at most
PULLS_PER_DYNO = 4


class HerokuTarget(PreflightModule, Target):
    preflight: ClassVar[ModuleType] = preflight  # check, warnings, plan
    kind: ClassVar[Kind] = KIND
    # Heroku starts the new release's dyno and swaps when it is up.
    replacement: ClassVar = "platform"

    def platforms(self, profile: Profile) -> tuple[Any, ...]:
        return ("linux/amd64",)  # Heroku runs nothing else

    def registry(self, profile: Profile) -> HerokuRegistry:
        s = settings_of(profile)
        app = s.app or UNNAMED
        return HerokuRegistry(
            f"{s.registry.rstrip('/')}/{app}/{PROCESS}",
            app=app,
            api=lambda: client(s.api_url, s.account_key),
            username="_",
            password=lambda: registry_password(s),
            words=f"Heroku's registry for app {app} ({s.registry})",
        )

    # ---- deploy -------------------------------------------------------------------------
    def prepare(self, ctx: DeployContext) -> None:
        """The push step: state the cost, then make sure the app exists (created and
        journaled when missing), because Heroku's registry takes pushes only for apps."""
        s: HerokuSettings = ctx.settings
        ctx.progress.update(
            None, f"Heroku bills the {s.dyno_size} dyno while it runs: "
            f"{pricing.cost(s.dyno_size).line()}"
        )  # fmt: skip
        with client(s.api_url, s.account_key, ctx.progress) as api:
            ensure_app(api, ctx)

    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: HerokuSettings = ctx.settings
        pushed = ctx.pushed
        if pushed is None or not pushed.config_digest:
            raise TargetError(
                "There is no pushed image to release.", "Deploy again; the push step makes it."
            )
        name = app_name(s)
        with client(s.api_url, s.account_key, ctx.progress) as api:
            app = ensure_app(api, ctx)
            resources: list[Resource] = []
            ours = next(
                (r for r in ctx.journal.resources() if r.kind == KIND_APP and r.id == name), None
            ) or live(ctx.previous, KIND_APP, name)
            if ours is not None:
                resources.append(ours)
            ctx.cancel.raise_if_cancelled()
            resources.append(set_config_vars(api, ctx, name))
            ctx.cancel.raise_if_cancelled()
            release, boot = make_release(api, ctx, name, pushed.config_digest)
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

    # ---- later ------------------------------------------------------------------------
    def status(self, record: DeploymentRecord) -> TargetStatus:
        endpoint = record.endpoint_obj()
        data = endpoint.data if endpoint else {}
        app = data.get("app")
        release = live(record, KIND_RELEASE, str(app))
        if not app or release is None:
            return TargetStatus(False, "no Heroku app recorded")
        size = str(data.get("dyno_size") or "basic")
        cost = pricing.cost_so_far(size, str(data.get("since") or record.created))
        try:
            with client_for(release.data) as api:
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
                "image": release_image(current) if current else None,
                "dynos": [{"name": d.get("name"), "state": d.get("state")} for d in dynos],
                "web_url": info.get("web_url"),
            },
            cost=cost,
        )

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        release = next((r for r in record.resources() if r.kind in KINDS), None)
        if release is None:
            return ""
        with client_for(release.data) as api:
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
        with client_for(d) as api:
            info = api.app(app)
            if info is None:
                return False
            if resource.kind == KIND_APP:
                return delete_app(api, info, d, progress)
            if resource.kind == KIND_CONFIG:
                return unset(api, app, d.get("keys") or [], progress)
            if d.get("restore_image"):
                return restore_previous(api, app, str(d["restore_image"]), progress)
            return scale_down(api, app, progress)

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
            with client_for(r.data) as api:
                if api.app(app) is None:
                    continue
                if r.kind == KIND_CONFIG and unset(api, app, r.data.get("keys") or [], progress):
                    removed.append(r.describe())
                if r.kind == KIND_RELEASE and scale_down(api, app, progress):
                    removed.append(f"web dynos of Heroku app {app} (scaled to 0)")
        return removed

    # ---- captured requests ----------------------------------------------------------
    def captured(
        self,
        record: DeploymentRecord,
        since: float | None = None,
        client: EndpointClient | None = None,
    ) -> bytes:
        """Each dyno keeps its own captured requests and the router hands ``GET /capture``
        to one at random: pull until as many dynos as the web formation runs have
        answered (each names itself, X-ModelShip-Instance), at most 4 pulls a dyno."""
        quantity = 1
        release = next((r for r in record.resources() if r.kind == KIND_RELEASE), None)
        if release is not None and client is not None:
            try:
                with client_for(release.data) as api:
                    formation = api.formation(str(release.data["app"])) or {}
                quantity = max(1, int(formation.get("quantity") or 1))
            except (TargetError, TypeError, ValueError):
                quantity = 1  # the platform does not say: one pull, as for one dyno
        return pull_every_dyno(record, since, client, quantity)

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
        with client_for(r.data, progress) as api:
            scale_down(api, str(r.data["app"]), progress)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Scale the web formation back to 1 (the current release boots); same URL."""
        r = self._release_of(record)
        app = str(r.data["app"])
        with client_for(r.data, progress) as api:
            if api.app(app) is None:
                raise TargetError(f"The Heroku app {app} is gone.", "Deploy it again.")
            progress.update(None, f"Scaling the web dynos of {app} to 1")
            api.update_formation(app, [{"type": PROCESS, "quantity": 1}])
        return None

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Another target took the name over: nothing of it may keep running (and billing)."""
        return self.teardown(record, progress)


def pull_every_dyno(
    record: DeploymentRecord,
    since: float | None,
    client: EndpointClient | None,
    quantity: int,
    tries: int | None = None,
) -> bytes:
    """``GET /capture`` through a router that picks one of QUANTITY servers at random,
    until each has answered (or TRIES pulls, 4 a server): their lines merged by time,
    each server's kept once. Some not heard from: a warning, not an error."""
    tries = tries or PULLS_PER_DYNO * max(1, quantity)
    parts: list[tuple[str, bytes]] = []
    heard: list[str] = []
    failed: TargetError | None = None
    for _ in range(tries):
        try:
            answer = capture_answer(record, since, client)
        except TargetError as exc:
            if not parts and ("Capture is off" in exc.message or "no API key" in exc.message):
                raise
            failed = exc
            continue
        instance = answer.headers.get("x-modelship-instance", "")
        parts.append((instance, answer.body))
        if instance not in heard:
            heard.append(instance)
        if len(heard) >= quantity:
            break
    if not parts:
        assert failed is not None
        raise failed
    if len(heard) < quantity:
        named = ", ".join(h for h in heard if h) or "one"
        log.warning(
            "Captured requests of %s: only %d of %d dynos answered in %d pulls (%s); the "
            "requests the others kept are not in this pull. Pull again to try them.",
            record.name,
            len(heard),
            quantity,
            tries,
            named,
        )
    return merge_capture(parts)
