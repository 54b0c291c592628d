"""What the conformance suite needs to know about a target to test it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Harness:
    """How to deploy to one target in tests, and how to see what is left of it.

    ``profile(model, name)`` returns a deployable Profile (emulator addresses, free
    ports). ``leftovers(name)`` lists, in words, everything of deployment ``name`` that
    still exists on the platform (processes, containers, images, apps, servers, pushed
    images...): [] means nothing is left. ``faults`` are failures the platform can be
    made to answer inside the target's own deploy step, by label: each is a context
    manager factory active during one deploy attempt.
    """

    kind: str
    profile: Callable[[Path, str], Any]
    leftovers: Callable[[str], list[str]]
    faults: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = field(
        default_factory=dict
    )
    # a deploy takes this long at most here (emulated clouds, first image builds)
    timeout: float = 600.0


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield
