"""The thin layer over boto3 for the ``sagemaker`` target: sessions, clients, errors.

boto3 is imported here and only here (lazily), so that profiles validate and the wizard
draws its form without loading it. Credentials come from boto3's own chain (the named
``aws_profile`` in ``~/.aws``, SSO, environment variables); service addresses come only
from botocore's standard settings (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``,
the config file), never from this code, so any compatible stand-in (moto, a proxy, a
VPC endpoint) works without a setting of ours.

Every AWS call goes through :func:`aws_errors`, which turns botocore's exceptions into
:class:`~app.errors.CredentialError` (exit 6) or :class:`~app.errors.TargetError` with
a plain next step: a person never sees a botocore traceback for a known cause.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from app.errors import CredentialError, TargetError
from app.nextstep import aws_credentials, say

# Error codes that mean "who you are" is the problem, not what you asked for.
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "RequestExpired",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
NOT_FOUND_CODES = frozenset(
    {
        "NoSuchEntity",
        "RepositoryNotFoundException",
        "ImageNotFoundException",
        "ObjectNotFoundException",
        "ResourceNotFoundException",
        "ResourceNotFound",
    }
)


def _credential_fix(profile: str | None) -> str:
    return say(aws_credentials(profile or ""))


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message") or exc)


def is_not_found(exc: BaseException) -> bool:
    """Does this error say that the thing asked about does not exist?"""
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return True
    # SageMaker says "Could not find model/endpoint ..." and Application Auto Scaling "No
    # scaling policy found ..." as a ValidationException.
    message = error_message(exc).lower()
    return code == "ValidationException" and bool(
        re.search(r"could not find|not found|does not exist|^no [a-z ]+ found", message)
    )


@contextlib.contextmanager
def aws_errors(doing: str, profile: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions raised while ``doing`` into errors a person can act on.

    ``doing`` is plain words ("creating the SageMaker model"). A missing or expired
    credential becomes a CredentialError (exit 6); everything else a TargetError that
    names AWS's own code and message.
    """
    import botocore.exceptions as bx

    try:
        yield
    except (
        bx.NoCredentialsError,
        bx.PartialCredentialsError,
        bx.ProfileNotFound,
        bx.SSOError,
        bx.TokenRetrievalError,
        bx.UnauthorizedSSOTokenError,
    ) as exc:
        raise CredentialError(
            f"No usable AWS credentials while {doing}: {exc}", _credential_fix(profile)
        ) from None
    except bx.ClientError as exc:
        code = error_code(exc)
        message = error_message(exc)
        if code in CREDENTIAL_CODES:
            raise CredentialError(
                f"AWS refused the credentials while {doing} ({code}: {message}).",
                _credential_fix(profile),
            ) from None
        if code in DENIED_CODES:
            raise TargetError(
                f"AWS denied {doing} ({code}: {message}).",
                "Ask your AWS administrator for the permission named above, or use a profile "
                "that has it (aws_profile).",
            ) from None
        if code in {"ThrottlingException", "Throttling", "TooManyRequestsException"}:
            raise TargetError(
                f"AWS is throttling requests while {doing} ({message}).",
                "Wait a minute and try again.",
            ) from None
        if code == "ResourceLimitExceeded":
            raise TargetError(
                f"An AWS quota stops {doing} ({message}).",
                "Choose a smaller or other instance type, or request a quota increase in the "
                "AWS console (Service Quotas > Amazon SageMaker).",
            ) from None
        raise TargetError(
            f"AWS answered {code or 'an error'} while {doing}: {message}",
            "Check the settings named in the message; if it looks like an AWS outage, "
            "try again later.",
        ) from None
    except bx.EndpointConnectionError as exc:
        raise TargetError(
            f"Could not reach AWS while {doing} ({exc}).",
            "Check your network and proxy settings, and the region.",
        ) from None
    except (bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        raise TargetError(
            f"AWS did not answer in time while {doing} ({exc}).",
            "Check your network and try again.",
        ) from None
    except bx.ParamValidationError as exc:
        raise TargetError(
            f"A setting is not valid for AWS while {doing}: {exc}",
            "Check the SageMaker settings of the profile.",
        ) from None


class AWS:
    """One boto3 session for an AWS profile and region, with its clients.

    Clients retry a little (botocore's "standard" mode; the number of attempts follows
    ``AWS_MAX_ATTEMPTS`` or the config file, default 3) and time out instead of hanging.
    Instances are cheap; make one per operation (the environment may change between
    operations, e.g. an SSO login).
    """

    def __init__(self, aws_profile: str | None, region: str) -> None:
        self.profile = aws_profile or None
        self.region = region
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            from targets.sagemaker.choices import keyring_keys

            keys = keyring_keys(self.profile)
            with aws_errors("reading the AWS configuration", self.profile):
                if keys is not None:  # set up in the wizard: the keys stay in the keyring
                    self._session = boto3.session.Session(
                        aws_access_key_id=keys[0],
                        aws_secret_access_key=keys[1],
                        region_name=self.region,
                    )
                else:
                    self._session = boto3.session.Session(
                        profile_name=self.profile, region_name=self.region
                    )
        return self._session

    def client(self, service: str, *, read_timeout: float = 70.0) -> Any:
        key = f"{service}:{read_timeout}"
        if key not in self._clients:
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard"},
                connect_timeout=10,
                read_timeout=read_timeout,
                user_agent_extra="ModelShip",
            )
            with aws_errors(f"setting up the {service} client", self.profile):
                self._clients[key] = self.session.client(service, config=config)
        return self._clients[key]

    def account(self) -> str:
        with aws_errors("asking AWS who you are (sts:GetCallerIdentity)", self.profile):
            return str(self.client("sts").get_caller_identity()["Account"])

    def regions(self, service: str = "sagemaker") -> list[str]:
        """Regions that botocore knows ``service`` in (from its own data; no call)."""
        return list(self.session.get_available_regions(service))

    def errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return aws_errors(doing, self.profile)


def tags(deployment: str) -> list[dict[str, str]]:
    """The tags every resource of a deployment carries (SageMaker/IAM/ECR shape)."""
    return [
        {"Key": "modelship.managed", "Value": "true"},
        {"Key": "modelship.deployment", "Value": deployment},
    ]


__all__ = ["AWS", "aws_errors", "error_code", "error_message", "is_not_found", "tags"]
