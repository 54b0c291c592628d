"""Heroku's container registry: a real Debian docker-registry behind a checking proxy.

The real registry stores and authenticates (htpasswd, bcrypt, user ``_``); the proxy in
front of it adds what Heroku's registry does differently: pushes only to existing apps
(``APP/PROCESS``), Docker manifest v2 schema 2 only (OCI manifests, OCI indexes and
manifest lists are refused), and any username with a valid API key as password (the
Heroku CLI itself sends ``:KEY``).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from ._http import Upstream, UpstreamError, asgi_body, iterate, request_headers, response_headers

REGISTRY_BINARY = "/usr/bin/docker-registry"
HTPASSWD_BINARY = "htpasswd"

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
REFUSED_MANIFESTS = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_ACCEPT = ", ".join([DOCKER_V2, *sorted(REFUSED_MANIFESTS)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def registry_available() -> bool:
    return Path(REGISTRY_BINARY).exists() and shutil.which(HTPASSWD_BINARY) is not None


def registry_user(index: int) -> str:
    """htpasswd holds one hash per user, so key i > 0 gets user ``_i`` behind the proxy."""
    return "_" if index == 0 else f"_{index}"


class RegistryProcess:
    """A docker-registry process on 127.0.0.1 with filesystem storage in a temp dir."""

    def __init__(self, api_keys: list[str], port: int = 0) -> None:
        self.api_keys = api_keys
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="heroku-emu-registry-"))
        self.storage = self.dir / "storage"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        entries = []
        for index, key in enumerate(self.api_keys):
            out = subprocess.run(
                [HTPASSWD_BINARY, "-Bbn", registry_user(index), key],
                capture_output=True,
                check=True,
                text=True,
            ).stdout.strip()
            entries.append(out)
        (self.dir / "htpasswd").write_text("\n".join(entries) + "\n")
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": base64.b64encode(b"emu").hex()},
            "auth": {"htpasswd": {"realm": "Heroku Registry", "path": str(self.dir / "htpasswd")}},
        }
        # JSON is YAML: no PyYAML needed.
        (self.dir / "config.yml").write_text(json.dumps(config))
        self.log = open(self.dir / "registry.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.dir / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.read_log()}")
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code == 401:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not start: {self.read_log()}")

    def read_log(self) -> str:
        try:
            return (self.dir / "registry.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def remove_repository_dir(self, name: str) -> None:
        """The registry API can delete manifests but not a repository's name in the catalog."""
        root = self.storage / "docker" / "registry" / "v2" / "repositories"
        target = (root / name).resolve()
        if root.resolve() in target.parents:
            shutil.rmtree(target, ignore_errors=True)


