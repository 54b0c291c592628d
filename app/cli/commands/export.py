"""`modelship export NAME --kubernetes DIR`: the exact objects a deploy would create,
one file per object, to apply with your own tools.

NAME is a deployment (its current profile) or a saved profile. The document comes from
the target's ``manifests`` hook (secrets redacted); targets without one are refused.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from app.errors import UsageError
from app.store.profile import Profile

README = """These files were made by ModelShip (`modelship export {name} --kubernetes DIR`).

They are the exact objects `modelship deploy {name}` would create for the deployment
{name!r} on {title}, one object per file, numbered in the order to apply them:

    kubectl apply -f {dir}

Secrets are redacted: each Secret's values show a placeholder instead of the secret
itself. Before applying, replace every placeholder with the real value (e.g. the
endpoint's key: your own long random string, which callers then send as the key).
Do not commit the filled-in files.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", metavar="NAME", help="a deployment's name, or a saved profile's name or file"
    )
    parser.add_argument(
        "--kubernetes",
        metavar="DIR",
        required=True,
        help="write the exact objects a deploy would create to DIR, one file per object "
        "(DIR must not exist or be empty)",
    )


def resolve(name: str) -> Profile:
    """A deployment's current profile, else the saved profile (or profile file) NAME."""
    from app.errors import ProfileError
    from app.store.profile import load_profile
    from app.store.records import find_record

    record = find_record(name)
    if record is not None and record.profile:
        try:
            return Profile.model_validate(record.profile)
        except ValueError:  # a profile this version no longer reads: try the saved one
            pass
    try:
        return load_profile(name)
    except ProfileError:
        raise UsageError(
            f"No deployment or saved profile named {name!r}.",
            "See `modelship status` and `modelship profiles list` for the names.",
        ) from None


def kinds_with_manifests() -> list[str]:
    """The targets whose ``manifests`` hook gives a document (they implement it)."""
    from targets.base import Target
    from targets.catalog import CATALOG, get_target

    out = []
    for kind in CATALOG:
        try:
            target = get_target(kind)
        except Exception:  # a target whose dependencies are missing here
            continue
        if type(target).manifests is not Target.manifests:
            out.append(target.title)
    return out


def split_objects(document: str) -> list[tuple[str, str]]:
    """(file name, text) per object of a multi-document YAML, in order, each object's text
    as the target wrote it: ``01-secret-modelship-iris-key.yaml``."""
    import yaml

    out: list[tuple[str, str]] = []
    for part in re.split(r"(?m)^---[ \t]*(?:#.*)?$\n?", document):
        obj = yaml.safe_load(part)
        if not obj:
            continue
        n = len(out) + 1
        obj = obj if isinstance(obj, dict) else {}
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        kind = str(obj.get("kind") or "object")
        name = str(meta.get("name") or f"object-{n}")
        slug = re.sub(r"[^a-z0-9.-]+", "-", f"{kind}-{name}".lower()).strip("-")
        text = part.strip("\n") + "\n"
        out.append((f"{n:02d}-{slug}.yaml", text))
    return out


def write_objects(document: str, dest: Path, *, name: str, title: str) -> list[Path]:
    files = split_objects(document)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in files:
        path = dest / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (dest / "README.txt").write_text(
        README.format(name=name, title=title, dir=dest), encoding="utf-8"
    )
    return written


def run(args: argparse.Namespace) -> int:
    from app.run import manifests
    from targets import get_target

    dest = Path(args.kubernetes).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(
            f"{dest} exists and is not an empty folder; ModelShip never overwrites your files.",
            "Give a new folder (or an empty one).",
        )
    profile = resolve(str(args.name))
    target = get_target(profile.target.kind)
    document = manifests(profile)
    if not document:
        having = kinds_with_manifests()
        which = (
            f"Targets that do: {', '.join(having)}."
            if having
            else "No target here writes such a document."
        )
        raise UsageError(
            f"{target.title} ({profile.name!r}) has no objects to export.",
            f"{which} To use one, run: modelship deploy {profile.name} --target KIND; "
            "to share the profile itself: modelship profiles export.",
        )
    written = write_objects(document, dest, name=profile.name, title=target.title)
    print(f"Wrote {len(written)} object(s) of {profile.name!r} to {dest}:")
    for path in written:
        print(f"  {path.name}")
    print("  README.txt (secrets are redacted: fill them in before applying)")
    return 0
