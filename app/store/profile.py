"""Deployment profiles: every choice of a deployment, in one TOML file that re-runs.

Over 600 lines on purpose: the schema, its migrations and the line-numbered messages
about it change together (a new key needs its words here).

A profile holds no secrets (a :data:`app.domain.SecretRef` names a keyring entry),
is versioned (``schema = 2``; older schemas are migrated on load, see
:func:`migrate`) and is validated strictly: an unknown key, a missing
one or a wrong type is an error that names the key and its line in the file, because
people edit these files by hand. The target's ``[target.settings]`` are validated by
that target's own ``Settings`` class, found in the catalog of kinds
(:mod:`targets.catalog`), which loads no target implementation and no SDK.

A profile holds no trust either: which model files may run code and which Python
interpreters may convert are decisions of the person at this computer, kept in the
local trust store (:mod:`app.store.trust`), never in a file that can be shared.

Example::

    schema = 2
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
from app.errors import ProfileError, closest
from app.nextstep import run_command, say, trust_model
from app.paths import profiles_dir

SCHEMA_VERSION = 2
SUPPORTED_SCHEMAS = (1, 2)
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
    # Only a request: an interpreter runs only once the person at this computer trusted
    # it (app.store.trust, `modelship trust --python PATH`), never because a profile names it.
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

    @field_validator("path", mode="before")
    @classmethod
    def _path_or_uri(cls, value: Any) -> Any:
        if isinstance(value, str):
            from app.model.mlflowmodel import URI_SCHEMES, check_uri

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
            guess = closest(kind, CATALOG)
            maybe = f"; did you mean {guess!r}?" if guess else ""
            raise ValueError(f"unknown target kind {kind!r}{maybe} (known: {', '.join(CATALOG)})")
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
    # what loading changed (an older schema migrated, trust fields dropped): said to the
    # person by the CLI and the wizard
    _notes: list[str] = pydantic.PrivateAttr(default_factory=list)

    @pydantic.model_validator(mode="wrap")
    @classmethod
    def _migrated(cls, data: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Profile:
        notes: list[str] = []
        if isinstance(data, dict):
            data, notes = migrate(data)
        profile = handler(data)
        if notes:
            profile._notes = notes
        return profile  # type: ignore[no-any-return]

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

    @property
    def notes(self) -> list[str]:
        """What loading changed, in plain words (empty for a current profile)."""
        return list(self._notes)

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


# Heroku's settings in schema 1, renamed in schema 2 so that ``api_key`` is the
# endpoint's key on every target (Heroku's account key is ``account_key``).
_HEROKU_RENAMES_1_TO_2 = (
    ("api_key", "account_key"),
    ("endpoint_api_key", "api_key"),
    ("require_endpoint_api_key", "require_api_key"),
)


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Profile data of any supported schema as the current schema, and notes on what
    changed. The input is not modified.

    * Trust never comes from a profile: ``model.trusted_sha256`` (written by older
      versions) is dropped, whatever the schema, and never honoured.
    * Schema 1 -> 2: Heroku's ``api_key`` (the account's key) became ``account_key``,
      ``endpoint_api_key`` became ``api_key``, ``require_endpoint_api_key`` became
      ``require_api_key``.
    """
    notes: list[str] = []
    out = dict(data)
    model = out.get("model")
    if isinstance(model, dict) and "trusted_sha256" in model:
        model = dict(model)
        model.pop("trusted_sha256")
        out["model"] = model
        notes.append(
            say(
                "The profile's trusted_sha256 is ignored: trust in a model file is kept on this "
                "computer only (",
                trust_model(form="paren"),
                "), never taken from a profile.",
            )
        )
    schema = out.get("schema", out.get("schema_version"))
    if schema == 1:
        target = out.get("target")
        settings = target.get("settings") if isinstance(target, dict) else None
        heroku = isinstance(target, dict) and target.get("kind") == "heroku"
        if heroku and isinstance(target, dict) and isinstance(settings, dict):
            settings = dict(settings)
            for old, new in _HEROKU_RENAMES_1_TO_2:
                if old in settings:
                    settings[new] = settings.pop(old)
            out["target"] = {**target, "settings": settings}
        out["schema" if "schema" in out else "schema_version"] = SCHEMA_VERSION
    return out, notes


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


def _describe(err: Any, lines: dict[tuple[str, ...], int], where: str, data: Any = None) -> str:
    """One error of a profile file: the key, the plain reason, the line."""
    loc = tuple(err.get("loc", ()))
    if loc and loc[0] == "schema_version":
        loc = ("schema", *loc[1:])
    key = _key_name(loc)
    kind = err.get("type", "")
    line = _line_of(loc, lines)
    at = f"{where}, line {line}" if line else where
    if kind == "extra_forbidden":
        guess = closest(str(loc[-1]), _known_keys(loc, data)) if loc else None
        maybe = f"; did you mean {guess!r}?" if guess else ""
        return f"unknown key {key!r} ({at}){maybe}"
    if kind == "missing":
        parent = ".".join(key.split(".")[:-1])
        section = f" in [{parent}]" if parent else ""
        return f"missing key {key.split('.')[-1]!r}{section} ({at})"
    return f"key {key!r}: {plain_reason(err)} ({at})"


