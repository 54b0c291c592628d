"""A Kubernetes API server on 127.0.0.1 for the tests (see tests/emulators/kubernetes/README
in the module docstrings of store.py, controllers.py and kubelet.py for the semantics).

HTTP: a ThreadingHTTPServer (HTTP/1.1, keep-alive) on a thread; bearer-token auth (401
Status without it); an RBAC switch (``deny(verb, resource, group)``) that both refuses the
request with 403 Forbidden and answers SelfSubjectAccessReviews ``allowed: false``; a
fault switch (``inject(method, path_regex, code, reason, message)``) for the API server's
own failures (500 InternalError, 503 ServiceUnavailable, an etcd timeout);
discovery, CRUD, server-side apply and patches, list/watch with label and field
selectors, the ``scale``/``status``/``log`` subresources and the services and pods
proxies, which drop the caller's ``Authorization`` header as the real API server does.

Over 600 lines: one concern (the HTTP face of the API server: routing, auth, watch,
subresources and the proxies); the cluster's logic lives in store, controllers
and kubelet.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import os
import re
import select
import shutil
import socket
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import resources as res
from .controllers import Controllers
from .kubelet import Kubelet
from .resources import NAMESPACES, PODS, SERVICES, SSARS, Resource
from .store import INITIAL_END, ApiError, Obj, Store, merge_patch, strategic_merge_patch
from .table import table
from .tls import server_context

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
USER = "modelship-test"


class Fault:
    """The next ``times`` requests (None: all) of METHOD ("*": any) whose path (no query)
    matches PATH_REGEX are answered with a ``Status`` of CODE and REASON."""

    def __init__(
        self, method: str, path_regex: str, code: int, reason: str, message: str, times: int | None
    ) -> None:
        self.method = method.upper()
        self.pattern = re.compile(path_regex)
        self.code, self.reason, self.message, self.times = code, reason, message, times
        self.hits = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and bool(self.pattern.search(path))


class KubernetesEmulator:
    """The API server, controllers and kubelet; ``start()`` / ``stop()``.

    ``kserve``: serve ``serving.kserve.io/v1beta1`` InferenceServices (raw deployment mode).
    ``namespace``: created at start (with ``default``). ``token``: the bearer token.
    """

    def __init__(
        self,
        kserve: bool = False,
        namespace: str = "modelship",
        token: str | None = None,
        port: int = 0,
    ) -> None:
        self._kserve = kserve
        self.namespace = namespace
        self.token = token or uuid.uuid4().hex
        self.port = port
        self.instance = uuid.uuid4().hex[:8]
        self.store = Store()
        self.denied: set[tuple[str, str, str]] = set()  # (verb, group, resource[/sub])
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.proxied_headers: list[dict[str, str]] = []  # what the services proxy sent on
        self.faults: list[Fault] = []
        self.faults_lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.controllers = Controllers(self.store, kserve)
        self.kubelet: Kubelet | None = None
        self._rr = itertools.count()
        self.stopping = False

    @property
    def kserve(self) -> bool:
        """Whether serving.kserve.io/v1beta1 is served (settable at any time)."""
        return self._kserve

    @kserve.setter
    def kserve(self, value: bool) -> None:
        self._kserve = value
        self.controllers.kserve = value

    # ------------------------------------------------------------ lifecycle
    @property
    def api_url(self) -> str:
        assert self.server is not None
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.kubelet = Kubelet(self.store, self.instance)
        for name in ("default", "kube-system", self.namespace):
            with contextlib.suppress(ApiError):
                self.store.create(NAMESPACES, "", {"metadata": {"name": name}})
        handler = type("Handler", (Handler,), {"emulator": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.tls_dir = Path(tempfile.mkdtemp(prefix="k8s-emu-tls-"))
        context, self.ca_pem = server_context(self.tls_dir)
        # the handshake happens in the request's thread, not in the accept loop
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="k8s-emu-api", daemon=True
        )
        self.thread.start()
        self.controllers.hooks.append(self.kubelet.sync)
        self.controllers.start()

    def stop(self) -> None:
        self.stopping = True
        self.controllers.halt.set()
        self.controllers.join(10)
        self.store.close()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(10)
        if self.kubelet is not None:
            self.kubelet.stop()
        if getattr(self, "tls_dir", None) is not None:
            shutil.rmtree(self.tls_dir, ignore_errors=True)

    def write_kubeconfig(self, path: Path, context: str = "emulator") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "emulator",
                    "cluster": {
                        "server": self.api_url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": USER, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "emulator", "user": USER, "namespace": self.namespace},
                }
            ],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config))
        os.chmod(path, 0o600)
        return path

    # ------------------------------------------------------------ RBAC switch
    def deny(self, verb: str, resource: str, group: str = "") -> None:
        """Refuse VERB ("*" for all) on RESOURCE (plural, e.g. "deployments", or "pods/log")."""
        self.denied.add((verb, group, resource))

    def allow(self, verb: str, resource: str, group: str = "") -> None:
        self.denied.discard((verb, group, resource))

    def allowed(self, verb: str, group: str, resource: str) -> bool:
        return not any(
            (v in (verb, "*")) and g == group and r in (resource, "*") for v, g, r in self.denied
        )

    # ------------------------------------------------------------ fault switch
    def inject(
        self,
        method: str,
        path_regex: str,
        code: int = 500,
        reason: str = "InternalError",
        message: str = "Internal error occurred: etcdserver: request timed out",
        times: int | None = 1,
    ) -> Fault:
        """Fail matching requests as the API server itself does (a ``Status`` body)."""
        fault = Fault(method, path_regex, code, reason, message, times)
        with self.faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.faults_lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.faults_lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------ helpers for tests
    def leftovers(self) -> list[str]:
        """Docker containers the kubelet still has (empty after stop)."""
        return self.kubelet.leftovers() if self.kubelet else []

    def resource(self, group_version: str, name: str) -> Resource | None:
        if group_version == "v1":
            candidates = res.CORE
        else:
            candidates = res.served_groups(self.kserve).get(group_version, [])
        return next((r for r in candidates if r.name == name), None)


def _forbidden(verb: str, r: Resource, resource: str, namespace: str, name: str) -> ApiError:
    subject = f'{r.qualified} "{name}"' if name else r.qualified
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    details: dict[str, Any] = {"kind": r.name}
    if name:
        details["name"] = name
    if r.group:
        details["group"] = r.group
    return ApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
        f'in API group "{r.group}"{where}',
        details,
    )


class Handler(BaseHTTPRequestHandler):
    emulator: KubernetesEmulator
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode())

    def _error(self, error: ApiError) -> None:
        self._json(error.code, error.status())

    def _handle(self) -> None:
        emulator = self.emulator
        url = urlsplit(self.path)
        path, query = (
            url.path,
            {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()},
        )
        emulator.requests.append((self.command, self.path))
        body = self._body() if self.command in {"POST", "PUT", "PATCH", "DELETE"} else b""
        try:
            if path in {"/healthz", "/livez", "/readyz"}:
                self._send(200, b"ok", "text/plain; charset=utf-8")
                return
            if self.headers.get("Authorization", "") != f"Bearer {emulator.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            fault = emulator.take_fault(self.command, path)
            if fault is not None:
                raise ApiError(fault.code, fault.reason, fault.message)
            self._route(path, query, body)
        except ApiError as exc:
            self._error(exc)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    # ------------------------------------------------------------ routing
    def _route(self, path: str, query: dict[str, str], body: bytes) -> None:
        emulator = self.emulator
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if path == "/version":
            self._json(200, res.SERVER_VERSION)
            return
        if path == "/api":
            self._json(200, res.api_versions(f"127.0.0.1:{emulator.server.server_address[1]}"))  # type: ignore[union-attr]
            return
        if path == "/api/v1":
            self._json(200, res.resource_list("v1", res.CORE))
            return
        if path == "/apis":
            self._json(200, res.group_list(emulator.kserve))
            return
        if parts == ["openapi", "v3"]:
            self._json(200, res.openapi_v3_root(emulator.kserve))
            return
        if parts[:2] == ["openapi", "v3"]:
            group_version = "/".join(parts[3:]) if parts[2:3] == ["apis"] else "v1"
            found = (
                res.CORE
                if group_version == "v1"
                else res.served_groups(emulator.kserve).get(group_version)
            )
            if found is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._json(200, res.openapi_v3_group(group_version, found))
            return
        if parts == ["openapi", "v2"]:
            # older kubectl (Debian's 1.20) validates against v2, asked as protobuf: an empty
            # message is an empty Document, so it finds no schema and validates nothing
            if "protobuf" in self.headers.get("Accept", ""):
                self._send(200, b"", "application/octet-stream")
            else:
                info = {"title": "Kubernetes", "version": res.SERVER_VERSION["gitVersion"]}
                self._json(200, {"swagger": "2.0", "info": info, "paths": {}, "definitions": {}})
            return
        if parts[:1] == ["openapi"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(parts) == 3 and parts[0] == "apis":
            found = res.served_groups(emulator.kserve).get(f"{parts[1]}/{parts[2]}")
            if found is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._json(200, res.resource_list(f"{parts[1]}/{parts[2]}", found))
            return
        if len(parts) == 2 and parts[0] == "apis":
            groups = [g for g in res.group_list(emulator.kserve)["groups"] if g["name"] == parts[1]]
            if not groups:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            self._json(200, {"kind": "APIGroup", "apiVersion": "v1", **groups[0]})
            return
        if parts[:2] == ["api", "v1"]:
            group_version, rest = "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = ""
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and emulator.resource(group_version, rest[2]) is not None
        ):
            namespace, rest = rest[1], rest[2:]
        r = emulator.resource(group_version, rest[0]) if rest else None
        if r is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        tail = "/".join(rest[3:])
        self._resource(r, namespace, name, sub, tail, query, body)

    def _verb(self, name: str, query: dict[str, str]) -> str:
        method = self.command
        if method in {"GET", "HEAD"}:
            if query.get("watch") in {"true", "1"}:
                return "watch"
            return "get" if name else "list"
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())

    def _resource(
        self,
        r: Resource,
        namespace: str,
        name: str,
        sub: str,
        tail: str,
        query: dict[str, str],
        body: bytes,
    ) -> None:
        emulator, store = self.emulator, self.emulator.store
        verb = self._verb(name, query)
        if sub == "proxy":
            verb = {
                "GET": "get",
                "HEAD": "get",
                "POST": "create",
                "PUT": "update",
                "PATCH": "patch",
                "DELETE": "delete",
            }.get(self.command, "get")
        resource_name = f"{r.name}/{sub}" if sub else r.name
        if not emulator.allowed(verb, r.group, resource_name):
            raise _forbidden(verb, r, resource_name, namespace, name)
        if r is SSARS:
            self._ssar(body)
            return
        if sub:
            if sub not in r.subresources:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            getattr(self, f"_sub_{sub}")(r, namespace, name, tail, query, body)
            return
        manager = (
            query.get("fieldManager") or self.headers.get("User-Agent", "unknown").split("/")[0]
        )
        if self.command in {"GET", "HEAD"}:
            if query.get("watch") in {"true", "1"}:
                self._watch(r, namespace or None, name, query)
            elif name:
                obj = store.get(r, namespace, name)
                if self._wants_table():
                    self._json(200, table(r.kind, [obj], obj["metadata"]["resourceVersion"]))
                else:
                    self._json(200, obj)
            else:
                items, rv = store.list(
                    r, namespace or None, query.get("labelSelector"), query.get("fieldSelector")
                )
                if self._wants_table():
                    self._json(200, table(r.kind, items, rv))
                    return
                self._json(
                    200,
                    {
                        "kind": f"{r.kind}List",
                        "apiVersion": r.api_version,
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    },
                )
        elif self.command == "POST" and not name:
            obj = self._decode(body)
            obj_ns = (obj.get("metadata") or {}).get("namespace")
            if r.namespaced and obj_ns and obj_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            if obj.get("kind") and obj["kind"] != r.kind:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the kind {obj['kind']} of the object does not match {r.kind}",
                )
            self._json(201, store.create(r, namespace, obj, manager))
        elif self.command == "PUT" and name:
            obj = self._decode(body)
            if store.find(r, namespace, name) is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'{r.qualified} "{name}" not found',
                    {"name": name, "kind": r.name},
                )
            self._json(200, store.update(r, namespace, name, obj, manager))
        elif self.command == "PATCH" and name:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type == "application/apply-patch+yaml" and not query.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                )
            if (
                content_type == "application/apply-patch+yaml"
                and store.find(r, namespace, name) is None
            ) and not emulator.allowed("create", r.group, r.name):
                raise _forbidden("create", r, r.name, namespace, name)
            obj, created = store.patch(
                r, namespace, name, content_type, body, manager, query.get("force") == "true"
            )
            self._json(201 if created else 200, obj)
        elif self.command == "DELETE" and name:
            self._json(200, self._delete(r, namespace, name, body, query))
        elif self.command == "DELETE":
            items, rv = store.list(
                r, namespace or None, query.get("labelSelector"), query.get("fieldSelector")
            )
            deleted = [
                self._delete(r, namespace, i["metadata"]["name"], body, query) for i in items
            ]
            self._json(
                200,
                {
                    "kind": f"{r.kind}List",
                    "apiVersion": r.api_version,
                    "metadata": {"resourceVersion": rv},
                    "items": [d for d in deleted if d.get("kind") != "Status"] or items,
                },
            )
        else:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept", "")
        return "as=Table" in accept and "g=meta.k8s.io" in accept

    def _decode(self, body: bytes) -> Obj:
        if "protobuf" in (self.headers.get("Content-Type") or "") and body.startswith(b"k8s\x00"):
            review = ssar_from_protobuf(body)  # kubectl auth can-i sends protobuf
            if review is not None:
                return review
        if "protobuf" in (self.headers.get("Content-Type") or ""):
            # the real server reads protobuf too; this one asks the client for JSON
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml",
            )
        try:
            obj = yaml.safe_load(body.decode() or "{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"error decoding the request body: {exc}") from exc
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        return obj

    def _delete(
        self, r: Resource, namespace: str, name: str, body: bytes, query: dict[str, str]
    ) -> Obj:
        store = self.emulator.store
        options = json.loads(body) if body.strip() else {}
        grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        if r is PODS:
            obj = store.get(r, namespace, name)
            if grace is not None and int(grace) == 0:
                return store.delete(r, namespace, name)
            return store.mark_deleting(
                r,
                namespace,
                name,
                int(
                    grace
                    if grace is not None
                    else obj["spec"].get("terminationGracePeriodSeconds", 30)
                ),
            )
        if r is NAMESPACES:
            for other in res.all_resources(self.emulator.kserve):
                if other.namespaced and other is not SSARS:
                    for item in store.list(other, name)[0]:
                        with contextlib.suppress(ApiError):
                            self._delete(other, name, item["metadata"]["name"], b"", {})
        obj = store.delete(r, namespace, name)
        details: dict[str, Any] = {"name": name, "kind": r.name, "uid": obj["metadata"]["uid"]}
        if r.group:
            details["group"] = r.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    # ------------------------------------------------------------ watch
    def _client_gone(self) -> bool:
        if self.emulator.stopping:
            return True
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                # peek below TLS: a closed connection reads as b"" on the raw socket
                raw = socket.socket(fileno=os.dup(self.connection.fileno()))
                try:
                    return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                finally:
                    raw.close()
        except (OSError, ValueError):
            return True
        return False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, r: Resource, namespace: str | None, name: str, query: dict[str, str]) -> None:
        fields = query.get("fieldSelector")
        if name:
            fields = ",".join(filter(None, [fields, f"metadata.name={name}"]))
        timeout = float(query.get("timeoutSeconds") or 1800)
        initial = query.get("sendInitialEvents") == "true"
        as_table = self._wants_table()
        rv = None if initial else query.get("resourceVersion")
        events = self.emulator.store.watch(
            r, namespace, rv, query.get("labelSelector"), fields, timeout, self._client_gone
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        try:
            for kind, obj in events:
                if kind == INITIAL_END:
                    if initial:
                        self._bookmark(r, obj["metadata"]["resourceVersion"])
                    continue
                if as_table:
                    obj = table(r.kind, [obj], obj["metadata"]["resourceVersion"])
                self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def _bookmark(self, r: Resource, rv: str) -> None:
        obj = {
            "kind": r.kind,
            "apiVersion": r.api_version,
            "metadata": {
                "resourceVersion": rv,
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        }
        self._chunk(json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n")

    # ------------------------------------------------------------ SelfSubjectAccessReview
    def _ssar(self, body: bytes) -> None:
        if self.command != "POST":
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        review = self._decode(body)
        attributes = (review.get("spec") or {}).get("resourceAttributes")
        allowed = True
        if attributes:
            resource = attributes.get("resource", "")
            if attributes.get("subresource"):
                resource += "/" + attributes["subresource"]
            allowed = self.emulator.allowed(
                attributes.get("verb", ""), attributes.get("group", ""), resource
            )
        review["apiVersion"], review["kind"] = SSARS.api_version, SSARS.kind
        review.setdefault("metadata", {})["creationTimestamp"] = None
        review["status"] = {"allowed": allowed}
        if allowed:
            review["status"]["reason"] = (
                'RBAC: allowed by RoleBinding "modelship-test/modelship" of Role "edit"'
            )
        self._json(201, review)

    # ------------------------------------------------------------ subresources
    def _sub_status(
        self, r: Resource, namespace: str, name: str, tail: str, query: dict[str, str], body: bytes
    ) -> None:
        store = self.emulator.store
        if self.command == "GET":
            self._json(200, store.get(r, namespace, name))
        elif self.command == "PUT":
            self._json(200, store.update(r, namespace, name, self._decode(body), status_only=True))
        elif self.command == "PATCH":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            obj, _ = store.patch(
                r,
                namespace,
                name,
                content_type,
                body,
                query.get("fieldManager", "unknown"),
                status_only=True,
            )
            self._json(200, obj)
        else:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )

    def _scale_of(self, deployment: Obj) -> Obj:
        meta = deployment["metadata"]
        labels = (deployment["spec"].get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": int(deployment["spec"].get("replicas", 1))},
            "status": {
                "replicas": int((deployment.get("status") or {}).get("replicas", 0)),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            },
        }

    def _sub_scale(
        self, r: Resource, namespace: str, name: str, tail: str, query: dict[str, str], body: bytes
    ) -> None:
        store = self.emulator.store
        deployment = store.get(r, namespace, name)
        scale = self._scale_of(deployment)
        if self.command == "GET":
            self._json(200, scale)
            return
        manager = (
            query.get("fieldManager") or self.headers.get("User-Agent", "unknown").split("/")[0]
        )
        if self.command == "PUT":
            wanted = self._decode(body)
            rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if rv and rv != deployment["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {r.qualified} "{name}": the object has '
                    "been modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": r.group, "kind": r.name},
                )
        elif self.command == "PATCH":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            patch = (
                json.loads(body or b"{}")
                if content_type != "application/apply-patch+yaml"
                else yaml.safe_load(body)
            )
            if content_type == "application/strategic-merge-patch+json":
                wanted = strategic_merge_patch(scale, patch)
            else:
                wanted = merge_patch(scale, patch)
        else:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas}: must be greater than or equal to 0",
            )
        obj, _ = store.patch(
            r,
            namespace,
            name,
            "application/merge-patch+json",
            json.dumps({"spec": {"replicas": replicas}}).encode(),
            manager,
        )
        self._json(200, self._scale_of(obj))

    def _sub_log(
        self, r: Resource, namespace: str, name: str, tail: str, query: dict[str, str], body: bytes
    ) -> None:
        pod = self.emulator.store.get(PODS, namespace, name)
        containers = [c["name"] for c in pod["spec"].get("containers", [])]
        container = query.get("container") or containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        lines = query.get("tailLines")
        text = self.emulator.kubelet.logs(  # type: ignore[union-attr]
            namespace,
            name,
            int(lines) if lines else None,
            query.get("timestamps") == "true",
            query.get("previous") == "true",
        )
        if text is None:
            statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
            waiting = (statuses[0].get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "ContainerCreating")
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: {reason}',
            )
        self._send(200, text.encode(), "text/plain")

    def _sub_proxy(
        self, r: Resource, namespace: str, name: str, tail: str, query: dict[str, str], body: bytes
    ) -> None:
        emulator, store = self.emulator, self.emulator.store
        pieces = name.split(":")
        if len(pieces) == 3:
            pieces = pieces[1:]  # scheme:name:port
        if r is PODS:
            self._forward(self._pod_port(namespace, pieces[0], pieces[1:]), tail, body)
            return
        service_name, port_spec = pieces[0], (pieces[1] if len(pieces) > 1 else "")
        service = store.get(SERVICES, namespace, service_name)
        ports = service["spec"].get("ports") or []
        port = (
            next((p for p in ports if port_spec in (str(p.get("port")), p.get("name"))), None)
            if port_spec
            else (ports[0] if ports else None)
        )
        if port is None:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        selector = service["spec"].get("selector") or {}
        target = port.get("targetPort", port.get("port"))
        endpoints: list[int] = []
        if selector:
            if isinstance(target, str) and not target.isdigit():
                pods, _ = store.list(
                    PODS, namespace, ",".join(f"{k}={v}" for k, v in selector.items())
                )
                numbers = {
                    p["containerPort"]
                    for pod in pods
                    for c in pod["spec"].get("containers", [])
                    for p in c.get("ports") or []
                    if p.get("name") == target
                }
                for number in numbers:
                    endpoints += emulator.kubelet.endpoints(namespace, selector, int(number))  # type: ignore[union-attr]
            else:
                endpoints = emulator.kubelet.endpoints(namespace, selector, int(target))  # type: ignore[union-attr]
        if not endpoints:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        self._forward(endpoints[next(emulator._rr) % len(endpoints)], tail, body)

    def _pod_port(self, namespace: str, pod_name: str, port_spec: list[str]) -> int:
        """The host port of one pod's container port (the pods proxy: ``POD[:PORT]``, a
        number; no port: the first the pod declares), ready or not, as the real one."""
        pod = self.emulator.store.get(PODS, namespace, pod_name)
        declared = [
            int(p["containerPort"])
            for c in pod["spec"].get("containers", [])
            for p in c.get("ports") or []
        ]
        port = int(port_spec[0]) if port_spec and port_spec[0].isdigit() else None
        if port_spec and port is None:
            raise ApiError(400, "BadRequest", f"invalid port in pod proxy: {port_spec[0]!r}")
        if port is None:
            port = declared[0] if declared else 80
        host = self.emulator.kubelet.ports.get((namespace, pod_name), {}).get(port)  # type: ignore[union-attr]
        if host is None or (pod.get("status") or {}).get("phase") != "Running":
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {pod_name}:{port}: connect: "
                "connection refused",
            )
        return int(host)

    def _forward(self, host_port: int, tail: str, body: bytes) -> None:
        """The request to 127.0.0.1:HOST_PORT/TAIL (its query kept, ``Authorization`` and
        hop-by-hop headers dropped as the real proxy drops them), the answer back."""
        emulator = self.emulator
        target_path = "/" + tail
        raw_query = urlsplit(self.path).query
        if raw_query:
            target_path += "?" + raw_query
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "authorization"
        }
        emulator.proxied_headers.append(dict(headers))
        if body:
            headers["Content-Length"] = str(len(body))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", host_port, timeout=60)
            conn.request(self.command, target_path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out_headers = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"
            }
            content_type = response.getheader("Content-Type", "application/octet-stream")
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            raise ApiError(
                503, "ServiceUnavailable", f"error trying to reach service: {exc}"
            ) from exc
        self._send(response.status, data, content_type, out_headers)


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> Any:
    """Poll PREDICATE until it returns something truthy; that value, or None at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def _fields(data: bytes) -> dict[int, list[bytes | int]]:
    """The fields of one protobuf message: number -> values (varints or bytes)."""
    out: dict[int, list[bytes | int]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.setdefault(number, []).append(varint())
        elif wire == 2:
            length = varint()
            out.setdefault(number, []).append(data[i : i + length])
            i += length
        else:
            raise ValueError(f"wire type {wire}")
    return out


def ssar_from_protobuf(body: bytes) -> Obj | None:
    """A SelfSubjectAccessReview from the API's protobuf envelope (``k8s\\0`` + Unknown),
    or None for anything else."""
    try:
        unknown = _fields(body[4:])
        type_meta = _fields(unknown[1][0])  # type: ignore[arg-type]
        if type_meta.get(2, [b""])[0] != b"SelfSubjectAccessReview":
            return None
        review = _fields(unknown[2][0])  # type: ignore[arg-type]
        spec = _fields(review.get(2, [b""])[0])  # type: ignore[arg-type]
        attributes: dict[str, str] = {}
        if 1 in spec:
            raw = _fields(spec[1][0])  # type: ignore[arg-type]
            names = ["namespace", "verb", "group", "version", "resource", "subresource", "name"]
            for number, name in enumerate(names, start=1):
                if number in raw:
                    attributes[name] = raw[number][0].decode()  # type: ignore[union-attr]
        out: Obj = {"apiVersion": SSARS.api_version, "kind": SSARS.kind, "spec": {}}
        if attributes:
            out["spec"]["resourceAttributes"] = attributes
        else:
            out["spec"]["nonResourceAttributes"] = {}
        return out
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        return None
