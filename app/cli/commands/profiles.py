"""`modelship profiles list|show|export|import|delete`: saved deployment profiles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.commands._console import print_json
from app.errors import ProfileError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list saved profiles")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = sub.add_parser("show", help="print a profile (TOML)")
    p.add_argument("name", metavar="NAME|FILE")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p = sub.add_parser("export", help="write a saved profile to a file to share it")
    p.add_argument("name", metavar="NAME")
    p.add_argument("file", metavar="FILE", help="where to write it ('-' for stdout)")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
    p = sub.add_parser("import", help="check a profile file and save it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="save it under another name")
    p.add_argument("--force", action="store_true", help="replace a saved profile of that name")
    p = sub.add_parser("delete", help="remove a saved profile (not its deployment)")
    p.add_argument("name", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    from app.store import profile as profiles

    if args.action == "list":
        items = profiles.list_profiles()
        if args.json:
            print_json([i.to_dict() for i in items])
        elif not items:
            print("No saved profiles. `modelship deploy MODEL` saves one.")
        for i in [] if args.json else items:
            if i.error:
                print(f"{i.name}  (invalid: {i.error})")
            else:
                print(f"{i.name}  [{i.target}]  {i.model}")
        return 0
    if args.action == "show":
        p = profiles.load_profile(args.name)
        if args.json:
            print_json(p.to_dict())
        else:
            sys.stdout.write(p.to_toml())
        return 0
    if args.action == "export":
        p = profiles.load_profile(args.name)
        if args.file == "-":
            sys.stdout.write(p.to_toml())
            return 0
        dest = Path(args.file).expanduser()
        if dest.exists() and not args.force:
            raise UsageError(f"{dest} already exists.", "Use --force to overwrite it.")
        profiles.save_profile(p, dest)
        print(f"Exported {p.name!r} to {dest}")
        return 0
    if args.action == "import":
        src = Path(args.file).expanduser()
        if not src.is_file():
            raise UsageError(f"No such file: {src}", "Give the path of a profile (.toml) file.")
        p = profiles.load_profile(src)
        if args.name:
            p.name = args.name
        dest = profiles.profile_path(p.name)
        if dest.exists() and not args.force:
            raise ProfileError(
                f"A saved profile named {p.name!r} exists.",
                "Use --force to replace it, or --name to save under another name.",
            )
        if not profiles.is_uri_path(p.model.path) and not Path(p.model.path).exists():
            print(f"warning: the model file {p.model.path} does not exist here.", file=sys.stderr)
        # trust is never imported: the file's trust fields are dropped on load (notes),
        # and an interpreter it names runs only once trusted on this computer
        for note in p.notes:
            print(f"note: {note}", file=sys.stderr)
        if p.model.python:
            from app.store.trust import python_path, python_trusted

            if not python_trusted(p.model.python):
                where = python_path(p.model.python) or p.model.python
                print(
                    f"note: the profile asks to convert with the Python interpreter {where}; "
                    "it runs only once you confirm it on this computer: modelship trust "
                    f"--python {where}",
                    file=sys.stderr,
                )
        profiles.save_profile(p)
        print(f"Imported {p.name!r} ({dest}); deploy it with: modelship deploy {p.name}")
        return 0
    if args.action == "delete":
        if not profiles.delete_profile(args.name):
            raise UsageError(
                f"No saved profile named {args.name!r}.", "See `modelship profiles list`."
            )
        print(f"Deleted profile {args.name!r}.")
        return 0
    raise UsageError(f"Unknown action {args.action!r}.", "See `modelship profiles --help`.")
