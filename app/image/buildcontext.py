"""Prepare the folder an image is built from, separately from building it.

Keeping "prepare the build directory" apart from "build the image" (as Truss does)
lets the Dockerfile be golden-tested without Docker, lets a user inspect exactly what
goes into their image, and lets remote targets ship the same folder elsewhere.

The folder holds::

    Dockerfile        rendered from resources/docker/Dockerfile.j2
    wheels/           the wheelhouse + requirements.txt (stage 1 only)
    app/              app/__init__.py + app/serving/ (the serving runtime)
    model/            model.onnx, model.signature.json, model.proof.json
    manifest.json     sha256 of every file above, and what the image is made of
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from app import __version__, paths
from app.errors import BuildError, UsageError
from app.hashing import sha256_file
from app.image.wheelhouse import Wheelhouse, ensure_wheelhouse
from app.nextstep import run_command, say
from app.progress import CancelToken, NullProgress, Progress

# Image platform -> the machine architecture its wheels are built for.
PLATFORM_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}

DEFAULT_BASE_IMAGE = "python:3.11-slim"
IMAGE_UID = 10001
# The PATH the base images need: the tests' base image (a debootstrap import) has an
# empty config, so the Dockerfile must set PATH itself.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MODEL_DIR_IN_IMAGE = "/opt/modelship/model"

_LABEL_KEY = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
# A Docker image reference: [registry[:port]/]name[:tag][@digest], no whitespace.
_IMAGE_REF = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_MARKER = ".modelship-build-context"


@dataclass
class DockerfileParams:
    """Everything the Dockerfile template takes (and nothing else: StrictUndefined)."""

    base_image: str
    labels: dict[str, str]
    version: str = __version__
    uid: int = IMAGE_UID

    def context(self) -> dict[str, Any]:
        return {
            "base_image": self.base_image,
            "labels": dict(sorted(self.labels.items())),
            "version": self.version,
            "uid": int(self.uid),
            "path": SYSTEM_PATH,
            "venv_path": "/opt/venv/bin:" + SYSTEM_PATH,
        }


@dataclass
class BuildContext:
    """A prepared build folder and what the image built from it will be."""

    path: Path
    dockerfile: Path
    tag: str
    base_image: str
    deployment: str
    model_sha256: str
    labels: dict[str, str]
    python_version: str
    wheelhouse: Wheelhouse | None = None
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    platform: str = "linux/amd64"  # the image's platform (its wheelhouse was made for it)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "tag": self.tag,
            "base_image": self.base_image,
            "deployment": self.deployment,
            "model_sha256": self.model_sha256,
            "labels": self.labels,
            "python_version": self.python_version,
        }


# ---- template ---------------------------------------------------------------


def dockerfile_quote(value: object) -> str:
    """Quote a value for ENV/LABEL: double quotes, escaped, no line breaks.

    Docker substitutes ``$VAR`` inside ENV and LABEL values, so ``$`` is escaped too.
    A line break would end the instruction and let a value inject new ones.
    """
    text = str(value)
    if "\n" in text or "\r" in text:
        raise BuildError(
            f"A value for the Dockerfile contains a line break: {text.splitlines()[0]!r}...",
            "Remove line breaks from names and labels in the profile.",
        )
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["dq"] = dockerfile_quote
    return env


def template_text() -> str:
    return resources.files("resources.docker").joinpath("Dockerfile.j2").read_text("utf-8")


def render_dockerfile(params: DockerfileParams) -> str:
    """The Dockerfile for these parameters (pure: golden-tested)."""
    check_image_reference(params.base_image)
    for key in params.labels:
        if not _LABEL_KEY.match(key):
            raise BuildError(
                f"Invalid image label name {key!r}.", "Use lowercase a-z, 0-9, . and -."
            )
    try:
        return _environment().from_string(template_text()).render(**params.context())
    except jinja2.UndefinedError as exc:  # a template bug, caught by the golden test
        raise BuildError(f"The Dockerfile template is broken: {exc}.") from exc


def check_image_reference(ref: str) -> str:
    if not ref or not _IMAGE_REF.match(ref):
        raise UsageError(
            f"{ref!r} is not a valid Docker image name.",
            "Give a base image like python:3.11-slim or registry.example.org/team/python:3.11.",
        )
    return ref


def python_version_for(base_image: str, default: str = "3.11") -> str:
    """The image's Python version, guessed from a python:X.Y tag (the wheels must match)."""
    m = re.search(r"(?:^|/)python:(\d+\.\d+)", base_image)
    return m.group(1) if m else default


