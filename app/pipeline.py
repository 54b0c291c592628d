"""The pipeline runner: one profile -> a running, smoke-tested endpoint, or nothing at all.

Steps: intake -> convert -> build (targets that need an image) -> deploy -> smoke.
The CLI and the wizard both call :func:`run_deploy` and only differ in how they show
its :class:`Event` stream. Every external resource is journaled before it is created
(:mod:`app.journal`); on failure or cancel everything this run created is removed in
reverse order and the deployment it was replacing (same name) is brought back, unless
the user asked to keep a failed deployment for debugging. The error raised says what
was removed.

Replacing in place: a deployment with the same name is replaced only after the new
one passed its smoke test. Targets that cannot run both at once (``side_by_side =
False``: the local target, whose new server wants the old one's port) stop the old
one first and restart it if the new one fails.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import Cancelled, ModelShipError, SmokeTestError, TargetError
from app.hashing import sha256_file
from app.journal import Journal, open_journals, remove_journals
from app.paths import data_dir
from app.profile import Profile
from app.progress import CancelToken, NullProgress, Progress
from app.records import (
    DeploymentRecord,
    ModelVersion,
    delete_record,
    find_record,
    load_record,
    now_iso,
    save_record,
)
from targets import get_target
from targets.base import DeployContext, Endpoint, PlanItem, Problem, Resource, Target

STEPS: tuple[str, ...] = ("intake", "convert", "build", "deploy", "smoke")
STEP_TITLES = {
    "intake": "Reading the model",
    "convert": "Converting to ONNX and proving the conversion",
    "build": "Building the serving image",
    "deploy": "Deploying",
    "smoke": "Smoke-testing the endpoint",
    "rollback": "Rolling back",
    "teardown": "Removing the deployment",
}
KEEP_VERSIONS = 3  # versions kept for rollback (model files, images)

EventKind = str  # step_started | progress | log | step_finished | step_failed | rollback | finished


@dataclass
class Event:
    """One thing that happened, for the CLI's stderr or the wizard's progress page."""

    kind: EventKind
    step: str
    message: str = ""
    fraction: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


OnEvent = Callable[[Event], None]


def steps_for(profile: Profile) -> list[str]:
    """The steps a deploy of this profile runs (build only for image targets)."""
    target = get_target(profile.target.kind)
    return [s for s in STEPS if s != "build" or target.needs_image]


class EventProgress:
    """A :class:`app.progress.Progress` that turns a step's reports into Events."""

    def __init__(self, emit: OnEvent, step: str) -> None:
        self._emit = emit
        self.current = step

    def step(self, name: str) -> None:
        self._emit(Event("progress", self.current, message=name))

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        self._emit(Event("progress", self.current, message=message or "", fraction=fraction))

    def log(self, line: str) -> None:
        self._emit(Event("log", self.current, message=line))


