"""kube-controller-manager's part: Deployments (through ReplicaSets), garbage collection,
HorizontalPodAutoscalers (bounds; CPU utilization once ``cpu_percent`` is set), and
KServe's raw-deployment InferenceService controller.

The Deployment controller follows the documented rolling update: new pods first (up to
``maxSurge`` above the desired count), an old pod goes only while at least
``replicas - maxUnavailable`` stay ready; status carries ``observedGeneration``,
``replicas``, ``updatedReplicas``, ``readyReplicas``, ``availableReplicas`` and the
``Available``/``Progressing`` conditions that ``kubectl rollout status`` reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import threading
import time
from typing import Any

from .resources import DEPLOYMENTS, HPAS, INFERENCESERVICES, PODS, REPLICASETS, SERVICES, Resource
from .store import ApiError, Obj, Store, now, selector_from_match_labels

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GC_KINDS = [REPLICASETS, PODS, DEPLOYMENTS, SERVICES]


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:10])


def suffix() -> str:
    return "".join(random.choice(ALPHABET) for _ in range(5))


def resolve(value: Any, desired: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = desired * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions", [])
    )


def owner_ref(obj: Obj, controller: bool = True) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


class Controllers(threading.Thread):
    def __init__(self, store: Store, kserve: bool, period: float = 0.25) -> None:
        super().__init__(name="k8s-emu-controllers", daemon=True)
        self.store = store
        self.kserve = kserve
        self.period = period
        self.halt = threading.Event()
        self.progress: dict[str, tuple[Any, float]] = {}  # deployment uid -> (figures, since)
        self.hooks: list[Any] = []  # extra callables per tick (the kubelet's sync)
        self.errors: list[str] = []
        # the pods' average CPU use in percent of their request, as metrics-server would
        # report it to the HPA controller; None: no metrics server (the HPA cannot measure)
        self.cpu_percent: float | None = None

    def run(self) -> None:
        while not self.halt.wait(self.period):
            for step in (self.gc, self.inferenceservices, self.hpas, self.deployments, *self.hooks):
                try:
                    step()
                except ApiError:
                    pass  # an object vanished between read and write: next tick
                except Exception as exc:
                    self.errors.append(
                        f"{getattr(step, '__name__', step)}: {type(exc).__name__}: {exc}"
                    )

    # ------------------------------------------------------------ garbage collection
    def gc(self) -> None:
        uids = set()
        with self.store.lock:
            for entry in self.store.objects.values():
                uids.add(entry.obj["metadata"]["uid"])
        for r in GC_KINDS + ([INFERENCESERVICES] if self.kserve else []):
            items, _ = self.store.list(r, None)
            for obj in items:
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and all(ref.get("uid") not in uids for ref in refs):
                    self.delete(r, obj)

    def delete(self, r: Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        if r is PODS:
            self.store.mark_deleting(PODS, meta["namespace"], meta["name"], 30)
        else:
            self.store.delete(r, meta.get("namespace", ""), meta["name"])

    # ------------------------------------------------------------ deployments
    def deployments(self) -> None:
        items, _ = self.store.list(DEPLOYMENTS, None)
        for deployment in items:
            self.deployment(deployment)

    def _replicaset(self, deployment: Obj, pod_hash: str) -> Obj:
        meta = deployment["metadata"]
        name = f"{meta['name']}-{pod_hash}"
        found = self.store.find(REPLICASETS, meta["namespace"], name)
        if found is not None:
            return found
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        revision = int(
            (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")
        )
        return self.store.create(
            REPLICASETS,
            meta["namespace"],
            {
                "metadata": {
                    "name": name,
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": {"deployment.kubernetes.io/revision": str(revision + 1)},
                    "ownerReferences": [owner_ref(deployment)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": template},
            },
            "kube-controller-manager",
        )

    def deployment(self, deployment: Obj) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        ns = meta["namespace"]
        desired = int(spec.get("replicas", 1))
        pod_hash = template_hash(spec["template"])
        current_rs = self._replicaset(deployment, pod_hash)
        revision = current_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        if (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision") != revision:
            self.store.patch(
                DEPLOYMENTS,
                ns,
                meta["name"],
                "application/merge-patch+json",
                json.dumps(
                    {"metadata": {"annotations": {"deployment.kubernetes.io/revision": revision}}}
                ).encode(),
                "kube-controller-manager",
            )
        all_rs, _ = self.store.list(REPLICASETS, ns)
        owned_rs = {
            rs["metadata"]["name"]: rs
            for rs in all_rs
            if any(
                ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences") or []
            )
        }
        pods_all, _ = self.store.list(PODS, ns)
        pods = [
            p
            for p in pods_all
            if any(
                ref.get("name") in owned_rs for ref in p["metadata"].get("ownerReferences") or []
            )
        ]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        new = [
            p for p in live if p["metadata"].get("labels", {}).get("pod-template-hash") == pod_hash
        ]
        old = [p for p in live if p not in new]
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            if old:
                for pod in old:
                    self.delete(PODS, pod)
            elif len(pods) == len(live) and len(new) < desired:
                for _ in range(desired - len(new)):
                    self._create_pod(current_rs, ns)
            surge, unavailable = 0, desired
        else:
            rolling = strategy.get("rollingUpdate") or {}
            surge = resolve(rolling.get("maxSurge", "25%"), desired, True)
            unavailable = resolve(rolling.get("maxUnavailable", "25%"), desired, False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            room = desired + surge - len(live)
            for _ in range(max(0, min(room, desired - len(new)))):
                self._create_pod(current_rs, ns)
            ready_total = sum(1 for p in live if is_ready(p))
            for pod in sorted(old, key=is_ready):
                if not is_ready(pod):
                    self.delete(PODS, pod)
                elif (ready_total - 1 >= desired - unavailable and len(new) > 0) or desired == 0:
                    self.delete(PODS, pod)
                    ready_total -= 1
            if len(new) > desired:
                for pod in sorted(new, key=is_ready)[: len(new) - desired]:
                    self.delete(PODS, pod)
        for rs in owned_rs.values():
            mine = [
                p
                for p in live
                if p["metadata"].get("labels", {}).get("pod-template-hash")
                == rs["metadata"]["name"].rsplit("-", 1)[-1]
            ]
            wanted = (
                desired if rs["metadata"]["name"] == current_rs["metadata"]["name"] else len(mine)
            )
            if rs["spec"].get("replicas") != wanted:
                rs = self.store.patch(
                    REPLICASETS,
                    ns,
                    rs["metadata"]["name"],
                    "application/merge-patch+json",
                    json.dumps({"spec": {"replicas": wanted}}).encode(),
                    "kube-controller-manager",
                )[0]
            self.store.set_status(
                REPLICASETS,
                ns,
                rs["metadata"]["name"],
                {
                    "replicas": len(mine),
                    "readyReplicas": sum(1 for p in mine if is_ready(p)),
                    "availableReplicas": sum(1 for p in mine if is_ready(p)),
                    "observedGeneration": rs["metadata"].get("generation", 1),
                },
            )
        self._deployment_status(deployment, pods, live, new, desired, unavailable, current_rs)

    def _create_pod(self, rs: Obj, ns: str) -> None:
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata") or {}
        meta["name"] = f"{rs['metadata']['name']}-{suffix()}"
        meta["ownerReferences"] = [owner_ref(rs)]
        spec = template["spec"]
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("nodeName", "emulator-node")
        for container in spec.get("containers") or []:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
        self.store.create(
            PODS,
            ns,
            {"metadata": meta, "spec": spec, "status": {"phase": "Pending"}},
            "kube-controller-manager",
        )

    def _deployment_status(
        self,
        deployment: Obj,
        pods: list[Obj],
        live: list[Obj],
        new: list[Obj],
        desired: int,
        unavailable: int,
        rs: Obj,
    ) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        old_status = deployment.get("status") or {}
        ready = sum(1 for p in live if is_ready(p))
        updated = len(new)
        figures = (meta.get("generation"), len(live), updated, ready)
        uid = meta["uid"]
        stamp = now()
        previous, since = self.progress.get(uid, (None, time.monotonic()))
        if previous != figures:
            since = time.monotonic()
            self.progress[uid] = (figures, since)
        complete = updated == desired and len(pods) == desired and ready == desired
        rs_name = rs["metadata"]["name"]
        deadline = float(spec.get("progressDeadlineSeconds", 600))
        if complete:
            progressing = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif time.monotonic() - since > deadline:
            progressing = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        available = (
            ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
            if ready >= desired - unavailable
            else (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        old_conditions = {c["type"]: c for c in old_status.get("conditions", [])}

        def condition(kind: str, value: tuple[str, str, str], bump: bool) -> Obj:
            prev = old_conditions.get(kind)
            status, reason, message = value
            same = prev is not None and (prev["status"], prev["reason"], prev["message"]) == value
            return {
                "type": kind,
                "status": status,
                "lastUpdateTime": prev["lastUpdateTime"] if same and not bump else stamp,
                "lastTransitionTime": prev["lastTransitionTime"]
                if prev and prev["status"] == status
                else stamp,
                "reason": reason,
                "message": message,
            }

        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(live),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                condition("Available", available, False),
                condition("Progressing", progressing, False),
            ],
        }
        if desired - ready > 0:
            status["unavailableReplicas"] = desired - ready
        for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if status[key] == 0:
                del status[key]  # omitempty, as the real server serializes it
        self.store.set_status(DEPLOYMENTS, meta["namespace"], meta["name"], status)

    # ------------------------------------------------------------ HPAs
    def hpas(self) -> None:
        """The HPA controller for a Deployment target and a CPU utilization metric.

        With no metrics server (``cpu_percent`` None, the default) it does what the real
        controller does then: keeps the Deployment within min/max only, reports
        ``currentReplicas``/``desiredReplicas`` without ``currentMetrics`` and sets
        ``ScalingActive`` False (``FailedGetResourceMetric``). With ``cpu_percent`` (the
        pods' average CPU use, in percent of their request, as metrics-server would
        report it) it scales by the documented rule: desired = ceil(current * use /
        target), unchanged within the 10% tolerance, clamped to min/max.
        """
        items, _ = self.store.list(HPAS, None)
        for hpa in items:
            spec, ns = hpa["spec"], hpa["metadata"]["namespace"]
            ref = spec.get("scaleTargetRef") or {}
            if ref.get("kind") != "Deployment":
                continue
            target = self.store.find(DEPLOYMENTS, ns, ref.get("name", ""))
            if target is None:
                continue
            current = int(target["spec"].get("replicas", 1))
            running = int((target.get("status") or {}).get("replicas", 0))
            low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
            wanted = current
            aim = next(
                (
                    m["resource"]["target"].get("averageUtilization")
                    for m in spec.get("metrics") or []
                    if m.get("type") == "Resource" and m["resource"].get("name") == "cpu"
                ),
                None,
            )
            use = self.cpu_percent
            measured = bool(use is not None and aim and running > 0)
            if measured:
                ratio = float(use) / float(aim)  # type: ignore[arg-type]
                if abs(ratio - 1.0) > 0.1:
                    wanted = math.ceil(running * ratio)
            disabled = current == 0  # scaled to zero by hand: the HPA leaves it alone
            wanted = current if disabled else min(max(wanted, low), high)
            if wanted != current:
                self.store.patch(
                    DEPLOYMENTS,
                    ns,
                    target["metadata"]["name"],
                    "application/merge-patch+json",
                    json.dumps({"spec": {"replicas": wanted}}).encode(),
                    "horizontal-pod-autoscaler",
                )
            old = hpa.get("status") or {}

            def condition(kind: str, ok: bool, reason: str, message: str, old: Obj = old) -> Obj:
                status = "True" if ok else "False"
                for prev in old.get("conditions") or []:
                    if prev["type"] == kind and prev["status"] == status:
                        return {**prev, "reason": reason, "message": message}
                return {
                    "type": kind,
                    "status": status,
                    "lastTransitionTime": now(),
                    "reason": reason,
                    "message": message,
                }

            status: Obj = {"currentReplicas": running, "desiredReplicas": wanted}
            if disabled:
                active = condition(
                    "ScalingActive",
                    False,
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                )
            elif measured:
                requests = [
                    (c.get("resources") or {}).get("requests", {}).get("cpu")
                    for c in target["spec"]["template"]["spec"].get("containers", [])
                ]
                milli = sum(_millicores(r) for r in requests if r)
                status["currentMetrics"] = [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "current": {
                                "averageUtilization": int(use or 0),
                                "averageValue": f"{int(milli * (use or 0) / 100)}m",
                            },
                        },
                    }
                ]
                active = condition(
                    "ScalingActive",
                    True,
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu "
                    "resource utilization (percentage of request)",
                )
            else:
                active = condition(
                    "ScalingActive",
                    False,
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: failed to get cpu "
                    "utilization: unable to get metrics for resource cpu: unable to fetch "
                    "metrics from resource metrics API: the server could not find the "
                    "requested resource (get pods.metrics.k8s.io)",
                )
            status["conditions"] = [
                condition("AbleToScale", True, "ReadyForNewScale", "recommended size matches "
                          "current size"),
                active,
            ]  # fmt: skip
            if wanted != current or "lastScaleTime" in old:
                status["lastScaleTime"] = now() if wanted != current else old["lastScaleTime"]
            self.store.set_status(HPAS, ns, hpa["metadata"]["name"], status)

    # ------------------------------------------------------------ KServe (raw deployment)
    def inferenceservices(self) -> None:
        if not self.kserve:
            return
        items, _ = self.store.list(INFERENCESERVICES, None)
        for isvc in items:
            self.inferenceservice(isvc)

    def inferenceservice(self, isvc: Obj) -> None:
        meta, ns = isvc["metadata"], isvc["metadata"]["namespace"]
        name = meta["name"]
        predictor = copy.deepcopy((isvc.get("spec") or {}).get("predictor") or {})
        containers = predictor.pop("containers", None)
        if not containers:
            self._isvc_status(
                isvc,
                False,
                "PredictorConfigurationReady",
                "only custom predictor containers are emulated",
            )
            return
        for key in (
            "minReplicas",
            "maxReplicas",
            "scaleTarget",
            "scaleMetric",
            "containerConcurrency",
            "timeout",
            "canaryTrafficPercent",
            "deploymentStrategy",
        ):
            predictor.pop(key, None)
        for container in containers:
            container.setdefault("name", "kserve-container")
        component = f"{name}-predictor"
        labels = {
            **(meta.get("labels") or {}),
            "app": f"isvc.{component}",
            "component": "predictor",
            "serving.kserve.io/inferenceservice": name,
        }
        selector = {"app": f"isvc.{component}"}
        replicas = int(((isvc.get("spec") or {}).get("predictor") or {}).get("minReplicas", 1) or 1)
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": component, "labels": labels, "ownerReferences": [owner_ref(isvc)]},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {**predictor, "containers": containers},
                },
            },
        }
        self.store.apply(DEPLOYMENTS, ns, component, deployment, "kserve-controller", True)
        port = next(iter(containers[0].get("ports") or []), {}).get("containerPort", 8080)
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": component, "labels": labels, "ownerReferences": [owner_ref(isvc)]},
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": port}],
            },
        }
        self.store.apply(SERVICES, ns, component, service, "kserve-controller", True)
        current = self.store.find(DEPLOYMENTS, ns, component) or {}
        status = current.get("status") or {}
        ready = any(
            c["type"] == "Available" and c["status"] == "True" for c in status.get("conditions", [])
        ) and status.get("observedGeneration") == current["metadata"].get("generation")
        self._isvc_status(isvc, ready, "", "")

    def _isvc_status(self, isvc: Obj, ready: bool, reason: str, message: str) -> None:
        meta = isvc["metadata"]
        old = {c["type"]: c for c in (isvc.get("status") or {}).get("conditions", [])}

        def condition(kind: str, ok: bool) -> Obj:
            value = "True" if ok else "False"
            prev = old.get(kind)
            out: Obj = {
                "type": kind,
                "status": value,
                "lastTransitionTime": prev["lastTransitionTime"]
                if prev and prev["status"] == value
                else now(),
            }
            if not ok and reason:
                out["reason"], out["message"] = reason, message
            return out

        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "conditions": [
                condition("IngressReady", ready),
                condition("PredictorReady", ready),
                condition("Ready", ready),
            ],
            "deploymentMode": "RawDeployment",
        }
        if ready:
            host = f"{meta['name']}-predictor.{meta['namespace']}.svc.cluster.local"
            status["url"] = f"http://{host}"
            status["address"] = {"url": f"http://{host}"}
            status["components"] = {"predictor": {"url": f"http://{host}"}}
        self.store.set_status(INFERENCESERVICES, meta["namespace"], meta["name"], status)


def _millicores(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def pods_of(store: Store, deployment: Obj) -> list[Obj]:
    """The pods a Deployment's selector picks (what kubectl logs deployment/NAME reads)."""
    matches = selector_from_match_labels(deployment["spec"].get("selector"))
    pods, _ = store.list(PODS, deployment["metadata"]["namespace"])
    return [p for p in pods if matches(p["metadata"].get("labels") or {})]
