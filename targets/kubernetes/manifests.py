"""The exact objects a kubernetes deployment applies, as plain dicts (no SDK, no traffic).

One function per object and :func:`build` for the whole set, in the order they are
applied (Secrets first, so a pod never starts without its key). ``modelship deploy
--dry-run`` and ``modelship export --kubernetes`` print :func:`render_yaml` of
:func:`redacted` manifests; the target applies the same dicts with server-side apply.

No Namespace is ever made: the user's namespace must exist (preflight checks it).
Every object carries ``modelship.managed=true`` and ``modelship.deployment=<name>`` so that
teardown and status find them by label.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from targets.kubernetes.names import (
    key_secret_name,
    labels,
    pull_secret_name,
    selector,
    service_name,
    workload_name,
)
from targets.kubernetes.settings import KubernetesSettings, cpu_millicores

# The Kubernetes minor releases whose official schemas every manifest validates against
# (tests/unit/test_kubernetes_manifests.py, with kubernetes-validate's bundled schemas).
SUPPORTED_KUBERNETES: tuple[str, ...] = tuple(f"1.{minor}" for minor in range(29, 38))
# KServe's InferenceService CRD the kserve mode is validated against (its schema is kept
# in tests/unit/data/kserve/ with its source).
SUPPORTED_KSERVE = "0.20"

VERSION_ANNOTATION = "modelship.model-version"
HASH_ANNOTATION = "modelship.model-hash"
# The serving image's user (app/image/buildcontext.py IMAGE_UID, resources/docker/Dockerfile.j2).
IMAGE_UID = 10001
KEY_DIR = "/var/run/modelship"
KEY_FILE = f"{KEY_DIR}/api_key"  # read by app.serving.config.read_api_key
KEY_ITEM = "api_key"
CONTAINER_NAME = "model"
# captured requests (app/serving/capture.py) on their own emptyDir: the root is read-only,
# the pod's deletion removes them, and the sizeLimit keeps them off the node's disk
CAPTURE_DIR = "/var/lib/modelship/capture"
CAPTURE_VOLUME = "capture"
KSERVE_CONTAINER = "kserve-container"  # KServe's name for a predictor's main container
# KServe's raw deployment mode (a Deployment, Service and HPA; no Knative). KServe 0.15+
# also names it "Standard"; "RawDeployment" is what every release since 0.8 accepts.
KSERVE_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KSERVE_AUTOSCALER_ANNOTATION = "serving.kserve.io/autoscalerClass"
# Labelled so, KServe makes no Ingress of its own: who may reach the endpoint is the
# profile's ``expose`` (ModelShip's Service and Ingress), never the cluster's defaults.
KSERVE_VISIBILITY = {"networking.kserve.io/visibility": "cluster-local"}
FIELD_MANAGER = "modelship"  # the server-side apply field manager
REDACTED = "<set at deploy time from the keyring>"

Manifest = dict[str, Any]
Flavour = Literal["deployment", "kserve"]


@dataclass(frozen=True)
class PullCredential:
    """A registry login the cluster pulls with (read from the keyring by the caller)."""

    username: str
    password: str

    def __repr__(self) -> str:  # never show the password
        return f"PullCredential(username={self.username!r}, password=***)"


def format_cpu(millicores: int) -> str:
    """Millicores as Kubernetes writes them: whole cores plainly, else ``<n>m``."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def limits(settings: KubernetesSettings) -> dict[str, str]:
    """The container's limits, derived from its requests (``cpu``, ``memory``).

    CPU: twice the request, so a pod may burst through a model's first calls without
    being throttled at its steady share (and the autoscaler's utilisation, measured
    against the request, may pass 100%). Memory: the request itself, so the scheduler
    never places more than fits: a pod that outgrows it is restarted (OOMKilled), not a
    neighbour.
    """
    return {"cpu": format_cpu(2 * cpu_millicores(settings.cpu)), "memory": settings.memory}


