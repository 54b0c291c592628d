"""One error hierarchy for everything a person can act on.

Every error the user may see is a :class:`ModelShipError` with a plain one-line
``message`` (what went wrong) and a ``hint`` (what to do next). The CLI prints
``message`` and ``hint`` on one line each and exits with ``exit_code``; the wizard
shows them in its notification. Anything that is *not* a ModelShipError is a bug:
the CLI prints a short line and the traceback only with ``--debug``.

A hint that names something to do is :class:`app.nextstep.Words` (a ``str`` in the
command line's words, with the actions in it as data): ``actions`` are its next steps,
which the wizard says as its own buttons and fields (``wizards.nextstep``).
"""

from __future__ import annotations

from collections.abc import Iterable


class ModelShipError(Exception):
    """Base class: a problem the user can do something about."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Longer text (a build log, a converter's stderr): shown folded in the GUI,
        # with --debug in the CLI. Must never contain secrets.
        self.details = details

    @property
    def actions(self) -> tuple:
        """The next steps the message and hint name (:class:`app.nextstep.Action`)."""
        from app.nextstep import actions_of

        return actions_of(self.message) + actions_of(self.hint)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class UsageError(ModelShipError):
    """Bad arguments or a bad file given by the user."""

    exit_code = 2


class ModelError(ModelShipError):
    """The model file cannot be read, identified or loaded."""

    exit_code = 3


class UnsupportedModelError(ModelError):
    """A model of a kind ModelShip cannot convert."""


class EnvironmentMismatchError(ModelError):
    """The model needs library versions other than those installed."""


class ConversionError(ModelShipError):
    """Conversion to ONNX failed."""

    exit_code = 4


class ParityError(ConversionError):
    """The ONNX model does not predict what the original predicts."""

    exit_code = 5


class ProfileError(UsageError):
    """A deployment profile is invalid."""


class CredentialError(ModelShipError):
    """A secret is missing, or there is no secure place to keep it."""

    exit_code = 6


class TargetError(ModelShipError):
    """A deployment target failed a check, or failed to deploy."""

    exit_code = 7


class BuildError(TargetError):
    """The serving image could not be built."""


class SmokeTestError(TargetError):
    """The endpoint is up but does not answer as the conversion proof said it would."""

    exit_code = 8


class Cancelled(ModelShipError):
    """The user cancelled; everything created so far has been rolled back."""

    exit_code = 130

    def __init__(self, message: str = "Cancelled.", hint: str | None = None, **kw):
        super().__init__(message, hint, **kw)


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice a typo most likely meant (``locl`` -> ``local``), or None."""
    import difflib

    options = [str(c) for c in choices]
    if not word or not options:
        return None
    lowered = {o.lower(): o for o in options}
    found = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None
