"""Build, inspect, push and remove serving images with the Docker Engine.

Uses the docker SDK's low-level API so that build output streams line by line into
the progress reporter and a cancel takes effect between lines. Images are built by
the Engine's classic builder: it writes Docker image manifests v2 (schema 2) with no
provenance attestations, which registries such as Heroku's require (BuildKit via
buildx would add an OCI index with attestations; we never use it).

Every image carries ``modelship.managed=true`` and ``modelship.deployment=NAME``
labels, so teardown can find what we made even after a crash; nothing here ever
prunes, because other work on the machine may own dangling images.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.domain import BuiltImage
from app.errors import BuildError, Cancelled, TargetError
from app.nextstep import pull_image, say, see_details, start_docker
from app.progress import CancelToken, NullProgress, Progress

if TYPE_CHECKING:
    from app.image.buildcontext import BuildContext

MANAGED_LABEL = "modelship.managed"
DEPLOYMENT_LABEL = "modelship.deployment"
MODEL_LABEL = "modelship.model.sha256"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"

_STEP = re.compile(r"^Step (\d+)/(\d+)")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})")

ENGINE_HINT = say(start_docker())


# The built image type lives in app.domain (every layer speaks it); the old name stays.
Image = BuiltImage


def connect(timeout: int = 300) -> Any:
    """A docker client for the local Engine, or a TargetError saying how to start it."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - docker is a dependency
        raise TargetError("The docker Python package is missing.", "Reinstall ModelShip.") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "permission denied" in text:
            raise TargetError(
                "You are not allowed to use the Docker Engine.",
                say(start_docker("access")),
                details=text,
            ) from exc
        raise TargetError("The Docker Engine is not reachable.", ENGINE_HINT, details=text) from exc


