"""The kubelet: each pod's first container runs as a real Docker container.

One daemon thread per pod: pull the image with the pod's ``imagePullSecrets``
(``kubernetes.io/dockerconfigjson``), resolve env (``valueFrom.secretKeyRef``), write Secret
volumes to a temp dir and bind-mount them read-only, honour ``readOnlyRootFilesystem``
(read-only root + tmpfs ``/tmp``) and ``runAsUser``/``runAsNonRoot``, publish the container
ports on 127.0.0.1, poll the readiness probe, restart a container that exits
(``CrashLoopBackOff`` with ``restartCount``), report ``ErrImagePull``/``ImagePullBackOff``.
A pod with a ``deletionTimestamp`` leaves the endpoints first, then its container stops.

Back-offs and probe periods are shortened (at most 1 s per probe, 4 s per back-off) so
tests run in seconds; the shapes of the statuses are the real ones.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from .resources import PODS, SECRETS
from .store import Obj, Store, now

LABEL = "modelship.kubernetes-emulator"
LABEL_POD = "modelship.kubernetes-emulator.pod"
MAX_BACKOFF = 4.0
DRAIN_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


SUFFIXES = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ("500m", "2", "512Mi", "1G") as a number."""
    text = str(value)
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * SUFFIXES[suffix]
    return float(text)


class PodError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Kubelet:
    """Runs pods; ``ports`` maps (namespace, pod) -> {containerPort: host port}."""

    def __init__(self, store: Store, instance: str) -> None:
        self.store = store
        self.instance = instance
        self.client = docker.from_env()
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.ports: dict[tuple[str, str], dict[int, int]] = {}
        self.containers: dict[tuple[str, str], str] = {}
        self.pulled: set[str] = set()
        # the single node's allocatable; a pod requesting more stays Pending (Unschedulable)
        self.capacity: dict[str, str] = {"cpu": "4", "memory": "8Gi"}
        self.lock = threading.Lock()
        self.stopping = False

    def sync(self) -> None:
        """Start a worker for each new pod; workers end themselves when their pod goes."""
        pods, _ = self.store.list(PODS, None)
        with self.lock:
            for key in [k for k, w in self.workers.items() if not w.is_alive()]:
                del self.workers[key]
            for pod in pods:
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
                if key not in self.workers and not self.stopping and pod["metadata"].get("uid"):
                    worker = PodWorker(self, pod)
                    self.workers[key] = worker
                    worker.start()

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.halt.set()
        for worker in workers:
            worker.join(30)
        for container in self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.instance}"}
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        for reference in self.pulled:
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(reference)
        self.client.close()

    def leftovers(self) -> list[str]:
        return [
            c.name
            for c in self.client.containers.list(
                all=True, filters={"label": f"{LABEL}={self.instance}"}
            )
        ]

    def logs(
        self, namespace: str, pod: str, tail: int | None, timestamps: bool, previous: bool
    ) -> str | None:
        container_id = self.containers.get((namespace, pod))
        if container_id is None:
            return None
        try:
            raw = self.client.containers.get(container_id).logs(
                tail=tail if tail is not None else "all", timestamps=timestamps
            )
        except docker.errors.NotFound:
            return None
        return raw.decode(errors="replace")

    def endpoints(self, namespace: str, selector: dict[str, str], port: int) -> list[int]:
        """Host ports of the ready, not terminating pods the selector picks."""
        pods, _ = self.store.list(
            PODS, namespace, ",".join(f"{k}={v}" for k, v in selector.items())
        )
        out = []
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod.get("status", {}).get("conditions", [])
            )
            host = self.ports.get((namespace, pod["metadata"]["name"]), {}).get(port)
            if ready and host:
                out.append(host)
        return out


