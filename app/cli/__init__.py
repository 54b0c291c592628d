"""`modelship` command line: one entry, subcommands loaded lazily.

Each subcommand lives in ``app/cli/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their command runs, so ``modelship serve`` never pays for scikit-learn or Qt, and
``--help`` is instant.

Errors: a :class:`~app.errors.ModelShipError` becomes one line (plus one line with the
next step) on stderr and its exit code; anything else is a bug and prints a short
line, with the traceback only under ``--debug``. Progress goes to stderr, results to
stdout.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from app import __version__
from app.errors import ModelShipError

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("app.cli.commands.demo", "try ModelShip on the bundled sample model"),
    "inspect": ("app.cli.commands.inspect", "tell what a model file is and what input it expects"),
    "convert": ("app.cli.commands.convert", "convert a model to ONNX and prove the conversion"),
    "serve": ("app.cli.commands.serve", "serve an ONNX model over HTTP on this computer"),
    "build": ("app.cli.commands.build", "build the serving image for a profile"),
    "deploy": ("app.cli.commands.deploy", "deploy a profile (or a model) and smoke-test it"),
    "status": ("app.cli.commands.status", "show deployments and whether they answer"),
    "invoke": ("app.cli.commands.invoke", "get predictions from a deployment for a CSV/JSON file"),
    "logs": ("app.cli.commands.logs", "show a deployment's last log lines"),
    "monitor": (
        "app.cli.commands.monitor",
        "compare a deployment's captured inputs with the rows its model was proven on",
    ),
    "stop": ("app.cli.commands.stop", "stop a deployment without removing it"),
    "start": ("app.cli.commands.start", "start a stopped deployment again"),
    "teardown": ("app.cli.commands.teardown", "remove a deployment and everything it created"),
    "rollback": ("app.cli.commands.rollback", "go back to a deployment's previous image"),
    "profiles": ("app.cli.commands.profiles", "list, show, export and import saved profiles"),
    "export": (
        "app.cli.commands.export",
        "write the exact objects a deploy would create (Kubernetes) to a folder",
    ),
    "trust": (
        "app.cli.commands.trust",
        "trust a model file or a Python interpreter on this computer",
    ),
    "hosts": ("app.cli.commands.hosts", "confirm service addresses ModelShip may send keys to"),
}

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _available() -> dict[str, tuple[str, str]]:
    """Commands whose module exists (lets the CLI grow one command at a time)."""
    out = {}
    for name, (module, helptext) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            out[name] = (module, helptext)
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelship",
        description="Take a trained model to a working, tested prediction endpoint. "
        "Run with no command to open the wizard.",
    )
    parser.add_argument("--version", action="version", version=f"modelship {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, helptext) in _available().items():
        p = sub.add_parser(name, help=helptext, description=helptext[:1].upper() + helptext[1:])
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from app.runtime import run_hidden

    hidden = run_hidden(argv)  # the frozen bundle re-invoking itself (see app/runtime.py)
    if hidden is not None:
        return hidden
    command = _command_in(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    args.argv = argv  # as typed: a command's error can say the exact command to run again
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        from app.cli.gui_entry import open_wizard

        return open_wizard()
    module = importlib.import_module(_available()[args.command][0])
    try:
        return int(module.run(args) or 0)
    except ModelShipError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  next step: {exc.hint}", file=sys.stderr)
        if args.debug and exc.details:
            print(exc.details, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        if args.debug:
            raise
        print(
            f"error: internal error ({type(exc).__name__}: {exc}).",
            file=sys.stderr,
        )
        print(
            "  next step: run again with --debug and report the output.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
