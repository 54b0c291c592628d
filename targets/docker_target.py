"""The ``docker`` target: the serving image as a container on the local Docker Engine.

The pipeline builds the image (``app.buildcontext`` + ``app.image``); this target runs
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
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from app.errors import TargetError
from app.image import DEPLOYMENT_LABEL, MANAGED_LABEL, connect, remove_image
from app.progress import NullProgress, Progress
from targets.base import (
    DeployContext,
    Endpoint,
    PlanItem,
    Problem,
    Resource,
    SecretRef,
    Target,
    TargetSettings,
    TargetStatus,
)

if TYPE_CHECKING:
    from app.profile import Profile
    from app.records import DeploymentRecord

CONTAINER_PORT = 8080
VERSION_LABEL = "modelship.version-number"
STOP_TIMEOUT = 10


class DockerSettings(TargetSettings):
    port: int = Field(
        8080, ge=1, le=65535, title="Port", description="Port on this computer to answer on."
    )
    bind_host: str = Field(
        "127.0.0.1",
        title="Listen address",
        description="Address the port is published on. 127.0.0.1 keeps it to this computer; "
        "0.0.0.0 exposes it to the network (choose that only on purpose).",
    )
    restart_policy: Literal["no", "on-failure", "unless-stopped", "always"] = Field(
        "unless-stopped",
        title="Restart policy",
        description="Whether Docker restarts the container after a crash or a reboot.",
    )
    memory_limit: str | None = Field(
        None,
        pattern=r"^[0-9]+[bkmgBKMG]?$",
        title="Memory limit",
        description="Most memory the container may use, e.g. 512m or 2g (empty: no limit).",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        title="Worker processes",
        description="Server processes in the container (empty: one per CPU it may use).",
    )
    api_key: SecretRef | None = Field(
        None,
        title="API key",
        description="Keyring entry holding an API key clients must send (empty: no key).",
    )
    start_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        title="Start timeout",
        description="Seconds to wait for the container to load the model and answer.",
    )

    @field_validator("bind_host")
    @classmethod
    def _an_address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return v


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


def _ping(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


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
    name: ClassVar[str] = "docker"
    title: ClassVar[str] = "Docker on this computer"
    summary: ClassVar[str] = (
        "Build a serving image and run it as a container on this computer's Docker "
        "Engine; the same image can go to any server or cloud that runs containers."
    )
    Settings: ClassVar[type[TargetSettings]] = DockerSettings
    needs_image: ClassVar[bool] = True
    side_by_side: ClassVar[bool] = False  # the new container wants the old one's port

    # ---- preflight ----------------------------------------------------------------
    def check(self, profile: Profile) -> list[Problem]:
        from targets.local import port_free

        settings: DockerSettings = profile.target.settings
        problems: list[Problem] = []
        try:
            client = connect(timeout=30)
        except TargetError as exc:
            return [Problem(exc.message, exc.hint or "")]
        try:
            port = settings.port
            if not port_free(port, settings.bind_host) and not self._ours_on_port(
                client, profile.name, port
            ):
                problems.append(
                    Problem(
                        f"Port {port} on {settings.bind_host} is already in use.",
                        "Choose a free port (the Port setting; --port on the command line), "
                        "or stop what uses it.",
                    )
                )
            problems += _base_image_problems(client, profile.image.base_image)
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

    def plan(self, profile: Profile) -> list[PlanItem]:
        from app.records import find_record

        settings: DockerSettings = profile.target.settings
        action = "replace" if find_record(profile.name) else "create"
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
        image_ref = str(getattr(image, "id", None) or image.tag)
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
                    "image_tag": getattr(image, "tag", None),
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
            try:
                container = client.containers.run(
                    image_ref,
                    command=command,
                    name=name,
                    detach=True,
                    labels={
                        MANAGED_LABEL: "true",
                        DEPLOYMENT_LABEL: ctx.name,
                        VERSION_LABEL: str(ctx.version),
                    },
                    ports={f"{CONTAINER_PORT}/tcp": (host, port)},
                    restart_policy=restart,
                    environment=_secret_env(settings),
                    **kwargs,
                )
            except docker.errors.ImageNotFound as exc:
                raise TargetError(
                    f"The image {image_ref} is gone.", "Deploy again to rebuild it."
                ) from exc
            except docker.errors.APIError as exc:
                # a container may exist even though starting it failed (e.g. port taken)
                _remove_by_name(client, name)
                text = str(exc.explanation or exc)
                hint = (
                    "Choose a free port (the Port setting; --port on the command line)."
                    if "port is already allocated" in text or "address already in use" in text
                    else "See the details with --debug."
                )
                raise TargetError(
                    f"Docker could not start the container: {text}", hint, details=text
                ) from exc
            resource.data["container_id"] = container.id
            ctx.journal.update(resource)
            self._wait_until_answering(client, container.id, url, settings.start_timeout, ctx)
        finally:
            client.close()
        return Endpoint(url=url, target=self.name, resources=[resource])

    def _wait_until_answering(
        self, client: Any, container_id: str, url: str, timeout: float, ctx: DeployContext
    ) -> None:
        """Wait for the container to run and answer /ping; fail early if it dies."""
        import docker.errors

        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            ctx.cancel.raise_if_cancelled()
            try:
                container = client.containers.get(container_id)
            except docker.errors.NotFound:
                raise TargetError(
                    "The container disappeared while starting.",
                    "Check that nothing else removes containers (docker events).",
                ) from None
            state = container.attrs.get("State") or {}
            status = state.get("Status")
            restarts = int(container.attrs.get("RestartCount") or 0)
            if status in {"exited", "dead"} or restarts > 0 or status == "restarting":
                tail = _logs_tail(container)
                last = tail.splitlines()[-1] if tail else "no output"
                code = state.get("ExitCode")
                raise TargetError(
                    f"The container stopped while starting (exit code {code}): {last}",
                    "Read its log in the details (--debug); `modelship serve MODEL` "
                    "reproduces it outside Docker.",
                    details=tail,
                )
            if status == "running" and _ping(url, timeout=1.0):
                return
            if time.monotonic() > deadline:
                raise TargetError(
                    f"The container did not answer on {url}/ping within {timeout:.0f} s.",
                    "Raise [target.settings] start_timeout for a large model.",
                    details=_logs_tail(container),
                )
            ctx.cancel.wait(delay)
            delay = min(delay * 1.5, 0.2)

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

    def destroy(self, resource: Resource, progress: Progress | None = None) -> None:
        progress = progress or NullProgress()
        if resource.kind not in {"container", "image"}:
            return
        client = connect()
        try:
            if resource.kind == "container":
                _remove_container(client, resource, progress)
            else:
                _remove_image_if_unused(client, resource, progress)
        finally:
            client.close()

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Every container and image of the deployment: recorded, and found by label."""
        client = connect()
        removed: list[str] = []
        try:
            resources = [r for r in record.all_resources() if r.kind in {"container", "image"}]
            for r in resources:
                if r.kind == "container" and _remove_container(client, r, progress):
                    removed.append(r.describe())
            for c in _containers_of(client, record.name):
                progress.update(None, f"Removing container {c.name}")
                with contextlib.suppress(Exception):
                    c.remove(force=True)
                    removed.append(f"container {c.name}")
            image_refs = [str(r.data.get("id") or r.id) for r in resources if r.kind == "image"]
            for v in record.version_objects():
                if v.image and v.image.get("id"):
                    image_refs.append(str(v.image["id"]))
            from app.image import images_of

            image_refs += images_of(client, record.name)
            seen: set[str] = set()
            for ref in image_refs:
                ident = _image_id(client, ref)
                if ident is None or ident in seen:
                    continue
                seen.add(ident)
                progress.update(None, f"Removing image {ref}")
                try:
                    if remove_image(client, ident):
                        removed.append(f"image {ref}")
                except TargetError as exc:  # e.g. a container not ours still uses it
                    progress.update(None, f"Kept image {ref}: {exc.message}")
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
        import docker.errors

        client = connect()
        try:
            for r in record.resources():
                if r.kind != "container":
                    continue
                try:
                    c = client.containers.get(r.data.get("container_id") or r.id)
                except docker.errors.NotFound:
                    progress.log(f"The previous container {r.id} is gone; cannot restart it")
                    continue
                if c.status != "running":
                    c.start()
                    progress.update(None, f"Restarted the previous container {c.name}")
            return None  # same container ids: the recorded endpoint still holds
        finally:
            client.close()


