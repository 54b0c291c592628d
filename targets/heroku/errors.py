"""Heroku's error codes in plain words with the next step, and a failed release
explained from its output and the app's log."""

from __future__ import annotations

import contextlib
import re

from app.errors import TargetError
from app.nextstep import run_command, say
from targets.heroku.client import (
    HerokuClient,
)

# Heroku's error codes (devcenter.heroku.com/articles/error-codes) in plain words, with
# the next step for a ModelShip deployment.
ERROR_CODES: dict[str, tuple[str, str]] = {
    "R10": (
        "Boot timeout: the server did not listen on $PORT within 60 seconds of starting",
        say(
            "A large model loads slowly: serve the int8 model (quantize = true) or choose a "
            "larger dyno (dyno_size = standard-2x); ",
            run_command("serve", "MODEL"),
            " shows how long it takes to start on this computer.",
        ),
    ),
    "R14": (
        "Memory quota exceeded: the dyno used more memory than its size allows",
        "Choose a dyno with more memory (dyno_size = standard-2x or performance-m), or "
        "serve the int8 model (quantize = true).",
    ),
    "R15": (
        "Memory quota vastly exceeded: Heroku killed the dyno",
        "Choose a dyno with more memory (dyno_size), or serve the int8 model.",
    ),
    "R12": (
        "Exit timeout: the server did not stop within 30 seconds of SIGTERM",
        say(
            "Deploy again; if it happens again, send the log (",
            run_command("logs", "NAME"),
            ") with a bug report.",
        ),
    ),
    "H10": (
        "App crashed: the web process exited, so Heroku has nothing to send requests to",
        say(
            "Read the server's last log lines (",
            run_command("logs", "NAME"),
            "); ",
            run_command("serve", "MODEL"),
            " reproduces it on this computer.",
        ),
    ),
    "H12": (
        "Request timeout: a request took longer than 30 seconds",
        "Send fewer rows per request, or choose a larger dyno (dyno_size).",
    ),
    "H13": (
        "Connection closed without response: the server dropped a request",
        say(
            "Read the log (",
            run_command("logs", "NAME"),
            "); the server may be running out of memory.",
        ),
    ),
    "H14": (
        "No web dynos running",
        "Deploy again; ModelShip releases one web dyno.",
    ),
    "H20": (
        "App boot timeout: the router gave up waiting for the dyno to start",
        "Serve the int8 model or choose a larger dyno (dyno_size).",
    ),
}


_CODE = re.compile(r"(?:Error (R\d\d)\b|code=(H\d\d)\b)")


def explain(lines: list[str]) -> tuple[str, str, str] | None:
    """(code, what it means, next step) of the last Heroku error code in log lines."""
    for line in reversed(lines):
        match = _CODE.search(line)
        if match:
            code = match.group(1) or match.group(2)
            if code in ERROR_CODES:
                return code, *ERROR_CODES[code]
            return code, f"Heroku error {code}", "See devcenter.heroku.com/articles/error-codes."
    return None


def failure(api: HerokuClient, app: str, output: list[str], exc: TargetError) -> TargetError:
    """The release failed: say why in Heroku's words and in plain ones."""
    lines = list(output)
    with contextlib.suppress(TargetError):
        lines += api.log_lines(app, 100)
    found = explain(lines)
    details = "\n".join(lines[-40:]) or None
    if found is None:
        crashed = next((line for line in reversed(lines) if "before binding" in line), None)
        words = f": {crashed.split(': ', 1)[-1]}" if crashed else ""
        return TargetError(
            f"Heroku could not start the release on {app}{words}.",
            ERROR_CODES["H10"][1],
            details=details,
        )
    code, meaning, fix = found
    return TargetError(
        f"Heroku could not start the release on {app}: {code} ({meaning}).",
        fix,
        details=details,
    )
