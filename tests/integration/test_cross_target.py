"""One deployment name moving between targets: records know where each version ran.

local (v1) -> docker (v2) on the same name and port -> rollback: version 1 answers again
from a local server, the container is gone, and teardown removes everything on both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.run import run_deploy, run_rollback, teardown
from app.store.profile import Profile, new_profile
from app.store.records import find_record
from tests.integration.conftest import leftovers
from tests.integration.test_local_target import (  # noqa: F401 - fixtures
    assert_nothing_left,
    free_port,
    iris_model,
    predict,
    serving_pids,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_local_then_docker_then_rollback_serves_the_older_version_again(
    iris_model: Path,  # noqa: F811
    tmp_path: Path,
    docker_client,
    base_image: str,
) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    # version 2 is another model, so its answers can be told apart from version 1's
    X, y = load_iris(return_X_y=True, as_frame=True)
    other = tmp_path / "iris-lr.joblib"
    joblib.dump(LogisticRegression(max_iter=500, C=0.01).fit(X, y), other)

    name, port = "moving", free_port()
    try:
        v1 = run_deploy(new_profile(iris_model, name=name, settings={"port": port}))
        rows = json.loads(v1.version().proof_path.read_text())["rows"]
        answers_v1 = predict(v1.url, rows)["predictions"]
        local_pid = v1.resources()[0].data["pid"]

        docker = Profile.model_validate(
            {
                "schema": 1,
                "name": name,
                "model": {"path": str(other)},
                "target": {"kind": "docker", "settings": {"port": port}},
                "image": {"base_image": base_image},
            }
        )
        v2 = run_deploy(docker)
        assert (v2.target, v2.current_version) == ("docker", 2)
        assert [v.target for v in v2.version_objects()] == ["local", "docker"]
        assert serving_pids() == set(), "the local server was not retired"
        assert local_pid not in serving_pids()
        answers_v2 = predict(v2.url, rows)["predictions"]
        assert answers_v2 != answers_v1

        back = run_rollback(name)
        assert (back.target, back.current_version) == ("local", 1)
        assert predict(back.url, rows)["predictions"] == answers_v1
        assert len(serving_pids()) == 1
        containers = [c for c in leftovers(docker_client, name) if c.startswith("container")]
        assert containers == [], "the docker version still runs next to the local one"
        assert find_record(name).profile["target"]["kind"] == "local"
    finally:
        teardown(name)
    assert leftovers(docker_client, name) == []
    assert_nothing_left(name, port)
