"""EndpointClient: how ModelShip calls a deployed endpoint.

The smoke test, ``modelship status``, ``modelship invoke`` and the wizard's Try-it form
all go through a client that the endpoint's target hands out
(``Target.client(endpoint, profile)``), so each of them works the same way against
every target: plain HTTP with an optional bearer key (this default), HTTPS with a
certificate pinned by its SHA-256 fingerprint (a VM's self-made certificate), or a
target's own transport (SageMaker's SigV4-signed InvokeEndpoint).

Standard library only (``http.client``): proxies from the usual environment variables
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) are honoured, loopback never goes
through a proxy, and a pinned certificate is checked on every connection.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import ssl
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from app.errors import TargetError
from app.nextstep import run_command, say
from app.progress import CancelToken, NullProgress, Progress
from app.waiting import WaitFailed, WaitTimeout, wait_until

RETRY_STATUSES = frozenset({502, 503, 504})


class EndpointError(Exception):
    """The endpoint answered with an HTTP error (``status``, ``body``)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class EndpointUnreachable(OSError):
    """No HTTP answer at all: refused, reset, timed out, DNS, proxy."""


class CertificateMismatch(EndpointUnreachable):
    """The server's TLS certificate is not the one pinned for this deployment."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, as lower-case hex (how records pin certificates)."""
    return hashlib.sha256(der).hexdigest()