class ProgressEvents:
    """Adapter the other way round: feed Events to a Progress (e.g. ConsoleProgress)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, event: Event) -> None:
        p = self.progress
        if event.kind == "step_started":
            p.step(event.message or STEP_TITLES.get(event.step, event.step))
        elif event.kind == "progress":
            p.update(event.fraction, event.message or None)
        elif event.kind == "log":
            p.log(event.message)
        elif event.kind in {"step_failed", "rollback", "step_finished"} and event.message:
            p.update(None, event.message)


@dataclass
class StoredConversion:
    """A converted model already on disk (what a rollback, or a redeploy of an
    unchanged model, serves again)."""

    onnx_path: Path
    summary_text: str = ""

    @property
    def signature_path(self) -> Path:
        return self.onnx_path.with_name(self.onnx_path.stem + ".signature.json")

    @property
    def proof_path(self) -> Path:
        return self.onnx_path.with_name(self.onnx_path.stem + ".proof.json")

    @property
    def signature(self) -> Any:
        from app.serving.signature import Signature

        if self.signature_path.exists():
            return Signature.load(self.signature_path)
        return Signature.from_onnx(self.onnx_path)


def versions_dir(name: str) -> Path:
    return data_dir() / "models" / name


# ---- preflight ----------------------------------------------------------------------


def preflight(profile: Profile) -> list[Problem]:
    """What would make a deploy of ``profile`` fail, before anything is created."""
    return get_target(profile.target.kind).check(profile)


def plan(profile: Profile) -> list[PlanItem]:
    """What a deploy would do, in words (shown before deploying)."""
    target = get_target(profile.target.kind)
    items = [PlanItem("convert", "model", str(profile.model.path), "to ONNX, with a proof")]
    if target.needs_image:
        items.append(
            PlanItem("build", "image", f"modelship/{profile.name}", profile.image.base_image)
        )
    items.extend(target.plan(profile))
    items.append(PlanItem("run", "smoke test", profile.name, "predictions vs the proof"))
    return items


def _check_ready(target: Target, profile: Profile) -> None:
    problems = target.check(profile)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise TargetError(
            f"Not ready to deploy to {target.title}: {first.message}{more}",
            first.fix,
            details="\n".join(str(p) for p in problems),
        )


# ---- the run ------------------------------------------------------------------------


class _Run:
    """State of one deploy/rollback run: events, journal, what to undo."""

    def __init__(
        self,
        name: str,
        on_event: OnEvent | None,
        cancel: CancelToken | None,
        operation: str,
        target: str,
    ) -> None:
        self.name = name
        self._on_event = on_event
        self.cancel = cancel or CancelToken()
        self.journal = Journal.create(name, operation=operation, target=target)
        self.step = ""

    def emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def progress(self, step: str) -> Progress:
        return EventProgress(self.emit, step)

    @contextlib.contextmanager
    def step_(self, step: str, title: str | None = None):
        self.cancel.raise_if_cancelled()
        self.step = step
        self.emit(Event("step_started", step, message=title or STEP_TITLES[step]))
        try:
            yield self.progress(step)
        except BaseException as exc:
            self.emit(Event("step_failed", step, message=_short(exc)))
            raise
        self.emit(Event("step_finished", step))
        self.cancel.raise_if_cancelled()

    def rollback(self, target: Target) -> list[str]:
        """Remove this run's resources, newest first. Returns what was removed."""
        removed: list[str] = []
        failures: list[str] = []
        progress = self.progress("rollback")
        for resource in reversed(self.journal.resources()):
            try:
                _destroy(target, resource, progress)
            except Exception as exc:  # keep going: remove as much as possible
                failures.append(f"{resource.describe()}: {exc}")
                continue
            self.journal.removed(resource)
            removed.append(resource.describe())
            self.emit(Event("rollback", "rollback", message=f"Removed {resource.describe()}"))
        if failures:
            self.emit(
                Event("rollback", "rollback", message="Could not remove: " + "; ".join(failures))
            )
        return removed


