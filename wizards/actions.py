"""Thin calls into the core for the Start and Result pages (no logic of their own).

Profiles: save/open are ``app.store.profile``'s; export, import and duplicate are a load and
a save under another path or name. Status, rollback and teardown are
``app.run.status.deployment_status`` and ``app.run``'s
``run_rollback``/``teardown``, the functions the ``status``, ``rollback`` and
``teardown`` commands call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.progress import CancelToken, NullProgress


@dataclass
class LiveStatus:
    name: str
    target: str
    url: str | None
    running: bool
    answering: bool
    detail: str

    def words(self) -> str:
        if self.answering:
            return "running and answering"
        if self.running:
            return "running, but not answering"
        return "not running"


def export_profile(profile: Any, path: Path) -> Path:
    from app.store.profile import save_profile

    return save_profile(profile, Path(path))


def import_profile(path: Path) -> Any:
    """Load a profile file (validated) and keep a copy among the saved profiles."""
    from app.store.profile import load_profile, profile_path, save_profile

    profile = load_profile(Path(path))
    name = profile.name
    n = 2
    while profile_path(name).exists() and profile_path(name).resolve() != Path(path).resolve():
        name = f"{profile.name}-{n}"[:63]
        n += 1
    if name != profile.name:
        profile = profile.model_copy(update={"name": name})
    saved = save_profile(profile)
    return profile, saved


def duplicate_profile(name: str) -> tuple[Any, Path]:
    from app.store.profile import load_profile, profile_path, save_profile

    profile = load_profile(name)
    n = 1
    while True:
        new = f"{name}-copy" if n == 1 else f"{name}-copy{n}"
        if not profile_path(new[:63]).exists():
            break
        n += 1
    copy = profile.model_copy(update={"name": new[:63]})
    return copy, save_profile(copy)


def live_status(record: Any) -> LiveStatus:
    """The same live check as ``modelship status`` (target status + ``GET /ping``)."""
    from app.run.status import deployment_status

    d = deployment_status(record)
    return LiveStatus(
        d["name"], d["target"], d["url"], bool(d["running"]), bool(d["answering"]), d["detail"]
    )


def all_statuses(progress: Any = None, cancel: CancelToken | None = None) -> list[LiveStatus]:
    from app.store.records import list_records

    out = []
    for record in list_records():
        if cancel is not None:
            cancel.raise_if_cancelled()
        out.append(live_status(record))
    return out


def teardown(name: str, progress: Any = None) -> list[str]:
    from app.run import teardown as core_teardown

    event = getattr(progress, "event", None)
    return core_teardown(name, on_event=event)


def rollback(name: str, progress: Any = None, cancel: CancelToken | None = None) -> Any:
    from app.run import run_rollback

    event = getattr(progress or NullProgress(), "event", None)
    return run_rollback(name, on_event=event, cancel=cancel)
