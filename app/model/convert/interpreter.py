"""Which Python runs the worker: ``--python``, ``$MODELSHIP_PYTHON``, a matching
environment (app.model.envs) when the file records other library versions, else this one."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from app.errors import UsageError
from app.model.convert.report import ConvertOptions
from app.model.intake import ModelArtifact
from app.nextstep import match_env as match_env_step
from app.nextstep import say, use_python
from app.progress import CancelToken, Progress
from app.runtime import is_frozen


def _resolve_python(python: str | None, kind: str, match_env: bool = False) -> str:
    """The interpreter that runs the worker: --python, $MODELSHIP_PYTHON, else our own.

    The packaged app runs the worker with its own bundled libraries (it re-invokes
    itself, see app/runtime.py), except for PyTorch and CatBoost, which are too big to
    bundle: there a matching environment (``match_env``) or the user's own Python
    converts.
    """
    from app.model import envs

    python = python or os.environ.get("MODELSHIP_PYTHON")
    if not python:
        if kind in ("catboost", "pytorch") and is_frozen() and not match_env:
            lib = {"catboost": "CatBoost", "pytorch": "PyTorch"}[kind]
            dist = {"catboost": "catboost", "pytorch": "torch"}[kind]
            raise envs.NeedsMatchingEnvironment(
                f"The packaged ModelShip converts {lib} models in a separate Python "
                f"environment that has {dist}.",
                say(
                    match_env_step("Run again with"),
                    ": ModelShip makes one (a download, once) and converts there. Or ",
                    use_python("give", "with", "the environment the model was trained in"),
                    " (MODELSHIP_PYTHON works too).",
                ),
                mismatch=envs.Mismatch(
                    wanted={dist: envs.NEWEST_SUPPORTED[dist]},
                    differing={dist: ""},
                    picked={dist: envs.NEWEST_SUPPORTED[dist]},
                ),
            )
        return sys.executable
    found = shutil.which(python) or (python if Path(python).is_file() else None)
    if not found:
        raise UsageError(
            f"The Python interpreter {python} was not found.",
            say(
                "Give the full path to python in the environment the model was made in, ",
                use_python("e.g.", who="~/envs/train/bin/python"),
                ".",
            ),
        )
    return str(Path(found).absolute())


def _matching_python(
    art: ModelArtifact, options: ConvertOptions, progress: Progress, cancel: CancelToken
) -> tuple[str, str | None]:
    """The Python to convert with when the user named none, and the versions it matches.

    ModelShip's own, unless the file records library versions that differ in a way
    that matters (app.model.envs.mismatch): then the cached matching environment with
    ``match_env``, else a refusal that says how to get one.
    """
    from app.model import envs

    found = envs.mismatch(
        art.kind, art.format, envs.recorded_versions(art.path, art.format, art.libraries)
    )
    if found is None:
        return sys.executable, None
    if options.match_env:
        spec = envs.spec_for(found)
        return envs.ensure_env(spec, progress, cancel), spec.words()
    what = "those versions" if not found.picked else "them"
    raise envs.NeedsMatchingEnvironment(
        found.words(art.path.name),
        say(
            match_env_step("Add"),
            f": ModelShip then makes an environment with {what} and the converters (downloads "
            f"about {envs.EnvSpec.of(found.wanted, '').download_mb()} MB, once) and converts "
            "there. Or ",
            use_python("give", "pointing at", "the environment the model was trained in"),
            ".",
        ),
        mismatch=found,
    )
