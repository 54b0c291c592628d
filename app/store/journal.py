"""The deployment journal: every external resource is written down BEFORE it is created.

One append-only JSON-lines file per deploy attempt, in
``data_dir()/journals/NAME/``. A line is flushed and fsynced before the resource it
names is created, so whatever happens next -- an exception, Ctrl-C, a power cut --
rollback or a later ``modelship teardown NAME`` finds it. A journal that was never
closed is the trace of a crashed run; :func:`open_journals` finds them.

Ops: ``create`` (intent, before creating), ``update`` (id/pid known), ``removed``,
``closed`` (outcome: deployed | rolled_back | kept | torn_down).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from app.domain import Resource
from app.paths import data_dir


def journals_dir(name: str | None = None) -> Path:
    base = data_dir() / "journals"
    path = base / name if name else base
    path.mkdir(parents=True, exist_ok=True)
    return path


class Journal:
    """Append-only record of one deploy attempt's resources."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(
        cls,
        name: str,
        *,
        operation: str = "deploy",
        target: str | None = None,
        profile: dict[str, Any] | None = None,
    ) -> Journal:
        """A new journal for one run. The target and the profile (no secrets in it) are
        written down so that ``teardown`` knows whom to ask to remove things after a
        crash, and how to reach a registry an image was pushed to."""
        _prune_closed(name)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        base = journals_dir(name)
        path = base / f"{stamp}-{os.getpid()}-{operation}.jsonl"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{stamp}-{os.getpid()}-{operation}-{n}.jsonl"
        journal = cls(path)
        journal._append(
            {
                "op": "opened",
                "name": name,
                "operation": operation,
                "target": target,
                "profile": profile,
            }
        )
        return journal

    # ---- writing --------------------------------------------------------------------
    def _append(self, entry: dict[str, Any]) -> None:
        entry = {"time": time.time(), **entry}
        line = json.dumps(entry, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def record(self, resource: Resource) -> Resource:
        """Write down a resource that is ABOUT to be created. Call before creating it."""
        self._append({"op": "create", "resource": resource.to_dict()})
        return resource

    def update(self, resource: Resource) -> Resource:
        """Add what became known after creation (a pid, a container id)."""
        self._append({"op": "update", "resource": resource.to_dict()})
        return resource

    def removed(self, resource: Resource) -> None:
        self._append({"op": "removed", "resource": resource.to_dict()})

    def close(self, outcome: str) -> None:
        self._append({"op": "closed", "outcome": outcome})

    # ---- reading --------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        out = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: ignore it
        return out

    def resources(self) -> list[Resource]:
        """Resources written down and not removed, in creation order (latest data)."""
        live: dict[tuple[str, str], Resource] = {}
        for entry in self.entries():
            op = entry.get("op")
            if op not in {"create", "update", "removed"}:
                continue
            res = Resource.from_dict(entry["resource"])
            key = (res.kind, res.id)
            if op == "removed":
                live.pop(key, None)
            else:  # create, or an update (also for a create lost in a torn write)
                live[key] = res
        return list(live.values())

    @property
    def outcome(self) -> str | None:
        for entry in reversed(self.entries()):
            if entry.get("op") == "closed":
                return str(entry.get("outcome"))
        return None

    @property
    def target(self) -> str | None:
        for entry in self.entries():
            if entry.get("op") == "opened":
                return entry.get("target")
        return None

    @property
    def profile(self) -> dict[str, Any] | None:
        for entry in self.entries():
            if entry.get("op") == "opened":
                return entry.get("profile")
        return None

    @property
    def name(self) -> str:
        return self.path.parent.name

    @property
    def closed(self) -> bool:
        return self.outcome is not None


KEEP_CLOSED = 20  # finished runs' journals kept per deployment (history for debugging)


def _prune_closed(name: str) -> None:
    base = data_dir() / "journals" / name
    if not base.is_dir():
        return
    closed = [p for p in sorted(base.glob("*.jsonl")) if Journal(p).closed]
    for path in closed[:-KEEP_CLOSED]:
        path.unlink(missing_ok=True)


def open_journals(name: str | None = None) -> list[Journal]:
    """Journals never closed: runs that crashed, whose resources may still exist."""
    base = data_dir() / "journals"
    if not base.exists():
        return []
    dirs = [base / name] if name else [d for d in base.iterdir() if d.is_dir()]
    out = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.jsonl")):
            j = Journal(path)
            if not j.closed:
                out.append(j)
    return out


def remove_journals(name: str) -> None:
    """Delete a deployment's journals (after teardown)."""
    base = data_dir() / "journals" / name
    if base.is_dir():
        for path in base.glob("*.jsonl"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            base.rmdir()