# ---- names ------------------------------------------------------------------


def docker_name(name: str) -> str:
    """A deployment name as a Docker repository component (lowercase, [a-z0-9._-])."""
    out = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("._-")
    out = re.sub(r"[._-]{2,}", "-", out)
    if not out:
        raise UsageError(
            f"{name!r} cannot be used as a deployment name.", "Use letters and digits."
        )
    return out[:100]


def image_tag(deployment: str, model_sha256: str) -> str:
    return f"modelship/{docker_name(deployment)}:{model_sha256[:12]}"


# ---- profile access ----------------------------------------------------------


def _get(obj: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if obj is None:
            return default
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return default if obj is None else obj


def deployment_name(profile: Any) -> str:
    """The deployment's name: the profile's deployment name if it has one, else its name."""
    return str(
        _get(profile, "deployment.name")
        or _get(profile, "target.deployment_name")
        or _get(profile, "name")
    )


def profile_base_image(profile: Any) -> str:
    return str(
        _get(profile, "image.base_image") or _get(profile, "image.base") or DEFAULT_BASE_IMAGE
    )


def image_labels(profile: Any, model_sha256: str | None) -> dict[str, str]:
    """The labels an image of ``profile`` gets (the profile's own + ModelShip's)."""
    labels = {str(k): str(v) for k, v in (_get(profile, "image.labels") or {}).items()}
    reserved = sorted(k for k in labels if k.startswith("modelship."))
    if reserved:
        raise UsageError(
            f"Image labels starting with 'modelship.' are ModelShip's own: {', '.join(reserved)}.",
            "Rename these labels in [image] labels of the profile.",
        )
    deployment = deployment_name(profile)
    labels["modelship.deployment"] = deployment
    labels["modelship.profile"] = str(_get(profile, "name") or deployment)
    if model_sha256:
        labels["modelship.model.sha256"] = model_sha256
    return labels


def preview_dockerfile(profile: Any, model_path: str | Path | None = None) -> str:
    """The Dockerfile a build of ``profile`` renders (for the wizard's review page).

    Same template and parameters as :func:`prepare_build_context`; the model's sha256
    label only when the converted model exists yet.
    """
    sha = None
    if model_path is not None and Path(model_path).is_file():
        sha = sha256_file(Path(model_path))
    base = check_image_reference(profile_base_image(profile))
    return render_dockerfile(DockerfileParams(base_image=base, labels=image_labels(profile, sha)))


# ---- the build folder --------------------------------------------------------


def _model_files(conversion: Any) -> dict[str, Path]:
    """The model, signature and proof, from a ConversionResult or a converted .onnx path."""
    if isinstance(conversion, (str, Path)):
        onnx_path = Path(conversion)
        sig = proof = None
    else:
        onnx_path = Path(conversion.onnx_path)
        sig = getattr(conversion, "signature_path", None)
        proof = getattr(conversion, "proof_path", None)
    # Next to the model, as convert writes them: MODEL.signature.json, MODEL.proof.json.
    sig = Path(sig) if sig else onnx_path.with_name(onnx_path.stem + ".signature.json")
    proof = Path(proof) if proof else onnx_path.with_name(onnx_path.stem + ".proof.json")
    files = {"model.onnx": onnx_path, "model.signature.json": sig}
    if proof.is_file():
        files["model.proof.json"] = proof
    for name, p in files.items():
        if not p.is_file():
            raise BuildError(
                f"The converted model's {name} is missing ({p}).",
                say(
                    "Run the conversion again (",
                    run_command("convert", quote="", flags="or deploy"),
                    ").",
                ),
            )
    return files


def _clear(dest: Path) -> None:
    """Empty a previous build folder; refuse to wipe a folder that is not ours."""
    if dest.exists():
        if any(dest.iterdir()) and not (dest / _MARKER).exists():
            raise UsageError(
                f"{dest} is not empty and was not made by ModelShip.",
                "Choose an empty folder for the build context.",
            )
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / _MARKER).write_text("ModelShip build context; safe to delete.\n", encoding="utf-8")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _copy_serving_runtime(dest: Path) -> None:
    """``app/__init__.py`` + ``app/serving/`` as the package ``app.serving``."""
    app_dir = Path(__file__).resolve().parent.parent
    target = dest / "app"
    target.mkdir(parents=True)
    shutil.copyfile(app_dir / "__init__.py", target / "__init__.py")
    shutil.copytree(
        app_dir / "serving",
        target / "serving",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "tests"),
        copy_function=shutil.copyfile,
    )


