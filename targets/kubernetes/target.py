"""The ``kubernetes`` target: the serving image as a Deployment + Service (or one KServe
InferenceService, raw deployment mode) in a namespace of the user's cluster.

Every object carries the label ``modelship.deployment=NAME`` (targets.kubernetes.names);
each is journaled before it is server-side applied (field manager ``modelship``), and a
teardown deletes by that label. The pipeline pushes the image to the profile's
``registry`` (credential: the keyring entry ``pull_secret``, ``username:password``); the
cluster pulls it by digest with a ``kubernetes.io/dockerconfigjson`` Secret made from
the same entry. A redeploy re-applies the objects with the new image: a rolling update
(maxUnavailable 0), so the endpoint keeps answering.

``expose = proxy``: the endpoint is the API server's services proxy, called with the
user's own cluster credential (read from the kubeconfig when a client is made, never
recorded); the endpoint key then travels as ``X-ModelShip-Key`` because the proxy keeps
``Authorization`` for itself.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, Resource
from app.errors import CredentialError, TargetError
from app.nextstep import run_command, say
from app.progress import NullProgress, Progress, long_wait
from app.waiting import wait_until
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus
from targets.common import endpoint_key_value, key_problems, merge_capture
from targets.cost import Cost
from targets.kind import Kind
from targets.kubernetes import names
from targets.kubernetes.client import KSERVE_API, Cluster, cluster
from targets.kubernetes.kind import KIND, ROLLOUT
from targets.kubernetes.manifests import (
    Flavour,
    Manifest,
    PullCredential,
    build,
    redacted,
    render_yaml,
)
from targets.kubernetes.settings import KubernetesSettings
from targets.registry import V2Registry

if TYPE_CHECKING:
    from app.endpoint.client import EndpointClient
    from app.store.profile import Profile

log = logging.getLogger("modelship.targets.kubernetes")
KIND_OBJECT = "k8s-object"
# (verb, resource, group, subresource): what a deploy, stop/start and teardown need.
NEEDED: tuple[tuple[str, str, str, str], ...] = (
    *tuple(
        (verb, res, group, "")
        for res, group in (("deployments", "apps"), ("services", ""), ("secrets", ""))
        for verb in ("create", "patch", "get", "list", "delete")
    ),
    ("get", "pods", "", ""),
    ("list", "pods", "", ""),
    ("get", "pods", "", "log"),
    ("patch", "deployments", "apps", "scale"),
)
# reading captured requests (capture_rate > 0): every pod's GET /capture, pods proxy
CAPTURE_ACCESS = ("get", "pods", "", "proxy")


def settings_of(profile: Profile) -> KubernetesSettings:
    s = profile.target.settings
    assert isinstance(s, KubernetesSettings)
    return s


def pull_credential(s: KubernetesSettings) -> PullCredential | None:
    if not s.pull_secret:
        return None
    from app.store.secrets import get_secret

    user, sep, password = get_secret(s.pull_secret).partition(":")
    if not sep:
        raise TargetError(
            f"The keyring entry {s.pull_secret} is not a registry login.",
            "Store it as username:password.",
        )
    return PullCredential(user, password)


def resolve_flavour(c: Cluster, s: KubernetesSettings) -> Flavour:
    if s.mode == "auto":
        return "kserve" if c.serves(KSERVE_API) else "deployment"
    return s.mode  # type: ignore[return-value]


def _ref(m: Manifest) -> dict[str, str]:
    return {"apiVersion": m["apiVersion"], "kind": m["kind"], "name": m["metadata"]["name"]}


class KubernetesTarget(Target):
    kind: ClassVar[Kind] = KIND
    replacement: ClassVar = "platform"  # a rolling update keeps it answering

    def platforms(self, profile: Profile) -> tuple[Any, ...]:
        return ("linux/amd64",)

    def registry(self, profile: Profile) -> V2Registry:
        s = settings_of(profile)

        def password() -> str:
            cred = pull_credential(s)
            return cred.password if cred else ""

        username = None
        if s.pull_secret:
            cred = pull_credential(s)
            username = cred.username if cred else None
        return V2Registry(
            f"{s.registry.rstrip('/')}/{names.resource_name(profile.name)}"
            if "/" in s.registry
            else f"{s.registry}/modelship/{names.resource_name(profile.name)}",
            username=username,
            password=password if s.pull_secret else None,
            words=f"the cluster's registry {s.registry}",
        )

    # ---- before -----------------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        s = settings_of(profile)
        problems = key_problems(s.endpoint_key())
        if s.pull_secret:
            try:
                pull_credential(s)
            except Exception as exc:  # CredentialError or a malformed entry
                problems.append(
                    Problem(
                        str(getattr(exc, "message", exc)),
                        str(getattr(exc, "hint", "") or "Store the registry login."),
                        kind="credential",
                        setting="pull_secret",
                    )
                )
        try:
            with cluster(s) as c:
                if not c.namespace_exists():
                    return [
                        *problems,
                        Problem(
                            f"The namespace {s.namespace} does not exist on the cluster.",
                            "Choose an existing namespace (ModelShip does not create it).",
                            setting="namespace",
                        ),
                    ]
                flavour = resolve_flavour(c, s)
                needed = list(NEEDED)
                if flavour == "kserve":
                    needed += [
                        (v, "inferenceservices", "serving.kserve.io", "")
                        for v in ("create", "patch", "get", "delete")
                    ]
                if s.autoscaled and flavour == "deployment":
                    needed += [
                        (v, "horizontalpodautoscalers", "autoscaling", "")
                        for v in ("create", "patch", "delete")
                    ]
                if s.expose == "ingress":
                    needed += [
                        (v, "ingresses", "networking.k8s.io", "")
                        for v in ("create", "patch", "delete")
                    ]
                if s.expose == "proxy":
                    needed += [
                        ("get", "services", "", "proxy"),
                        ("create", "services", "", "proxy"),
                    ]
                if s.capture_rate > 0:
                    # captured requests are read from each pod through the pods proxy
                    needed.append(CAPTURE_ACCESS)
                for verb, res, group, sub in needed:
                    ok, _reason = c.allowed(verb, res, group, sub)
                    if not ok:
                        what = f"{res}/{sub}" if sub else res
                        why = (
                            " (needed to read the captured requests of each pod, as "
                            "capture_rate is above 0)"
                            if (verb, res, group, sub) == CAPTURE_ACCESS
                            else ""
                        )
                        problems.append(
                            Problem(
                                f"The cluster does not allow you to {verb} {what} in "
                                f"namespace {s.namespace} (Forbidden){why}.",
                                "Ask your cluster's administrator for that permission, or "
                                "choose a namespace where you have it.",
                                kind="credential",
                                setting="namespace",
                            )
                        )
        except TargetError as exc:
            problems.append(Problem(exc.message, exc.hint or "", setting="context"))
        return problems

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        s = settings_of(profile)
        flavour: Flavour = "kserve" if s.mode == "kserve" else "deployment"
        cost = Cost.said("your cluster's own; ModelShip adds none")
        items = [
            PlanItem("apply", m["kind"], m["metadata"]["name"], f"in namespace {s.namespace}")
            for m in build(profile.name, s, "IMAGE", flavour=flavour)
        ]
        if items:
            items[0] = PlanItem(
                items[0].action, items[0].kind, items[0].name, items[0].detail, cost
            )
        return items

    def manifests(self, profile: Profile, previous: DeploymentRecord | None) -> str | None:
        s = settings_of(profile)
        flavour: Flavour = "kserve" if s.mode == "kserve" else "deployment"
        image = f"{self.registry(profile).repository}:latest"
        return render_yaml(redacted(build(profile.name, s, image, flavour=flavour)))

    # ---- deploy -------------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: KubernetesSettings = ctx.settings
        pushed = ctx.pushed
        if pushed is None:
            raise TargetError(
                "There is no pushed image to run.", "Deploy again; the push step makes it."
            )
        image = f"{pushed.repository}@{pushed.digest}"
        with cluster(s) as c:
            flavour = resolve_flavour(c, s)
            objects = build(
                ctx.name,
                s,
                image,
                flavour=flavour,
                key=endpoint_key_value(s),
                credential=pull_credential(s),
                model_version=ctx.version,
            )
            resources: list[Resource] = []
            for m in objects:
                ctx.cancel.raise_if_cancelled()
                r = Resource(
                    KIND_OBJECT,
                    f"{s.namespace}/{m['kind']}/{m['metadata']['name']}",
                    f"{m['kind']} {m['metadata']['name']}",
                    {
                        **_ref(m),
                        "namespace": s.namespace,
                        "deployment": ctx.name,
                        **self._where(s),
                    },
                )
                ctx.journal.record(r)
                ctx.progress.update(None, f"Applying {m['kind']} {m['metadata']['name']}")
                c.apply(m)
                resources.append(r)
            long_wait(
                ctx.progress, ROLLOUT, f"Rolling out {names.workload_name(ctx.name, flavour)}"
            )
            url = self._rollout(c, ctx, flavour)
            server = c.server
        least, _ = s.replica_range
        if s.expose == "proxy":
            svc = names.service_name(ctx.name, flavour)
            url = f"{server}/api/v1/namespaces/{s.namespace}/services/{svc}:http/proxy"
        return Endpoint(
            url=url,
            target=self.name,
            resources=resources,
            auth="bearer" if s.api_key else "none",
            data={
                "flavour": flavour,
                "namespace": s.namespace,
                "image": image,
                "replicas": least,
                "expose": s.expose,
                **self._where(s),
            },
        )

    @staticmethod
    def _where(s: KubernetesSettings) -> dict[str, Any]:
        return {"kubeconfig": s.kubeconfig, "context": s.context}

    def _rollout(self, c: Cluster, ctx: DeployContext, flavour: Flavour) -> str:
        """Wait like ``kubectl rollout status``; the address the Service has (or "")."""
        s: KubernetesSettings = ctx.settings
        work = names.workload_name(ctx.name, flavour)
        api, kind = ("apps/v1", "Deployment") if flavour == "deployment" else (
            KSERVE_API, "InferenceService"
        )  # fmt: skip

        pull_errors: dict[str, str] = {}  # image -> the last ErrImagePull message seen

        def probe() -> str:
            obj = c.get(api, kind, work) or {}
            trouble = _pod_trouble(c, ctx.name, s, pull_errors)
            if trouble is not None:
                raise trouble
            st = obj.get("status") or {}
            conds = {x.get("type"): x for x in st.get("conditions") or []}
            if flavour == "kserve":
                return "ready" if (conds.get("Ready") or {}).get("status") == "True" else "starting"
            prog = conds.get("Progressing") or {}
            if prog.get("reason") == "ProgressDeadlineExceeded":
                return "failed: the rollout passed its deadline"
            want = int((obj.get("spec") or {}).get("replicas") or 0)
            gen = int((obj.get("metadata") or {}).get("generation") or 0)
            if int(st.get("observedGeneration") or 0) < gen:
                return "starting"
            if int(st.get("updatedReplicas") or 0) < want:
                return f"{st.get('updatedReplicas') or 0} of {want} updated"
            if int(st.get("replicas") or 0) > int(st.get("updatedReplicas") or 0):
                return "old pods stopping"
            if int(st.get("availableReplicas") or 0) < want:
                return f"{st.get('availableReplicas') or 0} of {want} ready"
            return "ready"

        def failed(now: str) -> str | None:
            return now.removeprefix("failed: ") if now.startswith("failed: ") else None

        wait_until(
            probe,
            lambda now: now == "ready",
            failed,
            timeout=s.start_timeout,
            cancel=ctx.cancel,
            progress=ctx.progress,
            what=f"the pods of {work}",
            describe=lambda now: f"pods: {now}",
            hint="Raise the Start timeout setting for a large model.",
            fail_hint="See the details, fix the cause and deploy again.",
            details=lambda: _last_lines(c, ctx.name),
            interval=0.2,
            max_interval=2.0,
        )
        svc = c.get("v1", "Service", names.service_name(ctx.name, flavour)) or {}
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if s.expose == "loadbalancer" and ingress:
            host = ingress[0].get("ip") or ingress[0].get("hostname")
            return f"http://{host}:{s.port}"
        if s.expose == "ingress" and s.host:
            return f"{'https' if s.tls_secret else 'http'}://{s.host}"
        if s.expose == "nodeport":
            ports = (svc.get("spec") or {}).get("ports") or [{}]
            from urllib.parse import urlparse

            return f"http://{urlparse(c.server).hostname}:{ports[0].get('nodePort')}"
        return ""

    # ---- calling ------------------------------------------------------------------------
    def client(self, endpoint: Endpoint, profile: Profile | None = None) -> EndpointClient:
        """Through the API server's services proxy: the user's cluster credential and TLS
        from the kubeconfig (read now, never recorded) and the endpoint key as
        X-ModelShip-Key; elsewhere the key as a bearer token."""
        from app.endpoint.client import EndpointClient

        headers = dict(endpoint.headers)
        context = None
        if endpoint.data.get("expose", "proxy") == "proxy":
            s = settings_of(profile) if profile is not None else self._settings(endpoint.data)
            with cluster(s) as c:
                headers.update(c.auth_headers())
                context = c.ssl_context()
            if profile is not None:
                key = endpoint_key_value(settings_of(profile))
                if key:
                    headers["X-ModelShip-Key"] = key
        elif profile is not None:
            headers.update(self.secret_headers(profile))
        return EndpointClient(
            endpoint.url, headers=headers, tls_sha256=endpoint.tls_sha256, ssl_context=context
        )

    def secret_headers(self, profile: Profile) -> dict[str, str]:
        s = settings_of(profile)
        key = endpoint_key_value(s)
        if s.expose != "proxy":
            return {"Authorization": f"Bearer {key}"} if key else {}
        with cluster(s) as c:
            headers = c.auth_headers()
        if key:
            headers["X-ModelShip-Key"] = key
        return headers

    @staticmethod
    def _settings(d: dict[str, Any]) -> KubernetesSettings:
        """Enough settings to reach the recorded cluster and namespace."""
        return KubernetesSettings(
            kubeconfig=d.get("kubeconfig"),
            context=d.get("context"),
            namespace=str(d.get("namespace") or "default"),
            registry="recorded.invalid/x",
            mode="deployment",
        )

    # ---- later --------------------------------------------------------------------------
    def _cluster_for(self, record: DeploymentRecord) -> tuple[KubernetesSettings, dict[str, Any]]:
        endpoint = record.endpoint_obj()
        data = dict(endpoint.data) if endpoint else {}
        res = next((r for r in record.resources() if r.kind == KIND_OBJECT), None)
        if res is None and not data:
            raise TargetError(
                f"{record.name!r} has no Kubernetes objects recorded.", "Deploy again."
            )
        d = res.data if res else data
        settings = KubernetesSettings(
            kubeconfig=d.get("kubeconfig"),
            context=d.get("context"),
            namespace=str(d.get("namespace") or data.get("namespace") or "default"),
            registry="recorded.invalid/x",
            mode="deployment",
        )
        return settings, data

    def status(self, record: DeploymentRecord) -> TargetStatus:
        try:
            s, data = self._cluster_for(record)
            flavour = data.get("flavour") or "deployment"
            with cluster(s) as c:
                work = names.workload_name(record.name, flavour)
                dep = c.get("apps/v1", "Deployment", _pods_owner(record.name, flavour))
                pods = c.list("v1", "Pod", names.selector(record.name))
                hpas = c.list(
                    "autoscaling/v2", "HorizontalPodAutoscaler", names.selector(record.name)
                )
        except TargetError as exc:
            return TargetStatus(False, exc.message)
        st = (dep or {}).get("status") or {}
        want = int(((dep or {}).get("spec") or {}).get("replicas") or 0)
        ready = int(st.get("readyReplicas") or 0)
        out: dict[str, Any] = {
            "workload": work,
            "flavour": flavour,
            "replicas": want,
            "ready": ready,
            "pods": [p["metadata"]["name"] for p in pods],
        }
        detail = f"{work} in {s.namespace}: {ready} of {want} pods ready"
        if hpas:
            figures, words = autoscaler_figures(hpas[0])
            out["autoscaler"] = figures
            detail += f"; {words}"
        if dep is None and flavour == "deployment":
            return TargetStatus(False, f"{work} is gone", out)
        return TargetStatus(want > 0 and ready > 0, detail, out)

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        s, _ = self._cluster_for(record)
        with cluster(s) as c:
            out = []
            for pod in c.list("v1", "Pod", names.selector(record.name)):
                text = c.pod_log(pod["metadata"]["name"], lines)
                out.extend(text.splitlines()[-lines:])
            return "\n".join(out[-lines:])

    def captured(
        self,
        record: DeploymentRecord,
        since: float | None = None,
        client: EndpointClient | None = None,
    ) -> bytes:
        """Every Ready pod's ``GET /capture`` through the API server's pods proxy (the
        user's cluster credential, whatever the exposure; the endpoint key as
        X-ModelShip-Key), merged by time: each pod keeps its own files, and a Service
        would hand one request to one pod only."""
        from app.store.secrets import get_secret

        s, _ = self._cluster_for(record)
        headers: dict[str, str] = {"Accept": "application/x-ndjson"}
        entry = (((record.profile or {}).get("target") or {}).get("settings") or {}).get("api_key")
        key = get_secret(str(entry)) if entry else None
        if key:
            headers["X-ModelShip-Key"] = key
        query = [] if since is None else [("since", repr(since))]
        parts: list[tuple[str, bytes]] = []
        missed: list[str] = []
        with cluster(s) as c:
            pods = [p for p in c.list("v1", "Pod", names.selector(record.name)) if _ready(p)]
            if not pods:
                raise TargetError(
                    f"No pod of {record.name!r} is ready to hand out its captured requests.",
                    say(run_command("status", record.name, verb="Check its status with"), "."),
                )
            for pod in pods:
                pod_name = pod["metadata"]["name"]
                try:
                    status, body = c.pod_proxy_get(
                        pod_name, _pod_port(pod), "capture", query, headers
                    )
                except TargetError as exc:
                    if "does not allow you" in exc.message:
                        raise CredentialError(
                            f"The cluster does not allow you to get pods/proxy in namespace "
                            f"{s.namespace}, which reading each pod's captured requests needs.",
                            "Ask your cluster's administrator for the permission get "
                            "pods/proxy in this namespace.",
                        ) from None
                    missed.append(f"{pod_name}: {exc.message}")
                    continue
                if status == 404:
                    raise TargetError(
                        f"Capture is off for {record.name!r}.",
                        "Set capture_rate above 0 in its settings (e.g. 0.1) and deploy it again.",
                    )
                if status == 403:
                    raise TargetError(
                        f"{record.name!r} has no API key, so its pods do not hand out their "
                        "captured requests.",
                        "Set an API key in its settings and deploy it again.",
                    )
                if not 200 <= status < 300:
                    missed.append(f"{pod_name}: HTTP {status}")
                    continue
                parts.append((pod_name, body))
        if not parts:
            raise TargetError(
                f"No pod of {record.name!r} handed out its captured requests ("
                + "; ".join(missed)
                + ").",
                "Check the deployment's status and log.",
            )
        if missed:
            log.warning(
                "Captured requests of %s: %d of %d pods did not answer, so theirs are "
                "missing (%s).",
                record.name,
                len(missed),
                len(pods),
                "; ".join(missed),
            )
        return merge_capture(parts)

    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        progress = progress or NullProgress()
        if resource.kind != KIND_OBJECT:
            return False
        d = resource.data
        s = KubernetesSettings(
            kubeconfig=d.get("kubeconfig"),
            context=d.get("context"),
            namespace=str(d["namespace"]),
            registry="recorded.invalid/x",
            mode="deployment",
        )
        with cluster(s) as c:
            if c.get(d["apiVersion"], d["kind"], d["name"]) is None:
                return False
            progress.update(None, f"Deleting {d['kind']} {d['name']}")
            gone = c.delete(d["apiVersion"], d["kind"], d["name"])
            if d["kind"] in ("Deployment", "InferenceService") and d.get("deployment"):
                self._wait_pods_gone(c, str(d["deployment"]), progress)
            return gone

    @staticmethod
    def _wait_pods_gone(c: Cluster, deployment: str, progress: Progress) -> None:
        """Until the workload's ReplicaSets and pods are gone (the cluster's garbage
        collector removes them after their owner)."""
        deadline = time.monotonic() + 120
        while c.list("apps/v1", "ReplicaSet", names.selector(deployment)) or c.list(
            "v1", "Pod", names.selector(deployment)
        ):
            if time.monotonic() > deadline:
                progress.log("Some pods are still stopping; the cluster removes them.")
                return
            progress.update(None, "Waiting for the pods to stop")
            time.sleep(0.3)

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Everything labelled with the deployment's name (recorded or not), then wait
        until its pods are gone."""
        removed = super().teardown(record, progress)
        try:
            s, _ = self._cluster_for(record)
        except TargetError:
            return removed
        with cluster(s) as c:
            for api, kind in (
                ("networking.k8s.io/v1", "Ingress"),
                ("autoscaling/v2", "HorizontalPodAutoscaler"),
                ("v1", "Service"),
                ("apps/v1", "Deployment"),
                ("v1", "Secret"),
            ):
                try:
                    items = c.list(api, kind, names.selector(record.name))
                except TargetError:
                    continue
                for item in items:
                    if c.delete(api, kind, item["metadata"]["name"]):
                        removed.append(f"{kind} {item['metadata']['name']}")
            self._wait_pods_gone(c, record.name, progress)
        return removed

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        return self.teardown(record, progress)

    # ---- stop and start -------------------------------------------------------------
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        s, data = self._cluster_for(record)
        _refuse_kserve(record, data, "stopped")
        with cluster(s) as c:
            progress.update(None, "Scaling the pods to 0")
            c.scale(names.workload_name(record.name, "deployment"), 0)
            deadline = time.monotonic() + 120
            while c.list("v1", "Pod", names.selector(record.name)):
                if time.monotonic() > deadline:
                    progress.log("Some pods are still stopping; the cluster removes them.")
                    break
                progress.update(None, "Waiting for the pods to stop")
                time.sleep(0.3)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        s, data = self._cluster_for(record)
        _refuse_kserve(record, data, "started")
        n = int(data.get("replicas") or 1)
        with cluster(s) as c:
            progress.update(None, f"Scaling the pods to {n}")
            c.scale(names.workload_name(record.name, "deployment"), n)
        return None


