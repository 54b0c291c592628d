"""The kubernetes target's settings and manifests, checked offline (no cluster, no SDK).

Every manifest ModelShip can generate (both modes, every ``expose``, with and without
an HPA, a key, a pull secret and TLS) validates in strict mode (unknown fields are
errors, as ``kubectl apply`` with server-side field validation makes them) against the
official schemas of each release in ``SUPPORTED_KUBERNETES``, bundled by
kubernetes-validate; the InferenceService against KServe's own CRD schema, kept in
``tests/unit/data/kserve/`` with its source. Each validator is first shown to reject a
wrong manifest, so a pass means something.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from targets.kubernetes import manifests as m
from targets.kubernetes import names
from targets.kubernetes.settings import KubernetesSettings, cpu_millicores, memory_bytes

KSERVE_SCHEMA = Path(__file__).parent / "data" / "kserve" / "inferenceservice-v1beta1.schema.json"
IMAGE = "registry.example.edu:5000/ml/iris:v3"
KEY = "sk-test-9f8e7d6c5b4a"
LOGIN = m.PullCredential("robot", "pull-pass-1234")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def settings(**overrides: Any) -> KubernetesSettings:
    base: dict[str, Any] = {"registry": "registry.example.edu:5000/ml"}
    return KubernetesSettings(**{**base, **overrides})


# --- every combination the settings allow --------------------------------------------

EXPOSE = {
    "proxy": {},
    "ingress": {"host": "iris.ml.example.edu"},
    "ingress-tls": {"host": "iris.ml.example.edu", "tls_secret": "iris-tls"},
    "loadbalancer": {},
    "nodeport": {},
}
SCALING = {"fixed": {"replicas": 2}, "hpa": {"replicas": 2, "min_replicas": 1, "max_replicas": 5}}
SECRETS = {
    "bare": {},
    "key+pull": {"api_key": "iris-key", "pull_secret": "registry-login"},
    "capture": {"capture_rate": 0.25},
    "key+capture": {"api_key": "iris-key", "capture_rate": 0.1, "capture_max_mb": 20},
}


def combinations() -> list[Any]:
    out = []
    for flavour, (expose, extra), (scaling, scale), (secrets, keys) in itertools.product(
        ("deployment", "kserve"), EXPOSE.items(), SCALING.items(), SECRETS.items()
    ):
        kind = "ingress" if expose.startswith("ingress") else expose
        if kind != "proxy" and not keys.get("api_key"):
            continue  # an endpoint beyond the API server needs a key (tested below)
        case = {"expose": kind, **extra, **scale, **keys}
        out.append(pytest.param(flavour, case, id=f"{flavour}-{expose}-{scaling}-{secrets}"))
    return out


def built(flavour: str, case: dict[str, Any], *, shown: bool = False) -> list[m.Manifest]:
    manifests = m.build(
        "iris_v2",
        settings(**case),
        IMAGE,
        flavour=flavour,  # type: ignore[arg-type]
        key=None if shown else KEY,
        credential=None if shown else LOGIN,
        model_version=3,
        model_hash="sha256:0f1e2d3c",
    )
    return m.redacted(manifests) if shown else manifests


# --- the validators ------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads and parses a release's schema files on every call
    (several MB each); here each is read once for the module (the files never change,
    the validation stays kubernetes-validate's own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            cache(kubernetes_validate.utils.schema_contents),
        )
        yield


def validate_k8s(manifest: m.Manifest, version: str) -> None:
    kubernetes_validate.validate(manifest, version, strict=True)


def strict(schema: Any) -> Any:
    """KServe's schema as the API server applies it with strict field validation: an
    object schema with ``properties`` admits no other field (unless it says it keeps
    unknown fields)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def kserve_validator() -> jsonschema.Validator:
    schema = strict(json.loads(KSERVE_SCHEMA.read_text("utf-8")))
    return jsonschema.Draft7Validator(schema)


def validate_kserve(manifest: m.Manifest) -> None:
    kserve_validator().validate(manifest)
    # The CRD's metadata is only "type: object": the API server checks ObjectMeta.
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": manifest["metadata"]}
    for version in m.SUPPORTED_KUBERNETES:
        validate_k8s(carrier, version)


