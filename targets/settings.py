"""The base of every target's settings: importable with no SDK and no target code.

Each ``targets/<kind>/settings.py`` subclasses :class:`TargetSettings` and imports only
this module, ``app.domain`` and pydantic, so profiles validate and the wizard draws its
forms without loading boto3, openstacksdk or paramiko (an import-linter contract keeps
it that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydantic
from pydantic import ConfigDict

from app.domain import SECRET_REF_PATTERN, SecretRef

if TYPE_CHECKING:  # pragma: no cover
    from app.trust import UntrustedHostError


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

    def address_errors(self) -> list[UntrustedHostError]:
        """The service addresses in these settings that would receive a credential but
        are neither the platform's documented ones nor confirmed on this computer
        (:mod:`app.trust`). No traffic: the target's preflight refuses with these first,
        and the wizard asks about each ``confirmable`` one. Targets with address
        settings override this."""
        return []


__all__ = ["SECRET_REF_PATTERN", "SecretRef", "TargetSettings"]