# ---- helpers ----------------------------------------------------------------------------


def _secret_env(settings: DockerSettings) -> dict[str, str]:
    """The API key from the keyring, as the container's environment (never logged)."""
    if not settings.api_key:
        return {}
    from app.secrets import get_secret

    return {"MODELSHIP_API_KEY": get_secret(settings.api_key)}


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
                f"Pull or build it first (docker pull {base}), or choose another base image "
                "(the Base image setting; --base-image on the command line).",
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


def _image_id(client: Any, ref: str) -> str | None:
    import docker.errors

    try:
        return str(client.api.inspect_image(ref)["Id"])
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return None
        raise


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
            "Rename or remove that container, or deploy under another --name.",
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


def _remove_image_if_unused(client: Any, resource: Resource, progress: Progress) -> None:
    """Remove a journaled image unless something still needs it.

    Rebuilding an unchanged model gives the same tag and image as the deployment being
    replaced; rolling back the new run must not delete the old one's image. So an
    image still used by any container (even a stopped one kept for ``resume``) or by
    more than one recorded version is left in place.
    """
    ident = _image_id(client, str(resource.data.get("id") or resource.id))
    if ident is None:
        return
    users = client.containers.list(ignore_removed=True, all=True, filters={"ancestor": ident})
    if users:
        progress.log(f"Keeping image {resource.id}: used by container {users[0].name}")
        return
    if _recorded_uses(ident, str(resource.data.get("tag") or resource.id)) > 1:
        progress.log(f"Keeping image {resource.id}: another deployed version uses it")
        return
    progress.update(None, f"Removing image {resource.id}")
    remove_image(client, ident)


def _recorded_uses(image_id: str, tag: str) -> int:
    from app.records import list_records

    count = 0
    for record in list_records():
        for v in record.version_objects():
            img = v.image or {}
            if img.get("id") == image_id or (tag and img.get("tag") == tag):
                count += 1
    return count


__all__ = ["DockerSettings", "DockerTarget", "container_name"]
