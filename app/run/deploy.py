"""``run_deploy``: one profile -> a running, smoke-tested endpoint, or nothing at all.

The CLI and the wizard both call it and only differ in how they show its events. On
failure or cancel everything this run created is removed, newest first, and the
deployment it was replacing (same name) is brought back, unless the user asked to keep
a failed deployment for debugging. A deployment of the same name is replaced only
after the new one passed its smoke test. The saved profile is written only after
success: a failed or refused deploy leaves it as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from app.domain import BuiltImage, ConvertedModel, DeploymentRecord, Endpoint, PushedImage
from app.errors import SmokeTestError
from app.model.mlflowmodel import pinned_uris
from app.nextstep import keep_on_failure, run_command, say
from app.progress import CancelToken
from app.run import history, replace, steps
from app.run.attempt import Attempt
from app.run.events import Event, OnEvent
from app.run.lock import deployment_lock
from app.run.preflight import check_ready
from app.store.profile import Profile, save_profile
from app.store.records import find_record, save_record
from app.store.trust import require_python
from targets.base import Target
from targets.catalog import get_target


def run_deploy(
    profile: Profile,
    *,
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    keep_on_failure: bool = False,
    converted: ConvertedModel | None = None,
    save: bool = False,
    allow_input_change: bool = False,
    confirm_input_change: Callable[[replace.InputChange], bool] | None = None,
) -> DeploymentRecord:
    """Deploy ``profile`` and smoke-test it; return the saved DeploymentRecord.

    ``converted`` is a conversion of this profile already proven (the wizard's Convert
    page): used as it is when the profile still describes the same input. ``save``
    writes the profile to the saved profiles once the deploy succeeded.

    A new model whose inputs differ from those of the running deployment of the same
    name replaces it only with ``allow_input_change`` (the CLI's ``--replace``, the
    wizard's tick), or when ``confirm_input_change(change)`` says yes (a terminal that
    asks); otherwise it raises :class:`~app.run.replace.InputsChangeRefused` before
    anything of the running one is touched.

    Raises a :class:`~app.errors.ModelShipError` (``Cancelled`` on cancel) after rolling
    back everything this run created; the message lists what was removed.
    """
    with deployment_lock(profile.name), pinned_uris():  # a models:/ URI: resolved once
        agree = (lambda change: True) if allow_input_change else confirm_input_change
        record = _run_deploy(profile, on_event, cancel, keep_on_failure, converted, agree)
    if save:
        save_profile(profile)
    return record


def _run_deploy(
    profile: Profile,
    on_event: OnEvent | None,
    cancel: CancelToken | None,
    keep_on_failure: bool,
    given: ConvertedModel | None,
    agree: Callable[[replace.InputChange], bool] | None = None,
) -> DeploymentRecord:
    keep = keep_on_failure or profile.smoke.keep_on_failure
    target = get_target(profile.target.kind)
    previous = find_record(profile.name)
    require_python(profile.model.python)  # before anything: a profile's program runs
    check_ready(target, profile, previous)  # only once trusted on this computer
    attempt = Attempt(profile.name, "deploy", target.name, profile.to_dict(), on_event, cancel)
    version = previous.next_version_number() if previous else 1
    model: ConvertedModel | None = None
    image: BuiltImage | None = None
    pushed: PushedImage | None = None
    endpoint: Endpoint | None = None
    suspended: Target | None = None
    report = None
    try:
        with attempt.step_("intake") as progress:
            read = steps.intake(profile, progress)  # handed on: read and hashed once
        with attempt.step_("convert") as progress:
            model = steps.convert(profile, version, attempt, progress, previous, given, read)
            change = replace.input_change(previous, model.signature_path)
            if change and not (agree is not None and agree(change)):
                raise replace.InputsChangeRefused(change)
            if change:
                progress.update(None, f"Replacing {profile.name!r}: {change.words()}")
        if target.ships == "image":
            with attempt.step_("build") as progress:
                platform = target.platforms(profile)[0]
                image = steps.build(profile, model, platform, attempt, progress)
            registry = target.registry(profile)
            if registry is not None:
                with attempt.step_("push") as progress:
                    before = attempt.context(
                        profile, model, version,
                        image=image, pushed=None, previous=previous, progress=progress,
                    )  # fmt: skip
                    target.prepare(before)  # e.g. the app that Heroku's registry pushes into
                    pushed = steps.push(registry, image, profile.name, version, attempt, progress)
        with attempt.step_("deploy", f"Deploying to {target.title}") as progress:
            if previous is not None and replace.stops_old_first(previous, target):
                suspended = replace.suspend(previous, progress)
            ctx = attempt.context(
                profile, model, version,
                image=image, pushed=pushed, previous=previous, progress=progress,
            )  # fmt: skip
            endpoint = target.deploy(ctx)
            progress.update(None, f"Answering on {endpoint.url}")
        with attempt.step_("smoke") as progress:
            report = steps.smoke(target, profile, endpoint, model.proof_path, attempt, progress)
    except BaseException as exc:
        if keep and endpoint is not None and model is not None and isinstance(exc, SmokeTestError):
            _keep_failed(exc, attempt, profile, previous, endpoint, version, model, image, pushed)
            raise
        removed = attempt.undo()
        if previous is None:
            with contextlib.suppress(OSError):
                steps.versions_dir(profile.name).rmdir()  # only if empty: nothing else of it
        restored = replace.restore(attempt, suspended, previous) if suspended and previous else ""
        attempt.journal.close("rolled_back")
        raise attempt.outcome_error(exc, removed, restored) from (
            None if isinstance(exc, KeyboardInterrupt) else exc
        )

    retired = replace.retire(previous, target, attempt.progress("deploy")) if previous else []
    record = history.record_version(
        profile, previous, endpoint, version, model, image, pushed, report,
        attempt.journal.resources(),
    )  # fmt: skip
    record.message = (
        f"Version {version} deployed"
        + (f"; replaced version {previous.current_version}" if previous else "")
        + "."
    )
    pruned = history.prune(record, attempt.progress("deploy"))
    save_record(record)
    attempt.journal.close("deployed")
    attempt.emit(
        Event(
            "finished",
            "smoke",
            message=report.summary() if report is not None else "Deployed.",
            data={"record": record.to_dict(), "retired": retired, "pruned": pruned},
        )
    )
    return record


def _keep_failed(
    exc: SmokeTestError,
    attempt: Attempt,
    profile: Profile,
    previous: DeploymentRecord | None,
    endpoint: Endpoint,
    version: int,
    model: ConvertedModel,
    image: BuiltImage | None,
    pushed: PushedImage | None,
) -> None:
    """--keep-on-failure: record the failed deployment instead of removing it."""
    report = getattr(exc, "report", None)
    record = history.record_version(
        profile, previous, endpoint, version, model, image, pushed, report,
        attempt.journal.resources(),
    )  # fmt: skip
    record.state = "failed"
    record.message = say("Kept after a failed smoke test (", keep_on_failure(), ").")
    save_record(record)
    attempt.journal.close("kept")
    exc.message = say(
        exc.message,
        f" The deployment was kept for debugging at {endpoint.url}; remove it with ",
        run_command("teardown", profile.name),
        ".",
    )
