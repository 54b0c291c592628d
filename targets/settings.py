"""The base of every target's settings: importable with no SDK and no target code.

Each ``targets/<kind>/settings.py`` subclasses :class:`TargetSettings` and imports only
this module, ``app.domain`` and pydantic, so profiles validate and the wizard draws its
forms without loading boto3, openstacksdk or paramiko (an import-linter contract keeps
it that way).
"""

from __future__ import annotations

import pydantic
from pydantic import ConfigDict

from app.domain import SECRET_REF_PATTERN, SecretRef


class TargetSettings(pydantic.BaseModel):
    """Base of every target's settings (``[target.settings]`` in a profile).

    ``extra="forbid"``: a misspelt setting is an error, not silently ignored. Field
    ``title``/``description`` drive the wizard's settings form.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def endpoint_key(self) -> SecretRef | None:
        """The keyring entry of the key callers send to the *endpoint* (``api_key``), or
        None. Never a platform account's key: the snippets that tell a person how to
        call the endpoint, and the client that calls it, name only this one."""
        return getattr(self, "api_key", None) or None


__all__ = ["SECRET_REF_PATTERN", "SecretRef", "TargetSettings"]
