"""Docker-specific fixtures: a converted reference model, built images, the registry.

Builds are the slow part (2 shared cores), so images are built once per module and
shared by its tests. Every image and container carries a per-session deployment name
(``mstest-<hex>``), so cleanup never touches what other test runs on the same Engine
made, and the fixtures assert that nothing of ours is left.
"""

from __future__ import annotations

import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import require

SESSION_TAG = secrets.token_hex(3)


def _deps_cache_images(client) -> set[str]:
    return {i["Id"] for i in client.api.images(filters={"label": "modelship.cache=deps"})}


@pytest.fixture(scope="session", autouse=True)
def no_new_build_cache_left() -> Iterator[None]:
    """Remove dependency-stage images that this session's no-cache builds left behind.

    A normal build keeps its stage-1 image as the shared layer cache (on purpose); the
    cancel tests build with no cache, and the Engine may finish a step after the build
    was abandoned. Those images are never reused, so they must not pile up run after run.
    """
    from tests.conftest import docker_available

    if not docker_available():
        yield
        return
    import docker
    import docker.errors

    client = docker.from_env()
    before = _deps_cache_images(client)
    yield
    for image_id in _deps_cache_images(client) - before:
        try:
            tags = [t for t in client.images.get(image_id).tags if t != "<none>:<none>"]
        except docker.errors.ImageNotFound:
            continue
        used = client.containers.list(ignore_removed=True, all=True, filters={"ancestor": image_id})
        if not tags and not used:
            from app.image.image import remove_image

            remove_image(client, image_id)
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deployment_name(what: str) -> str:
    return f"mstest-{SESSION_TAG}-{what}"


@pytest.fixture(scope="session")
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MODELSHIP_HOME for session/module fixtures (the autouse one is per test).

    The wheelhouse cache is shared with the rest of the suite when CI provides one.
    """
    home = tmp_path_factory.mktemp("docker-home")
    shared = os.environ.get("MODELSHIP_TEST_CACHE")
    if shared:
        os.symlink(shared, home / "cache")
    yield home


def _train_and_convert(out_dir: Path, seed: int) -> SimpleNamespace:
    """The reference model: a scikit-learn pipeline with a 100-tree random forest.

    Converted with ModelShip's own converter (which also writes the signature and the
    proof).
    """
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from app.model.convert import ConvertOptions, convert_model

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    model = make_pipeline(
        StandardScaler(),
        # fractional leaf probabilities: no exact 0.5 ties for the proof to trip on
        RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=seed),
    ).fit(X, y)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "model.joblib"
    joblib.dump(model, src)
    result = convert_model(src, out_dir / "model.onnx", ConvertOptions())
    return SimpleNamespace(
        source=src,
        onnx_path=Path(result.onnx_path),
        signature_path=Path(result.signature_path),
        proof_path=Path(result.proof_path),
        result=result,
    )


@pytest.fixture(scope="session")
def rf_model(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> SimpleNamespace:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELSHIP_HOME", str(isolated_home))
        return _train_and_convert(tmp_path_factory.mktemp("rf-a"), seed=0)


@pytest.fixture(scope="session")
def rf_model_b(tmp_path_factory: pytest.TempPathFactory, isolated_home: Path) -> SimpleNamespace:
    """Same kind of model, retrained: a new model version for warm-rebuild tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELSHIP_HOME", str(isolated_home))
        return _train_and_convert(tmp_path_factory.mktemp("rf-b"), seed=1)


def docker_profile(name: str, base_image: str, model_path: Path, **settings):
    from app.store.profile import Profile

    return Profile.model_validate(
        {
            "schema": 1,
            "name": name,
            "model": {"path": str(model_path)},
            "target": {"kind": "docker", "settings": settings},
            "image": {"base_image": base_image},
        }
    )


class Builder:
    """Builds images in the isolated home and removes them all at the end."""

    def __init__(self, docker_client, base_image: str, home: Path, tmp: Path) -> None:
        self.client = docker_client
        self.base_image = base_image
        self.home = home
        self.tmp = tmp
        self.image_ids: list[str] = []
        self._n = 0

    def build(self, deployment: str, model, *, base_image: str | None = None, progress=None,
              cancel=None, nocache: bool = False):  # fmt: skip
        from app.image.buildcontext import prepare_build_context
        from app.image.image import build_image

        self._n += 1
        profile = docker_profile(deployment, base_image or self.base_image, Path("unused"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MODELSHIP_HOME", str(self.home))
            ctx = prepare_build_context(
                profile, model, self.tmp / f"ctx{self._n}", progress=progress
            )
            image = build_image(ctx, self.client, progress, cancel, nocache=nocache)
        self.image_ids.append(image.id)
        return ctx, image

    def cleanup(self) -> None:
        from app.image.image import remove_image

        for ident in reversed(self.image_ids):
            remove_image(self.client, ident)


@pytest.fixture(scope="module")
def builder(docker_client, base_image, isolated_home, tmp_path_factory) -> Iterator[Builder]:
    b = Builder(docker_client, base_image, isolated_home, tmp_path_factory.mktemp("build"))
    yield b
    b.cleanup()


def leftovers(docker_client, deployment: str) -> list[str]:
    """Containers and images of ours still on the Engine for this deployment name."""
    label = ["modelship.managed=true", f"modelship.deployment={deployment}"]
    out = [f"container {c.name}" for c in docker_client.containers.list(ignore_removed=True,
        all=True, filters={"label": label})]  # fmt: skip
    out += [f"image {i}" for i in docker_client.api.images(filters={"label": label}, quiet=True)]
    out += [
        f"container {c.name}"
        for c in docker_client.containers.list(ignore_removed=True, all=True)
        if c.name.startswith(f"modelship-{deployment}")
    ]
    return out


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture(scope="session")
def registry() -> str:
    """The local image registry (.ci/services.sh), as host:port on 127.0.0.1."""
    addr = os.environ.get("MODELSHIP_TEST_REGISTRY", "127.0.0.1:5055")
    try:
        ok = http("GET", f"http://{addr}/v2/")[0] == 200
    except OSError:
        ok = False
    require(ok, f"the local image registry at {addr}")
    return addr
