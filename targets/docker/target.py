"""The ``docker`` target: the serving image as a container on the local Docker Engine.

Over 600 lines: the class and the key handover and removal helpers that only it
uses.

The pipeline builds the image (``app.image.buildcontext`` + ``app.image.image``); this target runs
it detached, published on 127.0.0.1 by default (exposing it on other interfaces is an
explicit choice that check() warns about), with a restart policy and an optional
memory limit, and waits until the container runs *and* answers ``/ping``. A container
that dies on start fails the deploy with its last log lines.

Everything carries ``modelship.managed=true`` and ``modelship.deployment=NAME`` labels,
so status and teardown find containers and images by label even after a crash. We
remove only what is labelled ours, by id, and never prune.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, Resource
from app.errors import TargetError
from app.image.image import DEPLOYMENT_LABEL, MANAGED_LABEL, connect
from app.nextstep import pull_image, rename, run_command, say, see_details, set_setting
from app.progress import NullProgress, Progress
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus
from targets.common import (
    API_KEY_FILE_ENV,
    CAPTURE_DIR_IN_CONTAINER,
    capture_env,
    endpoint_key_value,
    key_problems,
    wait_answering,
)
from targets.docker.kind import KIND
from targets.docker.settings import DockerSettings
from targets.kind import Kind
from targets.net import port_free, previous_holds

if TYPE_CHECKING:
    from app.store.profile import Profile

CONTAINER_PORT = 8080
VERSION_LABEL = "modelship.version-number"
STOP_TIMEOUT = 10
# The API key reaches the server as this read-only file (MODELSHIP_API_KEY_FILE) on a
# tmpfs mount, written through `docker exec` once the container has started (and at every
# start from ModelShip: a tmpfs is empty after a restart); the server waits for it. Never
# an environment variable or argument (docker inspect would show it), never the
# container's writable layer (docker export and docker commit would carry it), never a
# file on this computer's disk.
SECRET_DIR = "/run/modelship"
SECRET_PATH = f"{SECRET_DIR}/api_key"
KEY_WAIT_S = 600  # how long a started server waits for its key before it gives up
# Run by the image's own Python, as the image's user: stdin -> a new 0400 file, renamed
# into place (no moment with a partial key).
_KEY_WRITER = (
    "import os, sys\n"
    "path = sys.argv[1]\n"
    "data = sys.stdin.buffer.read()\n"
    "part = path + '.part'\n"
    "if os.path.lexists(part):\n"
    "    os.unlink(part)\n"
    "with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400), 'wb') as f:\n"
    "    f.write(data)\n"
    "os.replace(part, path)\n"
)


def _is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def _url_host(host: str) -> str:
    """Where to reach a port published on ``host`` from this computer."""
    addr = ipaddress.ip_address(host)
    if addr.is_unspecified:
        return "127.0.0.1" if addr.version == 4 else "[::1]"
    return host if addr.version == 4 else f"[{host}]"


def container_name(deployment: str, version: int) -> str:
    return f"modelship-{deployment}-v{version}"


def _logs_tail(container: Any, lines: int = 20) -> str:
    try:
        raw = container.logs(tail=lines)
        return raw.decode("utf-8", errors="replace").rstrip()
    except Exception:  # the container may be gone already
        return ""


def _labels_ours(attrs: dict[str, Any]) -> bool:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return labels.get(MANAGED_LABEL) == "true"


class DockerTarget(Target):
    kind: ClassVar[Kind] = KIND
    # The new container wants the old one's host port, and a published port cannot move
    # to another container: the old one stops first and starts again if the new one fails.
    replacement: ClassVar = "stop_old_first"

    # ---- preflight ----------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        settings: DockerSettings = profile.target.settings
        problems: list[Problem] = []
        try:
            client = connect(timeout=30)
        except TargetError as exc:
            return [Problem(exc.message, exc.hint or "", kind="environment")]
        try:
            port = settings.port
            if not port_free(port, settings.bind_host) and not (
                self._ours_on_port(client, profile.name, port)
                or (previous is not None and previous_holds(previous, port))
            ):
                problems.append(
                    Problem(
                        f"Port {port} on {settings.bind_host} is already in use.",
                        say(
                            "Choose a free port (",
                            set_setting("port", "Port"),
                            "), or stop what uses it.",
                        ),
                        kind="environment",
                        setting="port",
                    )
                )
            problems += _base_image_problems(client, profile.image.base_image)
            problems += key_problems(settings.api_key)
        finally:
            client.close()
        return problems

    def warnings(self, profile: Profile) -> list[str]:
        """Choices that work but deserve a second look (shown by the CLI and wizard)."""
        settings: DockerSettings = profile.target.settings
        if not _is_loopback(settings.bind_host):
            return [
                f"The endpoint will be reachable from other computers on {settings.bind_host}:"
                f"{settings.port}. Set an API key (api_key) or bind to 127.0.0.1."
            ]
        return []

    def _ours_on_port(self, client: Any, deployment: str, port: int) -> bool:
        """Is the port held by a running container of the deployment being replaced?"""
        for c in _containers_of(client, deployment):
            for bindings in ((c.attrs.get("HostConfig") or {}).get("PortBindings") or {}).values():
                if any(str(b.get("HostPort")) == str(port) for b in bindings or []):
                    return True
        return False

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        settings: DockerSettings = profile.target.settings
        action = "replace" if previous is not None else "create"
        detail = (
            f"http://{_url_host(settings.bind_host)}:{settings.port}, "
            f"restart {settings.restart_policy}"
        )
        if settings.memory_limit:
            detail += f", memory limit {settings.memory_limit}"
        if not _is_loopback(settings.bind_host):
            detail += f", EXPOSED on {settings.bind_host}"
        return [PlanItem(action, "container", f"modelship-{profile.name}", detail)]

    # ---- deploy ---------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        import docker.errors

        settings: DockerSettings = ctx.settings  # type: ignore[assignment]
        image = ctx.image
        if image is None:
            raise TargetError(
                "There is no image to run.", "Deploy again; the build step makes the image."
            )
        image_ref = image.id or image.tag
        name = container_name(ctx.name, ctx.version)
        host, port = settings.bind_host, settings.port
        url = f"http://{_url_host(host)}:{port}"
        ctx.cancel.raise_if_cancelled()
        for warning in self.warnings(ctx.profile):
            ctx.progress.update(None, f"Warning: {warning}")
        client = connect()
        try:
            _remove_stale(client, name, ctx.progress)
            resource = Resource(
                kind="container",
                id=name,
                name=f"container {name} on {host}:{port}",
                data={
                    "name": name,
                    "container_id": None,
                    "image": image_ref,
                    "image_tag": image.tag,
                    "host": host,
                    "port": port,
                },
            )
            ctx.journal.record(resource)
            ctx.progress.update(None, f"Starting container {name} on {host}:{port}")
            restart: dict[str, Any] = {"Name": settings.restart_policy}
            if settings.restart_policy == "on-failure":
                restart["MaximumRetryCount"] = 3
            command = ["serve"]
            if settings.workers:
                command += ["--workers", str(settings.workers)]
            kwargs: dict[str, Any] = {}
            if settings.memory_limit:
                kwargs["mem_limit"] = settings.memory_limit
            secret = endpoint_key_value(settings)
            # captured requests stay in the container's writable layer: removing the
            # container (teardown, a redeploy) removes them
            environment = capture_env(settings, CAPTURE_DIR_IN_CONTAINER)
            if environment and secret is None and _is_loopback(host):
                # published on this computer only, as a local server: GET /capture
                # answers without a key as it does there
                environment["MODELSHIP_CAPTURE_GUARDED"] = "1"
            if secret is not None:
                environment[API_KEY_FILE_ENV] = SECRET_PATH
                environment["MODELSHIP_API_KEY_WAIT_S"] = str(KEY_WAIT_S)
                kwargs["tmpfs"] = {SECRET_DIR: _tmpfs_options(client, image_ref)}
            if environment:
                kwargs["environment"] = environment
            try:
                container = client.containers.create(
                    image_ref,
                    command=command,
                    name=name,
                    labels={
                        MANAGED_LABEL: "true",
                        DEPLOYMENT_LABEL: ctx.name,
                        VERSION_LABEL: str(ctx.version),
                    },
                    ports={f"{CONTAINER_PORT}/tcp": (host, port)},
                    restart_policy=restart,
                    **kwargs,
                )
                resource.data["container_id"] = container.id
                ctx.journal.update(resource)
                container.start()
                if secret is not None:
                    _hand_over_key(client, container, secret)
            except docker.errors.ImageNotFound as exc:
                raise TargetError(
                    f"The image {image_ref} is gone.", "Deploy again to rebuild it."
                ) from exc
            except docker.errors.APIError as exc:
                # a container may exist even though starting it failed (e.g. port taken)
                _remove_by_name(client, name)
                text = str(exc.explanation or exc)
                hint = (
                    say("Choose a free port (", set_setting("port", "Port"), ").")
                    if "port is already allocated" in text or "address already in use" in text
                    else say("See ", see_details(), ".")
                )
                raise TargetError(
                    f"Docker could not start the container: {text}", hint, details=text
                ) from exc
            self._wait_until_answering(client, container.id, url, settings.start_timeout, ctx)
        finally:
            client.close()
        return Endpoint(
            url=url,
            target=self.name,
            resources=[resource],
            auth="bearer" if settings.api_key else "none",
        )

    def _wait_until_answering(
        self, client: Any, container_id: str, url: str, timeout: float, ctx: DeployContext
    ) -> None:
        """Wait for the container to run and answer /ping; fail early if it dies."""
        import docker.errors

        last: dict[str, Any] = {}

        def state() -> str | None:
            try:
                container = client.containers.get(container_id)
            except docker.errors.NotFound:
                return "gone"
            last["container"] = container
            now = container.attrs.get("State") or {}
            status = str(now.get("Status"))
            restarts = int(container.attrs.get("RestartCount") or 0)
            if status in {"exited", "dead", "restarting"} or restarts > 0:
                return f"stopped:{now.get('ExitCode')}"
            return None if status == "running" else status

        def failed(state: str) -> str | None:
            if state == "gone":
                return "the container disappeared while starting"
            if state.startswith("stopped:"):
                tail = _logs_tail(last["container"])
                last_line = tail.splitlines()[-1] if tail else "no output"
                return (
                    f"the container stopped while starting (exit code "
                    f"{state.split(':', 1)[1]}): {last_line}"
                )
            return None

        wait_answering(
            url,
            state,
            failed,
            timeout=timeout,
            cancel=ctx.cancel,
            progress=ctx.progress,
            what=f"the container on {url}",
            noun="Container",
            running="running",
            fail_hint=say(
                "Read its log in ",
                see_details(),
                "; ",
                run_command("serve", "MODEL"),
                " reproduces it outside Docker.",
            ),
            details=lambda: _logs_tail(last["container"]) if "container" in last else None,
        )

    # ---- later ----------------------------------------------------------------------
    def status(self, record: DeploymentRecord) -> TargetStatus:
        import docker.errors

        containers = [r for r in record.resources() if r.kind == "container"]
        if not containers:
            return TargetStatus(False, "no container recorded")
        try:
            client = connect(timeout=30)
        except TargetError as exc:
            return TargetStatus(False, exc.message)
        try:
            r = containers[0]
            try:
                c = client.containers.get(r.data.get("container_id") or r.id)
            except docker.errors.NotFound:
                return TargetStatus(False, f"container {r.id} is gone")
            state = c.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            detail = f"container {c.name} {state.get('Status')}"
            if health:
                detail += f" (health check: {health})"
            since = state.get("StartedAt", "")[:19].replace("T", " ")
            if since and state.get("Status") == "running":
                detail += f" since {since} UTC"
            return TargetStatus(
                state.get("Status") == "running",
                detail,
                {
                    "container": c.name,
                    "container_id": c.id,
                    "status": state.get("Status"),
                    "health": health,
                    "restarts": c.attrs.get("RestartCount"),
                    "image": (c.attrs.get("Config") or {}).get("Image"),
                    "log_tail": _logs_tail(c, 10),
                },
            )
        finally:
            client.close()

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        """The running container's last log lines."""
        import docker.errors

        client = connect(timeout=30)
        try:
            for r in record.resources():
                if r.kind == "container":
                    with contextlib.suppress(docker.errors.NotFound):
                        return _logs_tail(
                            client.containers.get(r.data.get("container_id") or r.id), lines
                        )
            return ""
        finally:
            client.close()

    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        progress = progress or NullProgress()
        if resource.kind != "container":
            return False
        client = connect()
        try:
            return _remove_container(client, resource, progress)
        finally:
            client.close()

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Every container of the deployment: recorded, and found by label (a crashed
        run's). Images are the pipeline's: it built them."""
        client = connect()
        removed: list[str] = []
        try:
            for r in record.all_resources(self.name):
                if r.kind == "container" and _remove_container(client, r, progress):
                    removed.append(r.describe())
            for c in _containers_of(client, record.name):
                progress.update(None, f"Removing container {c.name}")
                with contextlib.suppress(Exception):
                    c.remove(force=True)
                    removed.append(f"container {c.name}")
        finally:
            client.close()
        return removed

    # ---- replacing in place ---------------------------------------------------------
    def suspend(self, record: DeploymentRecord, progress: Progress) -> None:
        """Stop the old container (kept, with its image) so the new one gets the port."""
        import docker.errors

        client = connect()
        try:
            for r in record.resources():
                if r.kind != "container":
                    continue
                with contextlib.suppress(docker.errors.NotFound):
                    c = client.containers.get(r.data.get("container_id") or r.id)
                    if _labels_ours(c.attrs) and c.status in {"running", "restarting"}:
                        progress.update(None, f"Stopping container {c.name}")
                        c.stop(timeout=STOP_TIMEOUT)
        finally:
            client.close()

    def resume(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Start the old container again (the replacement failed)."""

        def gone(r: Any) -> None:
            progress.log(f"The previous container {r.id} is gone; cannot restart it")

        self._start_recorded(record, progress, gone, "Restarted the previous container")
        return None  # same container ids: the recorded endpoint still holds

    # ---- stop and start -------------------------------------------------------------
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """``docker stop`` the live container; it and its image stay for ``start``."""
        self.suspend(record, progress)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """``docker start`` the stopped container (same id: the endpoint holds)."""

        def gone(r: Any) -> None:
            raise TargetError(f"The container of {record.name!r} is gone.", "Deploy it again.")

        for c in self._start_recorded(record, progress, gone, "Started container"):
            if c.status not in {"running", "restarting"}:
                raise TargetError(
                    f"The container of {record.name!r} did not start ({c.status}).",
                    "Read its log, or deploy it again.",
                    details=_logs_tail(c, 15) or None,
                )
        return None

    def _start_recorded(
        self,
        record: DeploymentRecord,
        progress: Progress,
        gone: Callable[[Any], None],
        started: str,
    ) -> list[Any]:
        """Start each recorded container that is not running and hand it its key again;
        ``gone(resource)`` decides what a missing container means. The containers."""
        import docker.errors

        client = connect()
        out = []
        try:
            for r in record.resources():
                if r.kind != "container":
                    continue
                try:
                    c = client.containers.get(r.data.get("container_id") or r.id)
                except docker.errors.NotFound:
                    gone(r)
                    continue
                if c.status != "running":
                    c.start()
                    progress.update(None, f"{started} {c.name}")
                    c.reload()
                _hand_over_key_again(client, c, record)
                out.append(c)
            return out
        finally:
            client.close()


# ---- helpers ----------------------------------------------------------------------------


def _image_user(attrs: dict[str, Any]) -> tuple[str, str]:
    """(uid, gid) of a container's or image's ``User`` ("" when not numeric)."""
    user = str((attrs.get("Config") or {}).get("User") or "0:0")
    uid, _, gid = user.partition(":")
    gid = gid or uid
    return (uid if uid.isdigit() else ""), (gid if gid.isdigit() else "")


def _tmpfs_options(client: Any, image_ref: str) -> str:
    """A small tmpfs only the image's user can enter (ModelShip's images run as a
    numeric user)."""
    uid, gid = _image_user(client.images.get(image_ref).attrs)
    owner = f",uid={uid},gid={gid}" if uid and gid else ""
    return f"rw,noexec,nosuid,nodev,size=64k,mode={'0700' if owner else '1777'}{owner}"


def _hand_over_key(client: Any, container: Any, value: str) -> None:
    """Write the key into the started container's tmpfs: ``docker exec`` of the image's
    Python, the key on its stdin (not in its arguments or environment, which docker
    inspect shows). Nothing when the container already stopped: the caller's wait says
    why it did."""
    import socket

    import docker.errors

    container.reload()
    if container.status != "running":
        return
    user = ":".join(x for x in _image_user(container.attrs) if x)
    try:
        exec_id = client.api.exec_create(
            container.id,
            ["python", "-c", _KEY_WRITER, SECRET_PATH],
            stdin=True,
            stdout=True,
            stderr=True,
            user=user,
        )["Id"]
        stream = client.api.exec_start(exec_id, socket=True)
    except docker.errors.APIError as exc:
        if "is not running" in str(exc.explanation or exc):
            return
        raise TargetError(
            "Could not hand the API key to the container.",
            "Deploy again.",
            details=str(exc.explanation or exc),
        ) from None
    raw = getattr(stream, "_sock", stream)
    try:
        raw.settimeout(30)
        raw.sendall(value.encode("utf-8") + b"\n")
        raw.shutdown(socket.SHUT_WR)  # end of stdin
        while raw.recv(65536):  # until the writer exits
            pass
    except OSError as exc:
        raise TargetError(
            "Could not hand the API key to the container.", "Deploy again.", details=str(exc)
        ) from None
    finally:
        stream.close()
        with contextlib.suppress(OSError):
            raw.close()
    deadline = time.monotonic() + 30
    while (info := client.api.exec_inspect(exec_id))["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    if info["ExitCode"] != 0:
        raise TargetError(
            "Could not hand the API key to the container "
            f"(the writer exited with {info['ExitCode']}).",
            "Deploy again.",
        )


def _hand_over_key_again(client: Any, container: Any, record: DeploymentRecord) -> None:
    """After a start or restart: the tmpfs is empty again, so hand the key over anew
    (from the keyring entry the deployment's profile names)."""
    env = (container.attrs.get("Config") or {}).get("Env") or []
    if f"{API_KEY_FILE_ENV}={SECRET_PATH}" not in env:
        return
    name = (((record.profile or {}).get("target") or {}).get("settings") or {}).get("api_key")
    if not name:
        raise TargetError(
            f"The container of {record.name!r} needs its API key, and its profile names none.",
            "Deploy it again.",
        )
    from app.store.secrets import get_secret

    _hand_over_key(client, container, get_secret(name))


def _base_image_problems(client: Any, base: str) -> list[Problem]:
    """The base image must be here, or its registry must have it (the build pulls it)."""
    import docker.errors

    try:
        client.api.inspect_image(base)
        return []
    except docker.errors.ImageNotFound:
        pass
    try:
        client.api.inspect_distribution(base)
        return []
    except docker.errors.APIError as exc:
        return [
            Problem(
                f"The base image {base} is not on this computer and its registry does not "
                f"offer it ({exc.explanation or exc}).",
                say(
                    "Pull or build it first",
                    pull_image(base),
                    ", or choose another base image (",
                    set_setting("base_image", "Base image"),
                    ").",
                ),
            )
        ]


def _containers_of(client: Any, deployment: str) -> list[Any]:
    return list(
        client.containers.list(
            ignore_removed=True,
            all=True,
            filters={"label": [f"{MANAGED_LABEL}=true", f"{DEPLOYMENT_LABEL}={deployment}"]},
        )
    )


def _remove_by_name(client: Any, name: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        c = client.containers.get(name)
        if _labels_ours(c.attrs):
            c.remove(force=True)


def _remove_stale(client: Any, name: str, progress: Progress) -> None:
    """A container of ours with this exact name is left over from a crashed run."""
    import docker.errors

    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return
    if not _labels_ours(c.attrs):
        raise TargetError(
            f"A container named {name} exists and was not made by ModelShip.",
            say("Rename or remove that container, or deploy under another ", rename(), "."),
        )
    progress.log(f"Removing leftover container {name} from an earlier run")
    c.remove(force=True)


def _remove_container(client: Any, resource: Resource, progress: Progress) -> bool:
    """Stop and remove one journaled container (only if labelled ours). Idempotent."""
    import docker.errors

    ref = resource.data.get("container_id") or resource.data.get("name") or resource.id
    try:
        c = client.containers.get(ref)
    except docker.errors.NotFound:
        return False
    if not _labels_ours(c.attrs):
        progress.log(f"Leaving container {c.name}: it is not labelled as ModelShip's")
        return False
    progress.update(None, f"Removing container {c.name}")
    with contextlib.suppress(docker.errors.APIError):
        if c.status in {"running", "restarting"}:
            c.stop(timeout=STOP_TIMEOUT)
    try:
        c.remove(force=True)
    except docker.errors.NotFound:
        return False
    return True


__all__ = ["DockerTarget", "container_name"]
