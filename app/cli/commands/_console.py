"""Console helpers shared by commands: progress on stderr, JSON on stdout."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


class ConsoleProgress:
    """Progress lines on stderr. Quiet mode prints steps only."""

    def __init__(self, *, verbose: bool = False, stream: Any = None) -> None:
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self._last_fraction = -1.0

    def step(self, name: str) -> None:
        self._last_fraction = -1.0
        print(f"==> {name}", file=self.stream, flush=True)

    def update(self, fraction: float | None = None, message: str | None = None) -> None:
        if fraction is not None:
            # At most one line per 10 %: readable in CI logs, no progress-bar noise.
            if fraction - self._last_fraction < 0.1 and fraction < 1.0:
                return
            self._last_fraction = fraction
            text = f"    {fraction * 100:3.0f}%"
            if message:
                text += f" {message}"
            print(text, file=self.stream, flush=True)
        elif message:
            print(f"    {message}", file=self.stream, flush=True)

    def log(self, line: str) -> None:
        if self.verbose:
            print(f"    | {line}", file=self.stream, flush=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def command_name() -> str:
    """How to type ModelShip's command here, for the commands we print to copy.

    ``modelship`` when that name on PATH is the program that runs now; otherwise the
    path the person ran (``.venv/bin/modelship`` without the venv on PATH), or the
    Python line for ``python -m app.cli`` and ``python main.py``.
    """
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    ran = Path(argv0)
    if ran.suffix == ".py":  # python -m app.cli, python main.py
        on_path = shutil.which("modelship")
        if on_path and Path(on_path).resolve().parent == Path(sys.executable).resolve().parent:
            return "modelship"
        python = shlex.quote(sys.executable)
        return (
            f"{python} -m app.cli"
            if ran.name == "__main__.py"
            else f"{python} {shlex.quote(argv0)}"
        )
    name = ran.name or "modelship"
    on_path = shutil.which(name)
    if on_path and ran.exists() and Path(on_path).resolve() == ran.resolve():
        return name
    return shlex.quote(argv0) if argv0 else "modelship"
