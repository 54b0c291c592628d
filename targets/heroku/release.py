"""Getting a version onto the app: the app made when missing, config vars, the
release by image digest (found by Heroku's documented rules), its dyno; and the
reverse (restore, scale down, unset, delete the app)."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from typing import Any

from app.domain import Resource
from app.errors import TargetError
from app.nextstep import run_command, say
from app.progress import Progress, long_wait
from app.waiting import WaitFailed, wait_until
from targets.base import DeployContext
from targets.heroku.client import (
    HerokuAPIError,
    HerokuClient,
)
from targets.heroku.errors import failure
from targets.heroku.kind import RELEASE
from targets.heroku.settings import HerokuSettings
from targets.heroku.shared import (
    KIND_APP,
    KIND_CONFIG,
    KIND_RELEASE,
    PROCESS,
    config_vars,
    live,
    resource_data,
)

# Cedar container releases name their images in the description only, by the image id's
# first 12 hex digits: "Deployed web (142013fe2b5c)", "Deployed web (…), worker (…)".
_DEPLOYED = re.compile(r"\bDeployed\b")


_SHORT_ID = re.compile(r"\(([0-9a-f]{12})\)")


def release_image(release: dict[str, Any]) -> str | None:
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


def names_image(release: dict[str, Any], image: str) -> tuple[bool | None, str]:
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


def find_release(
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
            named, how = names_image(r, image)
            if named and how == rule:
                return r, rule
    unnamed = next((r for r in newer if names_image(r, image)[0] is None), None)
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


def ensure_app(api: HerokuClient, ctx: DeployContext) -> dict[str, Any]:
    s: HerokuSettings = ctx.settings
    name = app_name(s)
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
        data=resource_data(s, name, created=True, id=None, region=s.region, team=s.team),
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


def app_name(s: HerokuSettings) -> str:
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


def set_config_vars(api: HerokuClient, ctx: DeployContext, app: str) -> Resource:
    """Set only what changed (each change is a release that restarts the dyno); journal
    the names this run adds, so an undo removes exactly those."""
    s: HerokuSettings = ctx.settings
    wanted = config_vars(s)
    current = api.config_vars(app)
    changes = {
        k: v for k, v in wanted.items() if current.get(k) != v and (v is not None or k in current)
    }
    added = sorted(k for k, v in wanted.items() if v is not None and k not in current)
    before = live(ctx.previous, KIND_CONFIG, app)
    keys = sorted({*(before.data.get("keys", []) if before else []), *added})
    keys = [k for k in keys if wanted.get(k, "") is not None]
    if added:
        ctx.journal.record(
            Resource(KIND_CONFIG, app, name=f"config vars of Heroku app {app}",
                     data=resource_data(s, app, keys=added))
        )  # fmt: skip
    if changes:
        ctx.progress.update(None, f"Setting config vars {', '.join(sorted(changes))} on {app}")
        api.set_config_vars(app, changes)
    return Resource(
        KIND_CONFIG,
        app,
        name=f"config vars of Heroku app {app}",
        data=resource_data(s, app, keys=keys),
    )


def make_release(
    api: HerokuClient, ctx: DeployContext, app: str, image: str
) -> tuple[Resource, float]:
    """Release ``image`` to the web process and wait for it and its dyno."""
    s: HerokuSettings = ctx.settings
    before = live(ctx.previous, KIND_RELEASE, app)
    restore = before.data.get("image") if before else None
    resource = Resource(
        KIND_RELEASE,
        f"{app}/{PROCESS}",
        name=f"release of {image[7:19]} on Heroku app {app}",
        data=resource_data(s, app, image=image, restore_image=restore, release=None, version=None),
    )
    ctx.journal.record(resource)
    ctx.cancel.raise_if_cancelled()
    newest = api.releases(app, 1)
    last = int(newest[0]["version"]) if newest else 0
    long_wait(ctx.progress, RELEASE, f"Releasing {image[:19]} to {app} ({s.dyno_size} web dyno)")
    started = time.monotonic()
    api.update_formation(
        app,
        [{"type": PROCESS, "docker_image": image, "quantity": 1, "size": s.dyno_size}],
    )
    found = wait_until(
        lambda: find_release(api.releases(app, 5), last, image),
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
    wait_release(api, ctx, app, release, s.start_timeout)
    wait_dyno(api, ctx, app, int(release["version"]), s.start_timeout)
    return resource, time.monotonic() - started


def wait_release(
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
        raise failure(api, app, output.seen, exc) from None
    output.close(ctx.progress)


def wait_dyno(
    api: HerokuClient, ctx: DeployContext, app: str, version: int, timeout: float
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
        raise failure(api, app, [], exc) from None


def delete_app(
    api: HerokuClient, info: dict[str, Any], d: dict[str, Any], progress: Progress
) -> bool:
    if not d.get("created"):
        return False
    if d.get("id") and info.get("id") != d["id"]:
        progress.log(f"Leaving Heroku app {info.get('name')}: it is not the one ModelShip made")
        return False
    progress.update(None, f"Deleting Heroku app {info.get('name')}")
    return api.delete_app(str(info.get("name")))


def unset(api: HerokuClient, app: str, keys: list[str], progress: Progress) -> bool:
    present = [k for k in keys if k in api.config_vars(app)]
    if not present:
        return False
    progress.update(None, f"Removing config vars {', '.join(present)} from {app}")
    api.set_config_vars(app, dict.fromkeys(present))
    return True


def scale_down(api: HerokuClient, app: str, progress: Progress) -> bool:
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


def restore_previous(api: HerokuClient, app: str, image: str, progress: Progress) -> bool:
    current = next((r for r in api.releases(app, 10) if r.get("current")), None)
    if current is not None and names_image(current, image)[0]:
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