class RegistryClient:
    """What the emulator itself asks of the registry (directly, as user ``_``)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.auth = (registry_user(0), key)

    def catalog(self) -> list[str]:
        r = requests.get(f"{self.url}/v2/_catalog?n=1000", auth=self.auth, timeout=10)
        r.raise_for_status()
        return list(r.json().get("repositories") or [])

    def tags(self, name: str) -> list[str]:
        r = requests.get(f"{self.url}/v2/{name}/tags/list", auth=self.auth, timeout=10)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return list(r.json().get("tags") or [])

    def manifest(self, name: str, ref: str) -> tuple[str, dict[str, Any]] | None:
        """(manifest digest, manifest) of NAME:REF, or None."""
        r = requests.get(
            f"{self.url}/v2/{name}/manifests/{ref}",
            auth=self.auth,
            headers={"Accept": MANIFEST_ACCEPT},
            timeout=10,
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers["Docker-Content-Digest"], r.json()

    def find_config_digest(self, repositories: list[str], config_digest: str) -> tuple[str, str]:
        """(repository, manifest digest) of the pushed image whose config is CONFIG_DIGEST."""
        for name in repositories:
            for tag in self.tags(name):
                found = self.manifest(name, tag)
                if found and found[1].get("config", {}).get("digest") == config_digest:
                    return name, found[0]
        raise LookupError(config_digest)

    def delete_repository(self, name: str) -> None:
        digests = set()
        for tag in self.tags(name):
            found = self.manifest(name, tag)
            if found:
                digests.add(found[0])
        for digest in digests:
            requests.delete(f"{self.url}/v2/{name}/manifests/{digest}", auth=self.auth, timeout=10)

    def contents(self) -> dict[str, list[str]]:
        """Every repository that still has tags, with its tags."""
        out = {}
        for name in self.catalog():
            tags = self.tags(name)
            if tags:
                out[name] = sorted(tags)
        return out


def registry_error(status: int, code: str, message: str, detail: str = "") -> tuple[int, bytes]:
    body = {"errors": [{"code": code, "message": message, "detail": detail or None}]}
    return status, json.dumps(body).encode()


class RegistryProxy:
    """ASGI app in front of the registry; see the module docstring for what it adds."""

    def __init__(
        self,
        upstream_port: int,
        api_keys: list[str],
        app_exists: Callable[[str], bool],
        fault: Callable[[str, str], Any],
    ) -> None:
        self.upstream_port = upstream_port
        self.api_keys = api_keys
        self.app_exists = app_exists
        self.fault = fault

    def _auth(self, headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Rewrite Basic auth with a valid key to that key's htpasswd user."""
        out, valid = [], False
        for name, value in headers:
            if name.lower() == b"authorization" and value[:6].lower() == b"basic ":
                try:
                    _, _, password = base64.b64decode(value[6:]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    password = ""
                if password in self.api_keys:
                    valid = True
                    user = registry_user(self.api_keys.index(password))
                    value = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
            out.append((name, value))
        return out, valid

    async def _reply(self, send, status: int, body: bytes) -> None:  # type: ignore[no-untyped-def]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"docker-distribution-api-version", b"registry/2.0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        injected = await self.fault(method, path)
        if injected is not None:
            status, body = injected
            await self._reply(send, status, json.dumps(body).encode())
            return
        headers, valid = self._auth(list(scope["headers"]))
        match = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/(.*)$", path)
        body_iter = asgi_body(receive)
        if match and valid:
            name, kind, _ref = match.groups()
            parts = name.split("/")
            if len(parts) != 2 or not self.app_exists(parts[0]):
                await self._reply(
                    send,
                    *registry_error(
                        403,
                        "DENIED",
                        "requested access to the resource is denied",
                        f"no app {parts[0]!r} for this account (push to REGISTRY/APP/web)",
                    ),
                )
                return
            if kind == "manifests" and method == "PUT":
                raw = b"".join([chunk async for chunk in body_iter])
                content_type = dict(headers).get(b"content-type", b"").decode().split(";")[0]
                try:
                    media_type = json.loads(raw).get("mediaType", "")
                except (ValueError, AttributeError):
                    media_type = ""
                if content_type in REFUSED_MANIFESTS or media_type in REFUSED_MANIFESTS:
                    await self._reply(
                        send,
                        *registry_error(
                            400,
                            "MANIFEST_INVALID",
                            "manifest invalid",
                            f"unsupported manifest media type {content_type or media_type}: "
                            "Heroku accepts only Docker manifest v2 schema 2 images "
                            "(build with --provenance=false, no OCI index or manifest list)",
                        ),
                    )
                    return
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(raw)).encode()))
                body_iter = iterate(raw)
        await self._forward(scope, send, method, headers, body_iter)

    async def _forward(self, scope, send, method, headers, body_iter) -> None:  # type: ignore[no-untyped-def]
        target = scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        has_body = method in {"PUT", "POST", "PATCH"}
        try:
            upstream = await Upstream.connect("127.0.0.1", self.upstream_port)
            await upstream.send_request(
                method, target, request_headers(headers, has_body), body_iter
            )
            response = await upstream.response()
        except UpstreamError as exc:
            await self._reply(send, *registry_error(502, "UNAVAILABLE", str(exc)))
            return
        backend = f"127.0.0.1:{self.upstream_port}".encode()
        host = dict(scope["headers"]).get(b"host", b"")
        out = []
        for name, value in response_headers(response.headers):
            if name == b"location" and host:
                value = value.replace(backend, host)
            out.append((name, value))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        try:
            async for chunk in upstream.body():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError:
            pass
        finally:
            upstream.close()
        await send({"type": "http.response.body", "body": b""})