def _metadata(
    deployment: str,
    name: str,
    settings: KubernetesSettings,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": settings.namespace,
        "labels": labels(deployment),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def model_annotations(model_version: int | None, model_hash: str | None) -> dict[str, str]:
    """The model's version and hash, as the pods' (and objects') annotations."""
    out: dict[str, str] = {}
    if model_version is not None:
        out[VERSION_ANNOTATION] = str(model_version)
    if model_hash:
        out[HASH_ANNOTATION] = model_hash
    return out


def key_secret(deployment: str, settings: KubernetesSettings, key: str | None) -> Manifest:
    """The endpoint key as an Opaque Secret (item ``api_key``), mounted read-only into
    the pods; ``key=None`` shows :data:`REDACTED` in its place (dry runs, exports)."""
    return _secret(
        deployment,
        key_secret_name(deployment),
        settings,
        "Opaque",
        {KEY_ITEM: key} if key is not None else None,
        {KEY_ITEM: REDACTED},
    )


def pull_secret(
    deployment: str, settings: KubernetesSettings, credential: PullCredential | None
) -> Manifest:
    """A ``kubernetes.io/dockerconfigjson`` Secret for the registry's host[:port];
    ``credential=None`` shows :data:`REDACTED` in place of the login."""
    shown = {DOCKERCONFIG: _dockerconfig(settings.registry_host, {"auth": REDACTED})}
    if credential is None:
        return _secret(
            deployment, pull_secret_name(deployment), settings, DOCKERCONFIG_TYPE, None, shown
        )
    login = {
        "username": credential.username,
        "password": credential.password,
        "auth": _b64(f"{credential.username}:{credential.password}"),
    }
    return _secret(
        deployment,
        pull_secret_name(deployment),
        settings,
        DOCKERCONFIG_TYPE,
        {DOCKERCONFIG: _dockerconfig(settings.registry_host, login)},
        shown,
    )


DOCKERCONFIG_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCONFIG = ".dockerconfigjson"


def _dockerconfig(host: str, auth: dict[str, str]) -> str:
    return json.dumps({"auths": {host: auth}}, separators=(",", ":"))


def _secret(
    deployment: str,
    name: str,
    settings: KubernetesSettings,
    kind: str,
    values: dict[str, str] | None,
    shown: dict[str, str],
) -> Manifest:
    """A Secret: ``values`` base64-encoded in ``data``, or, without values, ``shown`` as
    readable ``stringData`` (placeholders, never a secret)."""
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(deployment, name, settings),
        "type": kind,
    }
    if values is None:
        manifest["stringData"] = dict(shown)
    else:
        manifest["data"] = {item: _b64(value) for item, value in values.items()}
    return manifest


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def container_env(settings: KubernetesSettings, with_key: bool) -> list[dict[str, str]]:
    """The serving configuration (app/serving/config.py): the port, every address, and
    the key's *file* (never the key itself)."""
    env = [
        {"name": "PORT", "value": str(settings.port)},
        {"name": "MODELSHIP_HOST", "value": "0.0.0.0"},
    ]
    if with_key:
        env.append({"name": "MODELSHIP_API_KEY_FILE", "value": KEY_FILE})
    if settings.capture_rate > 0:
        env += [
            {"name": "MODELSHIP_CAPTURE_RATE", "value": f"{settings.capture_rate:g}"},
            {"name": "MODELSHIP_CAPTURE_MAX_MB", "value": f"{settings.capture_max_mb:g}"},
            {"name": "MODELSHIP_CAPTURE_DIR", "value": CAPTURE_DIR},
        ]
        if not with_key and settings.expose == "proxy":
            # reached only through the API server's proxy, whose sign-in guards it
            env.append({"name": "MODELSHIP_CAPTURE_GUARDED", "value": "1"})
    return env


