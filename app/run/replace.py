"""Replacing a running deployment of the same name: who steps aside, and when.

A target's ``replacement`` says how (``app.domain.Replacement``). Across targets (a
name moved from local to docker) the old one is stopped first when either side needs
that, e.g. both answer on the same port.

Whether to replace at all: a new model whose inputs differ from the running version's
(names, kinds of value, count, order) would break every caller behind the same URL, so
:func:`input_change` names what changes and the deploy goes on only when the person
agreed (``run_deploy(..., replace=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.domain import DeploymentRecord, Endpoint
from app.errors import UsageError
from app.progress import Progress
from app.run.attempt import Attempt, short
from app.run.events import Event
from app.store.records import save_record
from targets.base import Target
from targets.catalog import get_target


def stops_old_first(previous: DeploymentRecord, new: Target) -> bool:
    if previous.target == new.name:
        return new.replacement == "stop_old_first"
    old = get_target(previous.target)
    return "stop_old_first" in {new.replacement, old.replacement}


def suspend(previous: DeploymentRecord, progress: Progress) -> Target:
    old = get_target(previous.target)
    progress.update(None, f"Stopping the running {previous.name!r} to replace it")
    old.suspend(previous, progress)
    return old


def restore(attempt: Attempt, old: Target, previous: DeploymentRecord) -> str:
    """Bring the replaced deployment back after the new one failed."""
    progress = attempt.progress("rollback")
    try:
        endpoint: Endpoint | None = old.resume(previous, progress)
    except Exception as exc:
        attempt.emit(
            Event("rollback", "rollback", message=f"Could not restart the previous one: {exc}")
        )
        return f" The previous deployment could not be restarted ({short(exc)})."
    if endpoint is not None:
        previous.endpoint = endpoint.to_dict()
        save_record(previous)
    attempt.emit(Event("rollback", "rollback", message="The previous deployment runs again."))
    return f" The previous version ({previous.current_version}) runs again."


def retire(previous: DeploymentRecord, new: Target, progress: Progress) -> list[str]:
    """After the new one passed its smoke test: remove what the old one ran (keeping
    what a rollback needs). A platform that swapped by itself leaves nothing to do."""
    if previous.target == new.name and new.replacement == "platform":
        return []
    return get_target(previous.target).retire(previous, progress)


# ---- what a caller of the endpoint sees change -------------------------------------------

_KIND_WORDS = {
    "number": "a number",
    "whole": "a whole number",
    "text": "text",
    "bool": "true/false",
}


def _kind(dtype: str) -> str:
    """What a caller sends for a dtype: float32 and float64 are the same to a caller."""
    d = str(dtype).lower()
    if d.startswith(("float", "double")):
        return "number"
    if d.startswith(("int", "uint")):
        return "whole"
    if d in {"str", "string", "object"}:
        return "text"
    if d == "bool":
        return "bool"
    return d


@dataclass
class InputChange:
    """How the new model's inputs differ from those of the running version.

    Column models are compared by column (name, kind of value, order); tensor models by
    input tensor (name, kind, shape without the batch dimension).
    """

    name: str  # the deployment
    version: int  # the running version it would replace
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)  # name, was, now
    reordered: bool = False

    def __bool__(self) -> bool:
        return bool(self.removed or self.added or self.retyped or self.reordered)

    def parts(self) -> list[str]:
        """Each change with what it means for the endpoint's callers."""
        out = []
        if self.removed:
            them = "it" if len(self.removed) == 1 else "them"
            out.append(f"{_names(self.removed)} removed; callers sending {them} will get errors")
        if self.added:
            them = "it" if len(self.added) == 1 else "them"
            out.append(f"{_names(self.added)} added; callers must now send {them}")
        for col, was, now in self.retyped:
            out.append(
                f"{col!r} is now {_KIND_WORDS.get(now, now)} (was {_KIND_WORDS.get(was, was)}); "
                "callers sending the old kind will get errors"
            )
        if self.reordered:
            out.append(
                "the columns are in another order; callers sending rows as plain lists "
                "will get wrong answers"
            )
        return out

    def words(self) -> str:
        """One line: ``inputs change: 'region', 'membership' removed; callers ...``."""
        return "inputs change: " + "; ".join(self.parts())


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _inputs_of(signature_path: Path) -> tuple[str, list[tuple[str, str, tuple[Any, ...]]]] | None:
    """("columns" | "tensors", [(name, kind, shape)]) of a signature file, or None."""
    from app.serving.signature import Signature

    try:
        sig = Signature.load(signature_path)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if sig.columns:
        return "columns", [(c.name, _kind(c.dtype), ()) for c in sig.columns]
    return "tensors", [(t.name, _kind(t.dtype), tuple(t.shape[1:])) for t in sig.inputs]


def input_change(
    previous: DeploymentRecord | None, signature_path: Path | str
) -> InputChange | None:
    """How a model with this signature file changes the inputs of ``previous``'s running
    version; None when nothing changes for a caller, or when either side is unknown (no
    live deployment, a signature file that is gone)."""
    if previous is None or previous.state == "removed":
        return None
    current = previous.version()
    if current is None:
        return None
    old = _inputs_of(current.converted().signature_path)
    new = _inputs_of(Path(signature_path))
    if old is None or new is None:
        return None
    change = InputChange(previous.name, previous.current_version)
    (old_layout, old_in), (new_layout, new_in) = old, new
    old_by = {n: (k, s) for n, k, s in old_in}
    new_by = {n: (k, s) for n, k, s in new_in}
    change.removed = [n for n, _, _ in old_in if n not in new_by]
    change.added = [n for n, _, _ in new_in if n not in old_by]
    for n, kind, shape in new_in:
        if n in old_by and old_by[n] != (kind, shape):
            was, was_shape = old_by[n]
            if was != kind:
                change.retyped.append((n, was, kind))
            else:  # same kind, another shape (tensor models)
                change.retyped.append((n, f"shape {list(was_shape)}", f"shape {list(shape)}"))
    if old_layout == new_layout == "columns":
        kept_old = [n for n, _, _ in old_in if n in new_by]
        kept_new = [n for n, _, _ in new_in if n in old_by]
        change.reordered = kept_old != kept_new and not change.removed and not change.added
    return change if change else None


class InputsChangeRefused(UsageError):
    """Deploying would change the inputs of a running deployment, and nobody agreed.

    ``change`` says what changes; each front end renders its own way to agree (the CLI's
    ``--replace``, the wizard's tick on Review).
    """

    touched_nothing = True  # raised before the deploy step: no "Rolled back" words

    def __init__(self, change: InputChange) -> None:
        super().__init__(
            f"Deploying this model as {change.name!r} would change what its callers must "
            f"send ({change.words()}). Nothing was changed: {change.name!r} still runs "
            f"version {change.version}.",
            "Confirm that the new model may replace it, or deploy it under another name.",
        )
        self.change = change