def engine_platform(docker_client: Any) -> str:
    """The Engine's own platform, e.g. ``linux/amd64``."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}
    try:
        info = docker_client.version()
    except Exception:
        return "linux/amd64"
    machine = str(info.get("Arch") or "amd64")
    return f"{info.get('Os') or 'linux'}/{arch.get(machine, machine)}"


def _close_stream(stream: Iterator[Any]) -> None:
    """Stop a streaming API call and drop its connection, so the Engine stops too.

    The SDK's stream generator does not close its HTTP response when closed; the
    Engine only abandons a build when the connection goes away. The response is a
    local of the generator's frame (docker SDK 7.x ``_stream_helper``).
    """
    frame = getattr(stream, "gi_frame", None)
    response = frame.f_locals.get("response") if frame is not None else None
    close = getattr(stream, "close", None)
    if close is not None:
        close()
    if response is not None:
        # Already closed or broken: nothing more to stop.
        with contextlib.suppress(Exception):
            response.close()


def _image_id(api: Any, ref: str) -> str | None:
    import docker.errors

    try:
        return str(api.inspect_image(ref)["Id"])
    except docker.errors.ImageNotFound:
        return None


def image_size(client: Any, ref: str) -> int | None:
    import docker.errors

    try:
        return int(client.api.inspect_image(ref)["Size"])
    except docker.errors.ImageNotFound:
        return None


def _build_hint(error: str) -> str:
    low = error.lower()
    if any(s in low for s in ("pull access denied", "manifest unknown", "not found", "no such")):
        return (
            "Check the base image name. It must exist locally (docker images) or be "
            "pullable from its registry; pull or build it first."
        )
    if any(s in low for s in ("dial tcp", "lookup", "timeout", "tls", "connection refused")):
        return say(
            "Docker could not reach the registry holding the base image. Pull the base image first",
            pull_image(),
            ", or use one that is already on this computer.",
        )
    if "no space left" in low:
        return "Free disk space for Docker (docker system df shows what uses it)."
    return say("Read the build log above, and ", see_details(), " for the full output.")


def build_image(
    context: BuildContext,
    docker_client: Any,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    *,
    nocache: bool = False,
) -> BuiltImage:
    """Build ``context`` into an image tagged ``context.tag``.

    Streams every build line to ``progress.log``; a cancel between lines stops the
    build and removes the image if it got tagged. Fails with BuildError carrying the
    log's tail.
    """
    import docker.errors

    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    # MODELSHIP_BUILD_NOCACHE=1 forces a clean build (benchmarks, a suspected bad cache).
    nocache = nocache or os.environ.get("MODELSHIP_BUILD_NOCACHE", "") in {"1", "true", "yes"}
    api = docker_client.api
    before = _image_id(api, context.tag)
    tail: deque[str] = deque(maxlen=40)
    built_id: str | None = None
    error: str | None = None
    cached = total = 0
    progress.update(0.0, f"Building {context.tag}")
    platform = getattr(context, "platform", "linux/amd64")
    extra: dict[str, Any] = {}
    if platform != engine_platform(docker_client):
        extra["platform"] = platform  # the Engine's own platform needs no flag
    try:
        stream = api.build(
            path=str(context.path),
            tag=context.tag,
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,
            decode=True,
            use_config_proxy=False,
            **extra,
        )
    except docker.errors.APIError as exc:
        raise BuildError(
            f"Docker refused to build the image: {exc.explanation or exc}.",
            _build_hint(str(exc)),
        ) from exc
    except docker.errors.DockerException as exc:
        raise TargetError("The Docker Engine is not reachable.", ENGINE_HINT) from exc
    try:
        for chunk in stream:
            if cancel.cancelled:
                raise Cancelled("Cancelled while building the image.")
            if "error" in chunk or "errorDetail" in chunk:
                error = str(chunk.get("error") or chunk.get("errorDetail", {}).get("message"))
                tail.append(error)
                progress.log(error)
                continue
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                built_id = str(aux["ID"])
            text = chunk.get("stream") or chunk.get("status") or ""
            for line in str(text).splitlines():
                line = line.rstrip()
                if not line:
                    continue
                tail.append(line)
                progress.log(line)
                if m := _STEP.match(line):
                    step, total = int(m.group(1)), int(m.group(2))
                    short = line if len(line) <= 90 else line[:89] + "…"
                    progress.update((step - 1) / total, short)
                elif "Using cache" in line:
                    cached += 1
                elif m := _BUILT.match(line):
                    built_id = built_id or m.group(1)
    except Cancelled:
        _close_stream(stream)
        _remove_partial(api, context.tag, before)
        raise
    except docker.errors.DockerException as exc:
        _close_stream(stream)
        _remove_partial(api, context.tag, before)
        raise BuildError(
            f"The Docker Engine failed during the build: {exc}.",
            ENGINE_HINT,
            details="\n".join(tail),
        ) from exc
    except BaseException:
        _close_stream(stream)
        _remove_partial(api, context.tag, before)
        raise
    if error is not None or built_id is None:
        message = error or "the build ended without producing an image"
        raise BuildError(
            f"The image could not be built: {message}",
            _build_hint(message),
            details="\n".join(tail),
        )
    info = api.inspect_image(context.tag)
    base_size = image_size(docker_client, context.base_image)
    progress.update(1.0, f"Built {context.tag}")
    return BuiltImage(
        tag=context.tag,
        id=str(info["Id"]),
        size=int(info["Size"]),
        labels=dict((info.get("Config") or {}).get("Labels") or {}),
        platform=platform,  # type: ignore[arg-type]
        base_size=base_size,
        cached_steps=cached,
        total_steps=total,
    )


def _remove_partial(api: Any, tag: str, before: str | None) -> None:
    """After a cancel or failure: drop the tag if this build created or moved it."""
    import docker.errors

    now = _image_id(api, tag)
    if now is None or now == before:
        return
    with contextlib.suppress(docker.errors.APIError):
        api.remove_image(now, force=True)


def _untag(api: Any, ref: str, progress: Progress) -> None:
    """Drop a temporary tag. ``force`` on a tag only untags while other tags remain; it
    is needed when a container runs the image (the Engine then refuses a plain delete)."""
    import docker.errors

    for force in (False, True):
        try:
            api.remove_image(ref, force=force, noprune=True)
            return
        except docker.errors.ImageNotFound:
            return
        except docker.errors.APIError as exc:  # the push result matters more than the tag
            try:
                tags = [] if force else list(api.inspect_image(ref).get("RepoTags") or [])
            except docker.errors.APIError:
                return  # gone already
            if force or len(tags) < 2:  # never force away an image's only name
                progress.log(f"Could not remove the local tag {ref}: {exc.explanation or exc}")
                return


def remove_image(docker_client: Any, ref: str) -> bool:
    """Remove one image by id or tag (idempotent). True if something was removed.

    ``force`` removes every tag of the image; a running container still using it
    keeps the Engine from deleting it and is reported as an error.
    """
    import docker.errors

    try:
        docker_client.api.remove_image(ref, force=True)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return False
        raise TargetError(
            f"Could not remove image {ref}: {exc.explanation or exc}.",
            "Stop the containers that use it, then run teardown again.",
        ) from exc


def images_of(docker_client: Any, deployment: str) -> list[str]:
    """Ids of the images ModelShip built for ``deployment`` (found by label)."""
    found = docker_client.api.images(
        filters={"label": [f"{MANAGED_LABEL}=true", f"{DEPLOYMENT_LABEL}={deployment}"]},
        quiet=True,
    )
    return [str(i) for i in found]


def push_image(
    docker_client: Any,
    image: str,
    repository: str,
    tag: str,
    *,
    auth_config: dict[str, str] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    stats: dict[str, int] | None = None,
) -> str:
    """Push ``image`` as ``repository:tag``; returns the pushed manifest's digest.

    ``images.push`` never raises on a failed push: the error comes as a streamed line,
    so every line is checked. The extra local tag is removed afterwards. ``stats``, if
    given, receives ``bytes`` (layer bytes uploaded), ``layers_pushed`` and
    ``layers_skipped`` (already in the registry).
    """
    import docker.errors

    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    api = docker_client.api
    ref = f"{repository}:{tag}"
    api.tag(image, repository, tag)
    digest: str | None = None
    tail: deque[str] = deque(maxlen=20)
    sizes: dict[str, int] = {}
    pushed: set[str] = set()
    skipped: set[str] = set()
    try:
        stream = api.push(repository, tag, stream=True, decode=True, auth_config=auth_config)
        try:
            for chunk in stream:
                if cancel.cancelled:
                    raise Cancelled("Cancelled while pushing the image.")
                if "error" in chunk or "errorDetail" in chunk:
                    message = str(chunk.get("error") or chunk.get("errorDetail", {}).get("message"))
                    raise TargetError(
                        f"Pushing the image to {repository} failed: {message}",
                        "Check the registry address and your login for it.",
                        details="\n".join(tail),
                    )
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                status = chunk.get("status")
                layer = str(chunk.get("id", ""))
                total = (chunk.get("progressDetail") or {}).get("total")
                if status == "Pushing" and total:
                    sizes[layer] = max(sizes.get(layer, 0), int(total))
                elif status == "Pushed":
                    pushed.add(layer)
                elif status == "Layer already exists":
                    skipped.add(layer)
                if status and status != "Pushing":
                    line = f"{layer} {status}".strip()
                    tail.append(line)
                    progress.log(line)
        except BaseException:
            _close_stream(stream)
            raise
    except docker.errors.APIError as exc:
        raise TargetError(
            f"Pushing the image to {repository} failed: {exc.explanation or exc}.",
            "Check the registry address and your login for it.",
        ) from exc
    finally:
        _untag(api, ref, progress)
    if digest is None:
        raise TargetError(
            f"The registry {repository} did not confirm the push.",
            "Try again; if it persists, check the registry's logs.",
            details="\n".join(tail),
        )
    if stats is not None:
        stats["bytes"] = sum(sizes.get(layer, 0) for layer in pushed)
        stats["layers_pushed"] = len(pushed)
        stats["layers_skipped"] = len(skipped)
    progress.update(1.0, f"Pushed {ref}")
    return digest
