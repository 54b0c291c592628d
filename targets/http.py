"""HTTP sessions that send only the credentials ModelShip chose, to the host it chose.

``requests`` adds ``~/.netrc``'s entry for a host on its own whenever a request has no
auth (and again for the new host after a redirect). A target's client must not: the
person's netrc (or any other stored credential) belongs to the host it names, and a
redirect, a log stream or a token realm elsewhere must get nothing. Proxy settings from
the environment still apply (lab networks need them), unlike ``trust_env = False``.
"""

from __future__ import annotations

from typing import Any

import requests


class NoAuth(requests.auth.AuthBase):
    """Explicitly no credentials (keeps requests from looking in ~/.netrc)."""

    def __call__(self, request: Any) -> Any:
        request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:
        return "NoAuth()"


class Session(requests.Session):
    """A requests session that never reads ~/.netrc: a request without auth of its own
    gets :class:`NoAuth`, and a redirect to another host loses its Authorization header
    (as in requests) without gaining netrc's."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = NoAuth()

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(
            response.request.url, prepared_request.url
        ):
            del headers["Authorization"]


def request(method: str, url: str, **kw: Any) -> requests.Response:
    """One request through a fresh :class:`Session` (no netrc, no stray credentials)."""
    with Session() as s:
        return s.request(method, url, **kw)


__all__ = ["NoAuth", "Session", "request"]