def _normalise_modes(root: Path) -> None:
    """Readable by the image's non-root user, identical bits on every host (cache hits)."""
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def default_context_dir(deployment: str) -> Path:
    return paths.cache_dir() / "build" / docker_name(deployment)


def prepare_build_context(
    profile: Any,
    conversion: Any,
    dest: str | Path | None = None,
    *,
    base_image: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    requirements_text: str | None = None,
    platform: str = "linux/amd64",
) -> BuildContext:
    """Write the build folder for ``profile``'s image of ``conversion``'s model.

    ``conversion`` is a ConvertedModel (anything with ``onnx_path`` and, ideally,
    ``signature_path`` and ``proof_path``). ``platform`` is the image's platform
    (``linux/amd64`` or ``linux/arm64``): the wheelhouse is downloaded for it.
    """
    arch = PLATFORM_ARCH.get(platform)
    if arch is None:
        raise UsageError(
            f"ModelShip cannot build images for {platform!r}.",
            f"Choose one of: {', '.join(PLATFORM_ARCH)}.",
        )
    progress = progress or NullProgress()
    cancel = cancel or CancelToken()
    deployment = deployment_name(profile)
    base = check_image_reference(base_image or profile_base_image(profile))
    python_version = str(_get(profile, "image.python_version") or python_version_for(base))
    model_files = _model_files(conversion)
    model_sha = sha256_file(model_files["model.onnx"])
    tag = image_tag(deployment, model_sha)
    labels = image_labels(profile, model_sha)  # a bad label fails before any work

    progress.update(None, "Preparing the serving runtime's packages")
    wheelhouse = ensure_wheelhouse(
        requirements_text,
        arch=arch,
        python_version=python_version,
        progress=progress,
        cancel=cancel,
    )
    cancel.raise_if_cancelled()

    dest = Path(dest) if dest is not None else default_context_dir(deployment)
    _clear(dest)
    for wheel in wheelhouse.wheels:
        _link_or_copy(wheelhouse.path / wheel, dest / "wheels" / wheel)
    shutil.copyfile(wheelhouse.requirements, dest / "wheels" / "requirements.txt")
    _copy_serving_runtime(dest)
    (dest / "model").mkdir()
    for name, src in model_files.items():
        shutil.copyfile(src, dest / "model" / name)
    cancel.raise_if_cancelled()

    params = DockerfileParams(base_image=base, labels=labels)
    dockerfile = dest / "Dockerfile"
    dockerfile.write_text(render_dockerfile(params), encoding="utf-8")
    _normalise_modes(dest)

    files = {
        p.relative_to(dest).as_posix(): sha256_file(p)
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.name != _MARKER
    }
    manifest = {
        "schema": 1,
        "modelship_version": __version__,
        "tag": tag,
        "base_image": base,
        "python_version": python_version,
        "deployment": deployment,
        "labels": {"modelship.managed": "true", "modelship.version": __version__, **labels},
        "files": files,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    progress.update(1.0, f"Build context ready in {dest}")
    return BuildContext(
        path=dest,
        dockerfile=dockerfile,
        tag=tag,
        base_image=base,
        deployment=deployment,
        model_sha256=model_sha,
        labels=manifest["labels"],
        python_version=python_version,
        wheelhouse=wheelhouse,
        files=files,
        platform=platform,
    )