def validate(manifest: m.Manifest) -> None:
    if manifest["kind"] == "InferenceService":
        validate_kserve(manifest)
    else:
        for version in m.SUPPORTED_KUBERNETES:
            validate_k8s(manifest, version)


def test_the_supported_range_is_bundled_by_kubernetes_validate() -> None:
    bundled = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert set(m.SUPPORTED_KUBERNETES) <= bundled
    assert m.SUPPORTED_KUBERNETES[0] == "1.29"
    assert m.SUPPORTED_KUBERNETES[-1] == max(bundled, key=lambda v: int(v.split(".")[1]))


def test_the_validators_reject_an_unknown_field_and_a_wrong_type() -> None:
    deployment = built("deployment", {"replicas": 1})[-2]
    assert deployment["kind"] == "Deployment"
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["replicas"] = "two"
    for bad in (typo, wrong):
        for version in (m.SUPPORTED_KUBERNETES[0], m.SUPPORTED_KUBERNETES[-1]):
            with pytest.raises(kubernetes_validate.ValidationError):
                validate_k8s(bad, version)

    isvc = workload(built("kserve", {}))
    typo = copy.deepcopy(isvc)
    typo["spec"]["predictor"]["containers"][0]["readinesProbe"] = {}
    wrong = copy.deepcopy(isvc)
    wrong["spec"]["predictor"]["minReplicas"] = "1"
    missing = copy.deepcopy(isvc)
    del missing["spec"]["predictor"]["containers"][0]["name"]
    for bad in (typo, wrong, missing):
        with pytest.raises(jsonschema.ValidationError):
            kserve_validator().validate(bad)
    bad_meta = copy.deepcopy(isvc)
    bad_meta["metadata"]["labels"]["modelship.managed"] = True  # a label value is a string
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kserve(bad_meta)


@pytest.mark.parametrize(("flavour", "case"), combinations())
def test_every_manifest_validates_against_every_supported_release(
    flavour: str, case: dict[str, Any]
) -> None:
    for shown in (False, True):  # as applied, and as a dry run shows it
        for manifest in built(flavour, case, shown=shown):
            validate(manifest)


def test_the_yaml_is_what_was_built_and_a_dry_run_shows_no_secret() -> None:
    case = {"expose": "ingress", "host": "iris.ml.example.edu", "api_key": "k", "pull_secret": "p"}
    applied = built("deployment", case)
    shown = built("deployment", case, shown=True)
    assert list(yaml.safe_load_all(m.render_yaml(applied))) == applied
    text = m.render_yaml(shown)
    assert list(yaml.safe_load_all(text)) == shown
    for secret in (KEY, LOGIN.password, base64.b64encode(KEY.encode()).decode()):
        assert secret not in text
    assert m.REDACTED in text
    # the applied Secrets do hold the values
    key_secret, pull = applied[0], applied[1]
    assert base64.b64decode(key_secret["data"]["api_key"]).decode() == KEY
    config = json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))
    login = config["auths"]["registry.example.edu:5000"]
    assert base64.b64decode(login["auth"]).decode() == "robot:pull-pass-1234"
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    shown_pull = json.loads(shown[1]["stringData"][".dockerconfigjson"])
    assert shown_pull == {"auths": {"registry.example.edu:5000": {"auth": m.REDACTED}}}


# --- what the manifests must guarantee ------------------------------------------------


