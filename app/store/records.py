"""Deployment records: what is deployed where, saved for status, teardown and rollback.

One JSON file per deployment name in ``app.paths.deployments_dir()``. The record types
(:class:`DeploymentRecord`, :class:`ModelVersion`) are plain data in ``app.domain``;
this module only reads and writes them. Only the pipeline (``app.run``) and the
commands use the store: targets get the records they need passed in.

A torn-down deployment is kept as history in ``removed/`` below the live records,
marked with ``removed_at``: what it was, where, its versions and their dates, and the
profile to deploy it again. Being apart, it is never mistaken for something that runs
(``find_record``/``list_records`` see live records only), and deploying the same name
again starts clean; the removed copy is dropped once the new one is saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.domain import RECORD_SCHEMA, DeploymentRecord, ModelVersion, now_iso
from app.errors import UsageError, closest
from app.nextstep import run_command, say
from app.paths import deployments_dir


def record_path(name: str) -> Path:
    return deployments_dir() / f"{name}.json"


def save_record(record: DeploymentRecord) -> Path:
    """Write atomically (a crash never leaves half a record)."""
    record.updated = now_iso()
    path = record_path(record.name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    if record.removed_at is None:
        removed_record_path(record.name).unlink(missing_ok=True)  # live again
    return path


def find_record(name: str) -> DeploymentRecord | None:
    path = record_path(name)
    if not path.exists():
        return None
    try:
        return DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise UsageError(
            f"The record of deployment {name!r} is damaged ({exc}).",
            f"Remove {path} after checking what still runs.",
        ) from None


def load_record(name: str) -> DeploymentRecord:
    record = find_record(name)
    if record is None:
        gone = find_removed(name)
        if gone is not None:
            raise UsageError(
                f"{removed_words(gone)}; nothing of it runs any more.",
                say(
                    "Deploy it again with ",
                    run_command("deploy", name),
                    ", or see ",
                    run_command("status", flags="--all"),
                    " for the history.",
                ),
            )
        names = [r.name for r in list_records()]
        known = f" Known: {', '.join(names)}." if names else " There are no deployments."
        guess = closest(name, names)
        maybe = f" Did you mean {guess!r}?" if guess else ""
        raise UsageError(
            f"No deployment named {name!r}.{maybe}{known}",
            say("See ", run_command("status"), " for what runs."),
        )
    return record


def list_records() -> list[DeploymentRecord]:
    out = []
    for path in sorted(deployments_dir().glob("*.json")):
        try:
            out.append(DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (json.JSONDecodeError, TypeError, KeyError, OSError):
            continue
    return out


def delete_record(name: str) -> bool:
    path = record_path(name)
    if path.exists():
        path.unlink()
        return True
    return False


# ---- history: torn-down deployments ------------------------------------------------------


def removed_dir() -> Path:
    path = deployments_dir() / "removed"
    path.mkdir(parents=True, exist_ok=True)
    return path


def removed_record_path(name: str) -> Path:
    return deployments_dir() / "removed" / f"{name}.json"


def mark_removed(name: str) -> DeploymentRecord | None:
    """Move the live record of ``name`` to the history, marked removed (now).

    Nothing of it runs any more: the endpoint is cleared (its address is kept in
    ``message``), the versions and their dates stay. Returns the removed record, or
    None when there was no live record.
    """
    record = find_record(name)
    if record is None:
        return None
    url = record.url
    record.state = "removed"
    record.removed_at = now_iso()
    record.stopped_at = None
    record.endpoint = None
    record.message = f"Removed; it answered at {url}." if url else "Removed."
    record.updated = record.removed_at
    path = removed_record_path(name)
    removed_dir()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    delete_record(name)
    return record


def find_removed(name: str) -> DeploymentRecord | None:
    path = removed_record_path(name)
    if not path.exists():
        return None
    try:
        return DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError, OSError):
        return None


def list_removed() -> list[DeploymentRecord]:
    """Torn-down deployments, most recently removed first (none that runs again)."""
    out = []
    for path in removed_dir().glob("*.json"):
        try:
            record = DeploymentRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError, KeyError, OSError):
            continue
        if not record_path(record.name).exists():
            out.append(record)
    return sorted(out, key=lambda r: r.removed_at or "", reverse=True)


def forget_removed(name: str) -> bool:
    """Drop a removed deployment from the history."""
    path = removed_record_path(name)
    if path.exists():
        path.unlink()
        return True
    return False


def deployment_on_port(port: int, exclude: str | None = None) -> DeploymentRecord | None:
    """The live deployment on this computer that answers on (or is set to) ``port``, if
    any: what to name when a port is taken (the CLI and the wizard say the same)."""
    from urllib.parse import urlparse

    for record in list_records():
        if record.name == exclude:
            continue
        ports = set()
        url = record.url
        if url:
            parsed = urlparse(url)
            if parsed.hostname in {"127.0.0.1", "localhost", "0.0.0.0", "::1"} and parsed.port:
                ports.add(parsed.port)
        settings = ((record.profile or {}).get("target") or {}).get("settings") or {}
        if record.target in {"local", "docker"} and isinstance(settings.get("port"), int):
            ports.add(settings["port"])
        if port in ports:
            return record
    return None


def removed_words(record: DeploymentRecord, *, already: bool = False) -> str:
    """``'demo' was removed on 2026-12-06 at 03:44 UTC`` (a torn-down deployment)."""
    when = record.removed_at or record.updated or ""
    day, _, clock = when.rstrip("Z").partition("T")
    at = f" on {day} at {clock[:5]} UTC" if day and clock else ""
    return f"{record.name!r} was {'already ' if already else ''}removed{at}"


__all__ = [
    "RECORD_SCHEMA",
    "DeploymentRecord",
    "ModelVersion",
    "delete_record",
    "deployment_on_port",
    "find_record",
    "find_removed",
    "forget_removed",
    "list_records",
    "list_removed",
    "load_record",
    "mark_removed",
    "now_iso",
    "record_path",
    "removed_record_path",
    "removed_words",
    "save_record",
]
