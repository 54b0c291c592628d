"""``teardown``: remove a deployment and everything it created, on every target it used;
``recover_all``: the same for what crashed runs left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.domain import DeploymentRecord
from app.errors import ModelShipError
from app.paths import data_dir
from app.progress import NullProgress, Progress
from app.run import resources
from app.run.attempt import short
from app.run.events import Event, EventProgress, OnEvent
from app.run.lock import deployment_lock, lock_path
from app.run.steps import versions_dir
from app.store.journal import Journal, open_journals, remove_journals
from app.store.records import find_record, find_removed, load_record, mark_removed
from targets.catalog import get_target


def teardown(name: str, *, on_event: OnEvent | None = None) -> list[str]:
    """Remove a deployment and everything it created (also what crashed runs left).

    Returns what was removed, in words. Unknown name with no leftovers -> UsageError.
    A resource that cannot be removed fails the teardown (after trying all the others),
    and the record stays so that it can be run again.
    """
    with deployment_lock(name):
        return _teardown(name, on_event)


def already_removed(name: str) -> DeploymentRecord | None:
    """The history of ``name`` when it was torn down before and nothing of it is left
    (no live record, no crashed run's journal): a second teardown has nothing to do."""
    if find_record(name) is not None or open_journals(name):
        return None
    return find_removed(name)


def _teardown(name: str, on_event: OnEvent | None) -> list[str]:
    record = find_record(name)
    leftovers = open_journals(name)
    if record is None and not leftovers:
        load_record(name)  # raises the "no deployment named" error
    emit = on_event or (lambda e: None)
    progress: Progress = EventProgress(emit, "teardown")
    emit(Event("step_started", "teardown", message=f"Removing {name!r}"))
    removed: list[str] = []
    failures: list[str] = []
    if record is not None:
        for kind in record.targets_used():
            try:
                removed += get_target(kind).teardown(record, progress)
            except ModelShipError as exc:
                failures.append(f"{kind}: {exc.message}")
        for v in record.version_objects():
            for r in reversed(v.resource_objects()):
                if r.kind in {"files"}:
                    continue  # the folder goes with versions_dir below
                try:
                    target = v.target or record.target
                    profile = v.profile or record.profile
                    version = (name, v.version)
                    if resources.remove(
                        r, target, profile, progress,
                        version=version, keep_tags=(), keep_images=(),
                    ):  # fmt: skip
                        removed.append(r.describe())
                except Exception as exc:
                    failures.append(f"{r.describe()}: {short(exc)}")
        removed += _images_by_label(name, progress)
    for journal in leftovers:  # crashed runs: remove what they wrote down
        failures += _undo_journal(journal, record, removed, progress, emit)
    if failures:
        raise ModelShipError(
            f"Could not remove everything of {name!r}: {failures[0]}",
            "Fix the cause (see the details), then run teardown again: it picks up "
            "where it stopped.",
            details="\n".join(failures),
        )
    if versions_dir(name).exists():
        shutil.rmtree(versions_dir(name), ignore_errors=True)
        removed.append(f"model files of {name!r}")
    mark_removed(name)  # kept as history (versions and dates), apart from live records
    remove_journals(name)
    lock_path(name).unlink(missing_ok=True)
    emit(Event("step_finished", "teardown", message=f"Removed {len(removed)} thing(s)."))
    return removed


def _undo_journal(journal: Journal, record, removed, progress, emit) -> list[str]:
    failures = []
    kind = journal.target or (record.target if record else _guess_target(journal))
    profile = journal.profile or (record.profile if record else None)
    for r in reversed(journal.resources()):
        try:
            if resources.remove(r, kind, profile, progress):
                removed.append(r.describe())
        except Exception as exc:
            emit(Event("log", "teardown", message=f"Could not remove {r.describe()}: {exc}"))
            failures.append(f"{r.describe()}: {short(exc)}")
            continue
        journal.removed(r)
    if not failures:
        journal.close("torn_down")
    return failures


def _images_by_label(name: str, progress: Progress) -> list[str]:
    """Images the pipeline built for ``name`` that no record names (a crash mid-build)."""
    from app.image.image import connect, images_of, remove_image

    try:
        client = connect(timeout=30)
    except ModelShipError:
        return []  # no Engine: nothing of ours can be in it right now
    out = []
    try:
        for ident in images_of(client, name):
            users = client.containers.list(
                ignore_removed=True, all=True, filters={"ancestor": ident}
            )
            if users:
                continue
            progress.update(None, f"Removing image {ident[:19]}")
            if remove_image(client, ident):
                out.append(f"image {ident[7:19]}")
    finally:
        client.close()
    return out


def _guess_target(journal: Journal) -> str:
    """Which target a crashed run used (journals before 'target' was recorded: a guess)."""
    kinds = {r.kind for r in journal.resources()}
    if "process" in kinds or not kinds - {"files"}:
        return "local"
    return "docker"


def recover_all(progress: Progress | None = None) -> list[str]:
    """Tear down what crashed runs left behind, for every deployment name."""
    progress = progress or NullProgress()
    removed = []
    for journal in open_journals():
        if find_record(journal.name) is None:
            removed += teardown(journal.name)
    return removed


def data_paths(name: str) -> list[Path]:
    """Where a deployment keeps files on this computer (for diagnostics)."""
    return [versions_dir(name), data_dir() / "journals" / name]
