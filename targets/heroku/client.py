"""A thin client for Heroku's Platform API on plain ``requests``, and the API key.

Why not heroku3: it has had no release since 2023 and knows nothing of container
releases (the ``3.docker-releases`` variant). The Platform API is small and regular:
JSON over HTTPS, ``Accept: application/vnd.heroku+json; version=3``, a Bearer key,
``Range`` pagination, ``RateLimit-Remaining`` on every answer and errors as
``{"id", "message"}``. This module turns those errors into ModelShip's errors with a
next step in plain words, and never logs the key.

The key lives in the keyring under the profile's ``account_key`` entry. On first use
it is imported from where the Heroku CLI keeps it (``HEROKU_API_KEY``, else
``~/.netrc``'s entry for the ``api_url`` host), and the import is said in the progress.

The key goes only to Heroku's own addresses or to ones the person confirmed on this
computer (``modelship hosts allow``; :mod:`app.store.trust`): a client for any other
``api_url`` is refused before the key is read, and requests never adds ``~/.netrc``
credentials on its own (:mod:`targets.http`).
"""

from __future__ import annotations

import contextlib
import netrc
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import CredentialError, TargetError
from app.nextstep import heroku_key, say
from app.progress import NullProgress, Progress
from targets.heroku.settings import check_api_url, check_registry

ACCEPT = "application/vnd.heroku+json; version=3"
ACCEPT_DOCKER_RELEASES = "application/vnd.heroku+json; version=3.docker-releases"
HEROKU_API_HOST = "api.heroku.com"
LOW_RATE_LIMIT = 100  # calls left (of 4500 per hour) below which a deploy may run out
GET_RETRIES = 2  # a GET that met a 503/429 or a dropped connection is asked again


class NotFound(TargetError):
    """Heroku answered 404 (``not_found``): callers decide whether that is fine."""


class HerokuAPIError(TargetError):
    """Any other error answer; ``status`` and ``id`` say which."""

    def __init__(self, message: str, hint: str, status: int, ident: str, **kw: Any) -> None:
        super().__init__(message, hint, **kw)
        self.status = status
        self.id = ident


# ---- the API key ------------------------------------------------------------------------


def _netrc_password(hosts: list[str]) -> tuple[str, str] | None:
    """(password, file) for the first of ``hosts`` in $NETRC or ~/.netrc, as the
    Heroku CLI writes it (``machine api.heroku.com login EMAIL password KEY``)."""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError):
        return None
    for host in hosts:
        found = entries.authenticators(host)
        if found and found[2]:
            return found[2], str(path)
    return None


def api_hosts(api_url: str) -> list[str]:
    """The ~/.netrc machine to read the key from: the ``api_url``'s own host only (the
    key netrc holds for api.heroku.com is never sent to another address)."""
    host = urllib.parse.urlsplit(api_url).hostname or ""
    return [host] if host else []


def find_api_key(entry: str, api_url: str) -> tuple[str, str]:
    """(key, where it was found): the keyring entry ``entry``, else where the Heroku CLI
    keeps it: ``HEROKU_API_KEY`` (its own override), then ``~/.netrc`` (what ``heroku
    login`` writes). Nothing is stored here (see :func:`api_key`). A missing key is a
    CredentialError (exit code 6) saying where to get one."""
    from app.store.secrets import get_secret, has_secret

    if has_secret(entry):
        return get_secret(entry), "keyring"
    value = os.environ.get("HEROKU_API_KEY", "").strip()
    if value:
        return value, "HEROKU_API_KEY"
    found = _netrc_password(api_hosts(api_url))
    if found is not None and found[0].strip():
        return found[0].strip(), found[1]
    raise CredentialError(
        f"No Heroku API key: the keyring has no entry {entry!r}, HEROKU_API_KEY is not "
        f"set and ~/.netrc has no entry for {' or '.join(api_hosts(api_url))}.",
        say(heroku_key(entry)),
    )


def api_key(entry: str, api_url: str, progress: Progress | None = None) -> str:
    """The Heroku API key; on first use imported into the keyring (and said so).

    Where no secure keyring exists (a CI runner, a headless server) the key found in
    ``HEROKU_API_KEY`` or ``~/.netrc`` is used for this run only and not stored, as the
    Heroku CLI itself does there: ModelShip never writes a secret to a plain file.
    """
    from app.store.secrets import secure_backend_available, set_secret

    value, source = find_api_key(entry, api_url)
    if source == "keyring":
        return value
    tell = (progress or NullProgress()).update
    if secure_backend_available():
        set_secret(entry, value)
        tell(None, f"Imported your Heroku API key from {source} into the keyring as {entry!r}")
    else:
        tell(None, f"No secure keyring here: using the Heroku API key from {source} for this "
            "run only (not stored)")  # fmt: skip
    return value