def capture_size_limit(max_mb: float) -> str:
    """The capture emptyDir's sizeLimit: the bound the server keeps, and room above it
    (a file being written, the file system's own blocks) so the pod is never evicted."""
    return f"{math.ceil(max_mb * 1.25) + 8}Mi"


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": IMAGE_UID,
        "runAsGroup": IMAGE_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    """The pod's: non-root, and ``fsGroup`` so the key file (mode 0440) is readable."""
    return {
        "runAsNonRoot": True,
        "runAsUser": IMAGE_UID,
        "runAsGroup": IMAGE_UID,
        "fsGroup": IMAGE_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def probes(settings: KubernetesSettings) -> dict[str, Any]:
    """Readiness, liveness and startup on ``GET /ping`` (public: no key needed). The
    startup probe gives the model ``start_timeout`` to load before liveness counts."""
    ping = {"path": "/ping", "port": settings.port, "scheme": "HTTP"}
    period = 5
    return {
        "startupProbe": {
            "httpGet": dict(ping),
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": max(1, -(-int(settings.start_timeout) // period)),
        },
        "readinessProbe": {
            "httpGet": dict(ping),
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
            "successThreshold": 1,
        },
        "livenessProbe": {
            "httpGet": dict(ping),
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        },
    }


def container(
    settings: KubernetesSettings, image: str, *, with_key: bool, name: str = CONTAINER_NAME
) -> dict[str, Any]:
    """The serving container, as the Deployment and the InferenceService run it."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    if with_key:
        mounts.append({"name": "api-key", "mountPath": KEY_DIR, "readOnly": True})
    if settings.capture_rate > 0:
        mounts.append({"name": CAPTURE_VOLUME, "mountPath": CAPTURE_DIR})
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": settings.port, "protocol": "TCP"}],
        "env": container_env(settings, with_key),
        "resources": {
            "requests": {"cpu": settings.cpu, "memory": settings.memory},
            "limits": limits(settings),
        },
        **probes(settings),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }


def volumes(
    deployment: str, with_key: bool, settings: KubernetesSettings | None = None
) -> list[dict[str, Any]]:
    """``/tmp`` (the root file system is read-only; HOME is /tmp), the key's Secret, and
    the captured requests' own emptyDir when capture is on."""
    out: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if settings is not None and settings.capture_rate > 0:
        out.append(
            {
                "name": CAPTURE_VOLUME,
                "emptyDir": {"sizeLimit": capture_size_limit(settings.capture_max_mb)},
            }
        )
    if with_key:
        out.append(
            {
                "name": "api-key",
                "secret": {
                    "secretName": key_secret_name(deployment),
                    "items": [{"key": KEY_ITEM, "path": KEY_ITEM}],
                    "defaultMode": 0o440,
                },
            }
        )
    return out


def deployment_manifest(
    deployment: str,
    settings: KubernetesSettings,
    image: str,
    *,
    with_key: bool,
    model_version: int | None = None,
    model_hash: str | None = None,
) -> Manifest:
    """The apps/v1 Deployment: a rolling update that never drops below the pods it has
    (``maxUnavailable: 0``, one extra pod at a time)."""
    notes = model_annotations(model_version, model_hash)
    pod_meta: dict[str, Any] = {"labels": labels(deployment)}
    if notes:
        pod_meta["annotations"] = dict(notes)
    pod: dict[str, Any] = {
        "securityContext": pod_security(),
        "automountServiceAccountToken": False,  # the server never calls the API
        "containers": [container(settings, image, with_key=with_key)],
        "volumes": volumes(deployment, with_key, settings),
    }
    if settings.pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret_name(deployment)}]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(deployment)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "progressDeadlineSeconds": max(60, int(settings.start_timeout)),
        "revisionHistoryLimit": 3,
        "template": {"metadata": pod_meta, "spec": pod},
    }
    # With an HPA the autoscaler owns spec.replicas. Server-side apply would otherwise
    # reset it to our number on every redeploy (our field manager owns the field), and
    # fight the HPA: so the field is left out, and the HPA's minReplicas starts it.
    if not settings.autoscaled:
        spec = {"replicas": settings.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(deployment, workload_name(deployment, "deployment"), settings, notes),
        "spec": spec,
    }


SERVICE_TYPES = {
    "proxy": "ClusterIP",
    "ingress": "ClusterIP",
    "loadbalancer": "LoadBalancer",
    "nodeport": "NodePort",
}
SERVICE_PORT = 80  # the Service's port; the pods listen on settings.port


