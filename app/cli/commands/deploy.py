"""`modelship deploy PROFILE|MODEL`: a profile (or a model file) to a smoke-tested endpoint.

PROFILE is a saved profile's name or a profile file; a MODEL file makes a profile
from the flags (saved, so `modelship deploy NAME` re-runs it). Progress goes to
stderr, the result to stdout. Ctrl-C cancels and rolls back; a second Ctrl-C stops
at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.cli.commands._console import ConsoleProgress, command_name, print_json
from app.cli.commands.convert import add_model_arguments, add_trust_argument
from app.errors import ProfileError, UsageError
from app.progress import CancelToken
from app.store.profile import Profile, default_name, load_profile, new_profile, profile_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        metavar="PROFILE|MODEL",
        help="a saved profile's name, a profile file (.toml), or a model file",
    )
    parser.add_argument("--target", help="where to deploy: local (default) or docker")
    parser.add_argument("--name", help="deployment name (default: from the model file name)")
    parser.add_argument("--base-image", help="base image for targets that build one")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 to answer on")
    add_model_arguments(parser, tolerance_default=None)
    add_trust_argument(parser)
    parser.add_argument(
        "--accept-host-key",
        metavar="FINGERPRINT",
        help="openstack: the VM's SSH host key fingerprint (SHA256:...) you checked, for "
        "images that print no host keys on the console",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace the running deployment of this name even though the new model takes "
        "other inputs (callers sending the old inputs will get errors)",
    )
    parser.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="keep a deployment that fails its smoke test, for debugging",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run the checks and print the plan (and, for targets that have one, the exact "
        "objects a deploy would create) without creating, building or pushing anything",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the deployment record as JSON (with --dry-run: the plan and the objects)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show build and server logs")


# ---- the profile to run -----------------------------------------------------------


def _is_profile_file(path: Path) -> bool:
    if path.suffix.lower() == ".toml":
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="strict")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return "schema" in head and "[model]" in head


def resolve_profile(args: argparse.Namespace) -> tuple[Profile, bool]:
    """The profile to deploy, and whether a successful deploy should save it (a new or
    changed profile). Nothing is written here: a failed or refused deploy leaves the
    saved profiles as they were."""
    what = str(args.what)
    path = Path(what).expanduser()
    settings: dict[str, Any] = {}
    if args.port is not None:
        settings["port"] = args.port
    from app.model.mlflowmodel import is_model_dir, is_uri

    # a model file, an MLflow model folder (the one with the MLmodel file), or an
    # MLflow runs:/ or models:/ URI (kept as it is; the pipeline downloads it)
    uri = is_uri(what)
    if uri or (path.is_file() and not _is_profile_file(path)) or is_model_dir(path):
        source = what.strip() if uri else path
        target = args.target
        base_image = args.base_image
        # a new model for a running deployment: where and how it runs stay (its port,
        # key, cloud settings), unless the flags say otherwise
        running = _running(args.name or default_name(source))
        if running is not None and args.target in (None, running.target):
            kept = running.profile.get("target") or {}
            target = running.target
            settings = {**(kept.get("settings") or {}), **settings}
            base_image = base_image or (running.profile.get("image") or {}).get("base_image")
        profile = new_profile(
            source,
            name=args.name,
            target=target or "local",
            settings=settings,
            base_image=base_image,
        )
        _trust_given(profile, args)
        _apply_overrides(profile, args)  # the conversion flags
        return profile, True
    profile = load_profile(what)
    for note in profile.notes:
        print(f"note: {note}", file=sys.stderr)
    from_saved = profile.source is not None and profile.source == profile_path(profile.name)
    _trust_given(profile, args)
    changed = _apply_overrides(profile, args)
    return profile, bool(changed or not from_saved)


def _trust_given(profile: Profile, args: argparse.Namespace) -> None:
    """What the person at this computer said on the command line, kept on this computer
    (app.store.trust), never in the profile: --trust for this exact model file, --python for
    the interpreter they named."""
    from app.store import trust

    if getattr(args, "trust", False):
        trust.trust_model(profile.model.path, _sha256(profile.model.path))
    if getattr(args, "python", None):
        trust.trust_python(str(args.python))


def _running(name: str) -> Any:
    """The live deployment of this name, if any (its record)."""
    from app.store.records import find_record

    try:
        return find_record(name)
    except UsageError:  # a damaged record: the deploy itself says so
        return None


def _kinds_with_setting(setting: str) -> list[str]:
    """The kinds whose settings have ``setting`` (a flag for one setting is for them)."""
    from targets.catalog import CATALOG

    return [kind.name for kind in CATALOG.values() if setting in kind.Settings.model_fields]


def _apply_overrides(profile: Profile, args: argparse.Namespace) -> Profile | None:
    data = profile.to_dict()
    changed = False
    if args.name and args.name != data["name"]:
        data["name"] = args.name
        changed = True
    if args.target and args.target != data["target"]["kind"]:
        data["target"] = {"kind": args.target, "settings": {}}
        changed = True
    if args.port is not None:
        data["target"].setdefault("settings", {})["port"] = args.port
        changed = True
    if args.base_image:
        data.setdefault("image", {})["base_image"] = args.base_image
        changed = True
    if getattr(args, "accept_host_key", None):
        takers = _kinds_with_setting("accept_host_key")
        if data["target"]["kind"] not in takers:
            raise UsageError(f"--accept-host-key is for the {' and '.join(takers)} target only.")
        data["target"].setdefault("settings", {})["accept_host_key"] = args.accept_host_key
        changed = True
    for key, value in _model_flags(args).items():
        if data["model"].get(key) != value:
            data["model"][key] = value
            changed = True
    if not changed:
        return None
    try:
        updated = Profile.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError: a flag the target does not take
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        from app.store.profile import OPTION_NAMES, describe_errors

        problems = describe_errors(exc, OPTION_NAMES)
        raise ProfileError(
            f"The options do not fit the profile {profile.name!r}: {problems[0]}",
            "Check --target and --port (not every target takes a port), and --tolerance "
            "(a number above 0).",
            details="\n".join(problems),
        ) from None
    for field in ("name", "model", "target", "image", "smoke"):
        setattr(profile, field, getattr(updated, field))
    return profile


def _model_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The conversion flags given (the same as `convert` takes), as profile values."""
    out: dict[str, Any] = {}
    if getattr(args, "sample", None) is not None:
        out["sample_csv"] = str(Path(args.sample).expanduser().resolve())
    if getattr(args, "python", None):
        python = str(args.python)
        # a path (not a name looked up on PATH) is stored whole, so the profile runs
        # the same from any folder
        is_path = "/" in python or "\\" in python or python.startswith("~")
        out["python"] = str(Path(python).expanduser().absolute()) if is_path else python
    if getattr(args, "input_shape", None):
        out["input_shape"] = list(args.input_shape)
    if getattr(args, "tolerance", None) is not None:
        if args.tolerance <= 0:
            raise UsageError("Tolerances must be positive numbers.", "E.g. --tolerance 1e-4.")
        out["tolerance"] = float(args.tolerance)
    if getattr(args, "match_env", None) is not None:
        out["match_env"] = bool(args.match_env)
    if getattr(args, "accept_mismatch", None) is not None:
        out["accept_mismatch"] = bool(args.accept_mismatch)
    return out


