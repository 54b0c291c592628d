"""How to start ModelShip's own helpers as subprocesses, from source or frozen.

Three things run in child processes: the serving runtime (the `local` target), the
conversion worker script, and ``pip download`` (the image's wheelhouse). From source
they run under ``sys.executable``. In the PyInstaller bundle there is no Python
interpreter, only the bundle's executable, so it re-invokes itself with a hidden
subcommand (``_serve``, ``_run-script``, ``_pip``) that does the same job in-process.
Callers build argv lists with these functions and never care which case they are in.
"""

from __future__ import annotations

import sys
from pathlib import Path


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def modelship_command(*args: str) -> list[str]:
    """argv that runs ``modelship ARGS...`` with this installation."""
    if is_frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "app.cli", *args]


def serving_command(*args: str) -> list[str]:
    """argv that runs the serving runtime (``python -m app.serving ARGS...``)."""
    if is_frozen():
        return [sys.executable, "_serve", *args]
    return [sys.executable, "-m", "app.serving", *args]


def script_command(script: str | Path, *args: str, python: str | None = None) -> list[str]:
    """argv that runs a standalone script file, with ``python`` if given.

    An external interpreter (``--python``) runs the file itself; otherwise this
    installation's own Python (or the bundle) does.
    """
    if python:
        return [python, str(script), *args]
    if is_frozen():
        return [sys.executable, "_run-script", str(script), *args]
    return [sys.executable, str(script), *args]


def pip_command(*args: str) -> list[str]:
    """argv that runs pip (the bundle carries pip, so no Python is needed on the machine)."""
    if is_frozen():
        return [sys.executable, "_pip", *args]
    return [sys.executable, "-m", "pip", *args]


def run_hidden(argv: list[str]) -> int | None:
    """Handle the hidden subcommands; None if argv is not one of them."""
    if not argv or argv[0] not in {"_serve", "_run-script", "_pip"}:
        return None
    cmd, rest = argv[0], argv[1:]
    if cmd == "_pip":
        from pip._internal.cli.main import main as pip_main

        return int(pip_main(rest) or 0)
    if cmd == "_serve":
        from app.serving.__main__ import main as serve_main

        return int(serve_main(rest) or 0)
    import runpy

    script = rest[0]
    sys.argv = [script, *rest[1:]]
    runpy.run_path(script, run_name="__main__")
    return 0
