"""The build context and its Dockerfile, without Docker (fast)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import types
from pathlib import Path

import pytest

from app.errors import BuildError, UsageError
from app.image.buildcontext import (
    DockerfileParams,
    check_image_reference,
    docker_name,
    dockerfile_quote,
    image_tag,
    prepare_build_context,
    python_version_for,
    render_dockerfile,
)
from app.image.wheelhouse import COMPLETE_MARKER, cache_key, serving_requirements_text

GOLDEN = Path(__file__).parent / "golden" / "Dockerfile"
SHA = "ab" * 32


def golden_params() -> DockerfileParams:
    return DockerfileParams(
        base_image="python:3.11-slim",
        labels={
            "modelship.deployment": "iris",
            "modelship.profile": "iris",
            "modelship.model.sha256": SHA,
            "org.example.team": 'data "science" $HOME',
        },
        version="0.0.0-golden",
    )


def test_rendered_dockerfile_matches_golden_file() -> None:
    """Any change to the template must be a deliberate change of the golden file.

    To accept a change: MODELSHIP_UPDATE_GOLDEN=1 pytest tests/unit/test_buildcontext.py
    """
    text = render_dockerfile(golden_params())
    if os.environ.get("MODELSHIP_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]


def test_dockerfile_layer_order_and_contract() -> None:
    """deps -> server -> model; model last; SageMaker entrypoint; non-root; no wheels."""
    lines = _instructions(render_dockerfile(golden_params()))
    froms = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    assert len(froms) == 2, "multi-stage: the wheelhouse stays in stage 1"
    final = lines[froms[1] :]
    assert not any("wheels" in ln for ln in final), "wheelhouse must not reach the final image"
    assert not any("--mount" in ln for ln in lines), "legacy builder: no RUN --mount"
    idx = {key: next(i for i, ln in enumerate(final) if ln.startswith(key)) for key in (
        "COPY --from=deps /opt/venv",
        "COPY app/",
        "COPY model/",
        "USER ",
    )}  # fmt: skip
    assert idx["COPY --from=deps /opt/venv"] < idx["COPY app/"] < idx["COPY model/"]
    # only labels (metadata) may follow the model, so nothing after it is rebuilt
    assert all(ln.startswith("LABEL") for ln in final[idx["COPY model/"] + 1 :])
    assert final[idx["USER "]].split()[1] != "root" and not final[idx["USER "]].startswith("USER 0")
    assert 'ENTRYPOINT ["python", "-m", "app.serving"]' in final
    assert 'CMD ["serve"]' in final
    assert "EXPOSE 8080" in final
    assert any(ln.startswith("HEALTHCHECK") and "urllib" in ln for ln in final)
    env = " ".join(ln for ln in final if ln.startswith("ENV "))
    assert "MODELSHIP_HOST=0.0.0.0" in env and 'PATH="/opt/venv/bin:' in env


def test_label_and_env_values_are_escaped() -> None:
    text = render_dockerfile(golden_params())
    assert r'org.example.team="data \"science\" \$HOME"' in text
    assert dockerfile_quote("a\\b") == r'"a\\b"'


@pytest.mark.parametrize("bad", ["line\nbreak", "carriage\rreturn"])
def test_line_breaks_in_values_are_rejected(bad: str) -> None:
    params = golden_params()
    params.labels["org.example.note"] = bad
    with pytest.raises(BuildError, match="line break"):
        render_dockerfile(params)


@pytest.mark.parametrize(
    "ref",
    ["python:3.11-slim", "modelship-test-base:bookworm", "127.0.0.1:5055/team/py:3.11", "debian"],
)
def test_valid_base_images(ref: str) -> None:
    assert check_image_reference(ref) == ref


@pytest.mark.parametrize("ref", ["", "python 3.11", "python:3.11\nRUN rm -rf /", "UPPER:case"])
def test_invalid_base_images_are_usage_errors(ref: str) -> None:
    with pytest.raises(UsageError):
        check_image_reference(ref)


def test_names_and_tags() -> None:
    assert docker_name("Iris RF__v2") == "iris-rf-v2"
    assert image_tag("iris", SHA) == f"modelship/iris:{SHA[:12]}"
    assert python_version_for("python:3.12-slim") == "3.12"
    assert python_version_for("127.0.0.1:5000/python:3.10") == "3.10"
    assert python_version_for("modelship-test-base:bookworm") == "3.11"


def test_cache_key_depends_on_requirements_and_platform() -> None:
    a = cache_key("numpy\n", arch="x86_64", python_version="3.11")
    assert a == cache_key("numpy\n", arch="x86_64", python_version="3.11")
    assert a != cache_key("numpy\nscipy\n", arch="x86_64", python_version="3.11")
    assert a != cache_key("numpy\n", arch="aarch64", python_version="3.11")
    assert a != cache_key("numpy\n", arch="x86_64", python_version="3.12")


# ---- the whole folder (with a pre-filled wheelhouse cache: no network) ---------------


def _seed_wheelhouse(home: Path, python_version: str = "3.11") -> list[str]:
    """Put a finished wheelhouse where ensure_wheelhouse looks, as a warm cache does."""
    text = serving_requirements_text()
    key = cache_key(text, arch="x86_64", python_version=python_version)
    wh = home / "cache" / "wheelhouse" / key
    wh.mkdir(parents=True)
    wheels = ["numpy-0-cp311-none-any.whl", "onnxruntime-0-cp311-none-any.whl"]
    for w in wheels:
        (wh / w).write_bytes(b"not really a wheel: " + w.encode())
    (wh / "requirements.txt").write_text(text, encoding="utf-8")
    (wh / COMPLETE_MARKER).write_text(json.dumps({"wheels": wheels}), encoding="utf-8")
    return wheels


def _converted(tmp_path: Path) -> types.SimpleNamespace:
    onnx = tmp_path / "conv" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"onnx bytes")
    (onnx.parent / "model.signature.json").write_text('{"schema": 1}', encoding="utf-8")
    (onnx.parent / "model.proof.json").write_text('{"schema": 1}', encoding="utf-8")
    return types.SimpleNamespace(
        onnx_path=onnx,
        signature_path=onnx.parent / "model.signature.json",
        proof_path=onnx.parent / "model.proof.json",
    )


def _profile(name: str = "iris", base: str = "python:3.11-slim", labels: dict | None = None):
    return types.SimpleNamespace(
        name=name, image=types.SimpleNamespace(base_image=base, labels=labels or {})
    )


def test_prepare_build_context_writes_everything_with_a_manifest(
    tmp_path: Path, modelship_home: Path
) -> None:
    wheels = _seed_wheelhouse(modelship_home)
    conv = _converted(tmp_path)
    ctx = prepare_build_context(_profile(labels={"org.example.team": "ds"}), conv, tmp_path / "ctx")
    root = ctx.path
    sha = hashlib.sha256(b"onnx bytes").hexdigest()
    assert ctx.model_sha256 == sha
    assert ctx.tag == f"modelship/iris:{sha[:12]}"
    assert ctx.wheelhouse is not None and not ctx.wheelhouse.downloaded
    for rel in (
        "Dockerfile",
        "app/__init__.py",
        "app/serving/__init__.py",
        "app/serving/signature.py",
        "model/model.onnx",
        "model/model.signature.json",
        "model/model.proof.json",
        "wheels/requirements.txt",
        *(f"wheels/{w}" for w in wheels),
    ):
        assert (root / rel).is_file(), rel
    assert not list(root.rglob("__pycache__"))
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["tag"] == ctx.tag and manifest["base_image"] == "python:3.11-slim"
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel
    assert "model/model.onnx" in manifest["files"]
    dockerfile = (root / "Dockerfile").read_text()
    assert f'modelship.model.sha256="{sha}"' in dockerfile
    assert 'org.example.team="ds"' in dockerfile
    assert ctx.labels["modelship.managed"] == "true"


def test_prepare_replaces_its_own_old_context_but_never_a_foreign_folder(
    tmp_path: Path, modelship_home: Path
) -> None:
    _seed_wheelhouse(modelship_home)
    conv = _converted(tmp_path)
    dest = tmp_path / "ctx"
    prepare_build_context(_profile(), conv, dest)
    (dest / "model" / "stale.onnx").write_bytes(b"old")
    prepare_build_context(_profile(), conv, dest)
    assert not (dest / "model" / "stale.onnx").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="not made by ModelShip"):
        prepare_build_context(_profile(), conv, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_reserved_labels_and_missing_model_are_clear_errors(
    tmp_path: Path, modelship_home: Path
) -> None:
    _seed_wheelhouse(modelship_home)
    conv = _converted(tmp_path)
    with pytest.raises(UsageError, match=r"modelship\.deployment"):
        prepare_build_context(_profile(labels={"modelship.deployment": "x"}), conv, tmp_path / "c1")
    conv.onnx_path = tmp_path / "nope.onnx"
    with pytest.raises(BuildError, match="missing"):
        prepare_build_context(_profile(), conv, tmp_path / "c2")


def test_a_converted_model_path_is_enough(tmp_path: Path, modelship_home: Path) -> None:
    """Rollback rebuilds from a kept version folder: signature and proof sit next to it."""
    _seed_wheelhouse(modelship_home)
    conv = _converted(tmp_path)
    ctx = prepare_build_context(_profile(), conv.onnx_path, tmp_path / "ctx")
    assert (ctx.path / "model" / "model.proof.json").is_file()


def test_preview_is_what_the_build_renders(tmp_path: Path, modelship_home: Path) -> None:
    """The wizard's review page shows exactly the Dockerfile the build writes."""
    from app.image.buildcontext import preview_dockerfile

    _seed_wheelhouse(modelship_home)
    conv = _converted(tmp_path)
    profile = _profile(labels={"org.example.team": "ds"})
    ctx = prepare_build_context(profile, conv, tmp_path / "ctx")
    assert preview_dockerfile(profile, conv.onnx_path) == (ctx.path / "Dockerfile").read_text()
    assert "modelship.model.sha256" not in preview_dockerfile(profile, None)
