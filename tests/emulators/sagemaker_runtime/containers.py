"""Run a model's image the way SageMaker hosting does, in the local Docker Engine.

SageMaker pulls the image named in the model, starts ``docker run IMAGE serve`` with
the container's port 8080 reachable, and sends ``GET /ping`` (2 s timeout) until it
answers 200, for at most the variant's ``ContainerStartupHealthCheckTimeoutInSeconds``
(default 4 minutes). Only then is the variant in service. Everything started here
carries labels, so that cleanup finds it even after a crash.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LABEL = "modelship.test.emulator"
LABEL_RUN = "modelship.test.emulator.run"
LABEL_ENDPOINT = "modelship.sagemaker.endpoint"
LABEL_VARIANT = "modelship.sagemaker.variant"
LABEL_CONFIG = "modelship.sagemaker.endpoint-config"

PING_TIMEOUT_S = 2.0
STARTUP_TIMEOUT_S = 240.0


class DeployError(Exception):
    """A variant that could not be brought into service; the message is the FailureReason."""

    def __init__(self, reason: str, logs: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.logs = logs


class Cancelled(Exception):
    """The endpoint was deleted (or the emulator reset) while its containers started."""


@dataclass
class Instance:
    """One running container: an 'instance' of a production variant."""

    container_id: str
    name: str
    host_port: int
    variant: str


@dataclass
class ImageRef:
    """An image the runner pulled; ``created`` when the reference was new to the Engine."""

    ref: str
    image_id: str
    resolved: str
    created: bool


@dataclass
class Runner:
    """Pulls, starts, health-checks and removes containers for one emulator."""

    docker_factory: Callable[[], Any]
    run_id: str
    ping_timeout_s: float = PING_TIMEOUT_S
    probe_interval_s: float = 0.25
    _client: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    pulled: dict[str, ImageRef] = field(default_factory=dict)
    started: dict[str, Instance] = field(default_factory=dict)

    @property
    def docker(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self.docker_factory()
                except Exception as exc:
                    raise DeployError(f"emulator: Docker Engine not available: {exc}") from exc
            return self._client

    def pull(self, image_uri: str, variant: str) -> ImageRef:
        """Pull the model's image from the registry in its URI (SageMaker always pulls)."""
        from docker.utils import parse_repository_tag

        docker = self.docker
        existed = self._exists(image_uri)
        repo, tag = parse_repository_tag(image_uri)
        failure = ""
        try:
            for line in docker.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    failure = str(line["error"])
        except Exception as exc:
            failure = str(exc)
        if failure:
            raise DeployError(
                f"Failed to pull the image '{image_uri}' for the primary container of "
                f"production variant {variant}: {failure}. Verify that the image exists and "
                "that the execution role can read it."
            )
        image = docker.images.get(image_uri if tag or "@" in image_uri else f"{repo}:latest")
        digests = image.attrs.get("RepoDigests") or []
        resolved = next((d for d in digests if d.split("@")[0] == repo), image_uri)
        ref = ImageRef(image_uri, image.id, resolved, created=not existed)
        with self._lock:
            known = self.pulled.get(image_uri)
            self.pulled[image_uri] = ImageRef(
                image_uri, image.id, resolved, created=(known.created if known else ref.created)
            )
        return ref

    def _exists(self, ref: str) -> bool:
        import docker.errors

        try:
            self.docker.images.get(ref)
            return True
        except docker.errors.ImageNotFound:
            return False

    def start(
        self,
        image_uri: str,
        *,
        endpoint: str,
        variant: str,
        config: str,
        index: int,
        environment: dict[str, str],
        memory_mb: int | None = None,
    ) -> Instance:
        """``docker run IMAGE serve`` with port 8080 published on 127.0.0.1 (random port)."""
        name = (
            f"sm-{self.run_id[:8]}-{endpoint[:40]}-{variant[:20]}-{index}-{time.time_ns() % 10**6}"
        )
        kwargs: dict[str, Any] = {}
        if memory_mb:
            kwargs["mem_limit"] = f"{memory_mb}m"
        container = self.docker.containers.run(
            image_uri,
            command=["serve"],
            detach=True,
            name=name,
            environment=dict(environment),
            ports={"8080/tcp": ("127.0.0.1", None)},
            labels={
                LABEL: "sagemaker",
                LABEL_RUN: self.run_id,
                LABEL_ENDPOINT: endpoint,
                LABEL_VARIANT: variant,
                LABEL_CONFIG: config,
            },
            **kwargs,
        )
        with self._lock:
            self.started[container.id] = Instance(container.id, name, 0, variant)
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        instance = Instance(container.id, name, port, variant)
        with self._lock:
            self.started[container.id] = instance
        return instance

    def wait_healthy(self, instance: Instance, timeout_s: float, cancel: threading.Event) -> None:
        """Probe ``GET /ping`` (2 s per probe) until 200; fail when the container exits."""
        import docker.errors

        deadline = time.monotonic() + timeout_s
        container = self.docker.containers.get(instance.container_id)
        while True:
            if cancel.is_set():
                raise Cancelled()
            if ping(instance.host_port, self.ping_timeout_s):
                return
            try:
                container.reload()
                state = container.attrs["State"]
            except docker.errors.NotFound:
                state = {"Status": "removed", "ExitCode": None}
            if state.get("Status") in {"exited", "dead", "removed"}:
                raise DeployError(health_reason(instance.variant), self.logs(instance.container_id))
            if time.monotonic() > deadline:
                raise DeployError(health_reason(instance.variant), self.logs(instance.container_id))
            cancel.wait(self.probe_interval_s)

    def logs(self, container_id: str, tail: int = 40) -> str:
        try:
            raw = self.docker.containers.get(container_id).logs(tail=tail)
        except Exception:
            return ""
        return raw.decode(errors="replace")

    def is_running(self, container_id: str) -> bool:
        try:
            return self.docker.containers.get(container_id).status == "running"
        except Exception:
            return False

    def remove(self, container_id: str) -> None:
        """Remove one container this runner started (SIGKILL: SageMaker gives no grace)."""
        import docker.errors

        with self._lock:
            self.started.pop(container_id, None)
        try:
            self.docker.containers.get(container_id).remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def cleanup(self) -> None:
        """Remove every container with this run's label and every image reference it pulled."""
        import docker.errors

        if self._client is None:
            return
        ids = set(self.started)
        try:
            for c in self._client.containers.list(
                all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}, ignore_removed=True
            ):
                ids.add(c.id)
        except docker.errors.APIError:
            pass
        for cid in ids:
            self.remove(cid)
        with self._lock:
            pulled = list(self.pulled.values())
            self.pulled.clear()
        for ref in pulled:
            if not ref.created:
                continue
            # Gone already, or still used by a container someone else started: keep it.
            with contextlib.suppress(docker.errors.APIError):
                self._client.images.remove(ref.ref)

    def close(self) -> None:
        self.cleanup()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def health_reason(variant: str) -> str:
    """SageMaker's FailureReason when a container never answers /ping."""
    return (
        f"The primary container for production variant {variant} did not pass the ping "
        "health check. Please check CloudWatch logs for this endpoint."
    )


def ping(port: int, timeout_s: float) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