def _short(exc: BaseException) -> str:
    if isinstance(exc, ModelShipError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted."
    return f"{type(exc).__name__}: {exc}"


def _destroy(target: Target, resource: Resource, progress: Progress) -> None:
    """Remove one resource: ``files`` are the pipeline's own, the rest the target's."""
    if resource.kind == "files":
        shutil.rmtree(resource.id, ignore_errors=True)
        return
    target.destroy(resource, progress)


def _fail(run: _Run, exc: BaseException, removed: list[str], restored: str) -> BaseException:
    """The error to raise after a rollback: what happened, and what was cleaned up."""
    what = f" Removed: {', '.join(removed)}." if removed else " Nothing had been created yet."
    # After a cancel, whatever the step raised (a converter killed by the same Ctrl-C
    # fails with its own error) is reported as the cancel it is.
    if isinstance(exc, Cancelled | KeyboardInterrupt) or run.cancel.cancelled:
        step = STEP_TITLES.get(run.step, run.step).lower() if run.step else "starting"
        err: ModelShipError = Cancelled(
            f"Cancelled while {step}; everything it had created was removed.{what}{restored}",
            "Run the same command again to deploy.",
        )
        return err
    if isinstance(exc, ModelShipError):
        exc.message = f"{exc.message} Rolled back.{what}{restored}"
        return exc
    return exc  # a bug: the CLI reports it; the rollback still happened


@contextlib.contextmanager
def deployment_lock(name: str):
    """One command at a time per deployment name (CLI and wizard may both try).

    An advisory lock on a file in the data dir; the OS drops it if the process dies,
    so a crash never leaves a stale lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; carry on unlocked
        yield
        return
    lock_dir = data_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TargetError(
                f"Another ModelShip command is working on {name!r} right now.",
                "Wait for it to finish (or cancel it), then try again.",
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_deploy(
    profile: Profile,
    *,
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    keep_on_failure: bool = False,
) -> DeploymentRecord:
    """Deploy ``profile`` and smoke-test it; return the saved DeploymentRecord.

    Raises a :class:`~app.errors.ModelShipError` (``Cancelled`` on cancel) after rolling
    back everything this run created; the message lists what was removed.
    """
    with deployment_lock(profile.name):
        return _run_deploy(profile, on_event, cancel, keep_on_failure)


def _run_deploy(
    profile: Profile,
    on_event: OnEvent | None,
    cancel: CancelToken | None,
    keep_on_failure: bool,
) -> DeploymentRecord:
    keep = keep_on_failure or profile.smoke.keep_on_failure
    target = get_target(profile.target.kind)
    _check_ready(target, profile)
    previous = find_record(profile.name)
    run = _Run(profile.name, on_event, cancel, "deploy", target.name)
    version = previous.next_version_number() if previous else 1
    conversion: Any = None
    conversion_key: str | None = None
    image: Any = None
    endpoint: Endpoint | None = None
    suspended: tuple[Target, DeploymentRecord] | None = None
    report: Any = None
    try:
        with run.step_("intake") as progress:
            from app.intake import inspect_model

            artifact = inspect_model(profile.model.path)
            progress.update(None, f"{artifact.kind} model ({artifact.format})")
            for warning in getattr(artifact, "warnings", []) or []:
                progress.log(f"warning: {warning}")

        with run.step_("convert") as progress:
            conversion_key = _conversion_key(profile)
            conversion = _convert(profile, version, run, progress, previous, conversion_key)

        if target.needs_image:
            with run.step_("build") as progress:
                image = _build(profile, conversion, run, progress)

        with run.step_("deploy", f"Deploying to {target.title}") as progress:
            if previous is not None and not target.side_by_side:
                old_target = get_target(previous.target)
                progress.update(None, f"Stopping the running {profile.name!r} to replace it")
                old_target.suspend(previous, progress)
                suspended = (old_target, previous)
            ctx = DeployContext(
                profile=profile,
                name=profile.name,
                model_path=Path(conversion.onnx_path),
                journal=run.journal,
                version=version,
                conversion=conversion,
                image=image,
                previous=previous,
                progress=progress,
                cancel=run.cancel,
            )
            endpoint = target.deploy(ctx)
            progress.update(None, f"Answering on {endpoint.url}")

        with run.step_("smoke") as progress:
            report = _smoke(profile, endpoint, Path(conversion.proof_path), run, progress)
    except BaseException as exc:
        if keep and endpoint is not None and isinstance(exc, SmokeTestError):
            report = getattr(exc, "report", report)
            record = _save(
                profile, previous, endpoint, version, conversion, image, report, run, conversion_key
            )
            record.state = "failed"
            record.message = "Kept after a failed smoke test (--keep-on-failure)."
            save_record(record)
            run.journal.close("kept")
            exc.message += (
                f" The deployment was kept for debugging at {endpoint.url}; "
                f"remove it with `modelship teardown {profile.name}`."
            )
            raise
        removed = run.rollback(target)
        if previous is None:
            with contextlib.suppress(OSError):
                versions_dir(profile.name).rmdir()  # only if empty: nothing else of it
        restored = ""
        if suspended is not None:
            restored = _restore(run, *suspended)
        run.journal.close("rolled_back")
        raise _fail(run, exc, removed, restored) from (
            None if isinstance(exc, KeyboardInterrupt) else exc
        )

    retired: list[str] = []
    if previous is not None:
        old_target = get_target(previous.target)
        progress = run.progress("deploy")
        retired = (
            old_target.retire(previous, progress)
            if previous.target == target.name
            else _teardown_record(old_target, previous, progress, keep_files=True)
        )
    record = _save(
        profile, previous, endpoint, version, conversion, image, report, run, conversion_key
    )
    record.message = (
        f"Version {version} deployed"
        + (f"; replaced version {previous.current_version}" if previous else "")
        + "."
    )
    pruned = _prune(record, target, run.progress("deploy"))
    save_record(record)
    run.journal.close("deployed")
    run.emit(
        Event(
            "finished",
            "smoke",
            message=report.summary() if report is not None else "Deployed.",
            data={"record": record.to_dict(), "retired": retired, "pruned": pruned},
        )
    )
    return record


def _file_sha256(path: Path | None) -> str | None:
    """The file's hash, or None when there is no file (or it can no longer be read)."""
    if path is None:
        return None
    try:
        return sha256_file(path)
    except OSError:
        return None


def _conversion_key(profile: Profile) -> str:
    """What decides the conversion's outcome: same key, same ONNX file and proof."""
    import hashlib
    import json

    from app import __version__

    m = profile.model
    data = {
        "model": _file_sha256(m.path),
        "sample_csv": _file_sha256(m.sample_csv),
        "python": m.python,
        "input_shape": m.input_shape,
        "tolerance": m.tolerance,
        "quantize": m.quantize,
        "accept_mismatch": m.accept_mismatch,
        "modelship": __version__,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _reusable(previous: DeploymentRecord | None, key: str) -> ModelVersion | None:
    """A kept version converted from the very same input, with its files intact."""
    if previous is None:
        return None
    for v in sorted(previous.version_objects(), key=lambda v: -v.version):
        model = Path(v.model_path)
        sig = model.with_name(model.stem + ".signature.json")
        if v.conversion_key == key and model.is_file() and sig.is_file() and v.proof_path.is_file():
            return v
    return None


def _convert(
    profile: Profile,
    version: int,
    run: _Run,
    progress: Progress,
    previous: DeploymentRecord | None = None,
    key: str | None = None,
) -> Any:

    vdir = versions_dir(profile.name) / f"v{version}"
    run.journal.record(Resource("files", str(vdir), name=f"files of version {version} ({vdir})"))
    if vdir.exists():  # left over from a crashed run with the same number
        shutil.rmtree(vdir)
    vdir.mkdir(parents=True)
    same = _reusable(previous, key) if key else None
    if same is not None:
        # Converting again would give the same file and proof: copy them (seconds saved
        # on every redeploy of an unchanged model, e.g. after a settings change).
        src = Path(same.model_path)
        for f in (src, src.with_name(src.stem + ".signature.json"), same.proof_path):
            shutil.copy2(f, vdir / f.name)
        progress.update(
            None, f"The model is unchanged since version {same.version}: reusing its conversion"
        )
        return StoredConversion(vdir / src.name, summary_text=same.conversion)
    return convert_for_profile(profile, vdir / "model.onnx", progress, run.cancel)


def convert_for_profile(
    profile: Profile, out: Path, progress: Progress, cancel: CancelToken
) -> Any:
    """Convert and prove the profile's model into ``out``; the result to serve.

    With ``quantize`` set that is the int8 version (proven on its own). Shared by
    the pipeline and ``modelship build`` so both convert a profile the same way.
    """
    from app.convert import ConvertOptions, convert_model

    m = profile.model
    options = ConvertOptions(
        python=m.python,
        sample_csv=m.sample_csv,
        input_shape=m.input_shape,
        tolerance=m.tolerance,
        allow_mismatch=m.accept_mismatch,
        quantize=m.quantize,
    )
    result = convert_model(m.path, out, options, progress, cancel)
    report = getattr(result, "report", None)
    if report is not None and hasattr(report, "summary"):
        progress.update(None, report.summary())
    if m.quantize and getattr(result, "quantized", None) is not None:
        progress.update(None, "Serving the int8-quantized model")
        return result.quantized
    return result


def _build(profile: Profile, conversion: Any, run: _Run, progress: Progress) -> Any:
    """Prepare the build context and build the image (journaled before building)."""
    from app.buildcontext import prepare_build_context
    from app.image import build_image, connect

    context = prepare_build_context(profile, conversion, progress=progress, cancel=run.cancel)
    run.journal.record(
        Resource("image", context.tag, name=f"image {context.tag}", data={"tag": context.tag})
    )
    client = connect()
    try:
        image = build_image(context, client, progress, run.cancel)
    finally:
        with contextlib.suppress(Exception):
            client.close()
    run.journal.update(
        Resource(
            "image",
            context.tag,
            name=f"image {context.tag}",
            data={"tag": context.tag, "id": getattr(image, "id", None)},
        )
    )
    return image


def _smoke(profile: Profile, endpoint: Endpoint, proof: Path, run: _Run, progress: Progress) -> Any:
    from app.smoke import run_smoke_test

    headers = get_target(profile.target.kind).secret_headers(profile)
    report = run_smoke_test(
        endpoint,
        proof,
        timeout=profile.smoke.timeout,
        headers=headers,
        progress=progress,
        cancel=run.cancel,
    )
    if not report.passed:
        err = SmokeTestError(
            f"The smoke test failed: {report.summary()}",
            "Check the model and the conversion proof; --keep-on-failure keeps the "
            "deployment running for debugging.",
            details="\n".join([*report.errors, *(str(m) for m in report.mismatches)]),
        )
        err.report = report  # type: ignore[attr-defined]
        raise err
    progress.update(None, report.summary())
    return report


def _image_dict(image: Any) -> dict[str, Any] | None:
    if image is None:
        return None
    if hasattr(image, "to_dict"):
        return image.to_dict()
    if isinstance(image, dict):
        return image
    return {k: getattr(image, k, None) for k in ("tag", "id", "size", "labels")}


def _save(
    profile: Profile,
    previous: DeploymentRecord | None,
    endpoint: Endpoint,
    version: int,
    conversion: Any,
    image: Any,
    report: Any,
    run: _Run,
    conversion_key: str | None = None,
) -> DeploymentRecord:
    """Make (or update) the record: the new endpoint becomes current."""
    record = previous or DeploymentRecord(
        name=profile.name, target=profile.target.kind, profile=profile.to_dict()
    )
    record.target = profile.target.kind
    record.profile = profile.to_dict()
    record.profile_path = str(profile.source) if profile.source else None
    record.endpoint = endpoint.to_dict()
    live = {(r.kind, r.id) for r in endpoint.resources}
    version_resources = [r.to_dict() for r in run.journal.resources() if (r.kind, r.id) not in live]
    existing = [v for v in record.version_objects() if v.version != version]
    rpt = getattr(conversion, "report", None)
    mv = ModelVersion(
        version=version,
        model_path=str(Path(conversion.onnx_path)),
        source_model=str(profile.model.path),
        model_sha256=_file_sha256(Path(conversion.onnx_path)),
        image=_image_dict(image),
        resources=version_resources,
        conversion=rpt.summary()
        if rpt is not None and hasattr(rpt, "summary")
        else getattr(conversion, "summary_text", ""),
        conversion_key=conversion_key,
        smoke=report.to_dict() if report is not None else None,
    )
    record.versions = [*(v.__dict__ for v in existing), mv.__dict__]
    record.current_version = version
    record.state = "running"
    record.smoke = report.to_dict() if report is not None else None
    return record


def _prune(record: DeploymentRecord, target: Target, progress: Progress) -> list[str]:
    """Drop versions beyond KEEP_VERSIONS (oldest first), removing their resources."""
    versions = sorted(record.version_objects(), key=lambda v: v.version)
    keep = {v.version for v in versions[-KEEP_VERSIONS:]} | {record.current_version}
    removed = []
    for v in versions:
        if v.version in keep:
            continue
        for r in reversed(v.resource_objects()):
            with contextlib.suppress(Exception):
                _destroy(target, r, progress)
                removed.append(r.describe())
    record.versions = [v.__dict__ for v in versions if v.version in keep]
    return removed


def _restore(run: _Run, old_target: Target, previous: DeploymentRecord) -> str:
    """Bring the replaced deployment back after the new one failed."""
    progress = run.progress("rollback")
    try:
        endpoint = old_target.resume(previous, progress)
    except Exception as exc:
        run.emit(
            Event("rollback", "rollback", message=f"Could not restart the previous one: {exc}")
        )
        return f" The previous deployment could not be restarted ({_short(exc)})."
    if endpoint is not None:
        previous.endpoint = endpoint.to_dict()
        save_record(previous)
    run.emit(Event("rollback", "rollback", message="The previous deployment runs again."))
    return f" The previous version ({previous.current_version}) runs again."


# ---- rollback to the previous version ----------------------------------------------


def run_rollback(
    name: str, *, on_event: OnEvent | None = None, cancel: CancelToken | None = None
) -> DeploymentRecord:
    """Serve the version before the current one again (its model files / image)."""
    with deployment_lock(name):
        return _run_rollback(name, on_event, cancel)


def _run_rollback(
    name: str, on_event: OnEvent | None, cancel: CancelToken | None
) -> DeploymentRecord:
    record = load_record(name)
    older = record.previous_version()
    if older is None:
        raise TargetError(
            f"Deployment {name!r} has no earlier version to go back to "
            f"(it runs version {record.current_version}).",
            "Deploy a new version first; rollback returns to the one before.",
        )
    model_path = Path(older.model_path)
    if not model_path.is_file():
        raise TargetError(
            f"The files of version {older.version} are gone ({model_path}).",
            "Deploy the model again with `modelship deploy`.",
        )
    from app.profile import Profile as _Profile

    profile = _Profile.model_validate(record.profile)
    target = get_target(record.target)
    run = _Run(name, on_event, cancel, "rollback", target.name)
    endpoint: Endpoint | None = None
    suspended = False
    report: Any = None
    try:
        with run.step_("deploy", f"Going back to version {older.version}") as progress:
            if not target.side_by_side:
                target.suspend(record, progress)
                suspended = True
            image = older.image
            if image is not None and target.needs_image:
                image = _image_object(image)
            ctx = DeployContext(
                profile=profile,
                name=name,
                model_path=model_path,
                journal=run.journal,
                version=older.version,
                conversion=StoredConversion(model_path),
                image=image,
                previous=record,
                progress=progress,
                cancel=run.cancel,
            )
            endpoint = target.deploy(ctx)
        with run.step_("smoke") as progress:
            report = _smoke(profile, endpoint, older.proof_path, run, progress)
    except BaseException as exc:
        removed = run.rollback(target)
        restored = _restore(run, target, record) if suspended else ""
        run.journal.close("rolled_back")
        raise _fail(run, exc, removed, restored) from (
            None if isinstance(exc, KeyboardInterrupt) else exc
        )
    target.retire(record, run.progress("deploy"))
    current = record.current_version
    record.endpoint = endpoint.to_dict()
    record.current_version = older.version
    record.state = "running"
    record.smoke = report.to_dict() if report is not None else None
    record.message = f"Rolled back from version {current} to version {older.version}."
    save_record(record)
    run.journal.close("deployed")
    run.emit(Event("finished", "smoke", message=record.message, data={"record": record.to_dict()}))
    return record


def _image_object(data: dict[str, Any]) -> Any:
    try:
        from dataclasses import fields

        from app.image import Image

        if hasattr(Image, "from_dict"):
            return Image.from_dict(data)
        known = {f.name for f in fields(Image)}
        return Image(**{k: v for k, v in data.items() if k in known})
    except Exception:
        from types import SimpleNamespace

        return SimpleNamespace(**data)


# ---- teardown -------------------------------------------------------------------------


def _teardown_record(
    target: Target, record: DeploymentRecord, progress: Progress, *, keep_files: bool = False
) -> list[str]:
    removed = target.teardown(record, progress)
    if not keep_files:
        for r in record.all_resources():
            if r.kind == "files" and Path(r.id).exists():
                shutil.rmtree(r.id, ignore_errors=True)
                removed.append(r.describe())
    return removed


def teardown(name: str, *, on_event: OnEvent | None = None) -> list[str]:
    """Remove a deployment and everything it created (also what crashed runs left).

    Returns what was removed, in words. Unknown name with no leftovers -> UsageError.
    """
    with deployment_lock(name):
        return _teardown(name, on_event)


def _teardown(name: str, on_event: OnEvent | None) -> list[str]:
    record = find_record(name)
    leftovers = open_journals(name)
    if record is None and not leftovers:
        load_record(name)  # raises the "no deployment named" error
    emit = on_event or (lambda e: None)
    progress: Progress = EventProgress(emit, "teardown")
    emit(Event("step_started", "teardown", message=f"Removing {name!r}"))
    removed: list[str] = []
    if record is not None:
        target = get_target(record.target)
        removed += _teardown_record(target, record, progress)
    for journal in leftovers:  # crashed runs: remove what they wrote down
        for r in reversed(journal.resources()):
            kind = journal.target or (record.target if record else _journal_target(journal))
            kind_target = get_target(kind)
            try:
                _destroy(kind_target, r, progress)
            except Exception as exc:
                emit(Event("log", "teardown", message=f"Could not remove {r.describe()}: {exc}"))
                continue
            journal.removed(r)
            removed.append(r.describe())
        journal.close("torn_down")
    shutil.rmtree(versions_dir(name), ignore_errors=True)
    from targets.local import run_dir

    shutil.rmtree(run_dir(name), ignore_errors=True)
    delete_record(name)
    remove_journals(name)
    (data_dir() / "locks" / f"{name}.lock").unlink(missing_ok=True)
    emit(Event("step_finished", "teardown", message=f"Removed {len(removed)} thing(s)."))
    return removed


def _journal_target(journal: Journal) -> str:
    """Which target a crashed run used (journals before 'target' was recorded: a guess)."""
    if journal.target:
        return journal.target
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


__all__ = [
    "STEPS",
    "STEP_TITLES",
    "Event",
    "EventProgress",
    "ProgressEvents",
    "now_iso",
    "plan",
    "preflight",
    "run_deploy",
    "run_rollback",
    "steps_for",
    "teardown",
]
