"""The ASGI application: routing, limits, auth, and the three protocols.

A plain ASGI callable rather than a framework: a request costs one dict lookup to
route, and the image carries no Starlette/FastAPI/pydantic.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import socket
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from app.serving import openapi, routes, v2
from app.serving.batcher import Batcher
from app.serving.capture import Capture, read_lines
from app.serving.config import ServeConfig
from app.serving.metrics import Metrics
from app.serving.model import ModelRuntime, RequestError, check_json_depth

log = logging.getLogger("modelship.serving")
VERSION = "1"
_OPT = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
JSON = b"application/json"
CSV = b"text/csv"
PUBLIC = routes.PUBLIC
OTHER_ROUTE = "other"  # the /metrics label of every path that is not a route


def _json(data: Any) -> bytes:
    return orjson.dumps(data, option=_OPT)


# the key where the Authorization header is not passed on (Kubernetes' services proxy)
KEY_HEADER = b"x-modelship-key"
# names the server instance on GET /capture answers: behind a router that picks one of
# several (Heroku's dynos), the caller pulls until it has heard from each
INSTANCE_HEADER = b"x-modelship-instance"


def instance_name() -> str:
    """This server's instance: the dyno on Heroku (``$DYNO``, e.g. web.2), else the
    host name (a Kubernetes pod's name, a container's id)."""
    return os.environ.get("DYNO") or socket.gethostname()


class ServingApp:
    """One model behind every route. ``runtime`` is set once load + warm-up pass."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.runtime: ModelRuntime | None = None
        self.batcher: Batcher | None = None
        self.metrics = Metrics(config.model.stem)
        self.capture = Capture(
            config.capture_dir, config.capture_rate, config.capture_max_mb, config.workers
        )
        self.metrics.capture = self.capture if self.capture.enabled else None
        self._api_key = (config.api_key or "").encode("utf-8") or None
        self._openapi: bytes | None = None
        self._depth = config.max_json_depth
        # the route table (app/serving/routes.py): paths without {name} by one lookup
        self._routes = {
            (r.method, r.path): getattr(self, r.handler) for r in routes.STATIC.values()
        }
        self._known = frozenset(routes.STATIC)

    # ---- lifecycle ------------------------------------------------------------
    def load(self) -> None:
        """Load the model and run it once. Raises ModelLoadError if it cannot serve."""
        started = time.perf_counter()
        rt = ModelRuntime(self.config.model, threads=self.config.threads)
        rt.warm_up()
        self.metrics.model = rt.name
        self.metrics.load_seconds = time.perf_counter() - started
        self.batcher = Batcher(
            rt.run,
            enabled=self.config.batching and rt.batchable,
            max_batch=self.config.max_batch,
            max_wait_s=self.config.max_wait_ms / 1000.0,
            on_batch=self.metrics.observe_batch,
            inline_below_s=self.config.inline_below_ms / 1000.0,
        )
        self._openapi = _json(openapi.build(rt, version=VERSION, api_key=self._api_key is not None))
        self.runtime = rt
        self.capture.start()
        log.info(
            "model %s ready in %.2fs (batching %s)",
            rt.name,
            self.metrics.load_seconds,
            "on" if self.batcher.enabled else "off",
        )

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()
        if self.capture.enabled:
            await asyncio.get_running_loop().run_in_executor(None, self.capture.close)

    # ---- ASGI -------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.runtime is None:
                        await asyncio.get_running_loop().run_in_executor(None, self.load)
                except Exception as exc:
                    log.error("cannot serve the model: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        # /metrics labels known routes only: every other path is one "other" series, so
        # requests to made-up paths cannot grow it without bound
        route = path if path in self._known else OTHER_ROUTE
        # HEAD is GET without the body (load balancers and monitors probe health with it)
        head = method == "HEAD"
        lookup = "GET" if head else method
        self.metrics.in_flight += 1
        try:
            handler = self._routes.get((lookup, path))
            if handler is None:
                handler, route, args = self._dynamic_route(lookup, path)
            else:
                args = ()
            if route not in PUBLIC:
                self._check_auth(scope)
            status, ctype, body, extra = await handler(scope, receive, *args)
        except RequestError as exc:
            status, ctype, body, extra = exc.status, JSON, _json({"error": exc.message}), []
            if status == 401:
                extra = [(b"www-authenticate", b'Bearer realm="modelship"')]
            elif status == 405:
                extra = [(b"allow", getattr(exc, "allow", b"GET"))]
        except Exception:  # a bug: say so without details that might leak internals
            log.exception("internal error on %s %s", method, route)
            status, ctype, body, extra = (
                500,
                JSON,
                _json({"error": "Internal error in the server; see its log."}),
                [],
            )
        finally:
            self.metrics.in_flight -= 1
        headers = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        self.metrics.observe(route, status, time.perf_counter() - t0)

    def _dynamic_route(self, method: str, path: str) -> tuple[Any, str, tuple]:
        parts = path.strip("/").split("/")
        if path in self._known:
            err = RequestError(405, f"{method} is not allowed on {path}.")
            err.allow = routes.allowed(routes.STATIC[path])  # type: ignore[attr-defined]
            raise err
        if len(parts) >= 3 and parts[0] == "v2" and parts[1] == "models":
            name = parts[2]
            rest = parts[3:]
            if len(rest) >= 2 and rest[0] == "versions":  # /v2/models/m/versions/1/...
                rest = rest[2:]
            template = "/".join(["/v2/models/{name}", *rest])
            route = routes.TEMPLATED.get(template)
            if route is not None:
                handler = self._need(route.method, method, getattr(self, route.handler))
                return handler, route.path, (name,)
        raise RequestError(404, routes.not_found(path))

    @staticmethod
    def _need(want: str, method: str, handler: Any) -> Any:
        if method != want:
            err = RequestError(405, f"Use {want} here, not {method}.")
            err.allow = want.encode()  # type: ignore[attr-defined]
            raise err
        return handler

    def _check_auth(self, scope: dict) -> None:
        """The key as ``Authorization: Bearer KEY``, or as ``X-ModelShip-Key: KEY`` where
        the Authorization header cannot reach the server: a Kubernetes API server's
        services proxy takes that header for itself and passes others on."""
        if self._api_key is None:
            return
        given = b""
        for k, v in scope["headers"]:
            if k == KEY_HEADER:
                given = b"Bearer " + v
                break
            if k == b"authorization":
                given = v
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._api_key):
            raise RequestError(
                401,
                "This endpoint needs an API key: send the header 'Authorization: Bearer KEY'."
                if not given
                else "The API key is wrong.",
            )

    # ---- bodies -----------------------------------------------------------------
    async def _read_body(self, scope: dict, receive: Any) -> bytes:
        limit = self.config.max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    raise RequestError(400, "Content-Length is not a number.") from None
                if declared > limit:
                    raise RequestError(413, _too_large(declared, limit))
                break
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "The client went away before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestError(413, _too_large(size, limit, more=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if not body:
            raise RequestError(400, "The request body is empty: send the rows to predict.")
        return body

    def _ready_runtime(self) -> tuple[ModelRuntime, Batcher]:
        if self.runtime is None or self.batcher is None:
            raise RequestError(503, "The model is still loading; try again in a moment.")
        return self.runtime, self.batcher

    # ---- handlers -----------------------------------------------------------------
    async def ping(self, scope: dict, receive: Any) -> tuple:
        self._ready_runtime()
        return 200, JSON, b'{"status":"ready"}', []

    async def live(self, scope: dict, receive: Any) -> tuple:
        return 200, JSON, b'{"live":true}', []

    async def server_meta(self, scope: dict, receive: Any) -> tuple:
        doc = {"name": "modelship", "version": VERSION, "extensions": ["binary_tensor_data"]}
        return 200, JSON, _json(doc), []

    async def get_metrics(self, scope: dict, receive: Any) -> tuple:
        return 200, b"text/plain; version=0.0.4; charset=utf-8", self.metrics.render(), []

    async def get_openapi(self, scope: dict, receive: Any) -> tuple:
        self._ready_runtime()
        return 200, JSON, self._openapi or b"{}", []

    def _model(self, name: str) -> tuple[ModelRuntime, Batcher]:
        rt, b = self._ready_runtime()
        if name != rt.name:
            raise RequestError(404, f"There is no model {name!r}; this server has {rt.name!r}.")
        return rt, b

    async def model_meta(self, scope: dict, receive: Any, name: str) -> tuple:
        rt, _ = self._model(name)
        return 200, JSON, _json(v2.metadata(rt)), []

    async def model_ready(self, scope: dict, receive: Any, name: str) -> tuple:
        self._model(name)
        return 200, JSON, _json({"name": name, "ready": True}), []

    async def infer(self, scope: dict, receive: Any, name: str) -> tuple:
        rt, batcher = self._model(name)
        header_len = None
        for k, v in scope["headers"]:
            if k == b"inference-header-content-length":
                header_len = v.decode("latin-1")
        body = await self._read_body(scope, receive)
        check_json_depth(body[: int(header_len)] if _is_int(header_len) else body, self._depth)
        return await self._infer_body(rt, batcher, body, header_len, scope["path"])

    async def _infer_body(
        self, rt: ModelRuntime, batcher: Batcher, body: bytes, header_len: str | None, path: str
    ) -> tuple:
        feeds, n, wanted, _, binary_out, req_id = v2.parse_request(
            rt, body, header_len, self.config.max_rows
        )
        outputs = await self._run(rt, batcher, feeds, n)
        payload, head = v2.build_response(rt, outputs, wanted, binary_out, req_id)
        self.capture.offer(path, rt, feeds, n, outputs)
        if head is None:
            return 200, JSON, payload, []
        return (
            200,
            b"application/octet-stream",
            payload,
            [(b"inference-header-content-length", str(head).encode())],
        )

    async def predict(self, scope: dict, receive: Any) -> tuple:
        rt, batcher = self._ready_runtime()
        ctype = accept = b""
        for k, v in scope["headers"]:
            if k == b"content-type":
                ctype = v.split(b";")[0].strip().lower()
            elif k == b"accept":
                accept = v.lower()
        is_csv = ctype in {b"text/csv", b"application/csv"}
        if not is_csv and ctype not in {b"", b"application/json"} and not ctype.endswith(b"+json"):
            raise RequestError(
                415,
                f"Content type {ctype.decode('latin-1')!r} is not supported: send "
                "application/json (a list of rows or records) or text/csv "
                "(with curl: -H 'Content-Type: application/json').",
            )
        body = await self._read_body(scope, receive)
        header = True
        if is_csv:
            feeds, n, header = rt.feeds_from_csv(body, self.config.max_rows)
        else:
            check_json_depth(body, self._depth)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise RequestError(400, f"The body is not valid JSON: {exc}.") from None
            if isinstance(payload, dict) and "inputs" in payload:
                # SageMaker's InvokeEndpoint reaches only /invocations: an Open Inference
                # Protocol v2 request ({"inputs": [...]}) there is answered as v2 infer.
                return await self._infer_body(rt, batcher, body, None, scope["path"])
            feeds, n = rt.feeds_from_json(payload, self.config.max_rows)
        outputs = await self._run(rt, batcher, feeds, n)
        want_csv = b"text/csv" in accept or (is_csv and b"application/json" not in accept)
        if want_csv:
            answer = 200, CSV, rt.answer_csv(outputs, header), []
        else:
            answer = 200, JSON, _json(rt.answer_json(outputs)), []
        self.capture.offer(scope["path"], rt, feeds, n, outputs)
        return answer

    async def get_capture(self, scope: dict, receive: Any) -> tuple:
        """The captured requests of every worker (app/serving/capture.py), as JSON Lines."""
        if not self.capture.enabled:
            raise RequestError(
                404,
                "Capture is off on this server: set capture_rate above 0 in the deployment's "
                "settings (MODELSHIP_CAPTURE_RATE) to keep a share of the requests.",
            )
        cfg = self.config
        if self._api_key is None and not (cfg.capture_guarded or _loopback(cfg.host)):
            raise RequestError(
                403,
                "This server has no API key and can be reached beyond this computer, so it "
                "does not hand out its captured requests: set an API key.",
            )
        since: float | None = None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "since" in query:
            try:
                since = float(query["since"][-1])
            except ValueError:
                raise RequestError(400, "since must be a Unix time (a number).") from None
        data = await asyncio.get_running_loop().run_in_executor(
            None, read_lines, self.capture.directory, since
        )
        instance = instance_name().encode("ascii", "replace")
        return 200, b"application/x-ndjson", data, [(INSTANCE_HEADER, instance)]

    async def _run(self, rt: ModelRuntime, batcher: Batcher, feeds: dict, n: int) -> list[Any]:
        try:
            return await batcher.submit(feeds, n)
        except RequestError:
            raise
        except Exception as exc:
            # Inputs passed every check but the model refused them (e.g. a value outside
            # what an encoder was fitted on): the caller's data, so a 422 with the reason.
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RequestError(422, f"The model could not run on this input: {msg[:300]}") from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_int(text: str | None) -> bool:
    return text is not None and text.strip().isdigit()


def _too_large(size: int, limit: int, more: bool = False) -> str:
    return (
        f"The body is {'over ' if more else ''}{size} bytes; the limit is {limit} bytes "
        "(MODELSHIP_MAX_BODY_BYTES). Split the rows over several requests."
    )


def create_app() -> ServingApp:
    """App factory for ``uvicorn --factory app.serving.app:create_app`` (config from env)."""
    from app.serving.config import from_env

    return ServingApp(from_env())
