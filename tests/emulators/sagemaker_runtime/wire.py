"""The SageMaker wire formats the emulator speaks: errors, timestamps, SigV4 checks.

Shapes follow botocore's service models (``sagemaker`` is JSON 1.1 with
``X-Amz-Target: SageMaker.<Operation>``; ``sagemaker-runtime`` is rest-json), so that
the real boto3 parses every answer into the exception class a caller would see
against AWS.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass

JSON_11 = "application/x-amz-json-1.1"

#: The real InvokeEndpoint body limit (botocore's ``BodyBlob`` shape: max 6291456).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Serverless endpoints accept at most 4 MB per request.
MAX_SERVERLESS_PAYLOAD_BYTES = 4 * 1024 * 1024

#: HTTP status of each error code the emulator can answer with (botocore's models).
STATUS_OF = {
    # sagemaker-runtime
    "ValidationError": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 530,
    # sagemaker control plane and AWS-wide codes
    "ValidationException": 400,
    "ResourceNotFound": 400,
    "ResourceInUse": 400,
    "ResourceLimitExceeded": 400,
    "ConflictException": 400,
    "ThrottlingException": 400,
    "AccessDeniedException": 400,
    "UnrecognizedClientException": 400,
    "InternalServerError": 500,
    "ServiceUnavailableException": 503,
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
}


@dataclass
class Reply:
    """One HTTP answer, independent of the web framework that sends it."""

    status: int
    body: bytes
    headers: dict[str, str]


def request_id() -> str:
    return str(uuid.uuid4())


def error_reply(
    code: str,
    message: str,
    status: int | None = None,
    *,
    json11: bool = False,
    extra: dict[str, object] | None = None,
) -> Reply:
    """An AWS error that botocore maps to ``client.exceptions.<code>``.

    botocore reads the code from the ``x-amzn-ErrorType`` header (rest-json) or the
    body's ``__type`` (JSON 1.1); both are sent. Modelled members of the error shape
    (ModelError's OriginalStatusCode, ...) go into the body, where botocore parses them
    into the exception's ``response``.
    """
    body: dict[str, object] = {"__type": code, "message": message}
    if extra:
        body.update(extra)
    return Reply(
        status=status if status is not None else STATUS_OF.get(code, 400),
        body=json.dumps(body).encode(),
        headers={
            "Content-Type": JSON_11 if json11 else "application/json",
            "x-amzn-ErrorType": code if json11 else f"{code}:http://internal.amazon.com/coral/",
            "x-amzn-RequestId": request_id(),
        },
    )


def json_reply(payload: dict[str, object], status: int = 200) -> Reply:
    """A JSON 1.1 control-plane success answer."""
    return Reply(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": JSON_11, "x-amzn-RequestId": request_id()},
    )


def now() -> float:
    """JSON 1.1 timestamps are epoch seconds (botocore parses floats)."""
    return round(time.time(), 3)


_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 "
    r"Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class SigV4:
    """The parts of a SigV4 ``Authorization`` header the emulator needs."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


class AuthError(Exception):
    """A request that AWS would refuse before looking at it (403)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def reply(self, *, json11: bool = False) -> Reply:
        return error_reply(self.code, self.message, 403, json11=json11)


def parse_sigv4(headers: dict[str, str], *, service: str = "sagemaker") -> SigV4:
    """Check that a request is SigV4-signed the way botocore signs SageMaker calls.

    Both sagemaker and sagemaker-runtime sign with the name ``sagemaker``. The
    signature itself is recomputed only by :func:`verify_sigv4` (when the emulator
    knows the secret key); here the header must be present and well formed.
    """
    auth = headers.get("authorization")
    if not auth:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTH.match(auth.strip())
    if not match:
        raise AuthError(
            "IncompleteSignatureException",
            f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
            f"parameters in AWS4-HMAC-SHA256 form. Authorization={auth[:40]}...",
        )
    signed = tuple(match["signed"].split(";"))
    if "host" not in signed or "x-amz-date" not in signed or "x-amz-date" not in headers:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header must sign 'host' and 'x-amz-date'.",
        )
    if not headers["x-amz-date"].startswith(match["date"]):
        raise AuthError(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            "from HTTP.",
        )
    if match["service"] != service:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    return SigV4(
        access_key=match["akid"],
        date=match["date"],
        region=match["region"],
        service=match["service"],
        signed_headers=signed,
        signature=match["signature"],
    )


def verify_sigv4(
    sig: SigV4,
    secret_key: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> bool:
    """Recompute the signature with botocore's own signer and compare.

    Only possible when the emulator is told the secret key (tests use fake keys).
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    token = headers.get("x-amz-security-token")
    creds = Credentials(sig.access_key, secret_key, token)
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: headers[name] for name in sig.signed_headers if name in headers},
    )
    request.context["timestamp"] = headers["x-amz-date"]

    class _Signer(SigV4Auth):
        def headers_to_sign(self, req):  # type: ignore[no-untyped-def]
            signed = super().headers_to_sign(req)
            for name in list(signed.keys()):
                if name not in sig.signed_headers:
                    del signed[name]
            return signed

    signer = _Signer(creds, sig.service, sig.region)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return signer.signature(string_to_sign, request) == sig.signature
