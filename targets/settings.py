"""The base of every target's settings: importable with no SDK and no target code.

Each ``targets/<kind>/settings.py`` subclasses :class:`TargetSettings` and imports only
this module, ``app.domain`` and pydantic, so profiles validate and the wizard draws its
forms without loading boto3, openstacksdk or paramiko (an import-linter contract keeps
it that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pydantic
from pydantic import ConfigDict, Field, model_validator

from app.domain import SECRET_REF_PATTERN, SecretRef

if TYPE_CHECKING:  # pragma: no cover
    from app.store.trust import UntrustedHostError


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
        (:mod:`app.store.trust`). No traffic: the target's preflight refuses with these first,
        and the wizard asks about each ``confirmable`` one. Targets with address
        settings override this."""
        return []


# The fields every target with an endpoint declares. They are made here and declared in
# each settings class (not inherited): a class's field order is its form's order.


def api_key_field(
    title: str = "API key",
    description: str = "Keyring entry holding the key callers must send (Authorization: Bearer).",
) -> Any:
    """``api_key``: the keyring entry of the key callers send to the endpoint."""
    return Field(None, title=title, description=description)


def require_api_key_field(description: str) -> Any:
    """``require_api_key`` (see :class:`KeyRequired`)."""
    return Field(True, title="Require an API key", description=description)


def start_timeout_field(
    default: float, description: str, *, le: float = 3600, advanced: bool = False
) -> Any:
    """``start_timeout``: seconds to wait for the deployment to start and answer."""
    extra: dict[str, Any] = {"json_schema_extra": {"advanced": True}} if advanced else {}
    return Field(default, gt=0, le=le, title="Start timeout", description=description, **extra)


def capture_rate_field() -> Any:
    """``capture_rate``: the share of prediction requests whose inputs and answers the
    server keeps (0 = off, the default; 1 = every one). See app/serving/capture.py."""
    return Field(
        0.0,
        ge=0.0,
        le=1.0,
        title="Capture share",
        description="Share of prediction requests whose inputs and answers are kept for "
        "the drift report, 0 to 1 (0: none, the default; 0.1: one in ten). No key, no "
        "headers are kept.",
        json_schema_extra={"advanced": True},
    )


def capture_max_mb_field() -> Any:
    """``capture_max_mb``: the most disk captured requests may take (oldest removed)."""
    return Field(
        50.0,
        gt=0.0,
        le=100_000.0,
        title="Capture size (MB)",
        description="Most disk the captured requests may take; the oldest are removed first.",
        json_schema_extra={"advanced": True},
    )


class KeyRequired(TargetSettings):
    """Settings of an endpoint reachable beyond this computer: an ``api_key`` is
    required unless ``require_api_key`` is turned off. Subclasses declare both fields
    and say who could call the endpoint without one (``open_to``)."""

    open_to: ClassVar[str] = "anyone who can reach it"

    @model_validator(mode="after")
    def _key_unless_off(self) -> KeyRequired:
        if getattr(self, "require_api_key", False) and not getattr(self, "api_key", None):
            raise ValueError(
                "api_key must name a keyring entry (or set require_api_key = false to let "
                f"{self.open_to} call it)"
            )
        return self


__all__ = [
    "SECRET_REF_PATTERN",
    "KeyRequired",
    "SecretRef",
    "TargetSettings",
    "api_key_field",
    "capture_max_mb_field",
    "capture_rate_field",
    "require_api_key_field",
    "start_timeout_field",
]
