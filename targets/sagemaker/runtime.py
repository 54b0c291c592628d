"""Calling a SageMaker endpoint: SigV4-signed ``InvokeEndpoint`` behind the EndpointClient verbs.

SageMaker endpoints cannot be called with plain HTTP: every call is an
``sagemaker-runtime`` ``InvokeEndpoint`` signed with the caller's AWS credentials, and
it reaches only the container's ``POST /invocations``. So this client keeps the verbs
of :class:`app.endpoint.client.EndpointClient` (the smoke test, ``status``, ``modelship
invoke`` and the wizard's Try-it use them unchanged) and replaces the transport:

* ``ping`` asks the control plane: InService (or Updating, which still answers: blue/
  green) is healthy, Creating is "not yet" (503, retried), Failed is a definite no;
* ``predict`` / ``predict_csv`` send the rows to ``/invocations`` (the serving runtime
  answers JSON rows and CSV there), and ``infer`` its v2 request (``{"inputs": ...}``),
  which the runtime answers there as v2 too;
* routes the container cannot be reached on through InvokeEndpoint (metrics, model
  metadata) answer 404 with where to look instead.

SageMaker's runtime errors map onto HTTP statuses the callers already understand:
ValidationError 400, ModelError the container's own status (424 when unknown),
ModelNotReadyException 503 (retried while the endpoint warms up), throttling 429.
"""

from __future__ import annotations

import json
from typing import Any

from app.endpoint.client import EndpointClient, EndpointError, EndpointUnreachable, Response
from targets.sagemaker.client import AWS, error_code, error_message

HEALTHY = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
NOT_YET = frozenset({"Creating"})


class SageMakerClient(EndpointClient):
    """An EndpointClient for endpoint ``endpoint_name``, signed with boto3's credentials."""

    def __init__(self, url: str, endpoint_name: str, aws: AWS, *, timeout: float = 65.0) -> None:
        super().__init__(url, timeout=timeout)
        self.endpoint_name = endpoint_name
        self.aws = aws

    def _runtime(self) -> Any:
        return self.aws.client("sagemaker-runtime", read_timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        if method in {"GET", "HEAD"} and path == "/ping":
            return self._ping()
        if method == "POST" and path in {"/predict", "/invocations"}:
            return self._invoke(body or b"", content_type or "application/json", accept)
        if method == "POST" and path.startswith("/v2/models/") and path.endswith("/infer"):
            # the serving runtime answers a v2 request ({"inputs": [...]}) on /invocations
            return self._invoke(body or b"", "application/json", accept)
        raise EndpointError(
            404,
            f"{method} {path} cannot be reached through SageMaker's InvokeEndpoint, which "
            "only calls the model's /invocations route. Send rows (JSON or CSV) instead; "
            f"metrics are in CloudWatch (/aws/sagemaker/Endpoints/{self.endpoint_name}).",
        )

    def _ping(self) -> Response:
        import botocore.exceptions as bx

        sm = self.aws.client("sagemaker", read_timeout=10)
        try:
            described = sm.describe_endpoint(EndpointName=self.endpoint_name)
        except bx.ClientError as exc:
            raise EndpointError(404, f"{error_code(exc)}: {error_message(exc)}") from None
        except bx.BotoCoreError as exc:
            raise EndpointUnreachable(f"no answer from SageMaker ({exc})") from exc
        status = described.get("EndpointStatus", "")
        if status in HEALTHY:
            return Response(200, json.dumps({"status": status}).encode())
        reason = described.get("FailureReason") or ""
        if status in NOT_YET:
            raise EndpointError(503, f"endpoint {self.endpoint_name} is {status}")
        raise EndpointError(
            424, f"endpoint {self.endpoint_name} is {status}" + (f": {reason}" if reason else "")
        )

    def _invoke(self, body: bytes, content_type: str, accept: str | None) -> Response:
        import botocore.exceptions as bx

        kwargs: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "Body": body,
            "ContentType": content_type,
        }
        if accept:
            kwargs["Accept"] = accept
        try:
            answer = self._runtime().invoke_endpoint(**kwargs)
        except bx.ClientError as exc:
            raise _as_endpoint_error(exc) from None
        except bx.BotoCoreError as exc:
            raise EndpointUnreachable(f"no answer from SageMaker runtime ({exc})") from exc
        data = answer["Body"].read()
        headers = {"content-type": str(answer.get("ContentType") or "")}
        return Response(200, data, headers)


def _as_endpoint_error(exc: Exception) -> EndpointError:
    code = error_code(exc)
    message = error_message(exc)
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    if code == "ModelError":
        original = response.get("OriginalStatusCode")
        status = int(original) if str(original or "").isdigit() and int(original) >= 400 else 424
        return EndpointError(status, str(response.get("OriginalMessage") or message))
    status = {
        "ValidationError": 400,
        "ValidationException": 400,
        "ModelNotReadyException": 503,
        "ServiceUnavailable": 503,
        "ThrottlingException": 429,
        "InternalFailure": 500,
        "InternalDependencyException": 502,
    }.get(code)
    if status is None:
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 500)
    return EndpointError(status, f"{code}: {message}")


__all__ = ["SageMakerClient"]
