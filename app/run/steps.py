"""The steps of a deploy: each a plain function of its input, a progress and a cancel.

intake -> convert -> build (targets that ship an image) -> push (targets with a
registry) -> the target's deploy -> smoke. Each step journals what it creates before
creating it (through the :class:`app.run.attempt.Attempt`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain import BuiltImage, ConvertedModel, DeploymentRecord, Endpoint, PushedImage, Resource
from app.errors import SmokeTestError
from app.hashing import sha256_file
from app.nextstep import keep_on_failure, say
from app.paths import data_dir
from app.progress import CancelToken, Progress
from app.run.attempt import Attempt
from app.store.profile import Profile
from targets.base import Registry, Target


def versions_dir(name: str) -> Path:
    return data_dir() / "models" / name


def file_sha256(path: Path | None) -> str | None:
    """The file's hash, or None when there is no file (or it can no longer be read)."""
    if path is None:
        return None
    try:
        return sha256_file(path)
    except OSError:
        return None


def local_model(path: Path | str) -> Path:
    """The model on this machine: an MLflow ``runs:/``/``models:/`` URI (a profile keeps
    it as text) is downloaded into the cache, once per run or model version."""
    from app.store.profile import is_uri_path

    if is_uri_path(path):
        from app.model.mlflowmodel import download

        return download(str(path))
    return Path(path)


# ---- intake -----------------------------------------------------------------------------


@dataclass
class ModelInput:
    """What intake found, handed on to the later steps of the same deploy: the model is
    read once and hashed once (an MLflow URI: downloaded and pinned once)."""

    artifact: Any  # app.model.intake.ModelArtifact
    local: Path  # the model on this machine (an MLflow URI's downloaded folder)
    sha256: str | None  # its hash (None: it can no longer be read)


def intake(profile: Profile, progress: Progress) -> ModelInput:
    """Read what the model is (never runs it) and hash it."""
    from app.model.intake import inspect_model

    artifact = inspect_model(profile.model.path)
    progress.update(None, f"{artifact.kind} model ({artifact.format})")
    for warning in getattr(artifact, "warnings", []) or []:
        progress.log(f"warning: {warning}")
    local = local_model(profile.model.path)
    return ModelInput(artifact, local, file_sha256(local))


def _model_sha256(profile: Profile, given: ModelInput | None) -> str | None:
    if given is not None:
        return given.sha256
    return file_sha256(local_model(profile.model.path))


# ---- convert ----------------------------------------------------------------------------


def conversion_key(profile: Profile, given: ModelInput | None = None) -> str:
    """What decides the conversion's outcome: same key, same ONNX file and proof.
    ``given``: this deploy's intake (the model's hash, taken once)."""
    from app import __version__

    m = profile.model
    data = {
        "model": _model_sha256(profile, given),
        "sample_csv": file_sha256(m.sample_csv),
        "python": m.python,
        "input_shape": m.input_shape,
        "tolerance": m.tolerance,
        "quantize": m.quantize,
        "accept_mismatch": m.accept_mismatch,
        "modelship": __version__,
    }
    if m.match_env:  # only when set: keys of profiles without it stay as they were
        data["match_env"] = True
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _reusable(
    previous: DeploymentRecord | None, given: ConvertedModel | None, key: str
) -> tuple[ConvertedModel, str] | None:
    """A conversion of the very same input whose files are intact, and where it comes
    from in words: the one handed in (the wizard's Convert page), else a kept version's."""
    if given is not None and given.conversion_key == key and given.complete():
        return given, "reusing the conversion you just proved"
    if previous is None:
        return None
    for v in sorted(previous.version_objects(), key=lambda v: -v.version):
        converted = v.converted()
        if v.conversion_key == key and converted.complete():
            return converted, f"unchanged since version {v.version}: reusing its conversion"
    return None


def convert(
    profile: Profile,
    version: int,
    attempt: Attempt,
    progress: Progress,
    previous: DeploymentRecord | None = None,
    given: ConvertedModel | None = None,
    model: ModelInput | None = None,
) -> ConvertedModel:
    """The version's converted model in its own folder (journaled before it exists).

    A conversion of the same input (same key) is copied, not redone: the wizard hands
    over the one it just proved, and a redeploy of an unchanged model reuses the last.
    ``model`` is this deploy's intake, used instead of reading the model again.
    """
    key = conversion_key(profile, model)
    vdir = versions_dir(profile.name) / f"v{version}"
    attempt.journal.record(
        Resource("files", str(vdir), name=f"files of version {version} ({vdir})")
    )
    if vdir.exists():  # left over from a crashed run with the same number
        shutil.rmtree(vdir)
    vdir.mkdir(parents=True)
    found = _reusable(previous, given, key)
    if found is not None:
        same, words = found
        for f in same.files():
            shutil.copy2(f, vdir / f.name)
        progress.update(None, f"The model is {words}")
        return ConvertedModel(
            vdir / same.onnx_path.name,
            summary=same.summary,
            conversion_key=key,
            quantized=same.quantized,
        )
    return convert_for_profile(
        profile, vdir / "model.onnx", progress, attempt.cancel, model=model, key=key
    )