def _sha256(path: Path | str) -> str:
    """The model's hash (an MLflow URI's: of the folder it downloads to)."""
    from app.hashing import sha256_file
    from app.run.steps import local_model

    try:
        return sha256_file(local_model(path))
    except OSError as exc:
        raise UsageError(
            f"Cannot read the model {path}: {exc.strerror}.", "Check the path."
        ) from None


# ---- Ctrl-C -> cancel -----------------------------------------------------------------


@contextlib.contextmanager
def cancel_on_interrupt(cancel: CancelToken, progress: ConsoleProgress) -> Iterator[None]:
    """First Ctrl-C cancels (the run rolls back); a second one interrupts at once."""

    def handler(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        progress.update(None, "Cancelling: removing what was created (Ctrl-C again to force)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _quoted(argv: list[str]) -> list[str]:
    import shlex

    return [shlex.quote(a) for a in argv if a != "--replace"]


def ask_input_change(change: Any) -> bool:
    """A terminal's yes/no before a new model changes a running deployment's inputs."""
    print(
        f"\n{change.name!r} runs version {change.version}; this model changes what its "
        f"callers must send ({change.words()}).",
        file=sys.stderr,
    )
    print(f"Replace {change.name!r} anyway? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()  # the question is on stderr: stdout is for results
    return answer.strip().lower() in {"y", "yes"}


def print_result(record: Any, *, as_json: bool, verb: str = "Deployed") -> None:
    if as_json:
        print_json(record.to_dict())
        return
    from targets import get_target

    url = record.url
    title = get_target(record.target).title
    print(f"{verb} {record.name!r} (version {record.current_version}) to {title}: {url}")
    smoke = record.smoke or {}
    if smoke.get("summary"):
        print(f"Smoke test: {smoke['summary']}")
    for i, line in enumerate(try_it_lines(record)):
        print(f"{'Try it:' if i == 0 else '':<12}{line}")
    prog = command_name()
    print(f"Status:     {prog} status {record.name}")
    print(f"Remove:     {prog} teardown {record.name}")


def try_it_lines(record: Any) -> list[str]:
    """How to call the deployment, from its target's own description: the commands, then
    in words how it is authorised. [] when there is no short sample row to send."""
    from targets.catalog import get_kind

    rows = _example_rows(record)
    endpoint = record.endpoint_obj()
    if rows is None or endpoint is None:
        return []
    settings = None
    try:
        from app.store.profile import Profile

        settings = Profile.model_validate(record.profile).target.settings
    except ValueError:  # a profile this version no longer reads: no key entry to name
        pass
    snippets = get_kind(record.target).call_snippets(endpoint, settings, rows)
    return [*snippets.commands, *([f"({snippets.note})"] if snippets.note else [])]


def _example_rows(record: Any) -> list[Any] | None:
    version = record.version()
    if version is None:
        return None
    try:
        proof = json.loads(version.proof_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    rows = proof.get("rows") or []
    if not rows:
        return None
    return rows[:1] if len(json.dumps(rows[:1])) < 400 else None


def run(args: argparse.Namespace) -> int:
    from app.run import ProgressEvents, run_deploy

    progress = ConsoleProgress(verbose=args.verbose)
    profile, save = resolve_profile(args)
    if args.port is not None and not (1 <= args.port <= 65535):
        raise UsageError(f"--port {args.port} is not a port.", "Use a number from 1 to 65535.")
    if getattr(args, "dry_run", False):
        return dry_run(profile, as_json=args.json)
    cancel = CancelToken()
    from app.run import InputsChangeRefused

    try:
        with cancel_on_interrupt(cancel, progress):
            record = run_deploy(
                profile,
                on_event=ProgressEvents(progress),
                cancel=cancel,
                keep_on_failure=args.keep_on_failure,
                save=save,
                allow_input_change=args.replace,
                confirm_input_change=ask_input_change if _interactive() else None,
            )
    except InputsChangeRefused as exc:
        typed = getattr(args, "argv", None) or ["deploy", str(args.what)]
        again = [command_name(), *_quoted(typed)]
        exc.hint = (
            f"If that is what you want, run: {' '.join(again)} --replace; "
            "to keep both, deploy it under another --name."
        )
        raise
    if save:
        progress.update(
            None,
            f"Saved profile {profile.name!r} ({profile_path(profile.name)}); "
            f"re-run: {command_name()} deploy {profile.name}",
        )
    print_result(record, as_json=args.json)
    sys.stdout.flush()
    return 0


def dry_run(profile: Profile, *, as_json: bool) -> int:
    """`deploy --dry-run`: the checks (raising the first problem, with the usual exit
    code), then the plan and the target's exact objects. Creates, builds, pushes and
    records nothing."""
    from app.run import manifests, plan
    from app.run.preflight import check_ready
    from app.store.records import find_record
    from targets import get_target

    target = get_target(profile.target.kind)
    check_ready(target, profile, find_record(profile.name))
    items = plan(profile)
    document = manifests(profile)
    warnings = target.warnings(profile)
    if as_json:
        print_json(
            {
                "name": profile.name,
                "target": profile.target.kind,
                "plan": [
                    {"action": i.action, "kind": i.kind, "name": i.name, "detail": i.detail}
                    for i in items
                ],
                "warnings": warnings,
                "manifests": document,
            }
        )
        return 0
    print(f"Dry run: nothing was created. A deploy of {profile.name!r} to {target.title} would:")
    for item in items:
        print(f"  {item}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if document:
        print("\nThe exact objects it would create (secrets redacted):\n")
        sys.stdout.write(document if document.endswith("\n") else document + "\n")
    print("\nTo deploy, run the same command without --dry-run.")
    sys.stdout.flush()
    return 0
