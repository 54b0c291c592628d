"""Docker target settings and plan, without Docker (fast): what a profile may say."""

from __future__ import annotations

import pydantic
import pytest

from targets import CATALOG, get_target
from targets.docker.settings import DockerSettings
from targets.docker.target import DockerTarget, _url_host, container_name


def test_docker_is_registered_and_needs_an_image() -> None:
    assert CATALOG["docker"].load() is DockerTarget
    target = get_target("docker")
    assert target.ships == "image" and target.Settings is DockerSettings


def test_defaults_keep_the_endpoint_on_this_computer() -> None:
    s = DockerSettings()
    assert s.bind_host == "127.0.0.1" and s.port == 8080
    assert s.restart_policy == "unless-stopped"
    assert s.memory_limit is None and s.api_key is None


@pytest.mark.parametrize(
    "bad",
    [
        {"bind_host": "localhost; rm -rf /"},
        {"bind_host": "example.org"},
        {"port": 0},
        {"port": 70000},
        {"restart_policy": "sometimes"},
        {"memory_limit": "lots"},
        {"memory_limit": "512 m"},
        {"api_key": "has spaces in it"},
        {"prot": 8080},  # misspelt keys are errors, not ignored
    ],
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        DockerSettings.model_validate(bad)


def test_valid_settings() -> None:
    s = DockerSettings.model_validate(
        {"bind_host": "0.0.0.0", "memory_limit": "512m", "api_key": "modelship/iris-key"}
    )
    assert s.memory_limit == "512m" and s.api_key == "modelship/iris-key"


def test_urls_and_names() -> None:
    assert _url_host("127.0.0.1") == "127.0.0.1"
    assert _url_host("0.0.0.0") == "127.0.0.1"  # published everywhere, reached locally
    assert _url_host("::1") == "[::1]"
    assert container_name("iris", 3) == "modelship-iris-v3"


def _profile(**settings):
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 1,
            "name": "iris",
            "model": {"path": "/nonexistent/iris.joblib"},
            "target": {"kind": "docker", "settings": settings},
        }
    )


def test_plan_and_warnings_name_the_exposure() -> None:
    target = DockerTarget()
    local = _profile(port=9000, memory_limit="1g")
    (item,) = target.plan(local, None)
    assert item.kind == "container" and "http://127.0.0.1:9000" in item.detail
    assert "memory limit 1g" in item.detail
    assert target.warnings(local) == []
    wide = _profile(bind_host="0.0.0.0")
    assert "EXPOSED on 0.0.0.0" in str(target.plan(wide, None)[0])
    (warning,) = target.warnings(wide)
    assert "other computers" in warning and "api_key" in warning


def test_profile_default_base_image_is_python_slim() -> None:
    assert _profile().image.base_image == "python:3.11-slim"
