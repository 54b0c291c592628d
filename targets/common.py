"""What several targets do the same way: the endpoint's API key (checked before a deploy,
read for handing to the server) and waiting until a started server answers ``/ping``.

How the key reaches the server differs by where it runs (the process's environment for
``local``, a config var on Heroku, a file on a tmpfs in Docker, a file in the VM's
secrets folder); the server reads ``API_KEY_ENV`` or the file ``API_KEY_FILE_ENV`` names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

from app.endpoint.client import answers
from app.errors import CredentialError
from app.waiting import wait_until
from targets.base import Problem

if TYPE_CHECKING:
    from app.domain import DeploymentRecord
    from app.progress import CancelToken, Progress
    from app.store.profile import Profile
    from targets.base import PlanItem
    from targets.settings import TargetSettings

API_KEY_ENV = "MODELSHIP_API_KEY"  # the key itself
API_KEY_FILE_ENV = "MODELSHIP_API_KEY_FILE"  # a file that holds it
# captured requests (app/serving/capture.py): in a container's writable layer (a VM's
# container, Docker, a Heroku dyno), so removing the container removes them
CAPTURE_DIR_IN_CONTAINER = "/tmp/modelship-capture"


def capture_env(settings: TargetSettings, directory: str) -> dict[str, str]:
    """The server's capture variables from a target's ``capture_rate``/``capture_max_mb``;
    none while capture is off (the default), so such a deployment is unchanged."""
    rate = float(getattr(settings, "capture_rate", 0.0) or 0.0)
    if rate <= 0:
        return {}
    return {
        "MODELSHIP_CAPTURE_RATE": f"{rate:g}",
        "MODELSHIP_CAPTURE_MAX_MB": f"{float(getattr(settings, 'capture_max_mb', 50.0)):g}",
        "MODELSHIP_CAPTURE_DIR": directory,
    }


def capture_on(settings: TargetSettings) -> bool:
    return float(getattr(settings, "capture_rate", 0.0) or 0.0) > 0


def key_problems(name: str | None) -> list[Problem]:
    """The endpoint key's keyring entry ``name`` can be read (nothing to check when the
    settings name no key): a credential problem on the ``api_key`` setting otherwise."""
    if not name:
        return []
    from app.store.secrets import get_secret

    try:
        get_secret(name)
    except CredentialError as exc:
        return [Problem(exc.message, exc.hint or "", kind="credential", setting="api_key")]
    return []


def endpoint_key_value(settings: TargetSettings) -> str | None:
    """The key callers must send, from the keyring, to hand to the server (never
    logged); None when the settings name no key."""
    name = settings.endpoint_key()
    if not name:
        return None
    from app.store.secrets import get_secret

    return get_secret(name)


def wait_answering(
    url: str,
    state: Callable[[], str | None],
    failed: Callable[[str], str | None],
    *,
    timeout: float,
    cancel: CancelToken | None,
    progress: Progress,
    what: str,
    noun: str,
    running: str,
    fail_hint: str,
    details: Callable[[], str | None],
) -> None:
    """Wait until the server on ``url`` answers ``/ping``; fail early when it stops.

    ``state()`` is None while the server's process (or container) runs, so it is asked;
    otherwise a word for what it is doing instead, which ``failed`` turns into why the
    wait is over (or None: keep waiting). ``running`` names the state while it runs but
    does not answer yet; progress says "``noun`` STATE".
    """

    def probe() -> str:
        now = state()
        if now is not None:
            return now
        return "answering" if answers(url, timeout=1.0) else running

    wait_until(
        probe,
        lambda now: now == "answering",
        failed,
        timeout=timeout,
        cancel=cancel,
        progress=progress,
        what=what,
        describe=lambda now: f"{noun} {now}",
        hint="Raise the Start timeout setting for a large model.",
        fail_hint=fail_hint,
        details=details,
        interval=0.05,
        max_interval=0.5,
    )


class PreflightModule:
    """A target whose ``check``, ``warnings`` and ``plan`` live in a module of their own,
    its ``preflight`` (list this before :class:`targets.base.Target` among the bases)."""

    preflight: ClassVar[ModuleType]

    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        return self.preflight.check(profile, previous)  # type: ignore[no-any-return]

    def warnings(self, profile: Profile) -> list[str]:
        return self.preflight.warnings(profile)  # type: ignore[no-any-return]

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        return self.preflight.plan(profile, previous)  # type: ignore[no-any-return]


__all__ = [
    "API_KEY_ENV",
    "API_KEY_FILE_ENV",
    "PreflightModule",
    "endpoint_key_value",
    "key_problems",
    "wait_answering",
]


def merge_capture(parts: Iterable[tuple[str, bytes]]) -> bytes:
    """Captured requests (JSON Lines, app/serving/capture.py) from several servers (pods,
    dynos), each part as (the server that answered, its lines), as one, ordered by each
    line's time ``t``. A line is kept once per server (pulling one server twice repeats
    its lines); a line that does not parse (a partly written last line) is left out."""
    timed: list[tuple[float, bytes]] = []
    seen: set[tuple[str, bytes]] = set()
    for source, part in parts:
        for raw in part.splitlines():
            line = raw.strip()
            if not line or (source, line) in seen:
                continue
            try:
                t = float(json.loads(line)["t"])
            except (ValueError, TypeError, KeyError):
                continue
            seen.add((source, line))
            timed.append((t, line))
    timed.sort(key=lambda item: item[0])
    return b"".join(line + b"\n" for _, line in timed)