def _known_keys(loc: tuple[Any, ...], data: Any) -> list[str]:
    """The keys the section holding ``loc``'s last key takes (for did-you-mean)."""
    from targets.catalog import CATALOG

    model: Any = Profile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is TargetSection and part == "settings":
            target = data.get("target") if isinstance(data, dict) else None
            kind = target.get("kind") if isinstance(target, dict) else None
            model = CATALOG[kind].Settings if kind in CATALOG else None
        else:
            field = model.model_fields.get(part) if model is not None else None
            model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _shown(value: Any) -> str:
    """A value the person gave, for "(you gave ...)": numbers and short words only (a
    string may be a pasted secret, so patterns never echo theirs)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and len(value) <= 40:
        return repr(value)
    return ""


def plain_reason(err: Any) -> str:
    """One pydantic error's reason in plain words ("must be 65535 or less (you gave
    80000)"), not pydantic's ("Input should be less than or equal to 65535")."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    given = err.get("input")
    you = f" (you gave {_shown(given)})" if _shown(given) else ""
    field = str(next((p for p in reversed(tuple(err.get("loc", ()))) if isinstance(p, str)), ""))
    if field == "port" and kind in _RANGE_KINDS | _INT_KINDS:
        return f"must be a port number from 1 to 65535{you}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a setting here"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less{you}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}{you}"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more{you}"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}{you}"
    if kind in _INT_KINDS:
        return f"must be a whole number{you}"
    if kind in {"float_parsing", "float_type", "decimal_parsing", "decimal_type"}:
        return f"must be a number{you}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false{you}"
    if kind in {"string_type", "str_type"}:
        return "must be text"
    if kind in {"list_type", "tuple_type"}:
        return "must be a list"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "must be a table of settings"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must be at least {least} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind in {"too_short", "too_long"}:
        return "has the wrong number of items"
    if kind == "string_pattern_mismatch":
        return _PATTERN_WORDS.get(ctx.get("pattern", ""), "is not in the form it must have")
    if kind in {"literal_error", "enum"}:
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        guess = closest(str(given), options) if isinstance(given, str) else None
        maybe = f"; did you mean {guess!r}?" if guess else ""
        return f"must be one of {', '.join(options)}{you}{maybe}"
    if kind.startswith("url_"):
        return f"must be an address such as https://example.org{you}"
    msg = str(err.get("msg") or "is not valid")
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = msg.replace("Input should be", "must be").replace("input should be", "must be")
    return msg[:1].lower() + msg[1:] if msg[:2] != msg[:2].upper() else msg


_RANGE_KINDS = {"less_than_equal", "less_than", "greater_than_equal", "greater_than"}
_INT_KINDS = {"int_parsing", "int_type", "int_from_float"}


def describe_errors(
    exc: pydantic.ValidationError, names: dict[str, str] | None = None
) -> list[str]:
    """Every error as ``<setting>: <plain reason>``; ``names`` maps a dotted key to what
    the person knows it as (``{"target.settings.port": "--port"}`` on the command line,
    a field's title in the wizard). The one renderer of validation errors for people."""
    out = []
    for err in exc.errors():
        key = _key_name(tuple(err.get("loc", ())))
        shown = (names or {}).get(key) or key
        out.append(f"{shown}: {plain_reason(err)}")
    return out


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
        problems = [_describe(e, lines, where, data) for e in exc.errors()]
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProfileError(
            f"Invalid profile: {first}{more}",
            say(
                "Fix the key named above; ",
                run_command("profiles", "show NAME"),
                " prints a valid profile.",
            ),
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
        raise _not_found(str(path_or_name), candidate)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"Cannot read profile {path}: {exc}", "Check the file.") from None
    return parse_profile(text, source=path.resolve())


def _not_found(text: str, candidate: Path) -> ProfileError:
    """Neither a file nor a saved profile: say which the person likely meant (a model
    file, a profile file, or a saved profile's name) and offer the nearest one."""
    names = [p.name for p in list_profiles()]
    looks_like_file = (
        "/" in text
        or "\\" in text
        or candidate.suffix.lower() in _MODEL_SUFFIXES | {".toml", ".csv", ".cbm"}
    )
    folder = candidate.parent if str(candidate.parent) not in {"", "."} else Path.cwd()
    try:
        nearby = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        nearby = []
    hint = say(
        "Give a model file, a profile file (.toml), or a saved profile's name (",
        run_command("profiles", "list"),
        ").",
    )
    if looks_like_file:
        guess = closest(candidate.name, nearby)
        if guess is None and "/" not in text:
            guess = closest(candidate.stem, names)
        maybe = f" Did you mean {str(folder / guess) if '/' in text else guess!r}?" if guess else ""
        where = folder if folder.is_dir() else f"{folder} (that folder does not exist either)"
        return ProfileError(f"There is no file {candidate.name!r} in {where}.{maybe}", hint)
    guess = closest(text, names) or closest(text, nearby)
    maybe = f" Did you mean {guess!r}?" if guess else ""
    known = f" Saved profiles: {', '.join(names)}." if names and not guess else ""
    return ProfileError(f"No profile named {text!r} and no such file.{maybe}{known}", hint)


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
        problems = describe_errors(exc, OPTION_NAMES)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProfileError(
            f"{problems[0]}{more}",
            "Correct the option named above and run the command again.",
            details="\n".join(problems),
        ) from None


# A profile's keys as the command line's options name them (for error messages).
OPTION_NAMES = {
    "name": "--name",
    "target.kind": "--target",
    "target.settings.port": "--port",
    "image.base_image": "--base-image",
    "model.tolerance": "--tolerance",
    "model.sample_csv": "--sample",
    "model.python": "--python",
    "model.input_shape": "--input-shape",
}
