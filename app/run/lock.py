"""One command at a time per deployment name (the CLI and the wizard may both try)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from app.errors import TargetError
from app.paths import data_dir


def lock_path(name: str):  # -> Path
    return data_dir() / "locks" / f"{name}.lock"


@contextlib.contextmanager
def deployment_lock(name: str) -> Iterator[None]:
    """An advisory lock on a file in the data dir; the OS drops it if the process dies,
    so a crash never leaves a stale lock."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; carry on unlocked
        yield
        return
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
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
