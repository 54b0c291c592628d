"""One way to wait for anything: a server to answer, a VM to boot, an endpoint to be InService.

Modelled on openstacksdk's ``resource.wait_for_status`` and ``utils.iterate_timeout``:
a probe is called at growing intervals until ``ready`` says yes, ``failed`` names a
failure, the time runs out or the user cancels. Timeouts and failures are distinct
errors, each with a next step, so a caller never has to guess which one happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from app.errors import TargetError
from app.progress import CancelToken, NullProgress, Progress

T = TypeVar("T")


class WaitTimeout(TargetError):
    """The thing waited for did not become ready in time (it may still get there)."""


class WaitFailed(TargetError):
    """The thing waited for reached a state it will not recover from."""


def wait_until(
    probe: Callable[[], T],
    ready: Callable[[T], bool],
    failed: Callable[[T], str | None] | None = None,
    *,
    timeout: float,
    cancel: CancelToken | None = None,
    progress: Progress | None = None,
    what: str = "it",
    hint: str = "Try again; if it keeps happening, raise the timeout in the settings.",
    fail_hint: str = "See the details, fix the cause and deploy again.",
    describe: Callable[[T], str] | None = None,
    interval: float = 0.1,
    max_interval: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (),
    details: Callable[[], str | None] | None = None,
) -> T:
    """Call ``probe()`` until ``ready(value)``; return that value.

    ``failed(value)`` returns a reason when the value shows a failure that waiting will
    not fix (a server in ERROR, a process that exited): :class:`WaitFailed` at once.
    Exceptions listed in ``retry_on`` count as "not yet" (a connection refused while a
    server starts); any other exception propagates. ``describe(value)`` is shown as
    progress when the state changes, e.g. "server BUILD (42 s)". ``details()`` adds text
    (a log tail) to the error. A cancel raises :class:`app.errors.Cancelled`.
    """
    cancel = cancel or CancelToken()
    progress = progress or NullProgress()
    start = time.monotonic()
    delay = interval
    last_said = ""
    last_error: BaseException | None = None
    seen: list[T] = []  # the last probed value, once there is one
    while True:
        cancel.raise_if_cancelled()
        try:
            value = probe()
        except retry_on as exc:
            last_error = exc
        else:
            seen[:] = [value]
            if ready(value):
                return value
            reason = failed(value) if failed is not None else None
            if reason:
                raise WaitFailed(
                    f"{what[:1].upper()}{what[1:]} failed: {reason}",
                    fail_hint,
                    details=details() if details else None,
                )
            if describe is not None:
                said = describe(value)
                if said != last_said:
                    progress.update(None, f"{said} ({time.monotonic() - start:.0f} s)")
                    last_said = said
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            state = ""
            if seen and describe is not None:
                state = f" (last seen: {describe(seen[0])})"
            elif last_error is not None:
                state = f" (last error: {last_error})"
            raise WaitTimeout(
                f"Gave up waiting for {what} after {timeout:.0f} s{state}.",
                hint,
                details=details() if details else None,
            )
        if cancel.wait(min(delay, max(0.0, timeout - elapsed))):
            cancel.raise_if_cancelled()
        delay = min(delay * 1.5, max_interval)


__all__ = ["WaitFailed", "WaitTimeout", "wait_until"]
