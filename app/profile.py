"""Deployment profiles: every choice of a deployment, in one TOML file that re-runs.

A profile holds no secrets (a :data:`app.domain.SecretRef` names a keyring entry),
is versioned (``schema = 1``) and is validated strictly: an unknown key, a missing
one or a wrong type is an error that names the key and its line in the file, because
people edit these files by hand. The target's ``[target.settings]`` are validated by
that target's own ``Settings`` class, found in the catalog of kinds
(:mod:`targets.catalog`), which loads no target implementation and no SDK.

Example::

    schema = 1
    name = "iris"

    [model]
    path = "iris.joblib"          # relative paths are relative to this file
    tolerance = 0.0001

    [target]
    kind = "local"

    [target.settings]
    port = 8080

Saved profiles live in ``app.paths.profiles_dir()`` as ``NAME.toml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import tomlkit
import tomlkit.exceptions
from pydantic import ConfigDict, Field, SerializeAsAny, field_validator

from app.domain import SECRET_REF_PATTERN
from app.errors import ProfileError
from app.paths import profiles_dir

SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = (1,)
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DEFAULT_BASE_IMAGE = "python:3.11-slim"


class _Strict(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Strict):
    # A file or folder is a Path; an MLflow ``runs:/`` or ``models:/`` URI stays the text
    # it is (downloaded by the pipeline from the tracking server, never made a file path).
    path: Path | str = Field(
        description="The trained model file (pickle, joblib, ONNX, ...), an MLflow model "
        "folder, or an MLflow runs:/ or models:/ URI."
    )
    python: str | None = Field(
        None, description="Python interpreter to convert with (the model's training environment)."
    )
    sample_csv: Path | None = Field(None, description="Sample rows for the conversion proof.")
    input_shape: list[int] | None = Field(None, description="Input shape for tensor models.")
    tolerance: float = Field(1e-4, gt=0, description="Largest accepted difference in the proof.")
    match_env: bool = Field(
        False,
        description="Convert in an environment with the library versions the file was saved "
        "with, made from the package index once, when they differ from ModelShip's own.",
    )
    quantize: bool = Field(False, description="Also make an int8 version and serve it.")
    accept_mismatch: bool = Field(
        False, description="Deploy even if the conversion proof fails (not recommended)."
    )
    # Trust is given to one exact file, not to a name: a shared profile cannot make
    # anyone load a pickle that changed since its author looked at it.
    trusted_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the model file its owner said to trust (a pickle that refers "
        "to code ModelShip does not know); another file is not trusted.",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _path_or_uri(cls, value: Any) -> Any:
        if isinstance(value, str):
            from app.mlflowmodel import URI_SCHEMES, check_uri

            if value.strip().lower().startswith(URI_SCHEMES):
                return check_uri(value.strip())  # ValueError names what is wrong
            return Path(value)
        return value


def is_uri_path(path: Path | str) -> bool:
    """Is a profile's model path an MLflow URI (kept as text) rather than a file?"""
    return isinstance(path, str)


class TargetSection(_Strict):
    kind: str = Field("local", description="Where to deploy: a name from targets.CATALOG.")
    # Typed per target: validated by the target's own Settings class (see below).
    settings: SerializeAsAny[Any] = Field(None, validate_default=True)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from targets.catalog import CATALOG  # settings only: no target code, no SDK

        if kind not in CATALOG:
            raise ValueError(f"unknown target kind {kind!r} (known: {', '.join(CATALOG)})")
        return kind

    @field_validator("settings", mode="before")
    @classmethod
    def _settings_of_kind(cls, raw: Any, info: pydantic.ValidationInfo) -> Any:
        from targets.catalog import CATALOG

        kind = info.data.get("kind")
        if kind not in CATALOG:
            return raw  # the kind's own error says what is wrong
        settings_cls = CATALOG[kind].Settings
        if isinstance(raw, settings_cls):
            return raw
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError("must be a table of the target's settings")
        return settings_cls.model_validate(raw)


class ImageSection(_Strict):
    base_image: str = Field(DEFAULT_BASE_IMAGE, description="Base image of the serving image.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra image labels.")

    @field_validator("base_image")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if not v or any(c in v for c in "\r\n \t"):
            raise ValueError("must be an image name such as python:3.11-slim (no spaces)")
        return v


class SmokeSection(_Strict):
    keep_on_failure: bool = Field(
        False, description="Keep a deployment that fails its smoke test, for debugging."
    )
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for health.")


