"""Server-side printing: ``meta.k8s.io/v1 Table`` for ``kubectl get`` without ``-o``.

kubectl asks with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``; the columns
here are the ones the real server prints for each kind (a reduced set for HPAs).
"""

from __future__ import annotations

import datetime
from typing import Any

from .store import Obj


def age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    created = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in containers if c.get("ready"))
    reason = status.get("phase", "Pending")
    for c in containers:
        state = c.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason", "Error")
    if obj["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    return [f"{ready}/{total}", reason, restarts]


def _deployment(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    desired = (obj.get("spec") or {}).get("replicas", 1)
    return [
        f"{status.get('readyReplicas', 0)}/{desired}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
    ]


def _service(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", ""), "<none>", ports or "<none>"]


def _isvc(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    ready = next(
        (c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "Unknown"
    )
    return [status.get("url", ""), ready]


COLUMNS: dict[str, tuple[list[tuple[str, str]], Any]] = {
    "Pod": (
        [("Ready", "string"), ("Status", "string"), ("Restarts", "integer")],
        _pod,
    ),
    "Deployment": (
        [("Ready", "string"), ("Up-to-date", "integer"), ("Available", "integer")],
        _deployment,
    ),
    "ReplicaSet": (
        [("Desired", "integer"), ("Current", "integer"), ("Ready", "integer")],
        lambda o: [
            (o.get("spec") or {}).get("replicas", 0),
            (o.get("status") or {}).get("replicas", 0),
            (o.get("status") or {}).get("readyReplicas", 0),
        ],
    ),
    "Service": (
        [
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("External-IP", "string"),
            ("Port(s)", "string"),
        ],
        _service,
    ),
    "Secret": (
        [("Type", "string"), ("Data", "integer")],
        lambda o: [o.get("type", "Opaque"), len(o.get("data") or {})],
    ),
    "Namespace": ([("Status", "string")], lambda o: [(o.get("status") or {}).get("phase", "")]),
    "InferenceService": ([("URL", "string"), ("Ready", "string")], _isvc),
}


def table(kind: str, items: list[Obj], resource_version: str) -> Obj:
    extra, cells = COLUMNS.get(kind, ([], lambda o: []))
    columns = [("Name", "string"), *extra, ("Age", "string")]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind_,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": 0,
            }
            for name, kind_ in columns
        ],
        "rows": [
            {
                "cells": [
                    obj["metadata"]["name"],
                    *cells(obj),
                    age(obj["metadata"].get("creationTimestamp")),
                ],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }
