"""Console helpers shared by commands: progress on stderr, JSON on stdout."""

from __future__ import annotations

import json
import sys
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