def convert_for_profile(
    profile: Profile,
    out: Path,
    progress: Progress,
    cancel: CancelToken,
    *,
    model: ModelInput | None = None,
    key: str | None = None,
) -> ConvertedModel:
    """Convert and prove the profile's model into ``out``; the result to serve.

    With ``quantize`` set that is the int8 version (proven on its own). The pipeline
    and ``modelship build`` call it; it converts through :func:`prove`, as the wizard's
    Convert page does, so all convert a profile the same way. ``model`` is the deploy's
    intake and ``key`` its conversion key, when already known.
    """
    from app.model.mlflowmodel import pinned_uris

    m = profile.model
    with pinned_uris():  # without a deploy around it too (`modelship build`)
        if model is None:  # no intake handed on: the model is hashed once, here
            local = local_model(m.path)
            model = ModelInput(None, local, file_sha256(local))
        key = key or conversion_key(profile, model)
        trust = trusted(profile, model)
        result = prove(m, out, progress, cancel, trust=trust, artifact=model.artifact)
    served, quantized = result, False
    if m.quantize and result.quantized is not None:
        progress.update(None, "Serving the int8-quantized model")
        served, quantized = result.quantized, True
    summary = served.report.summary()
    progress.update(None, summary)
    return ConvertedModel(
        served.onnx_path, summary=summary, conversion_key=key, quantized=quantized
    )


def prove(
    model: Any,
    out: Path,
    progress: Progress,
    cancel: CancelToken,
    *,
    trust: bool,
    artifact: Any = None,
) -> Any:
    """Convert a profile's model section (``app.store.profile.ModelSection``) into ``out`` and
    prove it: the whole ``app.model.convert.ConversionResult`` (report, quantized version).

    The one route to the converter: the pipeline, ``modelship build`` and the wizard's
    Convert page. ``trust`` is this computer's say about the file; ``artifact`` what
    intake already read of it (else it is read here).
    """
    from app.model.convert import convert_model
    from app.model.convert.options import options_for
    from app.store.trust import require_python

    require_python(model.python)  # a profile's interpreter runs only once trusted here
    options = options_for(model, trust=trust)
    return convert_model(model.path, out, options, progress, cancel, artifact=artifact)


def trusted(profile: Profile, given: ModelInput | None = None) -> bool:
    """Did the person at this computer trust exactly this model file? (Its hash, in the
    local trust store: never a profile's say-so.)"""
    from app.store.trust import model_trusted

    digest = _model_sha256(profile, given)
    return digest is not None and model_trusted(digest)


# ---- image ------------------------------------------------------------------------------


def build(
    profile: Profile, model: ConvertedModel, platform: str, attempt: Attempt, progress: Progress
) -> BuiltImage:
    """Prepare the build context and build the image (journaled before building)."""
    import contextlib

    from app.image.buildcontext import prepare_build_context
    from app.image.image import build_image, connect

    context = prepare_build_context(
        profile, model, progress=progress, cancel=attempt.cancel, platform=platform
    )
    resource = Resource(
        "image", context.tag, name=f"image {context.tag}", data={"tag": context.tag}
    )
    attempt.journal.record(resource)
    client = connect()
    try:
        image = build_image(context, client, progress, attempt.cancel)
    finally:
        with contextlib.suppress(Exception):
            client.close()
    resource.data["id"] = image.id
    attempt.journal.update(resource)
    return image


def push(
    registry: Registry,
    image: BuiltImage,
    name: str,
    version: int,
    attempt: Attempt,
    progress: Progress,
) -> PushedImage:
    """Push the image to the target's registry (journaled before pushing)."""
    tag = f"v{version}"
    resource = Resource(
        "pushed_image",
        f"{registry.repository}:{tag}",
        name=f"pushed image {registry.repository}:{tag}",
        data={
            "repository": registry.repository,
            "tag": tag,
            "digest": "",
            "platform": image.platform,
        },
    )
    attempt.journal.record(resource)
    progress.update(None, f"Pushing to {registry.describe()}")
    pushed = registry.push(image, tag, progress, attempt.cancel)
    resource.data.update(pushed.to_dict())
    attempt.journal.update(resource)
    if pushed.bytes_pushed is not None:
        progress.update(None, f"Pushed {pushed.tagged} ({_size(pushed.bytes_pushed)} uploaded)")
    return pushed


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


# ---- smoke ------------------------------------------------------------------------------


def smoke(
    target: Target,
    profile: Profile,
    endpoint: Endpoint,
    proof: Path,
    attempt: Attempt,
    progress: Progress,
) -> Any:
    """The smoke test through the target's own client; a failure raises SmokeTestError."""
    from app.endpoint.smoke import run_smoke_test

    client = target.client(endpoint, profile)
    report = run_smoke_test(
        client, proof, timeout=profile.smoke.timeout, progress=progress, cancel=attempt.cancel
    )
    if not report.passed:
        err = SmokeTestError(
            f"The smoke test failed: {report.summary()}",
            say(
                "Check the model and the conversion proof; ",
                keep_on_failure(),
                " keeps the deployment running for debugging.",
            ),
            details="\n".join([*report.errors, *(str(m) for m in report.mismatches)]),
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    progress.update(None, report.summary())
    return report