def service(
    deployment: str, settings: KubernetesSettings, flavour: Flavour = "deployment"
) -> Manifest:
    """The Service in front of the pods (in both modes: it selects them by label):
    ClusterIP for proxy and ingress, else a LoadBalancer or NodePort (the node port is
    left to the cluster)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(deployment, service_name(deployment, flavour), settings),
        "spec": {
            "type": SERVICE_TYPES[settings.expose],
            "selector": selector(deployment),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def autoscaler(deployment: str, settings: KubernetesSettings) -> Manifest:
    """The autoscaling/v2 HorizontalPodAutoscaler (only when :attr:`autoscaled`)."""
    least, most = settings.replica_range
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(deployment, workload_name(deployment, "deployment"), settings),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": workload_name(deployment, "deployment"),
            },
            "minReplicas": least,
            "maxReplicas": most,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": settings.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }


def ingress(
    deployment: str, settings: KubernetesSettings, flavour: Flavour = "deployment"
) -> Manifest:
    """The networking.k8s.io/v1 Ingress for ``host`` (TLS with ``tls_secret`` if set)."""
    assert settings.host, "an Ingress needs settings.host"
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": settings.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": service_name(deployment, flavour),
                                    "port": {"name": "http"},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if settings.tls_secret:
        spec["tls"] = [{"hosts": [settings.host], "secretName": settings.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(deployment, service_name(deployment, flavour), settings),
        "spec": spec,
    }


def inference_service(
    deployment: str,
    settings: KubernetesSettings,
    image: str,
    *,
    with_key: bool,
    model_version: int | None = None,
    model_hash: str | None = None,
) -> Manifest:
    """One serving.kserve.io/v1beta1 InferenceService in raw deployment mode, with the
    serving image as the predictor's custom container (same security, probes, resources
    and key file as the Deployment). KServe makes the Deployment, Service and (with a
    range) the HPA itself; without one its autoscaler is off."""
    least, most = settings.replica_range
    notes = {
        KSERVE_MODE_ANNOTATION: "RawDeployment",
        KSERVE_AUTOSCALER_ANNOTATION: "hpa" if settings.autoscaled else "none",
        **model_annotations(model_version, model_hash),
    }
    predictor: dict[str, Any] = {
        "labels": labels(deployment),  # on the pods KServe makes
        "minReplicas": least,
        "maxReplicas": most,
        "securityContext": pod_security(),
        "automountServiceAccountToken": False,
        "containers": [container(settings, image, with_key=with_key, name=KSERVE_CONTAINER)],
        "volumes": volumes(deployment, with_key, settings),
    }
    if settings.autoscaled:
        predictor["scaleMetric"] = "cpu"
        predictor["scaleTarget"] = settings.target_cpu_percent
    if settings.pull_secret:
        predictor["imagePullSecrets"] = [{"name": pull_secret_name(deployment)}]
    meta = _metadata(deployment, workload_name(deployment, "kserve"), settings, notes)
    meta["labels"].update(KSERVE_VISIBILITY)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


def build(
    deployment: str,
    settings: KubernetesSettings,
    image: str,
    *,
    flavour: Flavour,
    key: str | None = None,
    credential: PullCredential | None = None,
    model_version: int | None = None,
    model_hash: str | None = None,
) -> list[Manifest]:
    """Every object of ``deployment``, in the order to apply them: the Secrets, the
    workload (a Deployment, or an InferenceService that makes its own), ModelShip's
    Service, the HPA (deployment mode) and the Ingress.

    ``flavour`` is the mode resolved (``auto`` is the target's to decide: it asks the
    cluster whether ``serving.kserve.io`` is served). ``key`` and ``credential`` are the
    secrets' values, None where they are shown rather than applied (the Secrets then
    hold :data:`REDACTED`). A key Secret is made when ``settings.api_key`` names one; a
    pull Secret when ``settings.pull_secret`` does.
    """
    with_key = bool(settings.api_key)
    out: list[Manifest] = []
    if with_key:
        out.append(key_secret(deployment, settings, key))
    if settings.pull_secret:
        out.append(pull_secret(deployment, settings, credential))
    workload = inference_service if flavour == "kserve" else deployment_manifest
    out.append(
        workload(
            deployment,
            settings,
            image,
            with_key=with_key,
            model_version=model_version,
            model_hash=model_hash,
        )
    )
    out.append(service(deployment, settings, flavour))
    if settings.autoscaled and flavour == "deployment":  # KServe makes its own
        out.append(autoscaler(deployment, settings))
    if settings.expose == "ingress":
        out.append(ingress(deployment, settings, flavour))
    return out


def redacted(manifests: list[Manifest]) -> list[Manifest]:
    """The manifests with every Secret's values replaced by :data:`REDACTED`, readable
    (what a dry run shows and an export writes: a secret never reaches a screen or a
    file). A pull secret keeps its registry host."""
    out = []
    for manifest in manifests:
        if manifest.get("kind") == "Secret":
            manifest = {k: v for k, v in manifest.items() if k not in ("data", "stringData")}
            if manifest.get("type") == DOCKERCONFIG_TYPE:
                hosts = _registry_hosts(manifests)
                manifest["stringData"] = {
                    DOCKERCONFIG: json.dumps(
                        {"auths": {host: {"auth": REDACTED} for host in hosts}},
                        separators=(",", ":"),
                    )
                }
            else:
                manifest["stringData"] = {KEY_ITEM: REDACTED}
        out.append(manifest)
    return out


def _registry_hosts(manifests: list[Manifest]) -> list[str]:
    """The registry hosts the pull secret among ``manifests`` holds logins for."""
    for manifest in manifests:
        if manifest.get("type") == DOCKERCONFIG_TYPE:
            if "data" in manifest:
                text = base64.b64decode(manifest["data"][DOCKERCONFIG]).decode("utf-8")
            else:
                text = manifest["stringData"][DOCKERCONFIG]
            return list(json.loads(text)["auths"])
    return []


def render_yaml(manifests: list[Manifest]) -> str:
    """The manifests as one multi-document YAML stream (``kubectl apply -f`` reads it),
    keys in the order built."""
    return yaml.safe_dump_all(manifests, sort_keys=False, default_flow_style=False)


__all__ = [
    "FIELD_MANAGER",
    "REDACTED",
    "SUPPORTED_KSERVE",
    "SUPPORTED_KUBERNETES",
    "Manifest",
    "PullCredential",
    "autoscaler",
    "build",
    "deployment_manifest",
    "inference_service",
    "ingress",
    "key_secret",
    "limits",
    "pull_secret",
    "redacted",
    "render_yaml",
    "service",
]
