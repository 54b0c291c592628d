"""The API's resource types and discovery documents, as a v1.32 API server serves them.

Shapes follow the OpenAPI spec (``io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList``,
``APIGroupList``, ``APIVersions``) and what ``kubectl api-resources`` reads from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-modelship-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    name: str  # plural, e.g. "deployments"
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(VERBS)
    subresources: dict[str, tuple[str, str, str, tuple[str, ...]]] = field(
        default_factory=dict, hash=False, compare=False
    )  # name -> (group, version, kind, verbs)
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` / ``pods``: how the server names it in Status messages."""
        return f"{self.name}.{self.group}" if self.group else self.name

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


def _core(name: str, kind: str, **kwargs: Any) -> Resource:
    return Resource("", "v1", name, kind, **kwargs)


NAMESPACES = _core("namespaces", "Namespace", namespaced=False, short_names=("ns",))
SECRETS = _core("secrets", "Secret", has_status=False)
SERVICES = _core(
    "services",
    "Service",
    short_names=("svc",),
    subresources={
        "proxy": ("", "v1", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update"))
    },
)
PODS = _core(
    "pods",
    "Pod",
    short_names=("po",),
    subresources={
        "log": ("", "v1", "Pod", ("get",)),
        "proxy": ("", "v1", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
        "status": ("", "v1", "Pod", ("get", "patch", "update")),
    },
)
DEPLOYMENTS = Resource(
    "apps",
    "v1",
    "deployments",
    "Deployment",
    short_names=("deploy",),
    subresources={
        "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
        "status": ("apps", "v1", "Deployment", ("get", "patch", "update")),
    },
)
REPLICASETS = Resource(
    "apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), verbs=("get", "list", "watch")
)
HPAS = Resource(
    "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",)
)
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",))
SSARS = Resource(
    "authorization.k8s.io",
    "v1",
    "selfsubjectaccessreviews",
    "SelfSubjectAccessReview",
    namespaced=False,
    verbs=("create",),
)
INFERENCESERVICES = Resource(
    "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", short_names=("isvc",)
)

CORE = [NAMESPACES, SECRETS, SERVICES, PODS]
GROUPS: dict[str, list[Resource]] = {
    "apps/v1": [DEPLOYMENTS, REPLICASETS],
    "autoscaling/v2": [HPAS],
    "networking.k8s.io/v1": [INGRESSES],
    "authorization.k8s.io/v1": [SSARS],
}
KSERVE_GROUP = "serving.kserve.io/v1beta1"


def all_resources(kserve: bool) -> list[Resource]:
    out = list(CORE)
    for resources in GROUPS.values():
        out.extend(resources)
    if kserve:
        out.append(INFERENCESERVICES)
    return out


def served_groups(kserve: bool) -> dict[str, list[Resource]]:
    groups = dict(GROUPS)
    if kserve:
        groups[KSERVE_GROUP] = [INFERENCESERVICES]
    return groups


def resource_list(group_version: str, resources: list[Resource]) -> dict[str, Any]:
    out = []
    for r in resources:
        entry: dict[str, Any] = {
            "name": r.name,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.kind in {"Pod", "Service", "Deployment", "ReplicaSet", "InferenceService"}:
            entry["categories"] = ["all"]
        out.append(entry)
        for sub, (group, version, kind, verbs) in r.subresources.items():
            sub_entry: dict[str, Any] = {
                "name": f"{r.name}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": list(verbs),
            }
            if group != r.group or version != r.version:
                sub_entry["group"], sub_entry["version"] = group, version
            out.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": out,
    }


def group_list(kserve: bool) -> dict[str, Any]:
    groups = []
    for group_version in served_groups(kserve):
        name, _, version = group_version.partition("/")
        gv = {"groupVersion": group_version, "version": version}
        groups.append({"name": name, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def openapi_v3_root(kserve: bool) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is (kubectl reads it to learn
    that the server validates fields itself: then it sends ``fieldValidation=Strict``)."""
    paths = {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=EMULATOR"}}
    for group_version in served_groups(kserve):
        paths[f"apis/{group_version}"] = {
            "serverRelativeURL": f"/openapi/v3/apis/{group_version}?hash=EMULATOR"
        }
    return {"paths": paths}


def openapi_v3_group(group_version: str, resources: list[Resource]) -> dict[str, Any]:
    """A group-version's OpenAPI v3 document, reduced to each object's PATCH operation with
    its query parameters and ``x-kubernetes-group-version-kind`` (no schemas)."""
    paths: dict[str, Any] = {}
    for r in resources:
        scope = "namespaces/{namespace}/" if r.namespaced else ""
        params = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        paths[f"{r.prefix()}/{scope}{r.name}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": r.group,
                    "version": r.version,
                    "kind": r.kind,
                },
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
