"""A thin layer over the official ``kubernetes`` client (imported here only, lazily):
the kubeconfig, server-side apply, get/list/delete by label, the scale subresource,
pod logs and SelfSubjectAccessReview; API errors in plain words."""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from app.errors import CredentialError, TargetError
from targets.kubernetes.manifests import FIELD_MANAGER, Manifest
from targets.kubernetes.settings import KubernetesSettings

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
# kind -> (group/version path prefix, plural, namespaced)
PLURALS: dict[str, str] = {
    "Secret": "secrets",
    "Service": "services",
    "Pod": "pods",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses",
    "InferenceService": "inferenceservices",
}
KSERVE_API = "serving.kserve.io/v1beta1"


def _prefix(api_version: str) -> str:
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


@dataclass
class ObjectRef:
    api_version: str
    kind: str
    name: str

    def words(self) -> str:
        return f"{self.kind} {self.name}"


class Cluster:
    """One connection to the cluster of a kubeconfig context."""

    def __init__(self, settings: KubernetesSettings) -> None:
        try:
            from kubernetes import client, config
        except ImportError as exc:  # pragma: no cover - a dependency
            raise TargetError(
                "The kubernetes Python package is missing.", "Reinstall ModelShip."
            ) from exc
        self.settings = settings
        self.namespace = settings.namespace
        paths = [p for p in settings.kubeconfig_paths() if p.is_file()]
        if not paths:
            raise CredentialError(
                "There is no kubeconfig file: "
                + ", ".join(str(p) for p in settings.kubeconfig_paths()),
                "Sign in to your cluster (your administrator gives you a kubeconfig file) "
                "and set the kubeconfig file in the settings.",
            )
        configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=str(paths[0]),
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except config.ConfigException as exc:
            raise TargetError(
                f"The kubeconfig cannot be used: {exc}",
                "Check the context setting against the contexts of your kubeconfig.",
            ) from exc
        self.configuration = configuration
        self.api = client.ApiClient(configuration)
        self._exc = client.ApiException

    @property
    def server(self) -> str:
        return str(self.configuration.host).rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        """The cluster's own credential header (a token, never stored)."""
        hook = getattr(self.configuration, "refresh_api_key_hook", None)
        if hook is not None:
            hook(self.configuration)
        token = self.configuration.api_key.get("authorization") or self.configuration.api_key.get(
            "BearerToken"
        )
        if not token:
            return {}
        prefix = self.configuration.api_key_prefix.get("authorization", "")
        value = token if token.lower().startswith("bearer ") else f"{prefix} {token}".strip()
        if not value.lower().startswith("bearer "):
            value = f"Bearer {token}"
        return {"Authorization": value}

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS as the kubeconfig says (its CA, its client certificate); None for http."""
        if not self.server.startswith("https"):
            return None
        cfg = self.configuration
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        return ctx

    def close(self) -> None:
        self.api.close()

    # ---- raw calls --------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str | None = None,
        what: str = "",
        raw: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json", "User-Agent": "modelship"}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(self.auth_headers())
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            data = self.api.rest_client.request(
                method, url, headers=headers, body=body, _request_timeout=60
            )
            data.read()
        except self._exc as exc:
            raise self._error(exc, method, what or path) from exc
        except OSError as exc:
            raise TargetError(
                f"The cluster's API server at {self.server} does not answer: {exc}",
                "Check that the cluster runs and that this computer can reach it (VPN, network).",
            ) from exc
        except Exception as exc:  # urllib3's MaxRetryError and friends
            if type(exc).__module__.startswith("urllib3"):
                raise TargetError(
                    f"The cluster's API server at {self.server} does not answer: {exc}",
                    "Check that the cluster runs and that this computer can reach it.",
                ) from exc
            raise
        if not 200 <= int(data.status) < 300:
            err = self._exc(status=data.status, reason=data.reason)
            err.body = data.data.decode("utf-8", "replace")
            raise self._error(err, method, what or path)
        text = data.data.decode("utf-8", "replace")
        if raw:
            return text
        return json.loads(text) if text else {}

    def _error(self, exc: Any, method: str, what: str) -> Exception:
        status = int(getattr(exc, "status", 0) or 0)
        try:
            body = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            body = {}
        message = str(body.get("message") or exc.reason or "")
        if status == 401:
            return CredentialError(
                f"The cluster did not accept your credentials ({message}).",
                "Sign in to the cluster again (your kubeconfig's token may have expired).",
            )
        if status == 403:
            return TargetError(
                f"The cluster does not allow you to {VERBS.get(method, method.lower())} "
                f"{what} in namespace {self.namespace}: {message}",
                "Ask your cluster's administrator for that permission in this namespace, "
                "or choose a namespace where you have it.",
            )
        if status == 404:
            return TargetError(f"{what} was not found: {message}", "Check the namespace.")
        if status == 409:
            return TargetError(f"{what} conflicts: {message}", "Deploy again.")
        if status == 422:
            causes = (body.get("details") or {}).get("causes") or []
            fields = ", ".join(str(c.get("field")) for c in causes if c.get("field"))
            return TargetError(
                f"The cluster refused {what} as invalid"
                + (f" (field {fields})" if fields else "")
                + f": {message}",
                "Check the settings named there.",
            )
        return TargetError(f"The cluster answered {status} for {what}: {message}", "Try again.")

    # ---- objects ------------------------------------------------------------------------
    def path(self, api_version: str, kind: str, name: str | None = None) -> str:
        out = f"{_prefix(api_version)}/namespaces/{self.namespace}/{PLURALS[kind]}"
        return f"{out}/{name}" if name else out

    def apply(self, manifest: Manifest) -> dict[str, Any]:
        """Server-side apply (field manager modelship, forced)."""
        m = manifest
        return self.call(  # type: ignore[no-any-return]
            "PATCH",
            self.path(m["apiVersion"], m["kind"], m["metadata"]["name"]),
            body=json.dumps(m),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type=APPLY,
            what=f"{m['kind']} {m['metadata']['name']}",
        )

    def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.call(  # type: ignore[no-any-return]
                "GET", self.path(api_version, kind, name), what=f"{kind} {name}"
            )
        except TargetError as exc:
            if "was not found" in exc.message:
                return None
            raise

    def list(self, api_version: str, kind: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        sel = ",".join(f"{k}={v}" for k, v in selector.items())
        out = self.call(
            "GET",
            self.path(api_version, kind),
            query=[("labelSelector", sel)],
            what=f"{PLURALS[kind]}",
        )
        return list(out.get("items") or [])

    def delete(self, api_version: str, kind: str, name: str) -> bool:
        try:
            self.call(
                "DELETE",
                self.path(api_version, kind, name),
                body={"propagationPolicy": "Background"},
                content_type="application/json",
                what=f"{kind} {name}",
            )
        except TargetError as exc:
            if "was not found" in exc.message:
                return False
            raise
        return True

    def scale(self, name: str, replicas: int) -> None:
        self.call(
            "PATCH",
            self.path("apps/v1", "Deployment", name) + "/scale",
            body={"spec": {"replicas": replicas}},
            content_type=MERGE,
            what=f"deployments/scale {name}",
        )

    def pod_log(self, pod: str, lines: int, previous: bool = False) -> str:
        query: list[tuple[str, Any]] = [("tailLines", lines)]
        if previous:
            query.append(("previous", "true"))
        try:
            return str(
                self.call(
                    "GET",
                    self.path("v1", "Pod", pod) + "/log",
                    query=query,
                    what=f"the log of pod {pod}",
                    raw=True,
                )
            )
        except TargetError:
            return ""

    def pod_proxy_get(
        self,
        pod: str,
        port: int,
        path: str,
        query: list[tuple[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """``GET`` PATH on one pod through the API server's pods proxy
        (``pods/POD:PORT/proxy/PATH``), with the user's own cluster credential: the pod's
        status and body. The API server's own refusals (no ``get pods/proxy``, the pod
        gone or unreachable) raise in plain words; the pod's answers come back as they are."""
        url = f"{self.server}{self.path('v1', 'Pod', f'{pod}:{port}')}/proxy/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        sent = {"User-Agent": "modelship", **(headers or {}), **self.auth_headers()}
        what = f"pods/proxy of pod {pod}"
        try:
            data = self.api.rest_client.request("GET", url, headers=sent, _request_timeout=60)
            body = data.read()
        except self._exc as exc:
            raise self._error(exc, "GET", what) from exc
        except Exception as exc:  # OSError, urllib3's MaxRetryError and friends
            if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
                raise TargetError(
                    f"The cluster's API server at {self.server} does not answer: {exc}",
                    "Check that the cluster runs and that this computer can reach it.",
                ) from exc
            raise
        status = int(data.status)
        if not 200 <= status < 300 and _is_status(body):
            err = self._exc(status=status, reason=data.reason)
            err.body = body.decode("utf-8", "replace")
            raise self._error(err, "GET", what)
        return status, body

    def namespace_exists(self) -> bool:
        try:
            self.call("GET", f"/api/v1/namespaces/{self.namespace}", what="namespace")
        except TargetError as exc:
            if "was not found" in exc.message:
                return False
            raise
        return True

    def serves(self, api_version: str) -> bool:
        group, _, version = api_version.partition("/")
        try:
            out = self.call("GET", f"/apis/{group}", what=f"API group {group}")
        except TargetError:
            return False
        return any(v.get("version") == version for v in out.get("versions") or [])

    def allowed(
        self, verb: str, resource: str, group: str = "", subresource: str = ""
    ) -> tuple[bool, str]:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": self.namespace,
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                }
            },
        }
        out = self.call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            content_type="application/json",
            what="access review",
        )
        status = out.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or "")


def _is_status(body: bytes) -> bool:
    """A Kubernetes ``Status`` (the API server's own error), not the pod's answer."""
    try:
        out = json.loads(body)
    except (TypeError, ValueError):
        return False
    return isinstance(out, dict) and out.get("kind") == "Status"


VERBS = {"GET": "read", "PATCH": "change", "POST": "create", "DELETE": "delete", "PUT": "replace"}


@contextmanager
def cluster(settings: KubernetesSettings) -> Iterator[Cluster]:
    c = Cluster(settings)
    try:
        yield c
    finally:
        c.close()
