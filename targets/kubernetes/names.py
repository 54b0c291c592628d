"""The names and labels of a kubernetes deployment's objects (pure functions, no SDK).

Deployment names (``app.store.profile.NAME_PATTERN``: lower-case letters, digits, ``_``
and ``-``, up to 63) become object names (DNS-1035 labels, what Services need) and
label values; a name that had to change keeps a hash of the original so that two
deployments never meet.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

MANAGED_LABEL = "modelship.managed"
DEPLOYMENT_LABEL = "modelship.deployment"
MAX_NAME = 63  # a DNS-1123 label; Service names must also start with a letter
# KServe derives "<name>-predictor" (and longer) from an InferenceService's name.
KSERVE_NAME_ROOM = len("-predictor")


def resource_name(deployment: str, *, room: int = 0) -> str:
    """The objects' name for ``deployment``: ``modelship-<name>``, a DNS-1035 label (what
    Services need) of at most 63 - ``room`` characters. A name that had to change
    (``_`` made ``-``, a trailing ``-`` dropped, shortened) ends in a hash of the
    original, so two deployments never share one."""
    clean = re.sub(r"[^a-z0-9-]", "-", deployment.lower())
    name = f"modelship-{clean}".rstrip("-")
    limit = MAX_NAME - room
    if name == f"modelship-{deployment}" and len(name) <= limit:
        return name
    digest = hashlib.sha256(deployment.encode()).hexdigest()[:6]
    return f"{name[: limit - 7].rstrip('-')}-{digest}"


def label_value(deployment: str) -> str:
    """``deployment`` as a label value (63 characters, alphanumeric at both ends); a
    name that is not one keeps its readable start and gains a hash of the whole."""
    if re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", deployment):
        return deployment
    digest = hashlib.sha256(deployment.encode()).hexdigest()[:6]
    return f"{re.sub(r'[^A-Za-z0-9]+$', '', deployment)[:56]}.{digest}"


def labels(deployment: str) -> dict[str, str]:
    return {MANAGED_LABEL: "true", DEPLOYMENT_LABEL: label_value(deployment)}


def selector(deployment: str) -> dict[str, str]:
    """What the Deployment and the Service select pods by."""
    return {DEPLOYMENT_LABEL: label_value(deployment)}


def key_secret_name(deployment: str) -> str:
    return f"{resource_name(deployment, room=len('-api-key'))}-api-key"


def pull_secret_name(deployment: str) -> str:
    return f"{resource_name(deployment, room=len('-pull'))}-pull"


def workload_name(deployment: str, flavour: Literal["deployment", "kserve"]) -> str:
    """The Deployment's name, or the InferenceService's (with room for KServe's suffixes)."""
    return resource_name(deployment, room=KSERVE_NAME_ROOM if flavour == "kserve" else 0)


def service_name(deployment: str, flavour: Literal["deployment", "kserve"]) -> str:
    """ModelShip's Service (and Ingress) in front of the pods: in kserve mode apart from
    the names KServe gives its own (``<isvc>``, ``<isvc>-predictor``)."""
    if flavour == "kserve":
        return f"{resource_name(deployment, room=len('-endpoint'))}-endpoint"
    return resource_name(deployment)


__all__ = [
    "DEPLOYMENT_LABEL",
    "MANAGED_LABEL",
    "key_secret_name",
    "label_value",
    "labels",
    "pull_secret_name",
    "resource_name",
    "selector",
    "service_name",
    "workload_name",
]
