"""The Heroku emulator: Platform API, registry proxy, dyno manager and per-app routers.

One background thread runs one asyncio loop with every HTTP server of an emulator
instance (uvicorn servers on sockets bound to 127.0.0.1): the Platform API (with the
``/__emulator__/`` control and stream URLs), the registry proxy, and one router per app
(created with the app, so each app's ``web_url`` serves the app's paths at its root).
Blocking work (docker, registry look-ups) runs in the loop's default executor, which
``asyncio.run`` shuts down with the loop, so ``stop()`` leaves no thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._http import Upstream, UpstreamError, asgi_body, request_headers, response_headers
from .dynos import DynoManager
from .model import (
    DYNO_SIZE_IDS,
    DYNO_SIZES,
    REGIONS,
    RELEASE_SHAPES,
    STACKS,
    Account,
    App,
    Dyno,
    Formation,
    LogLine,
    Release,
    new_id,
    now,
)
from .registry import RegistryClient, RegistryProcess, RegistryProxy

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
CONFIG_KEY = re.compile(r"^\w+$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ADJECTIVES = ["serene", "shrouded", "radiant", "fathomless", "glacial", "polar", "quiet"]
NOUNS = ["reef", "falls", "river", "island", "meadow", "brook", "harbor"]
ERROR_PAGE = (
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>Application Error</title>'
    "\n</head>\n<body>\n<h1>Application Error</h1>\n<p>An error occurred in the application and "
    "your page could not be served. If you are the application owner, check your logs for "
    "details. You can do this from the Heroku CLI with the command <code>heroku logs --tail"
    "</code></p>\n</body>\n</html>\n"
)
ROUTER_ERRORS = {
    "H10": "App crashed",
    "H12": "Request timeout",
    "H13": "Connection closed without response",
    "H14": "No web processes running",
}


class ApiError(Exception):
    """Becomes Heroku's error body ``{"id": ..., "message": ...}``."""

    def __init__(self, status: int, id: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.id, self.message, self.extra = status, id, message, extra


def not_found(resource: str, message: str | None = None) -> ApiError:
    return ApiError(
        404, "not_found", message or f"Couldn't find that {resource}.", resource=resource
    )


@dataclass
class Fault:
    """A failure to inject: the next TIMES matching calls get STATUS and BODY."""

    method: str
    path: str  # fnmatch glob over the request path, e.g. "/apps/*/formation"
    status: int = 503
    body: dict[str, Any] | None = None
    times: int | None = 1  # None: every matching call
    delay: float = 0.0  # seconds to wait before answering
    service: str = "api"  # "api" or "registry"
    pass_through: bool = False  # perform the call, then answer with the failure

    def matches(self, service: str, method: str, path: str) -> bool:
        return (
            self.service == service
            and self.method.upper() in {"*", method.upper()}
            and fnmatch.fnmatchcase(path, self.path)
            and (self.times is None or self.times > 0)
        )

    def payload(self) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        if self.service == "registry":
            return {"errors": [{"code": "UNAVAILABLE", "message": "injected failure"}]}
        return {"id": "service_unavailable", "message": "Injected failure (emulator)."}


class HerokuEmulator:
    """Start with ``start()`` (or ``with``); every address is 127.0.0.1.

    ``release_shape`` (settable at any time, also through ``/__emulator__/settings`` and
    ``--release-shape``) picks how the Platform API's releases name their image, since
    real platforms differ (``model.RELEASE_SHAPES``): ``"artifacts"`` fills
    ``artifacts[].id``; ``"description"`` leaves ``artifacts`` empty and names the image
    id's first 12 hex digits in the description ("Deployed web (142013fe2b5c)"), as
    Heroku documents Cedar container releases; ``"generic"`` leaves ``artifacts`` empty
    and the description names no image. ``state()`` always shows the full release.
    """

    def __init__(
        self,
        api_keys: list[str] | None = None,
        port: int = 0,
        registry_port: int = 0,
        boot_timeout: float = 60.0,
        request_timeout: float = 30.0,
        rate_limit: int = 4500,
        teams: tuple[str, ...] = ("modelship-team",),
        release_shape: str = "artifacts",
    ) -> None:
        if release_shape not in RELEASE_SHAPES:
            raise ValueError(f"release_shape must be one of {', '.join(RELEASE_SHAPES)}")
        # how releases name their image (model.RELEASE_SHAPES); tests may change it
        self.release_shape = release_shape
        self.api_keys = list(api_keys or [f"emu-{uuid.uuid4().hex}"])
        self.instance = uuid.uuid4().hex[:12]
        self.boot_timeout = boot_timeout
        self.request_timeout = request_timeout
        self.initial_rate_limit = rate_limit
        self.teams = set(teams)
        self.accounts = {
            key: Account(key, f"user{i or ''}@modelship.example")
            for i, key in enumerate(self.api_keys)
        }
        self.remaining = dict.fromkeys(self.api_keys, rate_limit)
        self.apps: dict[str, App] = {}
        self.faults: list[Fault] = []
        self.next_release_failure: str | None = None
        self.log_sessions: dict[str, dict[str, Any]] = {}
        self._port = port
        self._registry_port = registry_port
        self._proxy_port = 0
        self._servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
        self._routers: dict[str, tuple[uvicorn.Server, asyncio.Task[None]]] = {}
        self._app_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self.registry_process: RegistryProcess | None = None
        self.dynos: DynoManager | None = None

    # ---- addresses ---------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def registry(self) -> str:
        """host:port of the registry as clients see it (the checking proxy)."""
        return f"127.0.0.1:{self._proxy_port}"

    # ---- lifecycle ---------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> HerokuEmulator:
        self.registry_process = RegistryProcess(self.api_keys, self._registry_port)
        self.registry_process.start()
        self.registry_client = RegistryClient(self.registry_process.url, self.api_key)
        api_sock = bind(self._port)
        proxy_sock = bind(0)
        self._port = api_sock.getsockname()[1]
        self._proxy_port = proxy_sock.getsockname()[1]
        self.dynos = DynoManager(
            self.instance, self.registry, {"username": "_", "password": self.api_key}
        )
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            try:
                asyncio.run(self._main(api_sock, proxy_sock, ready))
            except BaseException as exc:  # surfaced by start()
                errors.append(exc)
                ready.set()

        self._thread = threading.Thread(target=main, name=f"heroku-emulator-{self.instance}")
        self._thread.start()
        if not ready.wait(timeout) or errors:
            self.stop()
            raise RuntimeError(f"Heroku emulator did not start: {errors}")
        return self

    def __enter__(self) -> HerokuEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _main(self, api_sock: socket.socket, proxy_sock: socket.socket, ready) -> None:  # type: ignore[no-untyped-def]
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        proxy = RegistryProxy(
            self.registry_process.port,  # type: ignore[union-attr]
            self.api_keys,
            lambda name: name in self.apps,
            lambda method, path: self._fault("registry", method, path),
        )
        await self._serve(self._api(), api_sock)
        await self._serve(proxy, proxy_sock)
        ready.set()
        await self._stop.wait()
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server, _ in [*self._servers, *self._routers.values()]:
            server.should_exit = True
        await asyncio.gather(
            *[task for _, task in [*self._servers, *self._routers.values()]],
            return_exceptions=True,
        )

    async def _serve(
        self, app: Any, sock: socket.socket
    ) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        config = uvicorn.Config(
            app,
            # "error": Docker Engine tries HTTPS first on a 127.0.0.1 registry, and each
            # TLS hello would log "Invalid HTTP request received".
            log_level="error",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=2,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        self._servers.append((server, task))
        return server, task

    def stop(self) -> None:
        """Stop every server, then remove every container and pulled image, then the registry."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        if self.dynos is not None:
            for container in self.dynos.containers():
                self.dynos.stop(container.id, timeout=1)
            for app in self.apps.values():
                for reference in app.pulled:
                    self.dynos.remove_image(reference)
            self.dynos.close()
            self.dynos = None
        if self.registry_process is not None:
            self.registry_process.stop()
            self.registry_process = None

    def _call(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine on the emulator's loop from another thread."""
        assert self._loop is not None, "emulator not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)  # type: ignore[arg-type]

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- test helpers (any thread) -----------------------------------------------
    def inject(
        self,
        method: str,
        path: str,
        status: int = 503,
        body: dict[str, Any] | None = None,
        times: int | None = 1,
        delay: float = 0.0,
        service: str = "api",
        pass_through: bool = False,
    ) -> Fault:
        """Make the next TIMES calls matching METHOD and PATH (a glob) fail with STATUS."""
        fault = Fault(method, path, status, body, times, delay, service, pass_through)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def fail_next_release(self, code: str = "R10") -> None:
        """The next release's dyno fails to boot (R10) without waiting for the boot timeout."""
        self.next_release_failure = code

    def set_rate_limit(self, remaining: int, key: str | None = None) -> None:
        for k in [key] if key else self.api_keys:
            self.remaining[k] = remaining

    def state(self) -> dict[str, Any]:
        """Apps, releases, config vars, dynos, containers and registry contents as JSON."""
        return self._call(self._state())

    def app_names(self) -> list[str]:
        return sorted(self.state()["apps"])

    def containers(self) -> list[dict[str, Any]]:
        """The containers this instance runs (found by label), as id/name/app/status."""
        assert self.dynos is not None
        return [
            {
                "id": c.id,
                "name": c.name,
                "app": c.labels.get("modelship.heroku-emulator.app"),
                "status": c.status,
            }
            for c in self.dynos.containers()
        ]

    def registry_contents(self) -> dict[str, list[str]]:
        """{repository: tags} for every repository that still has tags (catalog + tags/list)."""
        return self.registry_client.contents()

    def is_empty(self) -> bool:
        return not self.state()["apps"] and not self.containers() and not self.registry_contents()

    async def _state(self) -> dict[str, Any]:
        apps = {}
        for app in self.apps.values():
            await self._refresh_dyno(app)
            apps[app.name] = {
                "app": app.json(),
                "config_vars": dict(app.config_vars),
                "releases": [r.json(self.api_url) for r in app.releases],
                "formation": [f.json() for f in app.formation.values()],
                "dynos": [d.json() for d in app.web_dynos()],
                "pulled_images": sorted(app.pulled),
                "log": [line.format() for line in app.logs],
            }
        return {
            "apps": apps,
            "containers": await asyncio.to_thread(self.containers),
            "registry": await asyncio.to_thread(self.registry_contents),
            "rate_limit_remaining": dict(self.remaining),
            "faults": [f.__dict__ for f in self.faults if f.times is None or f.times > 0],
        }

    async def _fault(self, service: str, method: str, path: str) -> tuple[int, Any] | None:
        for fault in self.faults:
            if fault.matches(service, method, path) and not fault.pass_through:
                if fault.times is not None:
                    fault.times -= 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                return fault.status, fault.payload()
        return None

    def _fault_after(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches("api", method, path) and fault.pass_through:
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # ---- the Platform API ---------------------------------------------------------
    def _api(self) -> Starlette:
        def route(path: str, handler: Callable[..., Awaitable[Any]], *methods: str) -> Route:
            return Route(path, self._wrap(handler), methods=list(methods))

        return Starlette(
            routes=[
                route("/account", self.get_account, "GET"),
                route("/apps", self.list_apps, "GET"),
                route("/apps", self.create_app, "POST"),
                route("/teams/apps", self.create_team_app, "POST"),
                route("/teams/{team}/apps", self.list_team_apps, "GET"),
                route("/apps/{app}", self.get_app, "GET"),
                route("/apps/{app}", self.delete_app, "DELETE"),
                route("/apps/{app}/config-vars", self.get_config_vars, "GET"),
                route("/apps/{app}/config-vars", self.patch_config_vars, "PATCH"),
                route("/apps/{app}/formation", self.list_formation, "GET"),
                route("/apps/{app}/formation", self.patch_formation, "PATCH"),
                route("/apps/{app}/formation/{type}", self.get_formation, "GET"),
                route("/apps/{app}/formation/{type}", self.patch_one_formation, "PATCH"),
                route("/apps/{app}/releases", self.list_releases, "GET"),
                route("/apps/{app}/releases", self.create_release, "POST"),
                route("/apps/{app}/releases/{release}", self.get_release, "GET"),
                route("/apps/{app}/dynos", self.list_dynos, "GET"),
                route("/apps/{app}/dynos/{dyno}", self.get_dyno, "GET"),
                route("/apps/{app}/log-sessions", self.create_log_session, "POST"),
                Route("/__emulator__/state", self.control_state, methods=["GET"]),
                Route("/__emulator__/inject", self.control_inject, methods=["POST", "DELETE"]),
                Route("/__emulator__/fail-next-release", self.control_fail, methods=["POST"]),
                Route("/__emulator__/settings", self.control_settings, methods=["POST"]),
                Route("/__emulator__/logs/{session}", self.stream_logs, methods=["GET"]),
                Route(
                    "/__emulator__/release-output/{release}",
                    self.stream_release_output,
                    methods=["GET"],
                ),
            ]
        )

    def _wrap(
        self, handler: Callable[..., Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            key = self._key(request)
            headers = {"Request-Id": new_id()}
            try:
                injected = await self._fault("api", request.method, request.url.path)
                if injected is not None:
                    status, body = injected
                    response: Response = JSONResponse(body, status)
                else:
                    response = await self._handle(request, handler, key)
            except ApiError as exc:
                response = JSONResponse(
                    {"id": exc.id, "message": exc.message, **exc.extra}, exc.status
                )
            except Exception as exc:  # every error is {"id", "message"}, even the emulator's
                traceback.print_exc()
                response = JSONResponse(
                    {"id": "internal_server_error", "message": f"Emulator error: {exc!r}"}, 500
                )
            if key in self.remaining:
                headers["RateLimit-Remaining"] = str(self.remaining[key])
            else:
                headers["RateLimit-Remaining"] = str(self.initial_rate_limit)
            response.headers.update(headers)
            return response

        return endpoint

    async def _handle(
        self, request: Request, handler: Callable[..., Awaitable[Any]], key: str | None
    ) -> Response:
        accept = request.headers.get("accept", "")
        variant = re.search(r"application/vnd\.heroku\+json;\s*version=([\w.-]+)", accept)
        if not variant or not variant.group(1).startswith("3"):
            raise ApiError(
                400,
                "missing_version",
                "Please specify a version along with Heroku's API MIME type. For example, "
                "`Accept: application/vnd.heroku+json; version=3`.",
            )
        if key is None:
            raise ApiError(401, "unauthorized", "Invalid credentials provided.")
        if self.remaining[key] <= 0:
            raise ApiError(
                429,
                "rate_limit",
                "Your account reached the API rate limit\n"
                "Please wait a few minutes before making new requests",
            )
        self.remaining[key] -= 1
        body: Any = None
        if request.method in {"POST", "PATCH", "PUT"}:
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "bad_request", "Invalid JSON in request body.") from None
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise ApiError(422, "invalid_params", "Request body must be a JSON object.")
        account = self.accounts[key]
        result = await handler(
            request,
            account=account,
            body=body,
            docker_releases=variant.group(1) == "3.docker-releases",
        )
        response = result if isinstance(result, Response) else JSONResponse(result[1], result[0])
        after = self._fault_after(request.method, request.url.path)
        if after is not None:
            if after.delay:
                await asyncio.sleep(after.delay)
            return JSONResponse(after.payload(), after.status)
        return response

    def _key(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip() in self.accounts:
            return value.strip()
        if scheme.lower() == "basic":
            import base64

            with contextlib.suppress(ValueError, UnicodeDecodeError):
                password = base64.b64decode(value).decode().partition(":")[2]
                if password in self.accounts:
                    return password
        return None

    def _app(self, request: Request, account: Account) -> App:
        ident = request.path_params["app"]
        for app in self.apps.values():
            if ident in {app.name, app.id}:
                if app.owner is not account:
                    raise ApiError(
                        403, "forbidden", "You do not have access to the app " + app.name + "."
                    )
                return app
        raise not_found("app")

    # -- account and apps
    async def get_account(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        return 200, account.json()

    async def list_apps(self, request: Request, account: Account, **_: Any) -> Response:
        apps = [a.json() for a in self.apps.values() if a.owner is account]
        return paginate(request, apps, "name", ["id", "name", "updated_at"])

    async def list_team_apps(self, request: Request, account: Account, **_: Any) -> Response:
        team = request.path_params["team"]
        if team not in self.teams:
            raise not_found("team")
        apps = [a.json() for a in self.apps.values() if a.team == team]
        return paginate(request, apps, "name", ["id", "name", "updated_at"])

    async def create_app(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        return 201, (await self._create_app(account, body, team=None)).json()

    async def create_team_app(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        team = body.get("team")
        if not body.get("personal") and team is None:
            raise ApiError(422, "invalid_params", "Team is required unless personal is true.")
        if team is not None and team not in self.teams:
            raise not_found("team")
        return 201, (await self._create_app(account, body, team=team)).json()

    async def _create_app(self, account: Account, body: dict, team: str | None) -> App:
        name = body.get("name")
        if name is None:
            while name is None or name in self.apps:
                words = random.choice(ADJECTIVES), random.choice(NOUNS)
                name = f"{words[0]}-{words[1]}-{random.randint(10000, 99999)}"
        if not isinstance(name, str) or not APP_NAME.match(name):
            raise ApiError(
                422,
                "invalid_params",
                "Name must start with a letter, end with a letter or digit and can only "
                "contain lowercase letters, digits, and dashes.",
            )
        if name in self.apps:
            raise ApiError(422, "invalid_params", "Name is already taken")
        region = body.get("region") or "us"
        region = next((r for r, rid in REGIONS.items() if region in {r, rid}), None)
        if region is None:
            raise not_found("region")
        stack = body.get("stack") or "heroku-24"
        stack = next((s for s, sid in STACKS.items() if stack in {s, sid}), None)
        if stack is None:
            raise not_found("stack")
        sock = bind(0)
        app = App(name, account, region, stack, sock.getsockname()[1], team=team)
        self.apps[name] = app
        self._app_locks[name] = asyncio.Lock()
        server = await self._serve(self._router(app), sock)
        self._servers.remove(server)
        self._routers[name] = server
        for description in ("Initial release", "Enable Logplex"):
            release = self._new_release(app, description, None)
            release.finish("succeeded")
            app.current = release
        app.released_at = now()
        app.log("heroku", "api", f"Release v1 created by {account.email}")
        return app

    async def get_app(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        return 200, self._app(request, account).json()

    async def delete_app(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        app = self._app(request, account)
        data = app.json()
        del self.apps[app.name]
        server, task = self._routers.pop(app.name)
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        async with self._app_locks.pop(app.name):
            await self._remove_app_resources(app)
        return 200, data

    async def _remove_app_resources(self, app: App) -> None:
        assert self.dynos is not None
        for container in await asyncio.to_thread(self.dynos.containers, app.name):
            await asyncio.to_thread(self.dynos.stop, container.id, 1)
        for reference in app.pulled:
            await asyncio.to_thread(self.dynos.remove_image, reference)
        app.pulled.clear()
        for repo in await asyncio.to_thread(self.registry_client.catalog):
            if repo.split("/")[0] == app.name:
                await asyncio.to_thread(self.registry_client.delete_repository, repo)
        self.registry_process.remove_repository_dir(app.name)  # type: ignore[union-attr]

    # -- config vars
    async def get_config_vars(
        self, request: Request, account: Account, **_: Any
    ) -> tuple[int, Any]:
        return 200, self._app(request, account).config_vars

    async def patch_config_vars(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        app = self._app(request, account)
        for key, value in body.items():
            if not CONFIG_KEY.match(key) or not (value is None or isinstance(value, str)):
                raise ApiError(
                    422,
                    "invalid_params",
                    f"Invalid config var {key!r}: values are strings or null.",
                )
        set_keys = [k for k, v in body.items() if v is not None]
        removed = [k for k, v in body.items() if v is None and k in app.config_vars]
        for key in removed:
            del app.config_vars[key]
        app.config_vars.update({k: body[k] for k in set_keys})
        if set_keys or removed:
            parts = []
            if set_keys:
                parts.append(f"Set {', '.join(set_keys)} config vars")
            if removed:
                parts.append(f"Remove {', '.join(removed)} config vars")
            image = app.current.image if app.current else None
            self._release(app, " and ".join(parts), image)
        return 200, app.config_vars

    # -- formation
    async def list_formation(self, request: Request, account: Account, **_: Any) -> Response:
        app = self._app(request, account)
        return paginate(request, [f.json() for f in app.formation.values()], "id", ["id", "type"])

    def _formation(self, app: App, type_: str) -> Formation:
        formation = next((f for f in app.formation.values() if type_ in {f.type, f.id}), None)
        if formation is None:
            raise not_found("formation", f"Couldn't find that process type ({type_}).")
        return formation

    async def get_formation(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        app = self._app(request, account)
        return 200, self._formation(app, request.path_params["type"]).json()

    async def patch_one_formation(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        app = self._app(request, account)
        update = {**body, "type": request.path_params["type"]}
        result = await self._update_formation(app, [update], docker_releases=False)
        return 200, result[0]

    async def patch_formation(
        self, request: Request, account: Account, body: dict, docker_releases: bool, **_: Any
    ) -> tuple[int, Any]:
        app = self._app(request, account)
        updates = body.get("updates")
        if not isinstance(updates, list) or not updates:
            raise ApiError(422, "invalid_params", "Missing required params: updates.")
        return 200, await self._update_formation(app, updates, docker_releases)

    async def _update_formation(
        self, app: App, updates: list[Any], docker_releases: bool
    ) -> list[dict[str, Any]]:
        images: dict[str, tuple[str, str, str]] = {}
        for update in updates:
            if not isinstance(update, dict) or not isinstance(update.get("type"), str):
                raise ApiError(422, "invalid_params", "Each update needs a process type.")
            allowed = {"type", "quantity", "size", "dyno_size"}
            if docker_releases:
                allowed.add("docker_image")
            extra = set(update) - allowed
            if extra:
                raise ApiError(
                    422,
                    "invalid_params",
                    f"Invalid params: {', '.join(sorted(extra))} not permitted"
                    + (
                        ""
                        if docker_releases
                        else " (docker_image needs "
                        "`Accept: application/vnd.heroku+json; version=3.docker-releases`)"
                    ),
                )
            if "docker_image" in update:
                if app.stack != "container":
                    raise ApiError(
                        422,
                        "invalid_params",
                        "This app's stack is not container; images can only be released to "
                        "apps on the container stack.",
                    )
                digest = update["docker_image"]
                if not isinstance(digest, str) or not DIGEST.match(digest):
                    raise ApiError(
                        422, "invalid_params", "docker_image must be an image id (sha256:...)."
                    )
                repos = [f"{app.name}/{update['type']}"]
                try:
                    repo, manifest = await asyncio.to_thread(
                        self.registry_client.find_config_digest, repos, digest
                    )
                except LookupError:
                    raise ApiError(
                        422,
                        "invalid_params",
                        f"Couldn't find that docker image ({digest}) in "
                        f"{self.registry}/{repos[0]}.",
                    ) from None
                images[update["type"]] = (digest, repo, manifest)
            elif update["type"] not in app.formation:
                raise not_found("formation", f"Couldn't find that process type ({update['type']}).")
            size = update.get("dyno_size", update.get("size"))
            if isinstance(size, dict):
                size = size.get("name") or size.get("id")
            if size is not None:
                match = [
                    s
                    for s in DYNO_SIZES
                    if size in {s, DYNO_SIZE_IDS[s]} or str(size).lower() == s.lower()
                ]
                if not match:
                    raise ApiError(
                        422,
                        "invalid_params",
                        f"No such size as {size}. Use {', '.join(DYNO_SIZES)}.",
                    )
                update["size"] = match[0]
            if "quantity" in update and (
                not isinstance(update["quantity"], int) or update["quantity"] < 0
            ):
                raise ApiError(422, "invalid_params", "Quantity must be a whole number >= 0.")
        for update in updates:  # Eco and Basic run one dyno per process type at most
            current = app.formation.get(update["type"])
            size = update.get("size") or (current.size if current else None)
            size = size or ("Standard-1X" if app.team else "Basic")
            if size in {"Eco", "Basic"} and int(update.get("quantity") or 0) > 1:
                raise ApiError(
                    422,
                    "invalid_params",
                    f"Cannot update to more than 1 {size} size dynos per process type.",
                )
        changed = []
        for update in updates:
            type_ = update["type"]
            formation = app.formation.get(type_)
            if formation is None:
                formation = Formation(app, type_, size="Standard-1X" if app.team else "Basic")
                app.formation[type_] = formation
            if "size" in update:
                formation.size = update["size"]
            if "quantity" in update:
                formation.quantity = update["quantity"]
            formation.updated_at = now()
            changed.append(formation.json())
        for type_, (digest, repo, manifest) in images.items():
            release = self._release(app, f"Deployed {type_} ({digest[7:19]})", digest)
            release.manifest = f"{repo}@{manifest}"
        if not images and "web" in app.formation:
            self._spawn(self._scale(app))
        return changed

    async def _scale(self, app: App) -> None:
        """Quantity changes without a new image: stop the dyno at 0, boot one at >= 1."""
        async with self._app_locks[app.name]:
            web = app.formation.get("web")
            if web is None:
                return
            if web.quantity == 0 and app.dyno is not None:
                await self._fit_extra(app, 0)
                await self._stop_dyno(app, app.dyno)
                app.dyno = None
            elif web.quantity > 0 and app.dyno is None and app.current and app.current.image:
                await self._boot(app, app.current, make_current=False)
            elif web.quantity > 0 and app.dyno is not None:
                await self._fit_extra(app, web.quantity - 1)

    # -- releases
    def _new_release(self, app: App, description: str, image: str | None) -> Release:
        version = len(app.releases) + 1
        release = Release(app, version, description, image, dict(app.config_vars))
        app.releases.append(release)
        app.log("heroku", "api", f"Release v{version} created by {app.owner.email}")
        return release

    def _release(self, app: App, description: str, image: str | None) -> Release:
        release = self._new_release(app, description, image)
        web = app.formation.get("web")
        if image is None or (web is not None and web.quantity == 0):
            release.finish("succeeded")
            app.current = release
            app.released_at = now()
            return release
        if app.current is not None and release.manifest is None:
            release.manifest = next(
                (r.manifest for r in reversed(app.releases) if r.image == image and r.manifest),
                None,
            )
        self._spawn(self._boot_locked(app, release))
        return release

    async def _boot_locked(self, app: App, release: Release) -> None:
        async with self._app_locks[app.name]:
            if app.name in self.apps:
                await self._boot(app, release, make_current=True)

    async def _boot(self, app: App, release: Release, make_current: bool) -> None:
        """Pull, run with $PORT, wait for the bind; swap dynos once the new one is up."""
        assert self.dynos is not None
        say = release.output.append
        say(f"Releasing {release.image} to {app.name} (v{release.version})")
        try:
            if release.manifest is None:
                raise LookupError("no registry reference for this image")
            repo, _, digest = release.manifest.partition("@")
            reference = await asyncio.to_thread(self.dynos.pull, repo, digest)
            app.pulled.add(reference)
            command = await asyncio.to_thread(self.dynos.command_of, reference)
            name = f"heroku-emu-{self.instance}-{app.name}-v{release.version}"
            container_id, port, host_port = await asyncio.to_thread(
                self.dynos.run, app.name, reference, release.env, name
            )
        except Exception as exc:
            say(f"Release failed: {exc}")
            release.finish("failed")
            app.log("heroku", "web.1", f"Release v{release.version} failed: {exc}")
            return
        web = app.formation.get("web")
        dyno = Dyno(
            app, release, container_id, port, host_port, command, size=web.size if web else "Basic"
        )
        app.log("heroku", "web.1", f"Starting process with command `{command}`")
        say(f"Starting process with command `{command}`")
        failure = self.next_release_failure
        self.next_release_failure = None
        deadline = time.monotonic() + self.boot_timeout
        while True:
            running, code, pid = await asyncio.to_thread(self.dynos.state, container_id)
            if (
                failure is None
                and running
                and await asyncio.to_thread(self.dynos.listening, pid, port, host_port)
            ):
                break
            if failure is None and not running:
                await self._stop_dyno(app, dyno, exited=code)
                dyno.set_state("crashed")
                say(f"Process exited with status {code} before binding $PORT")
                release.finish("failed")
                return
            if failure is not None or time.monotonic() > deadline:
                seconds = int(self.boot_timeout) if failure is None else 60
                text = (
                    "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within "
                    f"{seconds} seconds of launch"
                )
                app.log("heroku", "web.1", text)
                say(text)
                app.log("heroku", "web.1", "Stopping process with SIGKILL")
                await self._stop_dyno(app, dyno, quiet=True, grace=0)
                app.log("heroku", "web.1", "Process exited with status 137")
                dyno.set_state("crashed")
                release.finish("failed")
                return
            await asyncio.sleep(0.2)
        dyno.set_state("up")
        say("State changed from starting to up")
        old = app.dyno
        app.dyno = dyno  # the router sends new requests to the new dyno from here on
        if old is not None:
            await self._stop_dyno(app, old)
        if web is not None:  # web.2 ... of the new release replace the old ones
            await self._fit_extra(app, 0)
            await self._fit_extra(app, web.quantity - 1)
        if make_current:
            app.current = release
            app.released_at = now()
            release.finish("succeeded")

    async def _fit_extra(self, app: App, wanted: int) -> None:
        """Run WANTED dynos besides web.1 (web.2 ...), of web.1's release, each its own
        container with its own $DYNO; the router picks among the dynos that are up."""
        assert self.dynos is not None
        while len(app.extra) > max(0, wanted):
            await self._stop_dyno(app, app.extra.pop())
        first = app.dyno
        if first is None or first.release.manifest is None:
            return
        while len(app.extra) < wanted:
            number = len(app.extra) + 2
            name = f"web.{number}"
            repo, _, digest = first.release.manifest.partition("@")
            reference = await asyncio.to_thread(self.dynos.pull, repo, digest)
            container_id, port, host_port = await asyncio.to_thread(
                self.dynos.run,
                app.name,
                reference,
                first.release.env,
                f"heroku-emu-{self.instance}-{app.name}-v{first.release.version}-{number}",
                name,
            )
            dyno = Dyno(
                app,
                first.release,
                container_id,
                port,
                host_port,
                first.command,
                name=name,
                size=first.size,
            )
            app.extra.append(dyno)
            app.log("heroku", name, f"Starting process with command `{first.command}`")
            deadline = time.monotonic() + self.boot_timeout
            while time.monotonic() < deadline:
                running, _, pid = await asyncio.to_thread(self.dynos.state, container_id)
                if running and await asyncio.to_thread(self.dynos.listening, pid, port, host_port):
                    dyno.set_state("up")
                    break
                if not running:
                    dyno.set_state("crashed")
                    break
                await asyncio.sleep(0.2)

    async def _stop_dyno(
        self, app: App, dyno: Dyno, exited: int | None = None, quiet: bool = False, grace: int = 3
    ) -> None:
        """SIGTERM, then SIGKILL after GRACE seconds (Heroku: 30 s; R10: SIGKILL at once)."""
        assert self.dynos is not None
        if exited is None and not quiet:
            app.log("heroku", dyno.name, "Stopping all processes with SIGTERM")
        code, lines = await asyncio.to_thread(self.dynos.stop, dyno.container_id, grace)
        for stamp, text in lines:
            app.logs.append(LogLine(stamp, "app", dyno.name, text))
        app.logs.sort(key=lambda line: line.timestamp)
        if not quiet:
            app.log(
                "heroku",
                dyno.name,
                f"Process exited with status {exited if exited is not None else code}",
            )
        if app.dyno is dyno and exited is None:
            dyno.set_state("down")

    async def _refresh_dyno(self, app: App) -> None:
        """Heroku notices a crash when it happens; the emulator when someone looks."""
        dyno = app.dyno
        if dyno is None or dyno.state != "up" or self.dynos is None:
            return
        running, code, _ = await asyncio.to_thread(self.dynos.state, dyno.container_id)
        if not running:
            app.log("heroku", dyno.name, f"Process exited with status {code}")
            dyno.set_state("crashed")

    def _find_release(self, app: App, ident: Any) -> Release:
        for release in app.releases:
            if str(ident) in {release.id, str(release.version)}:
                return release
        raise not_found("release")

    async def list_releases(self, request: Request, account: Account, **_: Any) -> Response:
        app = self._app(request, account)
        items = [r.json(self.api_url, self.release_shape) for r in app.releases]
        return paginate(request, items, "version", ["id", "version"])

    async def get_release(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        app = self._app(request, account)
        return 200, self._find_release(app, request.path_params["release"]).json(
            self.api_url, self.release_shape
        )

    async def create_release(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        """Rollback (``{"release": id}``); slug releases do not exist on the container stack."""
        app = self._app(request, account)
        if "release" not in body:
            raise ApiError(422, "invalid_params", "Missing required params: release.")
        target = self._find_release(app, body["release"])
        if target.image is None:
            raise ApiError(
                422, "invalid_params", f"Release v{target.version} has no image to roll back to."
            )
        release = self._new_release(app, f"Rollback to v{target.version}", target.image)
        release.env = dict(target.env)
        app.config_vars = dict(target.env)
        release.manifest = target.manifest
        self._spawn(self._boot_locked(app, release))
        return 201, release.json(self.api_url, self.release_shape)

    # -- dynos and logs
    async def list_dynos(self, request: Request, account: Account, **_: Any) -> Response:
        app = self._app(request, account)
        await self._refresh_dyno(app)
        return paginate(request, [d.json() for d in app.web_dynos()], "id", ["id", "name"])

    async def get_dyno(self, request: Request, account: Account, **_: Any) -> tuple[int, Any]:
        app = self._app(request, account)
        await self._refresh_dyno(app)
        ident = request.path_params["dyno"]
        found = next((d for d in app.web_dynos() if ident in {d.id, d.name}), None)
        if found is None:
            raise not_found("dyno")
        return 200, found.json()

    async def create_log_session(
        self, request: Request, account: Account, body: dict, **_: Any
    ) -> tuple[int, Any]:
        app = self._app(request, account)
        lines = body.get("lines", 100)
        if not isinstance(lines, int) or not 0 <= lines <= 1500:
            raise ApiError(422, "invalid_params", "lines must be between 0 and 1500.")
        session = {
            "id": new_id(),
            "app": app,
            "lines": lines,
            "tail": bool(body.get("tail")),
            "source": body.get("source"),
            "dyno": body.get("dyno_name") or body.get("dyno"),
            "created_at": now(),
        }
        self.log_sessions[session["id"]] = session
        return 201, {
            "created_at": session["created_at"],
            "id": session["id"],
            "logplex_url": f"{self.api_url}/__emulator__/logs/{session['id']}",
            "updated_at": session["created_at"],
        }

    async def _app_lines(self, app: App) -> list[LogLine]:
        lines = list(app.logs)
        if self.dynos is not None:
            for dyno in app.web_dynos():
                for stamp, text in await asyncio.to_thread(self.dynos.logs, dyno.container_id):
                    lines.append(LogLine(stamp, "app", dyno.name, text))
        lines.sort(key=lambda line: line.timestamp)
        return lines

    async def stream_logs(self, request: Request) -> Response:
        session = self.log_sessions.get(request.path_params["session"])
        if session is None:
            return JSONResponse({"id": "not_found", "message": "Log session not found."}, 404)
        app: App = session["app"]

        def wanted(line: LogLine) -> bool:
            if session["source"] and line.source != session["source"]:
                return False
            return not session["dyno"] or line.dyno == session["dyno"]

        async def lines() -> AsyncIterator[bytes]:
            sent: set[str] = set()
            first = [line for line in await self._app_lines(app) if wanted(line)]
            for line in first[-session["lines"] :] if session["lines"] else []:
                sent.add(line.format())
                yield (line.format() + "\n").encode()
            for line in first:
                sent.add(line.format())
            while session["tail"] and not self._stopping and app.name in self.apps:
                await asyncio.sleep(0.5)
                for line in await self._app_lines(app):
                    text = line.format()
                    if text not in sent and wanted(line):
                        sent.add(text)
                        yield (text + "\n").encode()

        return StreamingResponse(lines(), media_type="text/plain; charset=utf-8")

    async def stream_release_output(self, request: Request) -> Response:
        release = next(
            (
                r
                for app in self.apps.values()
                for r in app.releases
                if r.id == request.path_params["release"]
            ),
            None,
        )
        if release is None:
            return JSONResponse({"id": "not_found", "message": "Stream not found."}, 404)

        async def output() -> AsyncIterator[bytes]:
            sent = 0
            while True:
                while sent < len(release.output):
                    yield (release.output[sent] + "\n").encode()
                    sent += 1
                if release.status != "pending" or self._stopping:
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(output(), media_type="text/plain; charset=utf-8")

    # ---- control endpoints for out-of-process tests --------------------------------
    async def control_state(self, request: Request) -> Response:
        return JSONResponse(await self._state())

    async def control_inject(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return JSONResponse({"faults": []})
        body = await request.json()
        fault = self.inject(**body)
        return JSONResponse(fault.__dict__, 201)

    async def control_fail(self, request: Request) -> Response:
        body = (await request.json()) if (await request.body()) else {}
        self.fail_next_release(body.get("code", "R10"))
        return JSONResponse({"next_release_failure": self.next_release_failure})

    async def control_settings(self, request: Request) -> Response:
        body = await request.json()
        for name in ("boot_timeout", "request_timeout"):
            if name in body:
                setattr(self, name, float(body[name]))
        if body.get("release_shape") in RELEASE_SHAPES:
            self.release_shape = body["release_shape"]
        if "rate_limit_remaining" in body:
            self.set_rate_limit(int(body["rate_limit_remaining"]), body.get("api_key"))
        return JSONResponse(
            {
                "boot_timeout": self.boot_timeout,
                "request_timeout": self.request_timeout,
                "release_shape": self.release_shape,
                "rate_limit_remaining": self.remaining,
            }
        )

    # ---- the router -----------------------------------------------------------------
    def _router(self, app: App) -> Callable[..., Awaitable[None]]:
        async def router(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
            if scope["type"] != "http":
                return
            await self._route(app, scope, receive, send)

        return router

    async def _route(self, app: App, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        request_id = new_id()
        method = scope["method"]
        path = scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        fields = f'method={method} path="{path}" host={host} request_id={request_id} fwd="{client}"'

        async def error(code: str, dyno: str = "") -> None:
            service = int((time.monotonic() - started) * 1000)
            app.log(
                "heroku",
                "router",
                f'at=error code={code} desc="{ROUTER_ERRORS[code]}" {fields} dyno={dyno} '
                f"connect=0ms service={service}ms status=503 bytes={len(ERROR_PAGE)} protocol=http",
            )
            body = ERROR_PAGE.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-cache, no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        await self._refresh_dyno(app)
        dyno = app.dyno
        web = app.formation.get("web")
        if dyno is not None and dyno.state == "up":  # the router picks one dyno at random
            dyno = random.choice([d for d in app.web_dynos() if d.state == "up"])
        if dyno is None or web is None or web.quantity == 0:
            await error("H14")
            return
        if dyno.state == "crashed":
            await error("H10", dyno.name)
            return
        extra = [
            (b"x-forwarded-for", client.encode()),
            (b"x-forwarded-proto", b"http"),
            (b"x-forwarded-port", str(app.router_port).encode()),
            (b"x-request-id", request_id.encode()),
            (b"x-request-start", str(int(time.time() * 1000)).encode()),
            (b"via", b"1.1 vegur"),
        ]
        has_body = method in {"POST", "PUT", "PATCH"}
        upstream: Upstream | None = None
        try:
            upstream = await Upstream.connect("127.0.0.1", dyno.host_port)
            connected = int((time.monotonic() - started) * 1000)
            remaining = max(0.0, self.request_timeout - (time.monotonic() - started))

            async def exchange() -> Any:
                assert upstream is not None
                await upstream.send_request(
                    method,
                    path,
                    request_headers(scope["headers"], has_body, extra),
                    asgi_body(receive),
                )
                return await upstream.response()

            response = await asyncio.wait_for(exchange(), remaining)
        except TimeoutError:
            if upstream is not None:
                upstream.close()
            await error("H12", dyno.name)
            return
        except UpstreamError:
            if upstream is not None:
                upstream.close()
            await self._refresh_dyno(app)
            await error("H10" if dyno.state == "crashed" else "H13", dyno.name)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response_headers(response.headers),
            }
        )
        size = 0
        try:
            async for chunk in upstream.body():
                size += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            pass
        finally:
            upstream.close()
        await send({"type": "http.response.body", "body": b""})
        service = int((time.monotonic() - started) * 1000) - connected
        app.log(
            "heroku",
            "router",
            f"at=info {fields} dyno={dyno.name} connect={connected}ms service={service}ms "
            f"status={response.status_code} bytes={size} protocol=http",
        )


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


RANGE = re.compile(r"^\s*(\w+)\s+(\]?)([^.;]*)\.\.(\[?)([^;]*)(?:;\s*(.*))?$")


def paginate(
    request: Request, items: list[dict[str, Any]], default: str, fields: list[str]
) -> Response:
    """Heroku's ``Range`` lists: 200 when complete, 206 + ``Next-Range`` when cut at max."""
    header = request.headers.get("range")
    field_name, start, exclusive, order, limit = default, None, False, "asc", 200
    if header:
        match = RANGE.match(header)
        if not match or match.group(1) not in fields:
            raise ApiError(
                400, "bad_request", f"Invalid Range header; accepted ranges: {', '.join(fields)}."
            )
        field_name, exclusive, start = match.group(1), bool(match.group(2)), match.group(3).strip()
        for param in re.split(r"[,;]", match.group(6) or ""):
            key, _, value = param.strip().partition("=")
            if key == "max" and value.isdigit():
                limit = min(int(value), 1000)
            elif key == "order" and value in {"asc", "desc"}:
                order = value
    key = (
        (lambda item: item[field_name])
        if field_name != "version"
        else (lambda item: int(item["version"]))
    )
    ordered = sorted(items, key=key, reverse=order == "desc")
    if start:
        bound: Any = int(start) if field_name == "version" else start

        def keep(item: dict[str, Any]) -> bool:
            value = key(item)
            if order == "desc":
                return value < bound if exclusive else value <= bound
            return value > bound if exclusive else value >= bound

        ordered = [item for item in ordered if keep(item)]
    page = ordered[:limit]
    response = JSONResponse(page, 206 if len(ordered) > limit else 200)
    response.headers["Accept-Ranges"] = ", ".join(fields)
    if page:
        response.headers["Content-Range"] = f"{field_name} {key(page[0])}..{key(page[-1])}"
    if len(ordered) > limit:
        response.headers["Next-Range"] = (
            f"{field_name} ]{key(page[-1])}..; max={limit}, order={order}"
        )
    return response
