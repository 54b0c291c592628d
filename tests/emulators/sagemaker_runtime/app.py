"""HTTP face of the emulator: the SageMaker control plane, the runtime, and /__emulator__/.

One ASGI app answers both services, so ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` may name the same address. Handlers are plain
functions: Starlette runs them in its thread pool, so a slow container never blocks
the event loop.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import wire
from .emulator import Emulator


def _send(reply: wire.Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


def build_app(emulator: Emulator) -> Starlette:
    """The ASGI app for ``emulator`` (serve it with uvicorn)."""

    async def root(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        if request.method != "POST" or not target.startswith("SageMaker."):
            return _send(
                wire.error_reply(
                    "UnknownOperationException",
                    "This emulator answers SageMaker (X-Amz-Target: SageMaker.<Operation>) "
                    "and sagemaker-runtime InvokeEndpoint only.",
                    404 if request.method != "POST" else 400,
                    json11=True,
                )
            )
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        from starlette.concurrency import run_in_threadpool

        return _send(await run_in_threadpool(emulator.control_plane, target, body, headers))

    async def invocations(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        from starlette.concurrency import run_in_threadpool

        reply = await run_in_threadpool(
            emulator.invoke,
            request.method,
            str(request.url),
            request.path_params["name"],
            body,
            headers,
        )
        return _send(reply)

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "endpoints": emulator.endpoints(),
                "containers": emulator.containers(),
                "faults": [f.as_dict() for f in emulator.faults()],
                "calls": [list(c) for c in emulator.calls],
                "moto_url": emulator.moto_url,
                "run_id": emulator.run_id,
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.clear_faults()
            return JSONResponse({"faults": []})
        if request.method == "GET":
            return JSONResponse({"faults": [f.as_dict() for f in emulator.faults()]})
        spec: dict[str, Any] = await request.json()
        try:
            operation = spec.pop("operation")
            fault = emulator.inject(operation, **spec)
        except (KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad fault: {exc}"}, status_code=400)
        return JSONResponse(fault.as_dict(), status_code=201)

    async def reset(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(emulator.reset)
        return JSONResponse({"reset": True})

    return Starlette(
        routes=[
            Route("/", root, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route("/__emulator__/health", health, methods=["GET"]),
            Route("/__emulator__/state", state, methods=["GET"]),
            Route("/__emulator__/endpoints", state, methods=["GET"]),
            Route("/__emulator__/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/__emulator__/reset", reset, methods=["POST"]),
        ]
    )