class Profile(_Strict):
    """One deployment, complete. ``source`` is where it was loaded from (not saved)."""

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    name: str = Field(pattern=NAME_PATTERN, description="Deployment name: a-z, 0-9, - and _.")
    model: ModelSection
    target: TargetSection = Field(default_factory=TargetSection)
    image: ImageSection = Field(default_factory=ImageSection)
    smoke: SmokeSection = Field(default_factory=SmokeSection)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
    _source: Path | None = pydantic.PrivateAttr(None)

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v not in SUPPORTED_SCHEMAS:
            if v > SCHEMA_VERSION:
                raise ValueError(
                    f"schema {v} is newer than this ModelShip understands "
                    f"({SCHEMA_VERSION}); update ModelShip"
                )
            raise ValueError(f"schema {v} is not supported (supported: {SUPPORTED_SCHEMAS})")
        return v

    @property
    def source(self) -> Path | None:
        return self._source

    def to_dict(self) -> dict[str, Any]:
        """Plain data as written to TOML (None values left out: TOML has no null)."""
        return _drop_none(self.model_dump(mode="json", by_alias=True))

    def to_toml(self, relative_to: Path | None = None) -> str:
        """TOML text. With ``relative_to`` (the folder the file goes to), paths under
        that folder are written relative to it, so a profile shared together with its
        model keeps working elsewhere."""
        doc = tomlkit.document()
        doc.add(tomlkit.comment("ModelShip deployment profile. No secrets in here: a"))
        doc.add(tomlkit.comment("setting ending in a keyring entry name holds only the name."))
        data = self.to_dict()
        if relative_to is not None:
            base = Path(relative_to).resolve()
            for key in ("path", "sample_csv"):
                value = data["model"].get(key)
                if value and Path(value).is_absolute() and Path(value).is_relative_to(base):
                    data["model"][key] = Path(value).relative_to(base).as_posix()
        for key in ("schema", "name"):
            doc.add(key, data.pop(key))
        for key, value in data.items():
            doc.add(tomlkit.nl())
            doc.add(key, value)
        return tomlkit.dumps(doc)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# ---- parsing with line numbers ----------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", text)
    return tuple(a or b or c for a, b, c in parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path (and table header) in TOML text to its 1-based line number.

    tomlkit keeps the document but not line numbers, so this small scanner finds them:
    enough for table headers, ``key = value`` and dotted keys, which is what profiles
    use. Lines inside multi-line strings are skipped.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        m = _TABLE.match(line)
        if m and not _KEY.match(line):
            table = _split_key(m.group(1))
            lines.setdefault(table, number)
            continue
        m = _KEY.match(line)
        if m:
            path = table + _split_key(m.group(1))
            lines.setdefault(path, number)
            rest = line[m.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return lines


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    """The line of the deepest key of ``loc`` that exists in the file."""
    path = tuple(str(p) for p in loc if not isinstance(p, int))
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _key_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    # pydantic puts a model validator's errors on the section; an alias shows as-is.
    return ".".join(parts) if parts else "(top level)"


def _describe(err: dict[str, Any], lines: dict[tuple[str, ...], int], where: str) -> str:
    loc = tuple(err.get("loc", ()))
    if loc and loc[0] == "schema_version":
        loc = ("schema", *loc[1:])
    key = _key_name(loc)
    kind = err.get("type", "")
    line = _line_of(loc, lines)
    at = f"{where}, line {line}" if line else where
    if kind == "extra_forbidden":
        return f"unknown key {key!r} ({at})"
    if kind == "missing":
        parent = ".".join(key.split(".")[:-1])
        section = f" in [{parent}]" if parent else ""
        return f"missing key {key.split('.')[-1]!r}{section} ({at})"
    msg = err.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        msg = _PATTERN_WORDS.get((err.get("ctx") or {}).get("pattern", ""), msg)
    return f"key {key!r}: {msg} ({at})"


_PATTERN_WORDS = {
    NAME_PATTERN: "must be lower-case letters, digits, - and _ (starting with a letter or digit)",
    SECRET_REF_PATTERN: "must be the NAME of a keyring entry (letters, digits, . _ - : @ /), "
    "not the secret itself",
}


def parse_profile(text: str, *, source: Path | None = None) -> Profile:
    """Validate TOML text as a profile; relative paths are resolved against ``source``."""
    where = str(source) if source else "profile"
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ProfileError(
            f"{where} is not valid TOML: {exc}",
            "Fix the line named above (TOML: key = value, [section]).",
        ) from None
    data = doc.unwrap()
    lines = key_lines(text)
    if "schema" not in data:
        raise ProfileError(
            f"{where} has no 'schema' key (line 1)",
            f"Add 'schema = {SCHEMA_VERSION}' at the top of the file.",
        )
    try:
        profile = Profile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_describe(e, lines, where) for e in exc.errors()]
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProfileError(
            f"Invalid profile: {first}{more}",
            "Fix the key named above; `modelship profiles show NAME` prints a valid profile.",
            details="\n".join(problems),
        ) from None
    base = source.parent if source else Path.cwd()
    _resolve_paths(profile, base)
    profile._source = source
    return profile


def _resolve_paths(profile: Profile, base: Path) -> None:
    m = profile.model
    if not is_uri_path(m.path):  # an MLflow URI is not relative to anything
        m.path = _absolute(m.path, base)
    if m.sample_csv is not None:
        m.sample_csv = _absolute(m.sample_csv, base)
    if m.python and ("/" in m.python or "\\" in m.python):
        m.python = str(_absolute(Path(m.python), base))


def _absolute(p: Path, base: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def profile_path(name: str) -> Path:
    return profiles_dir() / f"{name}.toml"


def load_profile(path_or_name: str | Path) -> Profile:
    """Load a profile file, or a saved profile by name. Errors name the key and line."""
    candidate = Path(path_or_name).expanduser()
    if candidate.suffix == ".toml" or candidate.exists() or "/" in str(path_or_name):
        path = candidate
    else:
        path = profile_path(str(path_or_name))
    if not path.is_file():
        names = [p.name for p in list_profiles()]
        known = f" Saved profiles: {', '.join(names)}." if names else ""
        raise ProfileError(
            f"No profile named {str(path_or_name)!r}.{known}",
            "Give a profile file, a saved profile's name (`modelship profiles list`), "
            "or a model file.",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"Cannot read profile {path}: {exc}", "Check the file.") from None
    return parse_profile(text, source=path.resolve())


def save_profile(profile: Profile, path: str | Path | None = None) -> Path:
    """Write the profile as TOML (default: the saved-profiles folder as NAME.toml)."""
    target = Path(path) if path is not None else profile_path(profile.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    # Saved profiles keep absolute paths; a file saved elsewhere (export) gets paths
    # relative to its folder where the model lies under it.
    relative = None if path is None else target.parent
    tmp.write_text(profile.to_toml(relative_to=relative), encoding="utf-8")
    tmp.replace(target)
    if path is None:
        profile._source = target
    return target


@dataclass
class ProfileInfo:
    """A saved profile as listed (``error`` set when it does not load)."""

    name: str
    path: Path
    target: str | None = None
    model: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "target": self.target,
            "model": self.model,
            "error": self.error,
        }


def list_profiles() -> list[ProfileInfo]:
    out = []
    for path in sorted(profiles_dir().glob("*.toml")):
        try:
            p = parse_profile(path.read_text(encoding="utf-8"), source=path)
            out.append(ProfileInfo(p.name, path, p.target.kind, str(p.model.path)))
        except ProfileError as exc:
            out.append(ProfileInfo(path.stem, path, error=exc.message))
        except (OSError, UnicodeDecodeError) as exc:
            out.append(ProfileInfo(path.stem, path, error=str(exc)))
    return out


def delete_profile(name: str) -> bool:
    path = profile_path(name)
    if path.exists():
        path.unlink()
        return True
    return False


_MODEL_SUFFIXES = {
    ".joblib", ".pkl", ".pickle", ".onnx", ".json", ".ubj", ".txt", ".model", ".bst",
    ".pt", ".pth", ".torchscript", ".module", ".gz", ".bz2", ".xz", ".lzma", ".z",
    ".skops", ".cbm", ".pt2",
}  # fmt: skip


def default_name(model_path: str | Path) -> str:
    """A valid deployment name from a model file name (``Iris RF.joblib`` -> ``iris-rf``).

    Only model-file suffixes are dropped, so a version in the name stays part of it
    (``churn-1.8.0.joblib`` -> ``churn-1-8-0``, not ``churn-1``). An MLflow model folder
    is named as it is (``churn.model/`` -> ``churn-model``); an MLflow URI by the
    registered model (``models:/churn/3`` -> ``churn``) or the run's artifact folder
    (``runs:/RUN/churn_rf`` -> ``churn_rf``).
    """
    text = str(model_path)
    if isinstance(model_path, str) and text.lower().startswith(("runs:/", "models:/")):
        parts = [p for p in text.split(":/", 1)[1].split("/") if p]
        if text.lower().startswith("models:/"):
            stem = re.split(r"[@]", parts[0])[0] if parts else ""
        else:
            stem = parts[-1] if len(parts) > 1 else ""
    elif Path(model_path).is_dir():
        stem = Path(model_path).name
    else:
        stem = Path(model_path).name
        while Path(stem).suffix.lower() in _MODEL_SUFFIXES:
            stem = Path(stem).stem
    name = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_") or "model"
    if not name[0].isalnum():
        name = "m" + name
    return name[:63]


def _is_uri_text(value: str | Path) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("runs:/", "models:/"))


def new_profile(
    model_path: str | Path,
    *,
    name: str | None = None,
    target: str = "local",
    settings: dict[str, Any] | None = None,
    base_image: str | None = None,
) -> Profile:
    """A profile for a model file with defaults, as ``modelship deploy MODEL`` makes it."""
    data: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "name": name or default_name(model_path),
        "model": {
            "path": model_path
            if _is_uri_text(model_path)
            else str(Path(model_path).expanduser().resolve())
        },
        "target": {"kind": target, "settings": settings or {}},
    }
    if base_image:
        data["image"] = {"base_image": base_image}
    try:
        return Profile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [_describe(e, {}, "options") for e in exc.errors()]
        raise ProfileError(
            f"Invalid deploy options: {problems[0]}",
            "Check --name (a-z, 0-9, - and _), --target and --port.",
            details="\n".join(problems),
        ) from None
