"""Conformance harness: the heroku target against the Heroku emulator.

The emulator (tests/emulators/heroku) speaks the Platform API, keeps pushed images in a
real docker-registry and runs released images as real containers, so "nothing left"
is checked there: apps (with their config vars), dyno containers, registry tags; and
on this computer: images the pipeline built, the model files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.harnesses.base import Harness

ENDPOINT_KEY = "conformance-endpoint-key"


def heroku_profile(emulator: Any, model: Path, name: str, base_image: str, **settings: Any):
    """A deployable heroku profile pointing at ``emulator``; the app is named after the
    deployment (a valid Heroku name for the suite's names)."""
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 2,
            "name": name,
            "model": {"path": str(model)},
            "target": {
                "kind": "heroku",
                "settings": {
                    "app": name,
                    "api_url": emulator.api_url,
                    "registry": emulator.registry,
                    "account_key": "heroku-api-key",
                    "api_key": ENDPOINT_KEY,
                    "start_timeout": 120,
                    **settings,
                },
            },
            "image": {"base_image": base_image},
        }
    )


def store_keys(emulator: Any) -> None:
    from app.store.secrets import set_secret

    set_secret("heroku-api-key", emulator.api_key)
    set_secret(ENDPOINT_KEY, "conformance-secret-0123456789")


def heroku_leftovers(
    emulator: Any, docker_client: Any, name: str, app: str | None = None
) -> list[str]:
    """Everything of deployment ``name`` (on app ``app``, default the same name) left on
    the emulated platform and on this computer."""
    from app.run import versions_dir

    app = app or name
    state = emulator.state()
    out = []
    if app in state["apps"]:
        vars_ = sorted(state["apps"][app]["config_vars"])
        out.append(f"Heroku app {app} (config vars: {', '.join(vars_) or 'none'})")
    out += [f"dyno container {c['name']}" for c in emulator.containers() if c["app"] == app]
    out += [
        f"registry {repo}:{tag}"
        for repo, tags in emulator.registry_contents().items()
        if repo.split("/")[0] == app
        for tag in tags
    ]
    label = ["modelship.managed=true", f"modelship.deployment={name}"]
    out += [f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)]
    if versions_dir(name).exists():
        out.append(f"folder {versions_dir(name)}")
    return out


def heroku_faults(emulator: Any) -> dict[str, Callable[[], contextlib.AbstractContextManager[Any]]]:
    """A failure at each Platform API call the target makes (and at the registry)."""

    def fault(*args: Any, **kw: Any) -> Callable[[], contextlib.AbstractContextManager[Any]]:
        @contextlib.contextmanager
        def active() -> Iterator[None]:
            emulator.inject(*args, **kw)
            try:
                yield
            finally:
                emulator.clear_faults()

        return active

    @contextlib.contextmanager
    def failing_release() -> Iterator[None]:
        emulator.fail_next_release("R10")
        try:
            yield
        finally:
            emulator.next_release_failure = None

    @contextlib.contextmanager
    def no_calls_left() -> Iterator[None]:
        emulator.set_rate_limit(0)
        try:
            yield
        finally:
            emulator.set_rate_limit(4500)

    taken = {"id": "invalid_params", "message": "Name is already taken"}
    refused = {"id": "invalid_params", "message": "Couldn't find that docker image."}
    return {
        "account (GET /account) down": fault("GET", "/account", 503, times=None),
        "rate limit reached": no_calls_left,
        "create app refused": fault("POST", "/apps", 422, body=taken),
        "create app answer lost": fault("POST", "/apps", 503, pass_through=True),
        "registry refuses the manifest": fault(
            "PUT", "/v2/*/manifests/*", 500, times=None, service="registry"
        ),
        "config vars refused": fault("PATCH", "/apps/*/config-vars", 503),
        "config vars answer lost": fault("PATCH", "/apps/*/config-vars", 503, pass_through=True),
        "release refused": fault("PATCH", "/apps/*/formation", 422, body=refused),
        "release answer lost": fault("PATCH", "/apps/*/formation", 503, pass_through=True),
        "releases unlisted": fault("GET", "/apps/*/releases", 503, times=None),
        "release fails to boot (R10)": failing_release,
        "dynos unlisted": fault("GET", "/apps/*/dynos", 503, times=None),
    }


@pytest.fixture
def harness_heroku(heroku_emulator, docker_client, base_image) -> Iterator[Harness]:
    store_keys(heroku_emulator)

    def profile(model: Path, name: str):
        store_keys(heroku_emulator)
        return heroku_profile(heroku_emulator, model, name, base_image)

    os.environ.setdefault("MODELSHIP_TEST_BASE_IMAGE", base_image)
    yield Harness(
        kind="heroku",
        profile=profile,
        leftovers=lambda name: heroku_leftovers(heroku_emulator, docker_client, name),
        faults=heroku_faults(heroku_emulator),
        timeout=600,
    )
