"""``GET /openapi.json``: this model's input and output, generated from its signature.

Written out by hand (no FastAPI): the document describes the model actually served,
column by column, so tools (schemathesis, Swagger UI, client generators) can call it.
Its paths are the server's route table (app/serving/routes.py), one operation each.
"""

from __future__ import annotations

from typing import Any

from app.serving.model import V2_TYPES, ModelRuntime
from app.serving.routes import ROUTES

_JSON_TYPES = {
    "float16": {"type": "number"},
    "float32": {"type": "number"},
    "float64": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
}


def _col_schema(dtype: str, nullable: bool = True) -> dict[str, Any]:
    schema = dict(_JSON_TYPES.get(dtype, {"type": "integer"}))
    if nullable and schema["type"] == "number":
        schema["nullable"] = True
    return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build(rt: ModelRuntime, *, version: str, api_key: bool) -> dict[str, Any]:
    sig = rt.signature
    cols = rt.columns
    row = {
        "type": "array",
        "description": "One row: values in the order " + ", ".join(c.name for c in cols),
        "items": {},
        "minItems": len(cols),
        "maxItems": len(cols),
    }
    if cols and len({c.dtype for c in cols}) == 1:
        row["items"] = _col_schema(cols[0].dtype)
    record = {
        "type": "object",
        "properties": {c.name: _col_schema(c.dtype) for c in cols},
        "required": [c.name for c in cols],
        "additionalProperties": False,
    }
    rows = {
        "oneOf": [
            {"type": "array", "items": {"$ref": "#/components/schemas/Row"}, "minItems": 1},
            {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1},
        ]
    }
    predict_body = {
        "oneOf": [
            {"$ref": "#/components/schemas/Rows"},
            {
                "type": "object",
                "properties": {"rows": {"$ref": "#/components/schemas/Rows"}},
                "required": ["rows"],
                "additionalProperties": False,
            },
        ]
    }
    answer: dict[str, Any] = {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "predictions": {"type": "array", "items": {}},
        },
        "required": ["model", "predictions"],
    }
    if sig.probability_output:
        answer["properties"]["probabilities"] = {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "number"}},
            "description": "Per row, the probability of each class label "
            + (", ".join(map(str, sig.class_labels)) if sig.class_labels else ""),
        }
    tensor_in = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": [t.name for t in sig.inputs]},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": sorted(set(V2_TYPES.values()))},
            "data": {"type": "array", "items": {}},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype", "data"],
    }
    infer_req = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/InferInput"}},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                    "required": ["name"],
                },
            },
            "parameters": {"type": "object"},
        },
        "required": ["inputs"],
        "description": "Inputs: "
        + "; ".join(
            f"{t.name} {V2_TYPES.get(t.dtype, t.dtype)} {[-1 if d is None else d for d in t.shape]}"
            for t in sig.inputs
        ),
    }
    json_or_csv = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(c.name for c in cols) + "\n",
            },
        },
    }
    predict_responses = {
        "200": {
            "description": "Predictions, one per row, in the order sent",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        "400": _error("The body could not be read (bad JSON or CSV)"),
        "401": _error("Missing or wrong API key"),
        "413": _error("The body or the number of rows is over the limit"),
        "415": _error("Content type other than application/json or text/csv"),
        "422": _error("The rows do not match the model's columns or types"),
    }
    name_param = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": [rt.name]},
        }
    ]
    plain = {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}}
    answers: dict[str, dict[str, Any]] = {
        "plain": plain,
        "ready": {**plain, "503": _error("Not ready yet")},
        "rows": predict_responses,
        "model": {**plain, "404": _error("No such model")},
        "infer": {
            **plain,
            "400": _error("Malformed request or tensors that do not fit the model"),
            "401": _error("Missing or wrong API key"),
            "404": _error("No such model"),
            "413": _error("Body or batch over the limit"),
        },
        "metrics": {
            "200": {
                "description": "OK",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
        "capture": {
            "200": {
                "description": "The captured requests, one JSON object a line, oldest first",
                "headers": {
                    "X-ModelShip-Instance": {
                        "description": "The server instance that answered (Heroku's dyno, "
                        "e.g. web.2, else the host name): behind a router that picks one of "
                        "several, pull until each has answered",
                        "schema": {"type": "string"},
                    }
                },
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            },
            "400": _error("since is not a number"),
            "403": _error("No API key on a server reachable beyond this computer"),
            "404": _error("Capture is off on this server"),
        },
    }
    since_param = [
        {
            "name": "since",
            "in": "query",
            "required": False,
            "description": "Only requests captured after this Unix time",
            "schema": {"type": "number"},
        }
    ]
    bodies: dict[str, dict[str, Any]] = {
        "rows": json_or_csv,
        "infer": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}}
            },
        },
    }
    # one operation per route of the server's table (app/serving/routes.py)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        op: dict[str, Any] = {"summary": route.summary.format(model=rt.name)}
        if route.public:
            op["security"] = []
        if "{name}" in route.path:
            op["parameters"] = name_param
        if route.answers == "capture":
            op["parameters"] = since_param
        if route.body is not None:
            op["requestBody"] = bodies[route.body]
        op["responses"] = answers[route.answers]
        paths.setdefault(route.path, {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": f"{rt.name} — ModelShip prediction endpoint",
            "version": version,
            "description": f"Serves {rt.name} ({sig.task}). Columns: "
            + (", ".join(f"{c.name} ({c.dtype})" for c in cols) or "none (tensor model)"),
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Row": row,
                "Record": record,
                "Rows": rows,
                "PredictRequest": predict_body,
                "Predictions": answer,
                "InferInput": tensor_in,
                "InferRequest": infer_req,
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                },
            }
        },
    }
    if api_key:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            # where a proxy keeps the Authorization header (Kubernetes' services proxy)
            "modelshipKey": {"type": "apiKey", "in": "header", "name": "X-ModelShip-Key"},
        }
        doc["security"] = [{"bearer": []}, {"modelshipKey": []}]
    return doc
