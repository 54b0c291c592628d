"""Secrets: values only in the keyring, and a clear error when there is no secure one."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail

from app.errors import CredentialError
from app.store import secrets


def test_round_trip_through_the_keyring(memory_keyring) -> None:
    secrets.set_secret("heroku-token", "s3cret-value")
    assert memory_keyring.store[("modelship", "heroku-token")] == "s3cret-value"
    assert secrets.get_secret("heroku-token") == "s3cret-value"
    assert secrets.has_secret("heroku-token")
    assert secrets.delete_secret("heroku-token") is True
    assert secrets.delete_secret("heroku-token") is False
    assert not secrets.has_secret("heroku-token")


def test_missing_secret_names_it_and_the_next_step() -> None:
    with pytest.raises(CredentialError) as err:
        secrets.get_secret("aws-key")
    assert "'aws-key'" in err.value.message
    assert err.value.hint and "Store it" in err.value.hint


def test_no_secure_keyring_is_a_clear_error_not_a_plaintext_fallback() -> None:
    keyring.set_keyring(fail.Keyring())  # the autouse fixture restores the memory one
    assert not secrets.secure_backend_available()
    with pytest.raises(CredentialError) as err:
        secrets.set_secret("token", "value")
    assert "No secure keyring" in err.value.message
    assert "plain text" in err.value.message
    assert err.value.hint and "keyring" in err.value.hint.lower()
    with pytest.raises(CredentialError, match="No secure keyring"):
        secrets.get_secret("token")


def test_plaintext_backend_is_refused() -> None:
    """keyrings.alt's PlaintextKeyring writes secrets to a file: not a secure store."""
    import keyring.backend

    class PlaintextKeyring(keyring.backend.KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service, username):  # pragma: no cover - never reached
            return None

        def set_password(self, service, username, password):  # pragma: no cover
            raise AssertionError("must not be called")

        def delete_password(self, service, username):  # pragma: no cover
            pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    keyring.set_keyring(PlaintextKeyring())
    with pytest.raises(CredentialError, match="No secure keyring"):
        secrets.set_secret("token", "value")


def test_bad_entry_names_and_empty_values_are_refused() -> None:
    with pytest.raises(CredentialError, match="not a valid keyring entry name"):
        secrets.set_secret("has space", "v")
    with pytest.raises(CredentialError, match="empty secret"):
        secrets.set_secret("ok-name", "")
