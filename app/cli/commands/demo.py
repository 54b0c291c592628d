"""`modelship demo`: deploy the bundled sample model and show that it works.

The sample is a churn classifier trained on first use from the bundled CSV (see
app/model/samples.py). The demo runs the same pipeline as `modelship deploy`: convert, prove
the conversion on the CSV's rows, start the endpoint (the `local` target unless
--target says otherwise), smoke-test it, and print how to try and remove it. Once it
works, the profile is saved as NAME (default "demo") so `modelship deploy demo` re-runs
it; a failed demo saves nothing.
"""

from __future__ import annotations

import argparse

from app.cli.commands._console import ConsoleProgress, command_name
from app.cli.commands.deploy import cancel_on_interrupt, print_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", default="local", help="where to deploy: local (default) or docker"
    )
    parser.add_argument("--name", default="demo", help="deployment name (default: demo)")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 to answer on")
    parser.add_argument("--base-image", help="base image for targets that build one")
    parser.add_argument("--json", action="store_true", help="print the deployment record as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show build and server logs")


def run(args: argparse.Namespace) -> int:
    from app.model.samples import sample_csv_path, sample_model_path
    from app.progress import CancelToken
    from app.run import ProgressEvents, run_deploy
    from app.store.profile import new_profile, profile_path

    progress = ConsoleProgress(verbose=args.verbose)
    progress.step("Preparing the sample model (a churn classifier trained on the bundled CSV)")
    settings = {"port": args.port} if args.port is not None else {}
    profile = new_profile(
        sample_model_path(),
        name=args.name,
        target=args.target,
        settings=settings,
        base_image=args.base_image,
    )
    profile.model.sample_csv = sample_csv_path()
    cancel = CancelToken()
    with cancel_on_interrupt(cancel, progress):
        # saved only once it works: a failed demo leaves no profile behind
        record = run_deploy(profile, on_event=ProgressEvents(progress), cancel=cancel, save=True)
    progress.update(
        None,
        f"Saved profile {profile.name!r} ({profile_path(profile.name)}); "
        f"re-run: {command_name()} deploy {profile.name}",
    )
    if not args.json:
        version = record.version()
        if version is not None and version.conversion:
            print(f"Conversion: {version.conversion}")
    print_result(record, as_json=args.json)
    return 0
