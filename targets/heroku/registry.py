"""Heroku's registry for one app, and its login (the account key)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from app.domain import PushedImage
from app.progress import Progress
from targets.heroku.client import (
    HerokuClient,
    check_registry,
    find_api_key,
)
from targets.heroku.settings import HerokuSettings
from targets.registry import V2Registry


class HerokuRegistry(V2Registry):
    """Heroku's registry for one app (``REGISTRY/APP/web``).

    Images go with the app: once the app is deleted there is nothing left to remove (and
    the registry refuses any call for an app that does not exist).
    """

    def __init__(self, repository: str, *, app: str, api: Callable[[], HerokuClient], **kw: Any):
        super().__init__(repository, **kw)
        self.app = app
        self._api = api

    def remove(
        self, pushed: PushedImage, progress: Progress | None = None, keep: Collection[str] = ()
    ) -> bool:
        with self._api() as api:
            if api.app(self.app) is None:
                return False  # deleted with its app
        return super().remove(pushed, progress, keep)


def registry_password(settings: HerokuSettings) -> str:
    """The registry login (the account key): only for Heroku's registry or a confirmed
    one, checked before the key is read."""
    check_registry(settings.registry)
    return find_api_key(settings.account_key, settings.api_url)[0]
