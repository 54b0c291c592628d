"""A keyring that lives only in this process's memory, for the "enter it each run" choice.

When the computer has no secure keyring, ModelShip never writes a secret down. If the
person chooses to type the secret each time, the wizard installs this backend for the
rest of the session: the core reads secrets through ``app.store.secrets`` as always, and the
values vanish when the wizard closes.
"""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.errors


class SessionKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self._store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


def use_session_keyring() -> SessionKeyring:
    """Switch this process to an in-memory keyring (idempotent)."""
    current = keyring.get_keyring()
    if isinstance(current, SessionKeyring):
        return current
    backend = SessionKeyring()
    keyring.set_keyring(backend)
    return backend