class PodWorker(threading.Thread):
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        super().__init__(name=f"k8s-emu-pod-{pod['metadata']['name']}", daemon=True)
        self.kubelet = kubelet
        self.store = kubelet.store
        self.namespace = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.pod_name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.spec = pod["spec"]
        self.container_spec = pod["spec"]["containers"][0]
        self.halt = threading.Event()
        self.container: Any = None
        self.tmpdir: Path | None = None
        self.restarts = 0
        self.last_state: Obj = {}
        self.ready = False
        self.started_at = now()

    # ------------------------------------------------------------ status
    def _pod(self) -> Obj | None:
        pod = self.store.find(PODS, self.namespace, self.pod_name)
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return None
        return pod

    def _gone(self) -> bool:
        if self.halt.is_set():
            return True
        pod = self._pod()
        return pod is None or bool(pod["metadata"].get("deletionTimestamp"))

    def _status(
        self, state: Obj, phase: str = "Pending", ready: bool = False, ip: str = ""
    ) -> None:
        pod = self._pod()
        if pod is None:
            return
        self.ready = ready
        c = self.container_spec
        old = pod.get("status") or {}

        def cond(kind: str, ok: bool) -> Obj:
            status = "True" if ok else "False"
            for prev in old.get("conditions", []):
                if prev["type"] == kind and prev["status"] == status:
                    return prev
            return {
                "type": kind,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": now(),
            }

        container_status: Obj = {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": ready,
            "started": "running" in state,
            "restartCount": self.restarts,
            "state": state,
            "lastState": self.last_state,
        }
        if self.container is not None:
            container_status["containerID"] = f"docker://{self.container.id}"
            container_status["imageID"] = self.container.attrs.get("Image", "")
        status = {
            "phase": phase,
            "conditions": [
                cond("PodReadyToStartContainers", self.container is not None),
                cond("Initialized", True),
                cond("Ready", ready),
                cond("ContainersReady", ready),
                cond("PodScheduled", True),
            ],
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started_at,
            "containerStatuses": [container_status],
            "qosClass": "BestEffort" if not c.get("resources") else "Burstable",
        }
        if ip:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        self.store.set_status(PODS, self.namespace, self.pod_name, status)

    def _waiting(self, reason: str, message: str) -> None:
        self._status({"waiting": {"reason": reason, "message": message}})

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the pod goes; True when it went."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._gone():
                return True
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return self._gone()

    # ------------------------------------------------------------ the pod's life
    def run(self) -> None:
        try:
            self._live()
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._waiting("RunContainerError", f"emulator: {type(exc).__name__}: {exc}")
            self._sleep(3600)
        finally:
            self._teardown()

    def _unschedulable(self) -> list[str]:
        """What the pod requests beyond the one node's allocatable (``kubelet.capacity``)."""
        requests = (self.container_spec.get("resources") or {}).get("requests") or {}
        return [
            name
            for name in ("cpu", "memory")
            if name in requests and quantity(requests[name]) > quantity(self.kubelet.capacity[name])
        ]

    def _live(self) -> None:
        short = self._unschedulable()
        if short:
            why = ", ".join(f"1 Insufficient {name}" for name in short)
            status = {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": now(),
                        "reason": "Unschedulable",
                        "message": f"0/1 nodes are available: {why}. preemption: 0/1 nodes are "
                        "available: 1 No preemption victims found for incoming pod.",
                    }
                ],
                "qosClass": "Burstable",
            }
            self.store.set_status(PODS, self.namespace, self.pod_name, status)
            self._sleep(10**6)
            return
        self._waiting("ContainerCreating", "")
        attempt = 0
        while True:
            try:
                self._prepare()
                break
            except PodError as exc:
                attempt += 1
                self._waiting(exc.reason, exc.message)
                if self._sleep(1.0):
                    return
                if exc.reason == "ErrImagePull":
                    self._waiting(
                        "ImagePullBackOff",
                        f'Back-off pulling image "{self.container_spec.get("image")}"',
                    )
                if self._sleep(min(MAX_BACKOFF, 0.5 * 2**attempt)):
                    return
        self.container.start()
        self._watch_container()

    def _auths(self) -> dict[str, Obj]:
        out: dict[str, Obj] = {}
        for ref in self.spec.get("imagePullSecrets") or []:
            secret = self.store.find(SECRETS, self.namespace, ref.get("name", ""))
            if not secret or secret.get("type") != "kubernetes.io/dockerconfigjson":
                continue
            raw = (secret.get("data") or {}).get(".dockerconfigjson", "")
            with contextlib.suppress(ValueError):
                out.update(json.loads(base64.b64decode(raw)).get("auths") or {})
        return out

    def _pull(self, image: str) -> None:
        client = self.kubelet.client
        policy = self.container_spec.get("imagePullPolicy") or (
            "Always"
            if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
            else "IfNotPresent"
        )
        if policy != "Always":
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.get(image)
                return
        if policy == "Never":
            raise PodError(
                "ErrImageNeverPull",
                f'Container image "{image}" is not present with pull policy of Never',
            )
        entry = self._auths().get(registry_of(image))
        auth = None
        if entry:
            user, password = entry.get("username"), entry.get("password")
            if not user and entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            auth = {"username": user, "password": password}
        try:
            client.images.pull(image, auth_config=auth)
        except docker.errors.APIError as exc:
            raise PodError(
                "ErrImagePull",
                f'failed to pull and unpack image "{image}": {exc.explanation or exc}',
            ) from exc
        self.kubelet.pulled.add(image)

    def _env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in self.container_spec.get("envFrom") or []:
            ref = source.get("secretRef")
            if ref:
                secret = self.store.find(SECRETS, self.namespace, ref["name"])
                if secret is None:
                    raise PodError(
                        "CreateContainerConfigError", f'secret "{ref["name"]}" not found'
                    )
                for key, value in (secret.get("data") or {}).items():
                    env[source.get("prefix", "") + key] = base64.b64decode(value).decode()
        for item in self.container_spec.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = self.store.find(SECRETS, self.namespace, ref["name"])
                data = (secret or {}).get("data") or {}
                if secret is None or ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    what = (
                        f'secret "{ref["name"]}" not found'
                        if secret is None
                        else (
                            f"couldn't find key {ref['key']} in Secret "
                            f"{self.namespace}/{ref['name']}"
                        )
                    )
                    raise PodError("CreateContainerConfigError", what)
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
        return env

    def _volumes(self) -> dict[str, Obj]:
        """Secret volumes as files in a temp dir, bind-mounted read-only."""
        by_name = {v["name"]: v for v in self.spec.get("volumes") or []}
        binds: dict[str, Obj] = {}
        tmpfs: dict[str, str] = {}
        for mount in self.container_spec.get("volumeMounts") or []:
            volume = by_name.get(mount["name"])
            if volume is None:
                raise PodError("CreateContainerConfigError", f'volume "{mount["name"]}" not found')
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                secret = self.store.find(SECRETS, self.namespace, name)
                if secret is None:
                    raise PodError(
                        "ContainerCreating",
                        f'MountVolume.SetUp failed for volume "{mount["name"]}" : '
                        f'secret "{name}" not found',
                    )
                if self.tmpdir is None:
                    self.tmpdir = Path(tempfile.mkdtemp(prefix="k8s-emu-vol-"))
                target = self.tmpdir / mount["name"]
                target.mkdir(exist_ok=True)
                items = volume["secret"].get("items")
                data = secret.get("data") or {}
                chosen = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in data]
                for key, path in chosen:
                    file = target / path
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(base64.b64decode(data.get(key, "")))
                    file.chmod(0o644)
                target.chmod(0o755)
                self.tmpdir.chmod(0o755)
                binds[str(target)] = {"bind": mount["mountPath"], "mode": "ro"}
            elif "emptyDir" in volume:
                tmpfs[mount["mountPath"]] = "rw,size=64m,mode=1777"
        self.tmpfs = tmpfs
        return binds

    def _prepare(self) -> None:
        c = self.container_spec
        image = c.get("image") or ""
        self._pull(image)
        env = self._env()
        binds = self._volumes()
        security = {**(self.spec.get("securityContext") or {}), **(c.get("securityContext") or {})}
        user = security.get("runAsUser")
        if security.get("runAsNonRoot") and user is None:
            config_user = (self.kubelet.client.images.get(image).attrs.get("Config") or {}).get(
                "User"
            ) or ""
            if config_user in ("", "root", "0") or config_user.startswith(("0:", "root:")):
                raise PodError(
                    "CreateContainerConfigError",
                    "container has runAsNonRoot and image will run as root",
                )
        if security.get("runAsNonRoot") and user == 0:
            raise PodError(
                "CreateContainerConfigError", "container's runAsUser breaks non-root policy"
            )
        ports: dict[int, int] = {}
        for port in c.get("ports") or []:
            ports[int(port["containerPort"])] = free_port()
        self.kubelet.ports[(self.namespace, self.pod_name)] = ports
        kwargs: dict[str, Any] = {}
        if c.get("command"):
            kwargs["entrypoint"] = c["command"]
        if c.get("args"):
            kwargs["command"] = c["args"]
        tmpfs = dict(getattr(self, "tmpfs", {}))
        if security.get("readOnlyRootFilesystem"):
            kwargs["read_only"] = True
            tmpfs.setdefault("/tmp", "rw,size=64m,mode=1777")
        if user is not None:
            group = security.get("runAsGroup")
            kwargs["user"] = f"{user}:{group}" if group is not None else str(user)
        if c.get("workingDir"):
            kwargs["working_dir"] = c["workingDir"]
        self.container = self.kubelet.client.containers.create(
            image,
            name=f"k8s-emu-{self.kubelet.instance}-{self.namespace}-{self.pod_name}"[:120],
            environment=env,
            ports={f"{p}/tcp": ("127.0.0.1", h) for p, h in ports.items()},
            volumes=binds,
            tmpfs=tmpfs or None,
            labels={LABEL: self.kubelet.instance, LABEL_POD: f"{self.namespace}/{self.pod_name}"},
            healthcheck={"test": ["NONE"]},
            hostname=self.pod_name[:63],
            **kwargs,
        )
        self.kubelet.containers[(self.namespace, self.pod_name)] = self.container.id

    def _probe(self, probe: Obj) -> bool:
        get = probe.get("httpGet")
        if get:
            port = get.get("port")
            if isinstance(port, str):
                port = next(
                    (
                        p["containerPort"]
                        for p in self.container_spec.get("ports") or []
                        if p.get("name") == port
                    ),
                    0,
                )
            host = self.kubelet.ports.get((self.namespace, self.pod_name), {}).get(int(port or 0))
            if not host:
                return False
            try:
                conn = http.client.HTTPConnection(
                    "127.0.0.1", host, timeout=float(probe.get("timeoutSeconds", 1))
                )
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                conn.request(
                    "GET",
                    get.get("path", "/"),
                    headers={"User-Agent": "kube-probe/1.32", **headers},
                )
                code = conn.getresponse().status
                conn.close()
                return 200 <= code < 400
            except (OSError, http.client.HTTPException):
                return False
        tcp = probe.get("tcpSocket")
        if tcp:
            host = self.kubelet.ports.get((self.namespace, self.pod_name), {}).get(
                int(tcp.get("port", 0))
            )
            try:
                with socket.create_connection(("127.0.0.1", host or 1), timeout=1):
                    return True
            except OSError:
                return False
        return True

    def _watch_container(self) -> None:
        readiness = self.container_spec.get("readinessProbe")
        while not self._gone():
            self.container.reload()
            state = self.container.attrs["State"]
            started = state.get("StartedAt", now())[:19] + "Z"
            ip = (self.container.attrs.get("NetworkSettings") or {}).get("IPAddress", "")
            if state.get("Running"):
                ready = True
                if readiness:
                    delay = float(readiness.get("initialDelaySeconds", 0))
                    ready = (
                        self._probe(readiness)
                        if time.monotonic() - self.run_since >= delay
                        else False
                    )
                self._status({"running": {"startedAt": started}}, "Running", ready, ip)
                period = min(1.0, float((readiness or {}).get("periodSeconds", 1)))
                if self._sleep(period):
                    return
                continue
            code = int(state.get("ExitCode") or 0)
            self.restarts += 1
            self.last_state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "OOMKilled"
                    if state.get("OOMKilled")
                    else ("Completed" if code == 0 else "Error"),
                    "startedAt": started,
                    "finishedAt": state.get("FinishedAt", now())[:19] + "Z",
                    "containerID": f"docker://{self.container.id}",
                }
            }
            backoff = min(MAX_BACKOFF, 0.5 * 2**self.restarts)
            self._status(
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {int(backoff * 10)}s restarting failed "
                        f"container={self.container_spec['name']} "
                        f"pod={self.pod_name}_{self.namespace}({self.uid})",
                    }
                },
                "Running",
            )
            if self._sleep(backoff):
                return
            self.container.start()
            self.run_since = time.monotonic()

    def start(self) -> None:
        self.run_since = time.monotonic()
        super().start()

    def _teardown(self) -> None:
        pod = self._pod()
        if self.container is not None:
            if pod is not None and not self.halt.is_set():
                time.sleep(DRAIN_SECONDS)  # out of the endpoints first; in-flight requests finish
            with contextlib.suppress(docker.errors.APIError):
                self.container.stop(timeout=2)
            with contextlib.suppress(docker.errors.APIError):
                self.container.remove(force=True)
        self.kubelet.containers.pop((self.namespace, self.pod_name), None)
        self.kubelet.ports.pop((self.namespace, self.pod_name), None)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if pod is not None and pod["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(Exception):
                self.store.delete(PODS, self.namespace, self.pod_name)