def autoscaler_figures(hpa: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A HorizontalPodAutoscaler's current figure (autoscaling/v2): its numbers, and in
    words: "autoscaler: 2 pods now, 3 wanted (between 1 and 4); CPU 95% of the request
    against a 70% target", or why CPU use is not measured (no metrics server: the
    ``ScalingActive`` condition says ``FailedGetResourceMetric``)."""
    spec, st = hpa.get("spec") or {}, hpa.get("status") or {}
    aim = next(
        (
            ((m.get("resource") or {}).get("target") or {}).get("averageUtilization")
            for m in spec.get("metrics") or []
            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
        ),
        None,
    )
    use = next(
        (
            ((m.get("resource") or {}).get("current") or {}).get("averageUtilization")
            for m in st.get("currentMetrics") or []
            if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
        ),
        None,
    )
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    figures = {
        "current": st.get("currentReplicas"),
        "desired": st.get("desiredReplicas"),
        "min": low,
        "max": high,
        "cpu_percent": use,
        "target_cpu_percent": aim,
    }
    if st.get("desiredReplicas") is None:
        return figures, f"autoscaler (between {low} and {high} pods): no figure yet"
    now = int(st.get("currentReplicas") or 0)
    words = (
        f"autoscaler: {now} pod{'' if now == 1 else 's'} now, {st['desiredReplicas']} "
        f"wanted (between {low} and {high})"
    )
    if use is not None:
        words += f"; CPU {use}% of the request"
        if aim is not None:
            words += f" against a {aim}% target"
        return figures, words
    active = next((c for c in st.get("conditions") or [] if c.get("type") == "ScalingActive"), {})
    if active.get("reason") == "ScalingDisabled":
        return figures, words + "; off while scaled to 0"
    if active.get("status") == "False":
        words += (
            f"; CPU use not measured ({active.get('reason')}): the cluster's metrics "
            "server does not answer, so it only keeps the pods within the bounds"
        )
    else:
        words += "; CPU use not measured yet"
    return figures, words


def _ready(pod: dict[str, Any]) -> bool:
    """Serving: Ready and not being deleted (an old ReplicaSet's pod in a rollout)."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_port(pod: dict[str, Any]) -> int:
    """The serving container's port (named ``http``; the pods proxy takes a number)."""
    ports = [
        p for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []
    ]
    chosen = next((p for p in ports if p.get("name") == "http"), ports[0] if ports else None)
    return int(chosen["containerPort"]) if chosen else 8080


def _pods_owner(deployment: str, flavour: str) -> str:
    """The Deployment that runs the pods: ModelShip's, or the one KServe makes for the
    InferenceService's predictor in raw deployment mode (``<isvc>-predictor``)."""
    if flavour == "kserve":
        return f"{names.workload_name(deployment, 'kserve')}-predictor"
    return names.workload_name(deployment, "deployment")


def _refuse_kserve(record: DeploymentRecord, data: dict[str, Any], done: str) -> None:
    """KServe owns its predictor's Deployment (it would scale it back): an InferenceService
    is not stopped apart from removal."""
    if data.get("flavour") == "kserve":
        raise TargetError(
            f"{record.name!r} runs as a KServe InferenceService, which cannot be {done} "
            "apart from removing it (KServe keeps its pods running).",
            say(
                "Tear it down when you no longer need it (",
                run_command("teardown", record.name),
                "), or deploy it with mode = deployment to stop and start it.",
            ),
        )


# ---- why pods do not start --------------------------------------------------------------
PULL_REASONS = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
LOG_LINES_SHOWN = 8


def _pod_trouble(
    c: Cluster, deployment: str, s: KubernetesSettings, pull_errors: dict[str, str]
) -> TargetError | None:
    """What keeps the deployment's pods from starting, in plain words with the next step
    (None while nothing waiting will not fix is seen). ``pull_errors`` keeps the last
    ``ErrImagePull`` message per image across probes: once the kubelet backs off, the
    pod says only "Back-off pulling image"."""
    for pod in c.list("v1", "Pod", names.selector(deployment)):
        pod_name = pod["metadata"]["name"]
        st = pod.get("status") or {}
        for cond in st.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return TargetError(
                    f"The cluster cannot place pod {pod_name}: no node has room for the pods "
                    f"({cond.get('message') or cond.get('reason')}); lower CPU or memory per "
                    "pod, or ask for more nodes.",
                    f"Lower CPU per pod ({s.cpu}) or Memory per pod ({s.memory}) in the "
                    "settings and deploy again, or ask your cluster's administrator for "
                    "more room (nodes or quota) in namespace " + s.namespace + ".",
                )
        for cs in st.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            image = str(cs.get("image") or "")
            if reason == "ErrImagePull":
                pull_errors[image] = str(waiting.get("message") or "")
            elif reason in PULL_REASONS:
                return _pull_trouble(s, image, reason, pull_errors.get(image) or "")
            elif reason == "CrashLoopBackOff":
                return _crash_trouble(c, s, pod_name, cs)
    return None


def _pull_trouble(s: KubernetesSettings, image: str, reason: str, error: str) -> TargetError:
    """ImagePullBackOff and its kin: the image, why (when the kubelet said), what to check."""
    registry = image.split("/", 1)[0] if "/" in image else s.registry
    # the kubelet's words without the reference already named: "manifest unknown", ...
    error = error.replace(f'failed to pull and unpack image "{image}": ', "")
    error = error.replace(image, "it").strip()
    low = error.lower()
    credential = f"the Registry credential setting (keyring entry {s.pull_secret or 'none set'})"
    if "manifest unknown" in low or "not found" in low:
        why = f"the registry {registry} does not have it"
        check = (
            f"Check that {registry} still holds the image (a clean-up may have removed it); "
            "deploy again to push it anew."
        )
    elif any(w in low for w in ("unauthorized", "authentication required", "denied", "forbidden")):
        why = f"the registry {registry} refused the cluster's login"
        check = (
            f"Check {credential}: the cluster pulls with it, so it must be a login {registry} "
            "accepts. Then deploy again."
        )
    elif any(w in low for w in ("connection refused", "no such host", "i/o timeout", "dial tcp")):
        why = f"the cluster's nodes cannot reach the registry {registry}"
        check = (
            f"Use a registry address the cluster's nodes can reach ({registry} must resolve "
            "and answer from inside the cluster; localhost there is the node itself), then "
            "deploy again."
        )
    else:
        why = "the kubelet could not get it"
        check = (
            f"Check that {registry} has the image, that the cluster's nodes can reach it and "
            f"that {credential} may pull from it; then deploy again."
        )
    said = f": {error}" if error else ""
    return TargetError(f"The cluster cannot pull the image {image}: {why} ({reason}{said}).", check)


def _crash_trouble(c: Cluster, s: KubernetesSettings, pod: str, cs: dict[str, Any]) -> TargetError:
    """CrashLoopBackOff: how the server ended, its last log lines, what to do."""
    ended = ((cs.get("lastState") or {}).get("terminated")) or {}
    code, why = ended.get("exitCode"), str(ended.get("reason") or "")
    restarts = int(cs.get("restartCount") or 0)
    how = f"it exited with code {code}" if code is not None else "it exited"
    if why == "OOMKilled":
        how = f"it ran out of memory (OOMKilled at the {s.memory} limit)"
    tail = c.pod_log(pod, 40, previous=True) or c.pod_log(pod, 40)
    lines = [line for line in tail.splitlines() if line.strip()]
    shown = "\n".join(f"  {line}" for line in lines[-LOG_LINES_SHOWN:])
    message = (
        f"The server in pod {pod} keeps crashing (CrashLoopBackOff): {how}, "
        f"{restarts} restart{'s' if restarts != 1 else ''} so far."
    )
    message += f" Its last log lines:\n{shown}" if shown else " It wrote nothing to its log."
    hint = (
        f"Raise Memory per pod (now {s.memory}) in the settings and deploy again."
        if why == "OOMKilled"
        else "Fix what its log says (a model or setting the server cannot load), then deploy again."
    )
    return TargetError(message, hint, details="\n".join(lines) or None)


def _last_lines(c: Cluster, deployment: str, lines: int = 20) -> str | None:
    out = []
    for pod in c.list("v1", "Pod", names.selector(deployment))[:2]:
        name = pod["metadata"]["name"]
        text = c.pod_log(name, lines) or c.pod_log(name, lines, previous=True)
        if text:
            out.append(f"pod {name}:\n{text.rstrip()}")
    return "\n".join(out) or None