# ---- the Platform API -------------------------------------------------------------------

# What Heroku's error ids mean for the person deploying, and what to do next.
_ERROR_HINTS = {
    "unauthorized": say(heroku_key("", form="refused")),
    "forbidden": "Use an app your account can change, or choose another app name.",
    "rate_limit": "Heroku allows 4500 API calls per hour; wait a few minutes and deploy again.",
    "invalid_params": "Check the Heroku settings in the profile (app name, region, dyno size).",
    "verification_required": "Add a payment method to your Heroku account (heroku.com/verify).",
    "delinquent": "Settle the Heroku account's open invoices.",
    "suspended": "Your Heroku account is suspended; contact Heroku support.",
    "not_found": "Check the app name and the team in the profile.",
}


def _bearer(key: str) -> Any:
    """requests auth sending ``Authorization: Bearer KEY``."""
    import requests

    class Bearer(requests.auth.AuthBase):
        def __call__(self, request: Any) -> Any:
            request.headers["Authorization"] = f"Bearer {key}"
            return request

        def __repr__(self) -> str:  # never the key
            return "Bearer(...)"

    return Bearer()


class HerokuClient:
    """Calls to one Platform API (``api_url``) with one key. Cheap; make one per task."""

    def __init__(self, api_url: str, key: str, *, timeout: float = 30.0) -> None:
        check_api_url(api_url)  # the key goes to Heroku or a confirmed address only
        self.api_url = api_url.rstrip("/")
        self._key = key
        self.timeout = timeout
        self.rate_limit_remaining: int | None = None
        from targets.http import Session

        # never ~/.netrc's credentials (not even after a redirect): only this key
        self._session = Session()
        self._session.headers.update({"User-Agent": "ModelShip (heroku target)"})
        self._session.auth = _bearer(key)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HerokuClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the key
        return f"HerokuClient({self.api_url!r})"

    # ---- one call --------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        docker_releases: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One API call; the decoded JSON answer. Errors raise with a next step."""
        return self._call(method, path, body, docker_releases, headers)[0]

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        docker_releases: bool,
        headers: dict[str, str] | None,
    ) -> tuple[Any, Any]:
        import requests

        send = {"Accept": ACCEPT_DOCKER_RELEASES if docker_releases else ACCEPT}
        if body is not None:
            send["Content-Type"] = "application/json"
        send.update(headers or {})
        url = self.api_url + path
        tries = 1 + (GET_RETRIES if method == "GET" else 0)
        for attempt in range(tries):
            try:
                # no redirects: the key stays with the API's own address
                resp = self._session.request(
                    method, url, json=body, headers=send, timeout=self.timeout,
                    allow_redirects=False,
                )  # fmt: skip
            except requests.RequestException as exc:
                if attempt + 1 < tries:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise TargetError(
                    f"Could not reach the Heroku API at {self.api_url} ({exc.__class__.__name__}).",
                    "Check your network and the api_url setting; status.heroku.com says "
                    "whether Heroku has an outage.",
                ) from None
            remaining = resp.headers.get("RateLimit-Remaining")
            if remaining is not None and remaining.isdigit():
                self.rate_limit_remaining = int(remaining)
            if resp.status_code in (429, 503) and attempt + 1 < tries:
                time.sleep(0.5 * (attempt + 1))
                continue
            break
        if resp.status_code >= 400:
            raise self._error(method, path, resp)
        if resp.status_code == 204 or not resp.content:
            return None, resp
        try:
            return resp.json(), resp
        except ValueError:
            raise TargetError(
                f"The Heroku API answered {method} {path} with something that is not JSON.",
                "Check the api_url setting: it must be Heroku's Platform API.",
            ) from None

    def _error(self, method: str, path: str, resp: Any) -> TargetError:
        try:
            data = resp.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        ident = str(data.get("id") or f"http_{resp.status_code}")
        message = str(data.get("message") or resp.reason or "no message").strip()
        message = " ".join(message.split())
        call = f"{method} {path.split('?')[0]}"
        what = f"Heroku refused {call} ({resp.status_code} {ident}): {message}"
        if resp.status_code == 401:
            return CredentialError(
                f"Heroku refused the API key ({ident}: {message}).", _ERROR_HINTS["unauthorized"]
            )
        if resp.status_code == 404:
            return NotFound(what, _ERROR_HINTS["not_found"])
        if resp.status_code >= 500:
            hint = "Heroku had a problem; try again in a few minutes (status.heroku.com)."
        else:
            hint = _ERROR_HINTS.get(ident, "See Heroku's message; fix the setting it names.")
        return HerokuAPIError(what, hint, resp.status_code, ident)

    # ---- lists (Range pagination) -----------------------------------------------------
    def list(self, path: str, *, range_: str | None = None, limit: int | None = None) -> list[Any]:
        """Every item of a list (following ``Next-Range``), or the first ``limit``."""
        out: list[Any] = []
        header = range_
        while True:
            data, resp = self._call("GET", path, None, False, {"Range": header} if header else None)
            out.extend(data or [])
            if limit is not None and len(out) >= limit:
                return out[:limit]
            header = resp.headers.get("Next-Range")
            if resp.status_code != 206 or not header:
                return out

    def stream_lines(self, url: str, *, timeout: float = 30.0) -> Iterator[str]:
        """Lines of a log or release-output stream (Logplex URLs carry their own token).

        Only URLs on the API's own host get the key; a stream elsewhere gets none.
        """
        from targets.http import NoAuth, Session

        same_host = urllib.parse.urlsplit(url).netloc == urllib.parse.urlsplit(self.api_url).netloc
        # Its own session, not the client's: this may run in a reader thread.
        auth = _bearer(self._key) if same_host else NoAuth()
        with (
            Session() as session,
            contextlib.closing(session.get(url, auth=auth, stream=True, timeout=timeout)) as resp,
        ):
            if resp.status_code >= 400:
                return
            for raw in resp.iter_lines(decode_unicode=True):
                if raw:
                    yield raw

    # ---- the calls the target makes ---------------------------------------------------
    def account(self) -> dict[str, Any]:
        return dict(self.call("GET", "/account"))

    def app(self, name: str) -> dict[str, Any] | None:
        """The app, or None when no app has that name (for this account)."""
        try:
            return dict(self.call("GET", f"/apps/{name}"))
        except NotFound:
            return None

    def create_app(self, name: str, region: str, team: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "region": region, "stack": "container"}
        if team:
            return dict(self.call("POST", "/teams/apps", {**body, "team": team}))
        return dict(self.call("POST", "/apps", body))

    def delete_app(self, name: str) -> bool:
        try:
            self.call("DELETE", f"/apps/{name}")
        except NotFound:
            return False
        return True

    def config_vars(self, app: str) -> dict[str, str]:
        return dict(self.call("GET", f"/apps/{app}/config-vars") or {})

    def set_config_vars(self, app: str, values: dict[str, str | None]) -> dict[str, str]:
        return dict(self.call("PATCH", f"/apps/{app}/config-vars", values) or {})

    def formation(self, app: str, process: str = "web") -> dict[str, Any] | None:
        try:
            return dict(self.call("GET", f"/apps/{app}/formation/{process}"))
        except NotFound:
            return None

    def update_formation(self, app: str, updates: list[dict[str, Any]]) -> list[Any]:
        """PATCH the formation; with ``docker_image`` under the docker-releases variant."""
        docker = any("docker_image" in u for u in updates)
        return list(
            self.call(
                "PATCH", f"/apps/{app}/formation", {"updates": updates}, docker_releases=docker
            )
        )

    def releases(self, app: str, newest: int = 10) -> list[dict[str, Any]]:
        """The newest releases, newest first."""
        return self.list(
            f"/apps/{app}/releases", range_=f"version ..; order=desc, max={newest}", limit=newest
        )

    def release(self, app: str, ident: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/apps/{app}/releases/{ident}"))

    def dynos(self, app: str) -> list[dict[str, Any]]:
        return self.list(f"/apps/{app}/dynos")

    def log_lines(self, app: str, lines: int = 100, dyno: str | None = None) -> list[str]:
        """The app's last log lines through a log session (no tail)."""
        body: dict[str, Any] = {"lines": max(0, min(lines, 1500)), "tail": False}
        if dyno:
            body["dyno"] = dyno
        session = self.call("POST", f"/apps/{app}/log-sessions", body)
        url = (session or {}).get("logplex_url")
        if not url:
            return []
        return list(self.stream_lines(url))


__all__ = [
    "ACCEPT",
    "ACCEPT_DOCKER_RELEASES",
    "LOW_RATE_LIMIT",
    "HerokuAPIError",
    "HerokuClient",
    "NotFound",
    "api_hosts",
    "api_key",
    "check_api_url",
    "check_registry",
    "find_api_key",
]
