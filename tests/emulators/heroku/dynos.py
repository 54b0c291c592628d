"""The dyno manager: runs released images in the local Docker Engine as Heroku does.

Blocking docker SDK calls; the emulator calls them from worker threads. Containers get
a random ``$PORT``, the app's config vars, the image's own CMD/ENTRYPOINT, no health
check, and labels naming the emulator instance and app, so cleanup finds them by label
and removes them by id.
"""

from __future__ import annotations

import contextlib
import random
import socket
from typing import Any

import docker
import docker.errors

LABEL = "modelship.heroku-emulator"
LABEL_APP = "modelship.heroku-emulator.app"


class DynoManager:
    def __init__(self, instance: str, registry: str, auth: dict[str, str]) -> None:
        self.instance = instance
        self.registry = registry  # host:port the Engine pulls from
        self.auth = auth
        self.client = docker.from_env()

    def close(self) -> None:
        self.client.close()

    def pull(self, repository: str, manifest_digest: str) -> str:
        """Pull REGISTRY/REPOSITORY@DIGEST; returns the reference it now has in the Engine."""
        reference = f"{self.registry}/{repository}@{manifest_digest}"
        self.client.images.pull(reference, auth_config=self.auth)
        return reference

    def command_of(self, reference: str) -> str:
        config = self.client.images.get(reference).attrs.get("Config") or {}
        parts = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        return " ".join(parts)

    def run(
        self, app: str, reference: str, env: dict[str, str], name: str, dyno: str = "web.1"
    ) -> tuple[str, int, int]:
        """Start a web dyno ($DYNO: DYNO); returns (container id, $PORT, host port on
        127.0.0.1)."""
        port = random.randint(10000, 59999)
        host_port = free_port()
        container = self.client.containers.run(
            reference,
            detach=True,
            name=name,
            environment={**env, "PORT": str(port), "DYNO": dyno},
            ports={f"{port}/tcp": ("127.0.0.1", host_port)},
            labels={LABEL: self.instance, LABEL_APP: app},
            healthcheck={"test": ["NONE"]},
        )
        return container.id, port, host_port

    def state(self, container_id: str) -> tuple[bool, int, int]:
        """(running, exit code, pid) of a container; a vanished one counts as exited 137."""
        try:
            container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return False, 137, 0
        state = container.attrs["State"]
        return bool(state.get("Running")), int(state.get("ExitCode") or 0), int(state["Pid"])

    def listening(self, pid: int, port: int, host_port: int) -> bool:
        """Whether the process bound $PORT: read the container's own socket table.

        A TCP connect to the published port is no proof: docker-proxy accepts it even when
        nothing listens inside. /proc/PID/net/tcp{,6} is the container's network namespace.
        """
        hex_port = f"{port:04X}"
        seen_table = False
        for table in ("tcp", "tcp6"):
            try:
                lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]  # noqa: SIM115
            except OSError:
                continue
            seen_table = True
            for line in lines:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A" and fields[1].endswith(":" + hex_port):
                    return True
        if seen_table:
            return False
        return probe_through_proxy(host_port)

    def stop(self, container_id: str, timeout: int = 3) -> tuple[int, list[tuple[str, str]]]:
        """Stop and remove a container; returns its exit code and its log lines."""
        try:
            container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return 137, []
        with contextlib.suppress(docker.errors.APIError):
            container.stop(timeout=timeout)
        lines = self.logs(container_id)
        code = 137
        with contextlib.suppress(docker.errors.APIError):
            container.reload()
            code = int(container.attrs["State"].get("ExitCode") or 0)
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True)
        return code, lines

    def logs(self, container_id: str) -> list[tuple[str, str]]:
        """(timestamp, text) of the container's stdout/stderr lines."""
        try:
            raw = self.client.containers.get(container_id).logs(timestamps=True)
        except docker.errors.NotFound:
            return []
        out = []
        for line in raw.decode(errors="replace").splitlines():
            stamp, _, text = line.partition(" ")
            out.append((docker_to_logplex(stamp), text))
        return out

    def remove_image(self, reference: str) -> None:
        """Untag the reference the emulator pulled (deletes the image if nothing else uses it)."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self.client.images.remove(reference)

    def containers(self, app: str | None = None) -> list[Any]:
        labels = [f"{LABEL}={self.instance}"]
        if app:
            labels.append(f"{LABEL_APP}={app}")
        return self.client.containers.list(all=True, filters={"label": labels})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_through_proxy(host_port: int) -> bool:
    """Fallback: docker-proxy closes at once when the backend refuses; a server stays quiet."""
    try:
        with socket.create_connection(("127.0.0.1", host_port), timeout=1) as sock:
            sock.settimeout(0.3)
            try:
                return sock.recv(1) != b""
            except TimeoutError:
                return True
    except OSError:
        return False


def docker_to_logplex(stamp: str) -> str:
    """2024-01-01T12:00:00.123456789Z -> 2024-01-01T12:00:00.123456+00:00."""
    if not stamp.endswith("Z"):
        return stamp
    base, _, frac = stamp[:-1].partition(".")
    return f"{base}.{(frac + '000000')[:6]}+00:00"
