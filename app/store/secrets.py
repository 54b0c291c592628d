"""Secrets live in the OS keyring; profiles only name them.

A :data:`targets.base.SecretRef` setting holds an entry *name* (e.g. ``heroku-token``);
the value is stored under the service ``modelship`` in the user's keyring and read only
when a deploy needs it. If no secure keyring exists (a headless Linux box without the
Secret Service; keyring's fail/null backends; keyrings.alt's plaintext file) every
function here raises :class:`~app.errors.CredentialError` saying so, rather than
silently writing the secret to disk in plain text. Values are never logged.
"""

from __future__ import annotations

import keyring
import keyring.errors

from app import nextstep as step
from app.errors import CredentialError

SERVICE = "modelship"

# Backends that are not a secure store: keyring's placeholders and plaintext files.
_INSECURE = {
    "keyring.backends.fail.Keyring",
    "keyring.backends.null.Keyring",
    "keyrings.alt.file.PlaintextKeyring",
    "keyrings.alt.file.EncryptedKeyring",  # password prompt on a terminal: not headless
    "keyrings.alt.Gnome.Keyring",
}

_HINT = (
    "Install and unlock a system keyring (GNOME Keyring / KWallet on Linux, the macOS "
    "Keychain, Windows Credential Manager). On a headless Linux machine run the command "
    "under `dbus-run-session` with `gnome-keyring-daemon --unlock`."
)


def _qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__name__}"


def backend_name() -> str:
    return _qualname(keyring.get_keyring())


def _usable_backends() -> list[object]:
    backend = keyring.get_keyring()
    inner = getattr(backend, "backends", None)  # the chainer wraps several
    candidates = list(inner) if inner is not None else [backend]
    return [b for b in candidates if _qualname(b) not in _INSECURE]


def secure_backend_available() -> bool:
    """True if secrets can be stored somewhere other than a plaintext file."""
    return bool(_usable_backends())


def _require_backend() -> None:
    if not secure_backend_available():
        raise CredentialError(
            f"No secure keyring is available here (found {backend_name()}); "
            "ModelShip does not store secrets in plain text.",
            _HINT,
        )


def _check_name(name: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from app.domain import SecretRef

    try:
        TypeAdapter(SecretRef).validate_python(name)
    except ValidationError:
        raise CredentialError(
            f"{name!r} is not a valid keyring entry name.",
            "Use letters, digits and . _ - : @ / (up to 128 characters).",
        ) from None


def set_secret(name: str, value: str) -> None:
    """Store a secret under ``name`` in the keyring."""
    _check_name(name)
    _require_backend()
    if not value:
        raise CredentialError(f"Refusing to store an empty secret as {name!r}.", "Give a value.")
    try:
        keyring.set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"The keyring refused to store {name!r}: {exc}", _HINT) from None


def get_secret(name: str) -> str:
    """The secret stored as ``name``; CredentialError if missing or no keyring."""
    _check_name(name)
    _require_backend()
    try:
        value = keyring.get_password(SERVICE, name)
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"Cannot read {name!r} from the keyring: {exc}", _HINT) from None
    if value is None:
        raise CredentialError(
            f"The keyring has no secret named {name!r}.",
            step.say("Store it first (", step.set_secret(name, form="paren"), ")."),
        )
    return value


def has_secret(name: str) -> bool:
    try:
        get_secret(name)
    except CredentialError:
        return False
    return True


def delete_secret(name: str) -> bool:
    """Remove a secret; False if there was none."""
    _check_name(name)
    _require_backend()
    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise CredentialError(f"Cannot remove {name!r} from the keyring: {exc}", _HINT) from None
    return True