def pod_spec(manifest: m.Manifest) -> dict[str, Any]:
    if manifest["kind"] == "InferenceService":
        return manifest["spec"]["predictor"]  # type: ignore[no-any-return]
    return manifest["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def workload(manifests: list[m.Manifest]) -> m.Manifest:
    (found,) = [x for x in manifests if x["kind"] in ("Deployment", "InferenceService")]
    return found


@pytest.mark.parametrize("flavour", ["deployment", "kserve"])
def test_the_key_travels_as_a_read_only_file_never_in_the_environment(flavour: str) -> None:
    manifests = built(flavour, {"api_key": "iris-key", "pull_secret": "login"})
    pod = pod_spec(workload(manifests))
    (box,) = pod["containers"]
    assert box["name"] == ("kserve-container" if flavour == "kserve" else "model")
    env = {e["name"]: e for e in box["env"]}
    assert env["MODELSHIP_API_KEY_FILE"]["value"] == "/var/run/modelship/api_key"
    assert "MODELSHIP_API_KEY" not in env
    assert all("valueFrom" not in e for e in box["env"])
    assert KEY not in json.dumps(workload(manifests))
    mount = next(v for v in box["volumeMounts"] if v["mountPath"] == "/var/run/modelship")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == manifests[0]["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "api_key", "path": "api_key"}]
    assert manifests[0]["type"] == "Opaque"
    # the non-root user reads it through its group (fsGroup), nobody else can
    assert pod["securityContext"]["fsGroup"] == 10001
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["imagePullSecrets"] == [{"name": manifests[1]["metadata"]["name"]}]


def test_without_a_key_there_is_no_secret_and_no_key_file() -> None:
    manifests = built("deployment", {})
    assert [x["kind"] for x in manifests] == ["Deployment", "Service"]
    (box,) = pod_spec(manifests[0])["containers"]
    assert "MODELSHIP_API_KEY_FILE" not in {e["name"] for e in box["env"]}
    assert "imagePullSecrets" not in pod_spec(manifests[0])


@pytest.mark.parametrize("flavour", ["deployment", "kserve"])
def test_the_container_is_locked_down(flavour: str) -> None:
    pod = pod_spec(workload(built(flavour, {"api_key": "k"})))
    (box,) = pod["containers"]
    security = box["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == pod["securityContext"]["runAsUser"] == 10001
    assert pod["automountServiceAccountToken"] is False
    tmp = next(v for v in box["volumeMounts"] if v["mountPath"] == "/tmp")
    assert next(v for v in pod["volumes"] if v["name"] == tmp["name"])["emptyDir"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert box[probe]["httpGet"] == {"path": "/ping", "port": 8080, "scheme": "HTTP"}
    assert box["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    env = {e["name"]: e["value"] for e in box["env"]}
    assert env["PORT"] == "8080"
    assert env["MODELSHIP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("flavour", ["deployment", "kserve"])
def test_captured_requests_get_their_own_bounded_empty_dir(flavour: str) -> None:
    off = pod_spec(workload(built(flavour, {"api_key": "k"})))
    assert not any(e["name"].startswith("MODELSHIP_CAPTURE") for e in off["containers"][0]["env"])
    assert m.CAPTURE_VOLUME not in {v["name"] for v in off["volumes"]}

    case = {"api_key": "k", "capture_rate": 0.1, "capture_max_mb": 40}
    pod = pod_spec(workload(built(flavour, case)))
    (box,) = pod["containers"]
    env = {e["name"]: e["value"] for e in box["env"]}
    assert env["MODELSHIP_CAPTURE_RATE"] == "0.1"
    assert env["MODELSHIP_CAPTURE_MAX_MB"] == "40"
    assert env["MODELSHIP_CAPTURE_DIR"] == m.CAPTURE_DIR
    assert "MODELSHIP_CAPTURE_GUARDED" not in env  # the key guards GET /capture
    mount = next(v for v in box["volumeMounts"] if v["mountPath"] == m.CAPTURE_DIR)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    limit = volume["emptyDir"]["sizeLimit"]
    assert limit.endswith("Mi") and 40 < int(limit[:-2]) <= 80  # the bound, with room

    # keyless behind the API server's proxy: the proxy's sign-in guards GET /capture
    proxied = pod_spec(workload(built(flavour, {"expose": "proxy", "capture_rate": 1})))
    env = {e["name"]: e["value"] for e in proxied["containers"][0]["env"]}
    assert env["MODELSHIP_CAPTURE_GUARDED"] == "1"


def test_the_image_user_is_the_one_the_dockerfile_makes() -> None:
    from app.image.buildcontext import IMAGE_UID

    assert m.IMAGE_UID == IMAGE_UID


def test_every_object_is_labelled_and_the_deployment_rolls_without_dropping_a_pod() -> None:
    case = {"expose": "ingress", "host": "a.example.edu", "api_key": "k", "pull_secret": "p"}
    manifests = built("deployment", {**case, "max_replicas": 3})
    assert [x["kind"] for x in manifests] == [
        "Secret",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "Ingress",
    ]
    for x in manifests:
        assert x["metadata"]["labels"] == {
            "modelship.managed": "true",
            "modelship.deployment": "iris_v2",
        }
        assert x["metadata"]["namespace"] == "default"
        assert x["kind"] != "Namespace"
    deployment = manifests[2]
    assert deployment["spec"]["template"]["metadata"]["labels"]["modelship.deployment"] == (
        "iris_v2"
    )
    assert deployment["spec"]["template"]["metadata"]["labels"]["modelship.managed"] == "true"
    assert deployment["spec"]["selector"] == {"matchLabels": {"modelship.deployment": "iris_v2"}}
    assert manifests[3]["spec"]["selector"] == {"modelship.deployment": "iris_v2"}
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert deployment["metadata"]["annotations"] == {
        "modelship.model-version": "3",
        "modelship.model-hash": "sha256:0f1e2d3c",
    }
    (isvc,) = [x for x in built("kserve", case) if x["kind"] == "InferenceService"]
    assert isvc["spec"]["predictor"]["labels"]["modelship.deployment"] == "iris_v2"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == ("RawDeployment")


def test_an_hpa_only_when_max_is_above_min_and_then_it_owns_the_replicas() -> None:
    fixed = built("deployment", {"replicas": 3, "max_replicas": 3})
    assert "HorizontalPodAutoscaler" not in [x["kind"] for x in fixed]
    assert fixed[0]["spec"]["replicas"] == 3
    scaled = built("deployment", {"replicas": 2, "min_replicas": 2, "max_replicas": 6})
    (hpa,) = [x for x in scaled if x["kind"] == "HorizontalPodAutoscaler"]
    assert "replicas" not in scaled[0]["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": scaled[0]["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    metric = hpa["spec"]["metrics"][0]["resource"]
    assert metric == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}

    kserve = built("kserve", {"replicas": 2, "min_replicas": 2, "max_replicas": 6})
    assert "HorizontalPodAutoscaler" not in [x["kind"] for x in kserve]  # KServe makes it
    isvc = workload(kserve)
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 70)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    fixed_isvc = workload(built("kserve", {"replicas": 2}))
    assert fixed_isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"
    assert "scaleMetric" not in fixed_isvc["spec"]["predictor"]


@pytest.mark.parametrize(
    ("expose", "service_type"),
    [
        ("proxy", "ClusterIP"),
        ("ingress", "ClusterIP"),
        ("loadbalancer", "LoadBalancer"),
        ("nodeport", "NodePort"),
    ],
)
def test_the_service_type_follows_expose(expose: str, service_type: str) -> None:
    extra = {"host": "a.example.edu"} if expose == "ingress" else {}
    manifests = built("deployment", {"expose": expose, "api_key": "k", **extra})
    (svc,) = [x for x in manifests if x["kind"] == "Service"]
    assert svc["spec"]["type"] == service_type
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert ("Ingress" in [x["kind"] for x in manifests]) == (expose == "ingress")


def test_the_ingress_routes_the_host_with_tls_when_given() -> None:
    case = {"expose": "ingress", "host": "a.example.edu", "api_key": "k"}
    (plain,) = [x for x in built("deployment", case) if x["kind"] == "Ingress"]
    assert "tls" not in plain["spec"]
    (rule,) = plain["spec"]["rules"]
    assert rule["host"] == "a.example.edu"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "modelship-iris-v2-abb1db", "port": {"name": "http"}}
    (tls,) = [
        x for x in built("deployment", {**case, "tls_secret": "a-tls"}) if x["kind"] == "Ingress"
    ]
    assert tls["spec"]["tls"] == [{"hosts": ["a.example.edu"], "secretName": "a-tls"}]


@pytest.mark.parametrize("expose", ["proxy", "ingress", "loadbalancer", "nodeport"])
def test_in_kserve_mode_modelship_exposes_the_pods_and_kserve_makes_no_ingress(
    expose: str,
) -> None:
    extra = {"host": "a.example.edu"} if expose == "ingress" else {}
    manifests = built("kserve", {"expose": expose, "api_key": "k", **extra})
    kinds = [x["kind"] for x in manifests]
    assert kinds == ["Secret", "InferenceService", "Service"] + (
        ["Ingress"] if expose == "ingress" else []
    )
    isvc, svc = manifests[1], manifests[2]
    assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    # the Service selects the predictor's pods by the labels KServe puts on them
    assert svc["spec"]["selector"].items() <= isvc["spec"]["predictor"]["labels"].items()
    assert svc["spec"]["type"] == m.SERVICE_TYPES[expose]
    # apart from the names KServe gives its own objects
    assert svc["metadata"]["name"] not in (
        isvc["metadata"]["name"],
        f"{isvc['metadata']['name']}-predictor",
    )
    if expose == "ingress":
        backend = manifests[3]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert backend["service"]["name"] == svc["metadata"]["name"]
        assert manifests[3]["metadata"]["name"] != isvc["metadata"]["name"]


@pytest.mark.parametrize(
    "name",
    ["iris", "iris_v2", "a-", "0model", "x" * 63, "y" * 62 + "_", "a_b", "a-b"],
)
def test_names_and_labels_are_what_kubernetes_accepts(name: str) -> None:
    for flavour in ("deployment", "kserve"):
        keyed = settings(api_key="k", pull_secret="p")
        manifests = m.build(name, keyed, IMAGE, flavour=flavour)  # type: ignore[arg-type]
        for x in manifests:
            object_name = x["metadata"]["name"]
            assert len(object_name) <= 63 and DNS1035.match(object_name), object_name
            assert LABEL_VALUE.match(x["metadata"]["labels"]["modelship.deployment"])
            assert len(x["metadata"]["labels"]["modelship.deployment"]) <= 63
        isvc = workload(manifests)
        if flavour == "kserve":  # room for KServe's "-predictor"
            assert len(isvc["metadata"]["name"]) + len("-predictor") <= 63
    assert names.resource_name("iris") == "modelship-iris"
    assert names.label_value("iris") == "iris"


def test_names_that_had_to_change_never_meet() -> None:
    pairs = [("a_b", "a-b"), ("a-", "a"), ("x" * 63, "x" * 62 + "y")]
    for one, other in pairs:
        assert names.resource_name(one) != names.resource_name(other)
        assert names.label_value(one) != names.label_value(other) or one == other


# --- settings ------------------------------------------------------------------------


def test_the_profile_keys_are_the_contract() -> None:
    assert list(KubernetesSettings.model_fields) == [
        "kubeconfig",
        "context",
        "namespace",
        "mode",
        "replicas",
        "min_replicas",
        "max_replicas",
        "target_cpu_percent",
        "cpu",
        "memory",
        "registry",
        "pull_secret",
        "expose",
        "host",
        "tls_secret",
        "port",
        "api_key",
        "start_timeout",
        "capture_rate",
        "capture_max_mb",
    ]
    s = settings()
    assert (s.kubeconfig, s.context, s.namespace, s.mode, s.expose) == (
        None,
        None,
        "default",
        "auto",
        "proxy",
    )
    assert (s.replicas, s.replica_range, s.autoscaled, s.target_cpu_percent) == (
        1,
        (1, 1),
        False,
        70,
    )
    assert (s.cpu, s.memory, s.port, s.registry_host) == (
        "250m",
        "512Mi",
        8080,
        "registry.example.edu:5000",
    )


def message(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        settings(**overrides)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"namespace": "Data_Science"}, "'Data_Science' is not a namespace name"),
        ({"namespace": "-lab"}, "starting and ending with a letter or digit"),
        ({"namespace": "a" * 64}, "at most 63"),
        ({"cpu": "two"}, "'two' is not a CPU quantity: write millicores such as 250m"),
        ({"cpu": "0.0001"}, "below the smallest CPU request, 1m"),
        ({"memory": "512m"}, "in Kubernetes 512m means milli-bytes: write 512Mi"),
        ({"memory": "2GB"}, "(no B: write 2G)"),
        ({"memory": "lots"}, "'lots' is not a memory quantity: write e.g. 512Mi"),
        ({"memory": "16Mi"}, "ask for at least 64Mi"),
        (
            {"min_replicas": 4, "max_replicas": 2},
            "min_replicas (4) must not be above max_replicas (2)",
        ),
        (
            {"replicas": 9, "min_replicas": 1, "max_replicas": 5},
            "replicas (9) must lie between min_replicas (1) and max_replicas (5)",
        ),
        ({"replicas": 3, "max_replicas": 2}, "max_replicas (2) is below replicas (3)"),
        ({"min_replicas": 2}, "set replicas = 2 instead"),
        (
            {"expose": "ingress", "api_key": "k"},
            "host is required with expose = ingress",
        ),
        ({"host": "a.example.edu"}, "host is only used with expose = ingress"),
        (
            {"expose": "ingress", "api_key": "k", "host": "10.0.0.1"},
            "not a host name an Ingress can answer on",
        ),
        (
            {"expose": "ingress", "api_key": "k", "host": "a.example.edu", "tls_secret": "A B"},
            "'A B' is not a Secret name",
        ),
        (
            {"expose": "loadbalancer"},
            "api_key must name a keyring entry with expose = loadbalancer",
        ),
        ({"registry": "https://registry.example.edu"}, "without a scheme"),
        ({"registry": "registry.example.edu/ML"}, "write host[:port][/path]"),
        ({"registry": "registry.example.edu:99999"}, "is not a registry"),
        ({"port": 80}, "greater than or equal to 1024"),
        ({"mode": "knative"}, "'deployment', 'kserve' or 'auto'"),
        ({"expose": "hostport"}, "'proxy', 'ingress', 'loadbalancer' or 'nodeport'"),
    ],
)
def test_a_wrong_setting_says_what_is_wrong_and_what_to_do(
    overrides: dict[str, Any], words: str
) -> None:
    assert words in message(**overrides)


def test_the_kubeconfig_is_found_as_kubectl_finds_it(tmp_path: Path) -> None:
    home = str(Path("~").expanduser())
    assert settings().kubeconfig_paths({}) == [Path(home, ".kube", "config")]
    listed = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    assert settings().kubeconfig_paths({"KUBECONFIG": listed}) == [tmp_path / "a", tmp_path / "b"]
    chosen = settings(kubeconfig="~/lab.yaml")
    assert chosen.kubeconfig_paths({"KUBECONFIG": listed}) == [Path(home, "lab.yaml")]


def test_the_registry_is_required() -> None:
    with pytest.raises(ValidationError) as caught:
        KubernetesSettings()
    assert "registry" in str(caught.value) and "Field required" in str(caught.value)


def test_good_settings_are_kept() -> None:
    s = settings(
        namespace="ml-lab",
        registry="[fd00::1]:5000/team/ml",
        cpu="1.5",
        memory="2Gi",
        expose="ingress",
        host="*.ml.example.edu",
        tls_secret="wild.tls",
        api_key="iris-key",
        replicas=2,
        max_replicas=4,
        context=" ",
    )
    assert (s.registry_host, s.replica_range, s.autoscaled, s.context) == (
        "[fd00::1]:5000",
        (2, 4),
        True,
        None,
    )
    assert m.limits(s) == {"cpu": "3", "memory": "2Gi"}
    assert settings(registry="localhost:5000").registry_host == "localhost:5000"


@pytest.mark.parametrize(
    ("quantity", "millicores"), [("250m", 250), ("0.5", 500), ("2", 2000), (".1", 100)]
)
def test_cpu_quantities(quantity: str, millicores: int) -> None:
    assert cpu_millicores(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "size"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("1.5Gi", 3 * 2**29), ("1000", 1000)],
)
def test_memory_quantities(quantity: str, size: int) -> None:
    assert memory_bytes(quantity) == size


# --- golden files: what a dry run shows ------------------------------------------------

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_CASES = {
    "kubernetes-deployment.yaml": (
        "deployment",
        {
            "namespace": "ml-lab",
            "expose": "ingress",
            "host": "iris.ml.example.edu",
            "tls_secret": "iris-tls",
            "api_key": "iris-key",
            "pull_secret": "registry-login",
            "replicas": 2,
            "min_replicas": 2,
            "max_replicas": 6,
        },
    ),
    "kubernetes-kserve.yaml": (
        "kserve",
        {"namespace": "ml-lab", "api_key": "iris-key", "pull_secret": "registry-login"},
    ),
}


@pytest.mark.parametrize("golden", list(GOLDEN_CASES))
def test_the_dry_run_matches_the_golden_file(golden: str) -> None:
    """Any change to the manifests must be a deliberate change of the golden file.

    To accept a change: MODELSHIP_UPDATE_GOLDEN=1 pytest tests/unit/test_kubernetes_manifests.py
    """
    flavour, case = GOLDEN_CASES[golden]
    text = m.render_yaml(built(flavour, case, shown=True))
    if os.environ.get("MODELSHIP_UPDATE_GOLDEN"):
        (GOLDEN / golden).write_text(text, encoding="utf-8")
    assert text == (GOLDEN / golden).read_text(encoding="utf-8")
