"""The heroku target finds its release whichever way the platform names the image.

Heroku's Platform API lists a container release's image in ``artifacts`` on some
platforms; Cedar container releases are documented by their description only
("Deployed web (142013fe2b5c)", ``artifacts: []``); and a platform may name no image at
all. The emulator serves each shape (``HerokuEmulator.release_shape``); deploy,
redeploy, rollback and teardown must work with every one, and say which rule matched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.run import Event, run_deploy, run_rollback, teardown
from targets import get_target
from tests.conformance.harnesses.heroku import heroku_leftovers, heroku_profile, store_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULE = {"artifacts": "artifacts", "description": "description", "generic": "none"}
WORDS = {
    "artifacts": "its artifacts list the image",
    "description": "its description names the image id",
    "generic": "first release after the formation update",
}


def _train(path: Path, column: int) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(column)
    X = rng.normal(size=(200, 4))
    joblib.dump(LogisticRegression().fit(X, (X[:, column] > 0).astype(int)), path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("heroku-shapes")
    return _train(folder / "a.joblib", 0), _train(folder / "b.joblib", 1)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    return tmp_path


def _confirm_hosts(emulator) -> None:
    """The emulator's addresses confirmed as the user would (``modelship hosts allow``)
    where this version asks for it (the Heroku host allow-list)."""
    try:
        from app.store.trust import allow_host
    except ImportError:
        return
    allow_host(emulator.api_url)
    allow_host(emulator.registry)


def _releases(emulator, app: str) -> list[dict]:
    import requests

    r = requests.get(
        f"{emulator.api_url}/apps/{app}/releases",
        headers={
            "Accept": "application/vnd.heroku+json; version=3",
            "Authorization": f"Bearer {emulator.api_key}",
        },
        timeout=10,
    )
    r.raise_for_status()
    return sorted(r.json(), key=lambda x: x["version"])


def _predictions(record, rows: list) -> list:
    from app.store.profile import Profile

    endpoint = record.endpoint_obj()
    client = get_target("heroku").client(endpoint, Profile.model_validate(record.profile))
    return client.predict(rows)["predictions"]


@pytest.mark.parametrize("shape", ["artifacts", "description", "generic"])
def test_deploy_redeploy_rollback_teardown_for_each_release_shape(
    shape, heroku_emulator, docker_client, base_image, models, home
) -> None:
    heroku_emulator.release_shape = shape
    store_keys(heroku_emulator)
    _confirm_hosts(heroku_emulator)
    name = f"hk-shape-{shape[:4]}"
    first = heroku_profile(heroku_emulator, models[0], name, base_image)
    lines: list[str] = []

    def on_event(event: Event) -> None:
        if event.kind == "log" and event.message:
            lines.append(event.message)

    def release_of(record) -> dict:
        return next(r for r in record.resources() if r.kind == "heroku_release").data

    def current() -> dict:
        releases = heroku_emulator.state()["apps"][name]["releases"]
        return next(r for r in releases if r["current"])

    try:
        v1 = run_deploy(first, on_event=on_event)
        assert v1.smoke["passed"]
        data = release_of(v1)
        assert data["matched_by"] == RULE[shape]
        assert data["version"] == current()["version"]
        assert any(WORDS[shape] in line for line in lines), lines
        # what the target read really had the shape under test
        listed = _releases(heroku_emulator, name)[-1]
        assert bool(listed["artifacts"]) == (shape == "artifacts")
        assert ("(" in listed["description"]) == (shape != "generic")
        rows = json.loads(v1.version().proof_path.read_text())["rows"]
        expected_v1 = _predictions(v1, rows)
        image_v1 = current()["artifacts"][0]["id"]

        second = first.model_copy(deep=True)
        second.model.path = models[1]
        v2 = run_deploy(second, on_event=on_event)
        assert v2.current_version == 2 and v2.smoke["passed"]
        assert release_of(v2)["matched_by"] == RULE[shape]
        assert current()["artifacts"][0]["id"] != image_v1
        expected_v2 = _predictions(v2, rows)
        assert expected_v1 != expected_v2

        back = run_rollback(name, on_event=on_event)
        assert back.current_version == 1 and back.smoke["passed"]
        # the rollback released v1's image again: a new release, found by the same rule
        assert current()["artifacts"][0]["id"] == image_v1
        assert release_of(back)["matched_by"] == RULE[shape]
        assert release_of(back)["version"] == current()["version"]
        assert _predictions(back, rows) == expected_v1
        assert get_target("heroku").status(back).running
    finally:
        teardown(name)
    assert heroku_leftovers(heroku_emulator, docker_client, name) == []
    assert heroku_emulator.is_empty()
