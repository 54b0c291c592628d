"""The emulator's etcd: objects, resource versions, field managers, patches and watches.

Semantics follow the API server's documentation: every write bumps one global
``resourceVersion``; ``metadata.generation`` starts at 1 and grows when anything but
metadata and status changes; server-side apply (``application/apply-patch+yaml``) creates
when absent, removes the fields the same manager applied before and no longer applies, and
refuses (409 Conflict) to change a field another manager set unless ``force=true``; JSON
merge patch (RFC 7386), strategic merge patch (lists of named items merged by ``name``)
and JSON patch (RFC 6902) update; watches replay from a ``resourceVersion``.

Over 600 lines: one concern (the objects and how they change: selectors, the three
patch kinds, apply with field managers, watches), kept together because apply and
watch share the store's lock and event log.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from .resources import Resource

Obj = dict[str, Any]
Path = tuple[str, ...]
INITIAL_END = "__initial_end__"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """A failure the server answers with a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def details(r: Resource, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": r.name}
    if r.group:
        out["group"] = r.group
    return out


def not_found(r: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{r.qualified} "{name}" not found', details(r, name))


def invalid(r: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """``Deployment.apps "x" is invalid: FIELD: MESSAGE`` with one cause per field."""
    kind = f"{r.kind}.{r.group}" if r.group else r.kind
    text = "; ".join(f"{f}: {m}" for f, m in causes)
    body = details(r, name) | {"kind": r.kind}
    body["causes"] = [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}', body)


# ---------------------------------------------------------------- selectors

_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _parse_selector(selector: str) -> list[tuple[str, str, Any]]:
    """(operator, key, value) for each requirement: =, !=, in, notin, exists, !exists."""
    out: list[tuple[str, str, Any]] = []
    for raw in _split_selector(selector):
        part = raw.strip()
        match = _SET_RE.match(part)
        if match:
            values = {v.strip() for v in match.group(3).split(",")}
            out.append((match.group(2), match.group(1), values))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            out.append(("!=", key.strip(), value.strip()))
        elif "=" in part:
            key, _, value = part.replace("==", "=").partition("=")
            out.append(("=", key.strip(), value.strip()))
        elif part.startswith("!"):
            out.append(("!exists", part[1:].strip(), None))
        else:
            out.append(("exists", part, None))
    return out


def _holds(op: str, present: bool, got: Any, value: Any) -> bool:
    if op == "=":
        return present and got == value
    if op == "!=":
        return got != value
    if op == "in":
        return present and got in value
    if op == "notin":
        return got not in value
    if op == "exists":
        return present
    return not present


def label_matcher(selector: str | None) -> Any:
    """A predicate on a labels dict for ``a=b,c!=d,e in (x,y),f,!g`` (kubectl's syntax)."""
    requirements = _parse_selector(selector or "")

    def matches(labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(_holds(op, key in labels, labels.get(key), v) for op, key, v in requirements)

    return matches


def field_matcher(selector: str | None) -> Any:
    """``metadata.name=x,status.phase!=Running``: dotted paths compared as strings."""
    requirements = _parse_selector(selector or "")

    def matches(obj: Obj) -> bool:
        for op, key, value in requirements:
            current: Any = obj
            for step in key.split("."):
                current = current.get(step) if isinstance(current, dict) else None
            got = "" if current is None else str(current)
            if not _holds(op, True, got, value):
                return False
        return True

    return matches


def selector_from_match_labels(selector: dict[str, Any] | None) -> Any:
    """A predicate for a LabelSelector object (matchLabels + matchExpressions)."""
    selector = selector or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []

    def matches(labels: dict[str, str]) -> bool:
        labels = labels or {}
        if any(labels.get(k) != v for k, v in match_labels.items()):
            return False
        for expr in expressions:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            if op == "In" and labels.get(key) not in values:
                return False
            if op == "NotIn" and labels.get(key) in values:
                return False
            if op == "Exists" and key not in labels:
                return False
            if op == "DoesNotExist" and key in labels:
                return False
        return True

    return matches


# ---------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _merge_key(items: list[Any]) -> str | None:
    if items and all(isinstance(i, dict) for i in items):
        for key in ("name", "containerPort", "port", "mountPath", "type", "ip"):
            if all(key in i for i in items):
                return key
    return None


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch for the types here: lists of maps merge by their merge key
    (``name`` for containers, env, volumes, ports by ``containerPort``/``port``...)."""
    if isinstance(patch, dict) and isinstance(target, dict):
        out = copy.deepcopy(target)
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge_patch(out.get(key), value)
        return out
    if isinstance(patch, list) and isinstance(target, list):
        key = _merge_key(patch)
        if key is None or _merge_key(target) != key:
            return copy.deepcopy(patch)
        out_list = copy.deepcopy(target)
        for item in patch:
            index = next((i for i, t in enumerate(out_list) if t.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    out_list.pop(index)
            elif index is None:
                out_list.append({k: v for k, v in item.items() if not k.startswith("$")})
            else:
                out_list[index] = strategic_merge_patch(out_list[index], item)
        return out_list
    if isinstance(patch, dict):
        return strategic_merge_patch({}, patch)
    return copy.deepcopy(patch)


def json_patch(target: Obj, operations: list[dict[str, Any]]) -> Obj:
    """RFC 6902 add / replace / remove / test."""
    out = copy.deepcopy(target)
    for op in operations:
        steps = [s.replace("~1", "/").replace("~0", "~") for s in op["path"].split("/")[1:]]
        parent: Any = out
        for step in steps[:-1]:
            parent = parent[int(step)] if isinstance(parent, list) else parent[step]
        last = steps[-1]
        if op["op"] in {"add", "replace"}:
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last)
        elif op["op"] == "test":
            got = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if got != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
    return out


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every leaf of a manifest by path; lists count as leaves (one owner for a list)."""
    if isinstance(obj, dict) and obj:
        out: dict[Path, Any] = {}
        for key, value in obj.items():
            out.update(leaves(value, (*prefix, key)))
        return out
    return {prefix: obj}


def _remove_path(obj: Obj, path: Path) -> None:
    parent: Any = obj
    for step in path[:-1]:
        parent = parent.get(step) if isinstance(parent, dict) else None
        if parent is None:
            return
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _fields_v1(paths: list[Path]) -> Obj:
    out: Obj = {}
    for path in paths:
        node = out
        for step in path:
            node = node.setdefault(f"f:{step}", {})
    return out


# ---------------------------------------------------------------- the store


@dataclass
class Entry:
    obj: Obj
    owners: dict[Path, str] = field(default_factory=dict)  # spec/metadata leaf -> manager
    applied: dict[str, Obj] = field(default_factory=dict)  # manager -> last applied config


@dataclass
class Event:
    rv: int
    type: str
    resource: Resource
    namespace: str
    obj: Obj


class Store:
    """All objects, keyed by (resource, namespace, name); thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.objects: dict[tuple[str, str, str], Entry] = {}
        self.rv = 1
        self.events: list[Event] = []
        self.closed = False

    # -- helpers
    @staticmethod
    def key(r: Resource, namespace: str, name: str) -> tuple[str, str, str]:
        return (r.qualified, namespace if r.namespaced else "", name)

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _emit(self, kind: str, r: Resource, obj: Obj) -> None:
        self.events.append(
            Event(self.rv, kind, r, obj["metadata"].get("namespace", ""), copy.deepcopy(obj))
        )
        if len(self.events) > 20000:
            del self.events[:5000]
        self.lock.notify_all()

    @staticmethod
    def _owned(path: Path) -> bool:
        """Paths whose manager is tracked: everything but status and server-set metadata."""
        if not path or path[0] in {"status", "apiVersion", "kind"}:
            return False
        return not (
            path[0] == "metadata"
            and len(path) > 1
            and path[1] not in {"labels", "annotations", "ownerReferences", "finalizers"}
        )

    def _record(
        self, entry: Entry, before: Obj | None, manager: str, operation: str, r: Resource
    ) -> None:
        old = leaves(before or {})
        for path, value in leaves(entry.obj).items():
            if self._owned(path) and old.get(path, object()) != value:
                entry.owners[path] = manager
        for path in list(entry.owners):
            if path not in leaves(entry.obj):
                del entry.owners[path]
        by_manager: dict[str, list[Path]] = {}
        for path, owner in entry.owners.items():
            by_manager.setdefault(owner, []).append(path)
        entry.obj["metadata"]["managedFields"] = [
            {
                "manager": owner,
                "operation": "Apply" if owner in entry.applied else "Update",
                "apiVersion": r.api_version,
                "time": now(),
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
            }
            for owner, paths in sorted(by_manager.items())
        ]

    @staticmethod
    def _spec_of(obj: Obj) -> Obj:
        return {
            k: v for k, v in obj.items() if k not in {"metadata", "status", "apiVersion", "kind"}
        }

    def _validate(self, r: Resource, obj: Obj, name: str) -> None:
        if not name:
            raise ApiError(
                422,
                "Invalid",
                f'{r.kind} "" is invalid: metadata.name: Required value: '
                "name or generateName is required",
            )
        if r.name != "selfsubjectaccessreviews" and (len(name) > 253 or not NAME_RE.match(name)):
            raise invalid(
                r,
                name,
                [
                    (
                        "metadata.name",
                        f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist '
                        "of lower case alphanumeric characters, '-' or '.', and must start and "
                        "end with an alphanumeric character",
                    )
                ],
            )
        if r.kind == "Deployment":
            spec = obj.get("spec") or {}
            selector = selector_from_match_labels(spec.get("selector"))
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            causes = []
            if not spec.get("selector"):
                causes.append(("spec.selector", "Required value"))
            elif not selector(labels):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {json.dumps(labels)}: "
                        "`selector` does not match template `labels`",
                    )
                )
            if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
                causes.append(("spec.template.spec.containers", "Required value"))
            if causes:
                raise invalid(r, name, causes)

    def _fill(self, r: Resource, obj: Obj, namespace: str, name: str) -> None:
        obj["apiVersion"], obj["kind"] = r.api_version, r.kind
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if r.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        for key in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(key, None)
        if r.kind == "Deployment":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("revisionHistoryLimit", 10)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
            obj.setdefault("status", {})
        elif r.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("clusterIP", f"10.96.{self.rv % 250}.{(self.rv // 250) % 250 + 1}")
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        elif r.kind == "Secret":
            obj.setdefault("type", "Opaque")
            for key, value in (obj.pop("stringData", None) or {}).items():
                import base64

                obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
        elif r.kind == "Namespace":
            obj["status"] = {"phase": "Active"}

    def _check_namespace(self, r: Resource, namespace: str) -> None:
        if r.namespaced and (("namespaces", "", namespace) not in self.objects):
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )

    # -- reads
    def get(self, r: Resource, namespace: str, name: str) -> Obj:
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None:
                raise not_found(r, name)
            return copy.deepcopy(entry.obj)

    def find(self, r: Resource, namespace: str, name: str) -> Obj | None:
        try:
            return self.get(r, namespace, name)
        except ApiError:
            return None

    def list(
        self,
        r: Resource,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> tuple[list[Obj], str]:
        label_ok, field_ok = label_matcher(labels), field_matcher(fields)
        with self.lock:
            items = [
                copy.deepcopy(entry.obj)
                for (qualified, ns, _), entry in sorted(self.objects.items())
                if qualified == r.qualified
                and (not namespace or ns == namespace)
                and label_ok(entry.obj["metadata"].get("labels"))
                and field_ok(entry.obj)
            ]
            return items, str(self.rv)

    # -- writes
    def create(self, r: Resource, namespace: str, obj: Obj, manager: str = "unknown") -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
        self._validate(r, obj, name)
        with self.lock:
            self._check_namespace(r, namespace)
            key = self.key(r, namespace, name)
            if key in self.objects:
                raise ApiError(
                    409, "AlreadyExists", f'{r.qualified} "{name}" already exists', details(r, name)
                )
            self._fill(r, obj, namespace, name)
            entry = Entry(obj)
            self.objects[key] = entry
            self._record(entry, None, manager, "Update", r)
            self._bump(obj)
            self._emit("ADDED", r, obj)
            return copy.deepcopy(obj)

    def _write(
        self, r: Resource, entry: Entry, new: Obj, manager: str | None, status_only: bool = False
    ) -> Obj:
        """Store NEW as the object's next version (caller holds the lock)."""
        old = entry.obj
        meta = new.setdefault("metadata", {})
        for key in (
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "generation",
            "deletionTimestamp",
        ):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
        new["apiVersion"], new["kind"] = r.api_version, r.kind
        if status_only:
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
        elif r.has_status and "status" in old:
            new["status"] = copy.deepcopy(old.get("status"))
        self._validate(r, new, meta["name"])
        if self._spec_of(new) != self._spec_of(old):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if r.kind == "Secret":
            for key, value in (new.pop("stringData", None) or {}).items():
                import base64

                new.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
        comparable_old = {k: v for k, v in old.items()}
        if new == comparable_old:
            return copy.deepcopy(old)
        entry.obj = new
        if manager is not None:
            self._record(entry, old, manager, "Update", r)
        else:
            new["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        self._bump(new)
        self._emit("MODIFIED", r, new)
        return copy.deepcopy(new)

    def update(
        self,
        r: Resource,
        namespace: str,
        name: str,
        obj: Obj,
        manager: str = "unknown",
        status_only: bool = False,
    ) -> Obj:
        """PUT: optimistic concurrency when the body carries a resourceVersion."""
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None:
                raise not_found(r, name)
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv and rv != entry.obj["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {r.qualified} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                    details(r, name),
                )
            return self._write(
                r, entry, copy.deepcopy(obj), None if status_only else manager, status_only
            )

    def patch(
        self,
        r: Resource,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        manager: str,
        force: bool = False,
        status_only: bool = False,
    ) -> tuple[Obj, bool]:
        """Apply a patch; returns (object, created)."""
        try:
            if content_type == "application/apply-patch+yaml":
                patch = yaml.safe_load(body.decode() or "{}")
            else:
                patch = json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from exc
        if content_type == "application/apply-patch+yaml":
            return self.apply(r, namespace, name, patch, manager, force)
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None:
                raise not_found(r, name)
            current = entry.obj
            try:
                if content_type == "application/merge-patch+json":
                    new = merge_patch(current, patch)
                elif content_type == "application/strategic-merge-patch+json":
                    new = strategic_merge_patch(current, patch)
                elif content_type == "application/json-patch+json":
                    new = json_patch(current, patch)
                else:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - "
                        "accepted media types include: "
                        "application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml, application/strategic-merge-patch+json",
                    )
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {exc}",
                ) from exc
            return self._write(r, entry, new, None if status_only else manager, status_only), False

    def apply(
        self, r: Resource, namespace: str, name: str, config: Obj, manager: str, force: bool
    ) -> tuple[Obj, bool]:
        """Server-side apply (simplified field ownership, see the module docstring)."""
        if not isinstance(config, dict):
            raise ApiError(400, "BadRequest", "the apply configuration must be an object")
        meta = config.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        if config.get("kind") and config["kind"] != r.kind:
            raise ApiError(400, "BadRequest", f"the kind {config['kind']} does not match {r.kind}")
        clean = copy.deepcopy(config)
        clean.setdefault("metadata", {})["name"] = name
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            clean["metadata"].pop(key, None)
        clean.pop("status", None)
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None:
                self._check_namespace(r, namespace)
                self.create(r, namespace, clean, manager)
                new_entry = self.objects[self.key(r, namespace, name)]
                new_entry.applied[manager] = clean
                self._record(new_entry, None, manager, "Apply", r)
                return copy.deepcopy(new_entry.obj), True
            current = entry.obj
            current_leaves = leaves(current)
            conflicts = []
            for path, value in leaves(clean).items():
                owner = entry.owners.get(path)
                if (
                    self._owned(path)
                    and owner not in (None, manager)
                    and path in current_leaves
                    and current_leaves[path] != value
                ):
                    conflicts.append((owner, path))
            if conflicts and not force:
                lines = [f'conflict with "{owner}": .{".".join(path)}' for owner, path in conflicts]
                raise ApiError(
                    409,
                    "Conflict",
                    f"Apply failed with {len(conflicts)} "
                    f"conflict{'s' if len(conflicts) > 1 else ''}: " + "\n".join(lines),
                    details(r, name)
                    | {
                        "causes": [
                            {
                                "reason": "FieldManagerConflict",
                                "message": line,
                                "field": "." + ".".join(p),
                            }
                            for line, (_, p) in zip(lines, conflicts, strict=True)
                        ]
                    },
                )
            new = copy.deepcopy(current)
            previous = entry.applied.get(manager) or {}
            applying = leaves(clean)
            for path in leaves(previous):
                if path not in applying and entry.owners.get(path) == manager:
                    _remove_path(new, path)
            new = merge_patch(new, clean)
            entry.applied[manager] = clean
            self._write(r, entry, new, manager)
            for path in applying:
                if self._owned(path):
                    entry.owners[path] = manager
            self._record(entry, entry.obj, manager, "Apply", r)
            return copy.deepcopy(entry.obj), False

    def delete(self, r: Resource, namespace: str, name: str) -> Obj:
        with self.lock:
            entry = self.objects.pop(self.key(r, namespace, name), None)
            if entry is None:
                raise not_found(r, name)
            self._bump(entry.obj)
            self._emit("DELETED", r, entry.obj)
            return copy.deepcopy(entry.obj)

    def mark_deleting(self, r: Resource, namespace: str, name: str, grace: int) -> Obj:
        """Graceful deletion (pods): set deletionTimestamp; the kubelet removes the object."""
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None:
                raise not_found(r, name)
            if entry.obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(entry.obj)
            entry.obj["metadata"]["deletionTimestamp"] = now()
            entry.obj["metadata"]["deletionGracePeriodSeconds"] = grace
            self._bump(entry.obj)
            self._emit("MODIFIED", r, entry.obj)
            return copy.deepcopy(entry.obj)

    def set_status(self, r: Resource, namespace: str, name: str, status: Obj) -> None:
        """A controller's status write: only when something changed."""
        with self.lock:
            entry = self.objects.get(self.key(r, namespace, name))
            if entry is None or entry.obj.get("status") == status:
                return
            entry.obj["status"] = copy.deepcopy(status)
            self._bump(entry.obj)
            self._emit("MODIFIED", r, entry.obj)

    # -- watch
    def watch(
        self,
        r: Resource,
        namespace: str | None,
        resource_version: str | None,
        labels: str | None,
        fields: str | None,
        timeout: float,
        stopped: Any,
    ) -> Iterator[tuple[str, Obj]]:
        """Events after RESOURCE_VERSION (or ADDED for what exists, then changes); the
        INITIAL_END marker between the two. Raises 410 Expired at once, before any event."""
        label_ok, field_ok = label_matcher(labels), field_matcher(fields)

        def wanted(event: Event) -> bool:
            return (
                event.resource.qualified == r.qualified
                and (not namespace or event.namespace == namespace)
                and label_ok(event.obj["metadata"].get("labels"))
                and field_ok(event.obj)
            )

        deadline = time.monotonic() + timeout
        with self.lock:
            if resource_version in (None, "", "0"):
                initial, rv = self.list(r, namespace, labels, fields)
                start = int(rv)
            else:
                start = int(resource_version)
                if self.events and start < self.events[0].rv - 1:
                    raise ApiError(
                        410, "Expired", f"too old resource version: {start} ({self.events[0].rv})"
                    )
                initial = []

        def stream() -> Iterator[tuple[str, Obj]]:
            for obj in initial:
                yield "ADDED", obj
            yield INITIAL_END, {"metadata": {"resourceVersion": str(start)}}
            seen = start
            while not stopped() and time.monotonic() < deadline:
                with self.lock:
                    pending = [e for e in self.events if e.rv > seen]
                    if not pending:
                        self.lock.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                        if self.closed:
                            return
                        continue
                for event in pending:
                    seen = event.rv
                    if wanted(event):
                        yield event.type, copy.deepcopy(event.obj)

        return stream()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify_all()
