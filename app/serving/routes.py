"""The server's routes, in one table: the ASGI app routes by it, and the 404 answer and
``GET /openapi.json`` (app/serving/openapi.py) are built from it, so a route added
here is served, named and documented at once.

In the order the 404 answer names them. ``{name}`` in a path is the model's name (the
Open Inference Protocol's paths; ``/versions/N`` after it is accepted and ignored).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str  # GET (HEAD too) or POST
    path: str
    handler: str  # the name of the ServingApp method that answers
    summary: str  # the OpenAPI summary; {model} is the served model's name
    public: bool = False  # answers without the API key (health checks)
    body: str | None = None  # the request body: "rows" (JSON or CSV), "infer" (v2 tensors)
    # which responses: plain, ready, rows, model, infer, metrics, capture
    answers: str = "plain"


V2 = "/v2"  # its routes are named once in the 404 answer, as below
V2_WORDS = "/v2/... (Open Inference Protocol)"

ROUTES: tuple[Route, ...] = (
    Route("POST", "/predict", "predict", "Predict with {model}", body="rows", answers="rows"),
    Route(
        "POST",
        "/invocations",
        "predict",
        "Predict (SageMaker contract)",
        body="rows",
        answers="rows",
    ),
    Route("GET", "/ping", "ping", "Ready? (SageMaker health)", public=True, answers="ready"),
    Route("GET", "/v2", "server_meta", "Server metadata"),
    Route("GET", "/v2/health/live", "live", "Alive?", public=True),
    Route("GET", "/v2/health/ready", "ping", "Ready?", public=True, answers="ready"),
    Route("GET", "/v2/models/{name}", "model_meta", "Model metadata", answers="model"),
    Route("GET", "/v2/models/{name}/ready", "model_ready", "Model ready?", answers="model"),
    Route(
        "POST",
        "/v2/models/{name}/infer",
        "infer",
        "Inference with named, typed tensors (Open Inference Protocol v2)",
        body="infer",
        answers="infer",
    ),
    Route("GET", "/metrics", "get_metrics", "Prometheus metrics", answers="metrics"),
    Route(
        "GET",
        "/capture",
        "get_capture",
        "Captured requests (JSON Lines; when capture is on)",
        answers="capture",
    ),
    Route("GET", "/openapi.json", "get_openapi", "This document"),
)

STATIC = {r.path: r for r in ROUTES if "{" not in r.path}  # routed by one dict lookup
TEMPLATED = {r.path: r for r in ROUTES if "{" in r.path}
PUBLIC = frozenset(r.path for r in ROUTES if r.public)


def allowed(route: Route) -> bytes:
    """The ``Allow`` header of a 405 on this route's path."""
    return b"GET, HEAD" if route.method == "GET" else route.method.encode()


def not_found(path: str) -> str:
    """The 404 answer: what there is instead, from the table."""
    named: list[str] = []
    for r in ROUTES:
        v2 = r.path == V2 or r.path.startswith(V2 + "/")
        text = V2_WORDS if v2 else f"{r.method} {r.path}"
        if text not in named:
            named.append(text)
    return f"There is no {path}. Routes: {', '.join(named)}."
