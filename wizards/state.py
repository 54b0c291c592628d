"""What the person has chosen so far, shared by the pages.

The wizard holds no deployment logic: this is only the set of answers, turned into an
``app.store.profile.Profile`` (the same object the CLI loads from TOML) when the person
reaches Review. Everything after that (plan, deploy, smoke test, teardown) is the core's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WizardState:
    # Model page
    model_path: Path | None = None
    artifact: Any = None  # app.model.intake.ModelArtifact
    # the person confirmed a pickle is from a source they trust (kept in the local trust
    # store, app.store.trust, by the file's hash: never in the profile)
    trusted: bool = False
    sample_csv: Path | None = None  # a CSV of rows, or a .npy of inputs (PyTorch)
    input_shape: list[int] | None = None  # PyTorch: the shape of one input batch
    python: str | None = None  # interpreter that converts (None: ModelShip's own)
    # Convert page
    tolerance: float = 1e-4
    quantize: bool = False
    allow_mismatch: bool = False
    # convert in an environment with the versions the file was saved with (app/model/envs.py):
    # set by the Convert page's "Make a matching environment" button
    match_env: bool = False
    conversion: Any = None  # app.model.convert.ConversionResult
    # what the conversion was made from (app.run.conversion_key): the deploy reuses the
    # proven files while the profile still describes the same input, instead of
    # converting again
    conversion_key: str | None = None
    # Target pages
    target_name: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    base_image: str | None = None  # image targets: the image the serving image builds on
    # secret field name -> value typed on this run (never written anywhere but the keyring)
    session_secrets: dict[str, str] = field(default_factory=dict)
    # Review / deploy / result
    name: str = ""
    # the name of an existing deployment the person chose to replace (Redeploy, or the
    # "Replace it" box on Review)
    replace_ok_for: str | None = None
    # ... and the one whose inputs may change with this model (the Review tick that
    # names what changes); app.run.InputChange of a deploy the core refused for it
    inputs_change_ok_for: str | None = None
    input_change: Any = None
    profile: Any = None  # app.store.profile.Profile
    profile_path: Path | None = None
    save_to: Path | None = None  # where to save the profile once the deploy succeeded
    loaded_from_profile: bool = False
    record: Any = None  # app.store.records.DeploymentRecord

    def reset(self) -> None:
        fresh = WizardState()
        self.__dict__.update(fresh.__dict__)

    def default_name(self) -> str:
        """The deployment's name: typed, or made from the model file's name. A made-up
        name never is one already in use (a new deployment must not replace another
        silently); it is fixed the first time it is made, so it stays the same after
        the deploy."""
        if self.name:
            return self.name
        from app.store.profile import default_name

        base = default_name(self.model_path or "model")
        if self.model_path is None:
            return base
        self.name = unused_name(base)
        return self.name

    def conversion_dir(self) -> Path:
        from app.paths import data_dir

        d = data_dir() / "wizard" / self.default_name()
        d.mkdir(parents=True, exist_ok=True)
        return d

    def model_section(self) -> Any:
        """The answers about the model as a profile's model section
        (``app.store.profile.ModelSection``): what the Convert page converts, by the core's
        route."""
        from app.store.profile import ModelSection

        return ModelSection.model_validate(self.model_dict(self._base()))

    def convert_options(self) -> Any:
        from app.model.convert.options import options_for

        return options_for(self.model_section(), trust=self.trusted)

    def converted(self, profile: Any) -> Any:
        """The proven conversion for ``profile``'s deploy (an app.domain.ConvertedModel),
        or None when there is none that fits (the pipeline then converts)."""
        result = self.conversion
        if result is None or self.conversion_key is None:
            return None
        served = result
        if profile.model.quantize:
            served = getattr(result, "quantized", None)
            if served is None:
                return None
        from app.domain import ConvertedModel

        return ConvertedModel(
            served.onnx_path,
            summary=served.report.summary(),
            conversion_key=self.conversion_key,
            quantized=served is not result,
        )

    # ---- the profile ---------------------------------------------------------------
    def build_profile(self) -> Any:
        """The choices as an ``app.store.profile.Profile`` (validated by the core)."""
        import pydantic

        from app.errors import ProfileError
        from app.store.profile import Profile

        try:
            return Profile.model_validate(self.profile_dict())
        except pydantic.ValidationError as exc:
            from app.store.profile import describe_errors, plain_reason

            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int))
            # the key stays in the sentence: the Settings page puts the field's title there
            raise ProfileError(
                f"The setting {where!r} is not valid: {plain_reason(first)}.",
                "Go back to the page with that setting and correct it.",
                details="\n".join(describe_errors(exc, self._setting_titles())),
            ) from None

    def _setting_titles(self) -> dict[str, str]:
        """Profile keys as the wizard's forms label them (for validation messages)."""
        names = {"name": "Deployment name", "model.tolerance": "Tolerance"}
        from app.errors import UsageError
        from targets import get_kind

        try:
            fields = get_kind(self.target_name or "local").Settings.model_fields
        except UsageError:  # an unknown kind: its own error names it
            return names
        for key, info in fields.items():
            names[f"target.settings.{key}"] = info.title or key.replace("_", " ").capitalize()
        return names

    def _base(self) -> dict[str, Any]:
        """The opened profile's keys (the answers go over them), else a new profile's."""
        if self.profile is not None and self.loaded_from_profile:
            return self.profile.to_dict()
        from app.store.profile import SCHEMA_VERSION

        return {"schema": SCHEMA_VERSION}

    def model_dict(self, base: dict[str, Any]) -> dict[str, Any]:
        """The answers about the model as a profile's ``[model]`` table."""
        model = dict(base.get("model", {}))
        if self.model_path is not None:
            model["path"] = str(self.model_path)
        _set(model, "python", self.python)
        _set(model, "sample_csv", str(self.sample_csv) if self.sample_csv else None)
        _set(model, "input_shape", list(self.input_shape) if self.input_shape else None)
        model["tolerance"] = self.tolerance
        model["quantize"] = self.quantize
        model["accept_mismatch"] = self.allow_mismatch
        model["match_env"] = self.match_env
        return model

    def profile_dict(self) -> dict[str, Any]:
        base = self._base()
        model = self.model_dict(base)
        target = dict(base.get("target", {}))
        if target.get("kind") != (self.target_name or "local"):
            target = {}
        target["kind"] = self.target_name or "local"
        target["settings"] = {k: v for k, v in self.settings.items() if v is not None}
        out = {**base, "name": self.default_name(), "model": model, "target": target}
        if self.base_image:
            out["image"] = {**dict(base.get("image", {})), "base_image": self.base_image}
        return out

    def adopt_profile(self, profile: Any, path: Path | None = None) -> None:
        """Fill the answers from a saved profile (Open / Redeploy)."""
        self.reset()
        self.profile = profile
        self.profile_path = path
        self.loaded_from_profile = True
        self.name = profile.name
        model = profile.model
        self.model_path = Path(model.path) if getattr(model, "path", None) else None
        self.python = getattr(model, "python", None) or None
        csv = getattr(model, "sample_csv", None)
        self.sample_csv = Path(csv) if csv else None
        shape = getattr(model, "input_shape", None)
        self.input_shape = list(shape) if shape else None
        self.tolerance = float(getattr(model, "tolerance", 1e-4) or 1e-4)
        self.quantize = bool(getattr(model, "quantize", False))
        self.allow_mismatch = bool(getattr(model, "accept_mismatch", False))
        self.match_env = bool(getattr(model, "match_env", False))
        if self.model_path is not None and self.model_path.exists():
            from app.store.trust import file_trusted

            self.trusted = file_trusted(self.model_path)  # this computer's say, not the file's
        self.target_name = profile.target.kind
        settings = getattr(profile.target, "settings", None) or {}
        if hasattr(settings, "model_dump"):
            settings = settings.model_dump(mode="json", exclude_none=True)
        self.settings = dict(settings)
        self.base_image = profile.image.base_image


def name_in_use(name: str) -> bool:
    """A deployment or a saved profile already has this name. A removed (torn-down)
    deployment's name is free again, with the profile it was deployed from: deploying
    under that name starts its history anew (app.store.records drops the removed copy)."""
    from app.store.profile import profile_path
    from app.store.records import find_record, find_removed

    if find_record(name) is not None:
        return True
    return profile_path(name).exists() and find_removed(name) is None


def unused_name(base: str) -> str:
    name, n = base, 2
    while name_in_use(name):
        suffix = f"-{n}"
        name = base[: 63 - len(suffix)] + suffix
        n += 1
    return name


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value
