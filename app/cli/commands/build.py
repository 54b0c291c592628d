"""`modelship build PROFILE|MODEL`: convert the model and build its serving image.

For people who run containers themselves (or want to look at what `deploy --target
docker` would run): prints the image's tag, its size and how much it adds to the base
image. The build folder (Dockerfile, runtime, model, wheelhouse, manifest) is kept, in
``--context DIR`` or the cache. Ctrl-C cancels; nothing half-built stays tagged.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from app.cli.commands._console import ConsoleProgress, print_json
from app.errors import UsageError
from app.progress import CancelToken


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        metavar="PROFILE|MODEL",
        help="a saved profile's name, a profile file (.toml), or a model file",
    )
    parser.add_argument("--name", help="image name (default: the profile's or model's name)")
    parser.add_argument("--base-image", help="base image (default: the profile's, else "
                        "python:3.11-slim)")  # fmt: skip
    parser.add_argument(
        "--context",
        metavar="DIR",
        type=Path,
        help="write the build folder here (default: in ModelShip's cache)",
    )
    from app.cli.commands.convert import add_model_arguments, add_trust_argument

    # how the model is converted and proven, as for deploy (default: as the profile says)
    add_model_arguments(parser, tolerance_default=None)
    add_trust_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the image as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the build log")


def _profile(args: argparse.Namespace) -> Any:
    """The profile to build: a saved/file profile, or one made from a model file."""
    from app.cli.commands.deploy import _is_profile_file
    from app.store.profile import load_profile, new_profile

    path = Path(str(args.what)).expanduser()
    if path.is_file() and not _is_profile_file(path):
        profile = new_profile(path, name=args.name, target="docker", base_image=args.base_image)
    else:
        profile = load_profile(str(args.what))
        if args.name:
            profile.name = args.name
        if args.base_image:
            profile.image.base_image = args.base_image
    from app.cli.commands.deploy import _model_flags, _trust_given

    for key, value in _model_flags(args).items():
        setattr(profile.model, key, value)
    _trust_given(profile, args)  # --trust / --python: kept on this computer, as for deploy
    return profile


def _size(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 1e6:.1f} MB"


def build(profile: Any, *, context: Path | None, progress: Any, cancel: CancelToken) -> Any:
    """Convert, prepare the context and build; returns (BuildContext, Image)."""
    from app import paths
    from app.image.buildcontext import docker_name, prepare_build_context
    from app.image.image import build_image, connect
    from app.run import convert_for_profile

    client = connect()  # fail fast, before converting, when Docker is not there
    try:
        progress.step("Converting to ONNX and proving the conversion")
        out = paths.cache_dir() / "converted" / docker_name(profile.name) / "model.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        conversion = convert_for_profile(profile, out, progress, cancel)
        cancel.raise_if_cancelled()
        progress.step("Preparing the build folder")
        from targets import get_target

        target = get_target(profile.target.kind)
        platform = target.platforms(profile)[0] if target.ships == "image" else "linux/amd64"
        ctx = prepare_build_context(
            profile, conversion, context, progress=progress, cancel=cancel, platform=platform
        )
        progress.step(f"Building {ctx.tag} on {ctx.base_image}")
        image = build_image(ctx, client, progress, cancel)
        return ctx, image
    finally:
        with contextlib.suppress(Exception):
            client.close()


def run(args: argparse.Namespace) -> int:
    from app.cli.commands.deploy import cancel_on_interrupt

    if args.context is not None and args.context.exists() and not args.context.is_dir():
        raise UsageError(f"--context {args.context} is a file.", "Give a folder.")
    progress = ConsoleProgress(verbose=args.verbose)
    profile = _profile(args)
    cancel = CancelToken()
    with cancel_on_interrupt(cancel, progress):
        ctx, image = build(profile, context=args.context, progress=progress, cancel=cancel)
    if args.json:
        print_json({**image.to_dict(), "base_image": ctx.base_image, "context": str(ctx.path)})
        return 0
    print(f"Built {image.tag} ({image.id[:19]})")
    print(
        f"Size:    {_size(image.size)}; {_size(image.size_over_base)} over the base image "
        f"{ctx.base_image}"
    )
    print(f"Folder:  {ctx.path} (Dockerfile, runtime, model, wheelhouse, manifest.json)")
    print(f"Run it:  docker run --rm -p 127.0.0.1:8080:8080 {image.tag}")
    return 0
