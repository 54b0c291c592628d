"""Settings of the ``kubernetes`` target (no SDK, no target code: see targets.settings).

The cluster's credentials are never here: ``kubeconfig`` and ``context`` name the
user's own kubeconfig entry (as ``kubectl`` uses it). ``pull_secret`` and ``api_key``
name keyring entries. ``cpu`` and ``memory`` are the pods' *requests*; the limits
follow from them (see :func:`targets.kubernetes.manifests.limits`).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from targets.settings import (
    SecretRef,
    TargetSettings,
    api_key_field,
    capture_max_mb_field,
    capture_rate_field,
    start_timeout_field,
)

# RFC 1123 label, as Kubernetes checks namespaces and most names (IsDNS1123Label).
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RFC 1123 subdomain (IsDNS1123Subdomain): Secret names, among others.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# An Ingress rule's host: a DNS name, not an IP address; a leading "*." is allowed.
INGRESS_HOST = re.compile(
    r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
# host[:port][/path], as an image reference starts (no scheme): what the cluster pulls from.
REGISTRY = re.compile(
    r"^(?P<host>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?P<port>:[0-9]{1,5})?"
    r"(?P<path>(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$"
)

CPU_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>m?)$")
MEMORY_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
)
MEMORY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
MIN_MEMORY = 64 * 2**20  # a floor: the server with onnxruntime and a model needs more
UNPRIVILEGED_PORTS = 1024  # the container runs as non-root with every capability dropped

Mode = Literal["deployment", "kserve", "auto"]
Expose = Literal["proxy", "ingress", "loadbalancer", "nodeport"]


def cpu_millicores(quantity: str) -> int:
    """A CPU quantity (``250m``, ``0.5``, ``2``) in millicores; ValueError with the
    reason and an example when it is not one, or is below 1m."""
    match = CPU_QUANTITY.match(quantity.strip())
    if not match:
        raise ValueError(
            f"{quantity!r} is not a CPU quantity: write millicores such as 250m or cores "
            "such as 0.5 or 2"
        )
    number = Decimal(match["number"])
    milli = number if match["suffix"] == "m" else number * 1000
    if milli < 1:
        raise ValueError(f"{quantity!r} is below the smallest CPU request, 1m")
    if milli != milli.to_integral_value():
        raise ValueError(f"{quantity!r} is finer than 1m (one thousandth of a core)")
    return int(milli)


def memory_bytes(quantity: str) -> int:
    """A memory quantity (``512Mi``, ``1Gi``, ``1G``, ``536870912``) in bytes; ValueError
    with the reason and an example when it is not one."""
    text = quantity.strip()
    match = MEMORY_QUANTITY.match(text)
    if not match:
        hint = ""
        if re.match(r"^[0-9.]+m$", text):
            hint = f" (in Kubernetes {text} means milli-bytes: write {text[:-1]}Mi)"
        elif re.match(r"^[0-9.]+[KkMGTPE]i?B$", text):
            hint = f" (no B: write {text[:-1]})"
        raise ValueError(
            f"{quantity!r} is not a memory quantity{hint}: write e.g. 512Mi, 1Gi or 2G"
        )
    try:
        value = Decimal(match["number"]) * MEMORY_FACTORS[match["suffix"] or ""]
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{quantity!r} is not a memory quantity") from None
    if value != value.to_integral_value():
        raise ValueError(f"{quantity!r} is not a whole number of bytes")
    return int(value)


class KubernetesSettings(TargetSettings):
    """``[target.settings]`` of a kubernetes profile (the keys are a contract)."""

    kubeconfig: str | None = Field(
        None,
        title="Kubeconfig file",
        description="Your cluster's kubeconfig (empty: $KUBECONFIG, else ~/.kube/config).",
        json_schema_extra={"advanced": True},
    )
    context: str | None = Field(
        None,
        title="Context",
        description="The kubeconfig context to use (empty: its current context).",
    )
    namespace: str = Field(
        "default",
        title="Namespace",
        description="An existing namespace you may deploy to (ModelShip does not create it).",
    )
    mode: Mode = Field(
        "auto",
        title="Mode",
        description="deployment: a plain Deployment and Service; kserve: one KServe "
        "InferenceService (raw deployment mode); auto: KServe where the cluster serves it.",
    )
    replicas: int = Field(1, ge=1, le=1000, title="Pods", description="At the start.")
    min_replicas: int | None = Field(
        None,
        ge=1,
        le=1000,
        title="Fewest pods (autoscaling)",
        description="Empty: the number of pods above.",
    )
    max_replicas: int | None = Field(
        None,
        ge=1,
        le=1000,
        title="Most pods (autoscaling)",
        description="Above the fewest: a HorizontalPodAutoscaler adds pods under load. "
        "Empty: no autoscaling.",
    )
    target_cpu_percent: int = Field(
        70,
        ge=1,
        le=100,
        title="CPU target (autoscaling)",
        description="Average CPU use, in percent of the request, where autoscaling adds a pod.",
        json_schema_extra={"advanced": True},
    )
    cpu: str = Field(
        "250m",
        title="CPU per pod",
        description="Requested CPU, e.g. 250m (a quarter core) or 2; the limit is twice that.",
    )
    memory: str = Field(
        "512Mi",
        title="Memory per pod",
        description="Requested memory, e.g. 512Mi or 2Gi; also the limit.",
    )
    registry: str = Field(
        ...,
        title="Registry",
        description="Where the cluster pulls images from: host[:port][/path], e.g. "
        "registry.example.edu/ml (no https://).",
    )
    pull_secret: SecretRef | None = Field(
        None,
        title="Registry credential",
        description="Keyring entry of the registry login the cluster pulls with (empty: "
        "the registry needs none, or the namespace already has one).",
    )
    expose: Expose = Field(
        "proxy",
        title="Expose",
        description="proxy: through the cluster's API server, with your own credentials "
        "(works on any cluster); ingress: at a host name; loadbalancer or nodeport: at "
        "the cluster's address.",
    )
    host: str | None = Field(
        None,
        title="Host name (ingress)",
        description="The DNS name the Ingress answers on, e.g. iris.ml.example.edu.",
    )
    tls_secret: str | None = Field(
        None,
        title="TLS secret (ingress)",
        description="An existing kubernetes.io/tls Secret with the host's certificate "
        "(empty: the ingress controller's default).",
    )
    port: int = Field(
        8080,
        ge=UNPRIVILEGED_PORTS,
        le=65535,
        title="Container port",
        description="The port the server listens on inside the pod (1024 or above: it "
        "runs without root).",
        json_schema_extra={"advanced": True},
    )
    api_key: SecretRef | None = api_key_field(
        "Endpoint API key",
        "Keyring entry of the key callers must send (Authorization: Bearer). Required "
        "unless expose = proxy, where the cluster's sign-in guards the endpoint.",
    )
    start_timeout: float = start_timeout_field(
        600.0, "Seconds to wait for the pods to be ready and the endpoint to answer.", le=7200
    )
    capture_rate: float = capture_rate_field()
    capture_max_mb: float = capture_max_mb_field()

    @field_validator("kubeconfig", "context", "host", "tls_secret", "pull_secret", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("namespace")
    @classmethod
    def _a_namespace(cls, v: str) -> str:
        if len(v) > 63 or not DNS1123_LABEL.match(v):
            raise ValueError(
                f"{v!r} is not a namespace name: at most 63 lower-case letters, digits and "
                "'-', starting and ending with a letter or digit (kubectl get namespaces "
                "lists yours)"
            )
        return v

    @field_validator("cpu")
    @classmethod
    def _a_cpu(cls, v: str) -> str:
        cpu_millicores(v)
        return v.strip()

    @field_validator("memory")
    @classmethod
    def _a_memory(cls, v: str) -> str:
        if memory_bytes(v) < MIN_MEMORY:
            raise ValueError(
                f"{v!r} is too little for the server and its model: ask for at least 64Mi"
            )
        return v.strip()

    @field_validator("registry")
    @classmethod
    def _a_registry(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if "://" in v:
            raise ValueError(
                f"{v!r}: write the registry without a scheme, as in an image name "
                f"({v.split('://', 1)[1]})"
            )
        match = REGISTRY.match(v)
        if not match or (match["port"] and not 1 <= int(match["port"][1:]) <= 65535):
            raise ValueError(
                f"{v!r} is not a registry: write host[:port][/path], e.g. "
                "registry.example.edu:5000/ml (the path in lower case)"
            )
        return v

    @field_validator("host")
    @classmethod
    def _a_host(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().lower()
        if len(v) > 253 or not INGRESS_HOST.match(v) or re.match(r"^[0-9.]+$", v):
            raise ValueError(
                f"{v!r} is not a host name an Ingress can answer on: write a DNS name such "
                "as iris.ml.example.edu (no scheme, port or IP address)"
            )
        return v

    @field_validator("tls_secret")
    @classmethod
    def _a_secret_name(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 253 or not DNS1123_SUBDOMAIN.match(v)):
            raise ValueError(
                f"{v!r} is not a Secret name: lower-case letters, digits, '-' and '.' "
                "(kubectl get secrets lists yours)"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> KubernetesSettings:
        low, high = self.min_replicas, self.max_replicas
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"min_replicas ({low}) must not be above max_replicas ({high}): set the "
                "fewest pods to at most the most"
            )
        if high is not None and low is None and high < self.replicas:
            raise ValueError(
                f"max_replicas ({high}) is below replicas ({self.replicas}): raise it, or "
                "set min_replicas too"
            )
        if self.autoscaled:
            least, most = self.replica_range
            if not least <= self.replicas <= most:
                raise ValueError(
                    f"replicas ({self.replicas}) must lie between min_replicas ({least}) and "
                    f"max_replicas ({most}): the autoscaler starts from it"
                )
        elif low is not None and low != self.replicas:
            raise ValueError(
                f"min_replicas ({low}) without a larger max_replicas asks for no "
                f"autoscaling: set replicas = {low} instead, or max_replicas above it"
            )
        if self.expose == "ingress" and not self.host:
            raise ValueError(
                "host is required with expose = ingress: the DNS name the Ingress answers "
                "on, e.g. iris.ml.example.edu"
            )
        if self.expose != "ingress":
            for key in ("host", "tls_secret"):
                if getattr(self, key):
                    raise ValueError(
                        f"{key} is only used with expose = ingress (expose is "
                        f"{self.expose}): remove it, or set expose = ingress"
                    )
        if self.expose != "proxy" and not self.api_key:
            raise ValueError(
                f"api_key must name a keyring entry with expose = {self.expose}: anyone "
                "who can reach the address could call the endpoint otherwise (expose = "
                "proxy lets only those signed in to the cluster reach it)"
            )
        return self

    @property
    def replica_range(self) -> tuple[int, int]:
        """(fewest, most) pods: ``min_replicas`` defaults to ``replicas``,
        ``max_replicas`` to the fewest (no autoscaling)."""
        least = self.min_replicas if self.min_replicas is not None else self.replicas
        most = self.max_replicas if self.max_replicas is not None else least
        return least, most

    @property
    def autoscaled(self) -> bool:
        """A HorizontalPodAutoscaler is asked for: ``max_replicas`` above the fewest."""
        least, most = self.replica_range
        return most > least

    def kubeconfig_paths(self, environ: dict[str, str] | None = None) -> list[Path]:
        """The kubeconfig files to read, as kubectl finds them: ``kubeconfig`` if set,
        else every file of ``$KUBECONFIG`` (a list, like PATH), else ~/.kube/config."""
        if self.kubeconfig:
            return [Path(self.kubeconfig).expanduser()]
        env = os.environ if environ is None else environ
        listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
        if listed:
            return [Path(p).expanduser() for p in listed]
        return [Path("~/.kube/config").expanduser()]

    @property
    def registry_host(self) -> str:
        """The registry's host[:port] (what a dockerconfigjson Secret is keyed by)."""
        return self.registry.split("/", 1)[0]


__all__ = [
    "DNS1123_LABEL",
    "DNS1123_SUBDOMAIN",
    "Expose",
    "KubernetesSettings",
    "Mode",
    "cpu_millicores",
    "memory_bytes",
]