def _normal_fp(fp: str) -> str:
    return fp.replace(":", "").strip().lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EndpointClient:
    """Calls an endpoint over HTTP(S). Subclasses replace the transport, not the verbs.

    ``headers`` go with every request (a bearer key read from the keyring by the
    target; never logged). ``tls_sha256`` pins the server certificate instead of
    trusting certificate authorities; ``ssl_context`` replaces both with a target's own
    (a Kubernetes cluster's CA and client certificate).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        tls_sha256: str | None = None,
        timeout: float = 30.0,
        model_name: str = "model",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # A target's own trust (a cluster's CA and client certificate, from its kubeconfig).
        self.ssl_context = ssl_context
        self.headers = dict(headers or {})
        self.tls_sha256 = _normal_fp(tls_sha256) if tls_sha256 else None
        self.timeout = timeout
        self.model_name = model_name
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise TargetError(
                f"{url!r} is not an http(s) address.", "Check the deployment's record."
            )
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._base_path = parts.path.rstrip("/")

    # ---- transport ---------------------------------------------------------------
    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to the server (through a proxy when the environment says so).

        Returns (connection, absolute_form): plain-HTTP proxies want the absolute URL.
        """
        proxy = None
        if not _is_loopback(self._host) and not urllib.request.proxy_bypass(self._host):
            proxy = urllib.request.getproxies().get(self._scheme)
        if self._scheme == "https":
            if self.ssl_context is not None:
                ctx = self.ssl_context
            elif self.tls_sha256:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False  # the pin below is stronger than a name check
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ctx = ssl.create_default_context()
            if proxy:
                p = urllib.parse.urlsplit(proxy)
                conn = http.client.HTTPSConnection(
                    p.hostname or "", p.port or 8080, timeout=timeout, context=ctx
                )
                conn.set_tunnel(self._host, self._port)
            else:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=ctx
                )
            return conn, False
        if proxy:
            p = urllib.parse.urlsplit(proxy)
            return http.client.HTTPConnection(
                p.hostname or "", p.port or 8080, timeout=timeout
            ), True
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout), False

    def _check_pin(self, conn: http.client.HTTPConnection) -> None:
        if not self.tls_sha256:
            return
        sock = conn.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if not der or fingerprint(der) != self.tls_sha256:
            conn.close()
            raise CertificateMismatch(
                f"The server at {self.url} presented a certificate that is not the one "
                "pinned for this deployment"
            )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One request; raises EndpointError for a 4xx/5xx, EndpointUnreachable when
        nothing answered."""
        timeout = self.timeout if timeout is None else timeout
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        conn, absolute = self._connection(timeout)
        target = self._base_path + path
        if absolute:
            target = f"{self._scheme}://{self._host}:{self._port}{target}"
        try:
            conn.connect()
            self._check_pin(conn)
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        except CertificateMismatch:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise EndpointUnreachable(f"no answer from {self.url} ({exc})") from exc
        finally:
            conn.close()
        if status >= 400:
            raise EndpointError(status, data.decode("utf-8", errors="replace"))
        return Response(status, data, resp_headers)

    # ---- verbs -------------------------------------------------------------------
    def ping(self, timeout: float = 5.0) -> bool:
        """True when the health route answers 200; EndpointError for a definite "no"."""
        return self.request("GET", "/ping", timeout=timeout).status == 200

    def predict(self, rows: list[Any]) -> dict[str, Any]:
        """Rows (lists) or records (dicts) in, ``{"predictions": [...], ...}`` out."""
        body = json.dumps(rows).encode()
        return self.request("POST", "/predict", body, content_type="application/json").json()

    def predict_csv(self, csv_text: str | bytes) -> str:
        """A CSV with a header row in, a CSV of predictions out (batch scoring)."""
        data = csv_text.encode() if isinstance(csv_text, str) else csv_text
        resp = self.request("POST", "/predict", data, content_type="text/csv", accept="text/csv")
        return resp.body.decode("utf-8")

    def infer(self, inputs: list[dict[str, Any]], model: str | None = None) -> dict[str, Any]:
        """Open Inference Protocol v2: ``{"inputs": [...]}`` -> ``{"outputs": [...]}``."""
        body = json.dumps({"inputs": inputs}).encode()
        path = f"/v2/models/{model or self.model_name}/infer"
        return self.request("POST", path, body, content_type="application/json").json()

    def metrics(self) -> str:
        return self.request("GET", "/metrics").body.decode("utf-8", errors="replace")

    def latency_ms(self, rows: list[Any], samples: int = 10) -> list[float]:
        """Round-trip times of single-row predictions, in milliseconds."""
        times = []
        for row in rows[:samples]:
            t0 = time.perf_counter()
            self.predict([row])
            times.append((time.perf_counter() - t0) * 1000)
        return times

    def wait_healthy(
        self,
        *,
        timeout: float = 60.0,
        cancel: CancelToken | None = None,
        progress: Progress | None = None,
    ) -> tuple[int, float]:
        """Wait for ``ping`` with bounded retries (a fresh server refuses connections or
        answers 502/503 while it loads, after Truss's ``_wait_for_model_server``).

        Returns (attempts, seconds). Raises WaitTimeout, or WaitFailed when the server
        answers a definite "no" (any other 4xx/5xx, a wrong certificate).
        """
        attempts = 0
        start = time.monotonic()

        def probe() -> str:
            nonlocal attempts
            attempts += 1
            try:
                return "ok" if self.ping() else "not ready"
            except CertificateMismatch as exc:
                return f"fatal: {exc}"
            except EndpointError as exc:
                if exc.status in RETRY_STATUSES:
                    return f"answered {exc.status}"
                return f"fatal: /ping answered {exc.status}"
            except EndpointUnreachable as exc:
                return f"no answer ({exc.__cause__ or exc})"

        wait_until(
            probe,
            lambda s: s == "ok",
            lambda s: s[len("fatal: ") :] if s.startswith("fatal: ") else None,
            timeout=timeout,
            cancel=cancel,
            progress=progress or NullProgress(),
            what=f"{self.url} to answer",
            describe=lambda s: f"Waiting for {self.url} to become healthy: {s}",
            hint=say(
                "Check that the deployment runs (",
                run_command("status", quote=""),
                ") and raise the timeout for a slow model.",
            ),
            max_interval=2.0,
        )
        return attempts, time.monotonic() - start


_STATUS_WORDS = {
    401: "The endpoint refused the request: it needs its API key, and the key sent was "
    "missing or wrong.",
    403: "The endpoint refused the request (not allowed with this key).",
    404: "The endpoint has no such address.",
    413: "The request was too large for the endpoint.",
    429: "The endpoint is busy; try again in a moment.",
}


def error_words(exc: EndpointError) -> str:
    """What the endpoint said, in its own words: no HTTP code, no JSON. The serving
    runtime answers ``{"error": "..."}``; platforms answer ``{"message": ...}``."""
    text = (exc.body or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        said = data.get("error") or data.get("message") or data.get("Message")
        text = str(said).strip() if said else ""
    if not text or text.startswith("<"):  # an HTML error page from a proxy
        if exc.status in _STATUS_WORDS:
            return _STATUS_WORDS[exc.status]
        if exc.status >= 500:
            return say(
                "The endpoint failed on its side; its log says why (",
                run_command("logs", "NAME", quote=""),
                ").",
            )
        return "The endpoint refused the request."
    return text[:400]


def answers(url: str, timeout: float = 2.0) -> bool:
    """Does ``url/ping`` answer 200 right now? (No retries: for polling loops.)"""
    try:
        return EndpointClient(url).ping(timeout=timeout)
    except (EndpointError, EndpointUnreachable):
        return False


__all__ = [
    "CertificateMismatch",
    "EndpointClient",
    "EndpointError",
    "EndpointUnreachable",
    "Response",
    "WaitFailed",
    "WaitTimeout",
    "answers",
    "error_words",
    "fingerprint",
]
