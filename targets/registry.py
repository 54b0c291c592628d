"""A Docker Registry (HTTP API v2) that targets push their images to.

Heroku's registry, ECR and a VM-side or mirror registry all speak the same protocol:
log in with a user name and a password or token, push a Docker manifest v2 schema 2
(never an OCI index: Heroku rejects those), delete a manifest by digest. A target's
``registry(profile)`` returns a :class:`V2Registry` (or a subclass that logs in its own
way, e.g. ECR's ``get_authorization_token``); the pipeline pushes in a journaled step
and removes what it pushed on rollback and teardown.

Credentials are passed to the Engine with each push (``auth_config``), never written
to ``~/.docker/config.json``, and never logged. They go only to the registry's own host
(a target checks that host before it hands out a password: see ``credentials``), never
to a token service on another host, and requests never adds ``~/.netrc`` entries
(:mod:`targets.http`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from app.domain import BuiltImage, PushedImage
from app.errors import TargetError
from app.progress import CancelToken, NullProgress, Progress
from app.store.trust import is_loopback
from targets.base import Registry

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
# What a registry may answer for a manifest we did not ask for; anything but v2 schema 2
# means the platform would refuse the image.
MANIFEST_ACCEPT = ", ".join(
    [
        MANIFEST_V2,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def _insecure(host: str) -> bool:
    """Plain HTTP only for loopback registries (as the Docker Engine allows)."""
    return is_loopback(host.rsplit(":", 1)[0])


class V2Registry(Registry):
    """A repository in a Docker Registry v2: ``host[:port]/path``.

    ``password`` is a callable so that a secret is read (from the keyring, or a fresh
    token) only when a push or delete needs it.
    """

    def __init__(
        self,
        repository: str,
        *,
        username: str | None = None,
        password: Callable[[], str] | None = None,
        words: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if "/" not in repository:
            raise TargetError(
                f"{repository!r} is not a registry repository (host/path).",
                "Check the registry setting.",
            )
        self.repository = repository.rstrip("/")
        self.host, _, self.path = self.repository.partition("/")
        self.username = username
        self._password = password
        self._words = words or f"registry {self.repository}"
        self.timeout = timeout

    def describe(self) -> str:
        return self._words

    # ---- credentials ------------------------------------------------------------------
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for this registry, or None when it needs no login."""
        if self.username is None or self._password is None:
            return None
        return self.username, self._password()

    def _auth_config(self) -> dict[str, str] | None:
        creds = self.credentials()
        if creds is None:
            return None
        return {"username": creds[0], "password": creds[1], "serveraddress": self.host}

    # ---- push -------------------------------------------------------------------------
    def push(
        self, image: BuiltImage, tag: str, progress: Progress, cancel: CancelToken
    ) -> PushedImage:
        from app.image.image import connect, push_image

        stats: dict[str, int] = {}
        client = connect()
        try:
            digest = push_image(
                client,
                image.id or image.tag,
                self.repository,
                tag,
                auth_config=self._auth_config(),
                progress=progress,
                cancel=cancel,
                stats=stats,
            )
        finally:
            client.close()
        manifest = self.manifest(digest)
        media = manifest.get("mediaType")
        if media != MANIFEST_V2:
            raise TargetError(
                f"The registry holds the image as {media or 'an unknown format'}, not as a "
                "Docker manifest v2 (schema 2); the platform would refuse it.",
                "Build with the classic Docker builder (no BuildKit attestations) and push again.",
            )
        config = (manifest.get("config") or {}).get("digest")
        return PushedImage(
            repository=self.repository,
            tag=tag,
            digest=digest,
            platform=image.platform,
            config_digest=config or image.id,
            bytes_pushed=stats.get("bytes"),
        )

    # ---- the registry's HTTP API ------------------------------------------------------
    def _url(self, what: str) -> str:
        scheme = "http" if _insecure(self.host) else "https"
        return f"{scheme}://{self.host}/v2/{self.path}/{what}"

    def _request(self, method: str, what: str, **kw: Any) -> Any:
        """One call with basic auth, falling back to the Bearer token flow that most
        registries (Docker Hub, ECR's v2 API, GitLab) answer a 401 with."""
        import requests

        from targets.http import NoAuth, request

        creds = self.credentials()
        auth = creds if creds is not None else NoAuth()
        url = self._url(what)
        try:
            resp = request(method, url, auth=auth, timeout=self.timeout, **kw)
            challenge = resp.headers.get("WWW-Authenticate", "")
            if resp.status_code == 401 and challenge.lower().startswith("bearer "):
                token = self._token(challenge, creds)
                headers = {**kw.pop("headers", {}), "Authorization": f"Bearer {token}"}
                resp = request(method, url, headers=headers, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise TargetError(
                f"The registry {self.host} did not answer ({exc.__class__.__name__}).",
                "Check the registry address and your network or proxy settings.",
            ) from None
        if resp.status_code in (401, 403):
            raise TargetError(
                f"The registry {self.host} refused the credentials ({resp.status_code}).",
                "Check the key or token stored for it in your keyring.",
            )
        return resp

    def _token(self, challenge: str, auth: tuple[str, str] | None) -> str:
        import re

        from targets.http import NoAuth, request

        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = fields.pop("realm", "")
        from app.errors import UsageError
        from app.store.trust import origin

        try:  # the same scheme, host and port as the registry itself
            own = origin(realm) == origin(self.host)
        except UsageError:
            own = False
        # the login goes to the registry's own host only; a token service elsewhere
        # gets none (it may still hand out an anonymous token)
        resp = request(
            "GET", realm, params=fields, auth=auth if own and auth else NoAuth(),
            timeout=self.timeout,
        )  # fmt: skip
        if resp.status_code != 200:
            raise TargetError(
                f"The registry {self.host} gave no access token ({resp.status_code}).",
                "Check the key or token stored for it in your keyring.",
            )
        data = resp.json()
        return str(data.get("token") or data.get("access_token") or "")

    def manifest(self, reference: str) -> dict[str, Any]:
        resp = self._request("GET", f"manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if resp.status_code != 200:
            raise TargetError(
                f"The registry has no image {self.repository}@{reference} ({resp.status_code}).",
                "Push the image again (deploy again).",
            )
        data: dict[str, Any] = resp.json()
        data.setdefault("mediaType", resp.headers.get("Content-Type", "").split(";")[0])
        return data

    def tags_with(self, digest: str) -> list[str]:
        """The repository's tags that point at ``digest``."""
        resp = self._request("GET", "tags/list")
        if resp.status_code == 404:
            return []
        out = []
        for tag in (resp.json() or {}).get("tags") or []:
            head = self._request("HEAD", f"manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
            if head.headers.get("Docker-Content-Digest") == digest:
                out.append(tag)
        return out

    def remove(
        self, pushed: PushedImage, progress: Progress | None = None, keep: Collection[str] = ()
    ) -> bool:
        """Delete the pushed manifest (and with it its tags). False if it was gone, or
        kept because a tag in ``keep`` (a version still in use) points at it too."""
        progress = progress or NullProgress()
        if not pushed.digest:
            return False  # journaled but never pushed
        # The registry API deletes manifests, not tags: an unchanged model pushed again
        # as another version has the same digest, and that version may still need it.
        others = [t for t in self.tags_with(pushed.digest) if t != pushed.tag and t in keep]
        if others:
            progress.log(f"Keeping {pushed.ref}: tag {others[0]} (another version) uses it")
            return False
        resp = self._request("DELETE", f"manifests/{pushed.digest}")
        if resp.status_code == 404:
            return False
        if resp.status_code not in (200, 202):
            raise TargetError(
                f"The registry would not delete {pushed.ref} ({resp.status_code}: "
                f"{resp.text[:200]}).",
                "Delete the image in the registry's own console.",
            )
        progress.update(None, f"Removed {pushed.tagged} from the registry")
        return True


__all__ = ["MANIFEST_V2", "V2Registry"]
