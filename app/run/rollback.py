"""``run_rollback``: serve the version before the current one again, where it ran.

Each version records its target and profile, so going back works across targets: a
name deployed to ``local``, then to ``docker``, rolls back to the local server. The
current deployment steps aside as a redeploy's would, and comes back if the older
version fails its smoke test.
"""

from __future__ import annotations

from pathlib import Path

from app.domain import DeploymentRecord, Endpoint, ModelVersion, PushedImage
from app.errors import TargetError
from app.nextstep import run_command, say
from app.progress import CancelToken
from app.run import replace, steps
from app.run.attempt import Attempt
from app.run.events import Event, OnEvent
from app.run.lock import deployment_lock
from app.store.profile import Profile
from app.store.records import load_record, save_record
from targets.base import Target
from targets.catalog import get_target


def run_rollback(
    name: str, *, on_event: OnEvent | None = None, cancel: CancelToken | None = None
) -> DeploymentRecord:
    """Serve the version before the current one again (its model files / image)."""
    with deployment_lock(name):
        return _run_rollback(name, on_event, cancel)


def _older(record: DeploymentRecord) -> ModelVersion:
    older = record.previous_version()
    if older is None:
        raise TargetError(
            f"Deployment {record.name!r} has no earlier version to go back to "
            f"(it runs version {record.current_version}).",
            "Deploy a new version first; rollback returns to the one before.",
        )
    if not Path(older.model_path).is_file():
        raise TargetError(
            f"The files of version {older.version} are gone ({older.model_path}).",
            say("Deploy the model again with ", run_command("deploy"), "."),
        )
    return older


def _image_of(older: ModelVersion, target: Target):  # -> BuiltImage | None
    if target.ships != "image":
        return None
    image = older.image_obj()
    if image is None:
        raise TargetError(
            f"Version {older.version} has no image to run on {target.title}.",
            say("Deploy the model again with ", run_command("deploy"), "."),
        )
    from app.image.image import connect

    client = connect()
    try:
        import docker.errors

        try:
            client.api.inspect_image(image.id)
        except docker.errors.ImageNotFound:
            raise TargetError(
                f"The image of version {older.version} ({image.tag}) is gone from this "
                "computer's Docker.",
                say("Deploy the model again with ", run_command("deploy"), "."),
            ) from None
    finally:
        client.close()
    return image


def _run_rollback(
    name: str, on_event: OnEvent | None, cancel: CancelToken | None
) -> DeploymentRecord:
    record = load_record(name)
    older = _older(record)
    profile = Profile.model_validate(older.profile or record.profile)
    target = get_target(older.target or record.target)
    image = _image_of(older, target)
    attempt = Attempt(name, "rollback", target.name, profile.to_dict(), on_event, cancel)
    endpoint: Endpoint | None = None
    suspended: Target | None = None
    pushed: PushedImage | None = older.pushed_obj()
    report = None
    try:
        registry = target.registry(profile) if image is not None else None
        if registry is not None:
            # The pushed tag may be gone (a teardown of another target's app, a registry
            # clean-up); pushing an image the registry has is quick (layers exist).
            with attempt.step_("push") as progress:
                target.prepare(
                    attempt.context(
                        profile, older.converted(), older.version,
                        image=image, pushed=None, previous=record, progress=progress,
                    )
                )  # fmt: skip
                pushed = steps.push(registry, image, name, older.version, attempt, progress)
        title = f"Going back to version {older.version} on {target.title}"
        with attempt.step_("deploy", title) as progress:
            if replace.stops_old_first(record, target):
                suspended = replace.suspend(record, progress)
            ctx = attempt.context(
                profile, older.converted(), older.version,
                image=image, pushed=pushed, previous=record, progress=progress,
            )  # fmt: skip
            endpoint = target.deploy(ctx)
        with attempt.step_("smoke") as progress:
            report = steps.smoke(target, profile, endpoint, older.proof_path, attempt, progress)
    except BaseException as exc:
        removed = attempt.undo()
        restored = replace.restore(attempt, suspended, record) if suspended else ""
        attempt.journal.close("rolled_back")
        raise attempt.outcome_error(exc, removed, restored) from (
            None if isinstance(exc, KeyboardInterrupt) else exc
        )
    replace.retire(record, target, attempt.progress("deploy"))
    current = record.current_version
    record.target = target.name
    record.profile = profile.to_dict()
    record.endpoint = endpoint.to_dict()
    record.current_version = older.version
    record.state = "running"
    record.smoke = report.to_dict() if report is not None else None
    # what the rollback created (a pushed tag again) belongs to that version
    versions = record.version_objects()
    for v in versions:
        if v.version == older.version:
            known = {tuple(r[k] for k in ("kind", "id")) for r in v.resources}
            live = {r.key for r in endpoint.resources}
            v.resources += [
                r.to_dict()
                for r in attempt.journal.resources()
                if r.key not in live and r.key not in known
            ]
            v.pushed = pushed.to_dict() if pushed is not None else v.pushed
    record.versions = [v.to_dict() for v in versions]
    record.message = f"Rolled back from version {current} to version {older.version}."
    save_record(record)
    attempt.journal.close("deployed")
    attempt.emit(
        Event("finished", "smoke", message=record.message, data={"record": record.to_dict()})
    )
    return record
