"""The SageMaker emulator: runtime InvokeEndpoint plus a control-plane front for moto.

moto keeps the control-plane records (models, endpoint configs, endpoints) but runs no
container and lacks UpdateEndpoint. This emulator sits in front of moto for the
``sagemaker`` service: it forwards every operation unchanged, except that it

- starts the endpoint's containers after CreateEndpoint (status ``Creating`` until
  every container answers /ping, then ``InService``, or ``Failed`` with SageMaker's
  FailureReason) and reports that status in DescribeEndpoint/ListEndpoints;
- implements UpdateEndpoint blue/green: the old containers keep answering until the
  new config's containers are healthy; on failure the endpoint stays on the old
  config with a FailureReason (auto-rollback);
- removes the containers on DeleteEndpoint;

and it answers ``sagemaker-runtime`` InvokeEndpoint by proxying to ``POST
/invocations`` of a container, with SageMaker's limits and error codes. Failures can be
injected into any operation.

Data Capture: when the endpoint config the endpoint runs has a ``DataCaptureConfig``
(read from moto, like the variants), each answered invocation is sampled at its
``InitialSamplingPercentage`` and, when taken, written to S3 (moto) as SageMaker does:
one JSON line ``{"captureData": {"endpointInput": ..., "endpointOutput": ...},
"eventMetadata": {"eventId", "inferenceTime"}, "eventVersion": "0"}`` in an object at
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<uuid>.jsonl``. The
data is kept as text for the config's CSV and JSON content types, base64 otherwise.
SageMaker gathers several requests per object and writes within minutes; the emulator
writes one object per request before it answers, so a test sees it at once.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import itertools
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .containers import (
    STARTUP_TIMEOUT_S,
    Cancelled,
    DeployError,
    Instance,
    Runner,
)
from .wire import Reply

INVOCATION_TIMEOUT_S = 60.0


@dataclass
class Fault:
    """A failure to answer instead of performing ``operation`` (``times`` times).

    ``failure_reason`` makes CreateEndpoint/UpdateEndpoint succeed but the deployment
    fail asynchronously with that FailureReason (no container is started).
    ``delay_s`` waits before answering (or before performing the call when no error is
    given), for timeouts and cancellation tests.
    """

    operation: str
    error_code: str | None = None
    status: int | None = None
    message: str | None = None
    times: int = 1
    endpoint_name: str | None = None
    failure_reason: str | None = None
    delay_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "id",
                "operation",
                "error_code",
                "status",
                "message",
                "times",
                "endpoint_name",
                "failure_reason",
                "delay_s",
                "hits",
            )
        }


@dataclass
class Variant:
    """A production variant of an endpoint config, as the emulator deploys it."""

    name: str
    model_name: str
    image: str
    environment: dict[str, str]
    weight: float
    instance_count: int
    serverless: dict[str, Any] | None
    startup_timeout_s: float | None
    resolved_image: str = ""
    resolution_time: float = 0.0
    instances: list[Instance] = field(default_factory=list)
    _rr: Any = None

    def next_instance(self) -> Instance:
        if self._rr is None:
            self._rr = itertools.cycle(range(len(self.instances)))
        return self.instances[next(self._rr) % len(self.instances)]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "VariantName": self.name,
            "DeployedImages": [
                {
                    "SpecifiedImage": self.image,
                    "ResolvedImage": self.resolved_image or self.image,
                    "ResolutionTime": self.resolution_time or wire.now(),
                }
            ],
            "CurrentWeight": self.weight,
            "DesiredWeight": self.weight,
        }
        if self.serverless:
            out["CurrentServerlessConfig"] = self.serverless
            out["DesiredServerlessConfig"] = self.serverless
        else:
            out["CurrentInstanceCount"] = self.instance_count
            out["DesiredInstanceCount"] = self.instance_count
        return out


@dataclass
class Deployment:
    """The containers of one endpoint config, started by one Create/UpdateEndpoint."""

    config_name: str
    started: float = field(default_factory=wire.now)
    variants: list[Variant] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    healthy: bool = False
    failure_reason: str | None = None
    logs: str = ""
    #: the endpoint config's DataCaptureConfig (None: no capture)
    capture: dict[str, Any] | None = None

    def instances(self) -> list[Instance]:
        return [i for v in self.variants for i in v.instances]


@dataclass
class EndpointState:
    """What the emulator adds to moto's record of an endpoint."""

    region: str
    name: str
    arn: str
    status: str
    config_name: str
    active: Deployment | None = None
    pending: Deployment | None = None
    failure_reason: str | None = None
    last_modified: float = field(default_factory=wire.now)
    #: True when the endpoint was created straight in moto and its containers are
    #: started on first use (a cold start, answered with ModelNotReadyException).
    adopted: bool = False
    #: Deployments that failed, kept for inspection (FailureReason, container logs).
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: Every EndpointStatus this endpoint has reported, in order (a fast container can
    #: pass through Creating before a test's first DescribeEndpoint arrives).
    history: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history.append(self.status)

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.history.append(status)
        self.status = status

    def summary(self) -> dict[str, Any]:
        def dep(d: Deployment | None) -> dict[str, Any] | None:
            if d is None:
                return None
            return {
                "config_name": d.config_name,
                "healthy": d.healthy,
                "failure_reason": d.failure_reason,
                "variants": [
                    {
                        "name": v.name,
                        "model_name": v.model_name,
                        "image": v.image,
                        "containers": [
                            {"id": i.container_id, "name": i.name, "host_port": i.host_port}
                            for i in v.instances
                        ],
                    }
                    for v in d.variants
                ],
            }

        return {
            "region": self.region,
            "name": self.name,
            "arn": self.arn,
            "status": self.status,
            "config_name": self.config_name,
            "failure_reason": self.failure_reason,
            "adopted": self.adopted,
            "active": dep(self.active),
            "pending": dep(self.pending),
            "failures": list(self.failures),
            "history": list(self.history),
        }


class Emulator:
    """SageMaker control-plane front (over moto) and runtime, without any web framework.

    The ASGI app in :mod:`.app` maps HTTP onto :meth:`control_plane` and
    :meth:`invoke`; tests may also call these directly.
    """

    def __init__(
        self,
        moto_url: str,
        *,
        docker_factory: Callable[[], Any] | None = None,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        ping_timeout_s: float = 2.0,
        invocation_timeout_s: float = INVOCATION_TIMEOUT_S,
        max_payload_bytes: int = wire.MAX_PAYLOAD_BYTES,
        max_serverless_payload_bytes: int = wire.MAX_SERVERLESS_PAYLOAD_BYTES,
        credentials: dict[str, str] | None = None,
        probe_interval_s: float = 0.25,
    ) -> None:
        if docker_factory is None:

            def docker_factory() -> Any:
                import docker

                return docker.from_env()

        self.moto_url = moto_url.rstrip("/")
        #: Where the emulator is served (set by EmulatorServer users such as the fixtures).
        self.url: str | None = None
        self.run_id = uuid.uuid4().hex
        self.startup_timeout_s = startup_timeout_s
        self.invocation_timeout_s = invocation_timeout_s
        self.max_payload_bytes = max_payload_bytes
        self.max_serverless_payload_bytes = max_serverless_payload_bytes
        #: access key -> secret key; when given, signatures are recomputed and checked.
        self.credentials = dict(credentials or {})
        self.runner = Runner(
            docker_factory,
            self.run_id,
            ping_timeout_s=ping_timeout_s,
            probe_interval_s=probe_interval_s,
        )
        self._lock = threading.RLock()
        self._endpoints: dict[tuple[str, str], EndpointState] = {}
        self._faults: list[Fault] = []
        self._threads: list[threading.Thread] = []
        self._clients: dict[tuple[str, str], Any] = {}
        self._account: str | None = None
        self.calls: list[tuple[str, str]] = []  # (operation, endpoint name or "")
        #: s3:// addresses of the Data Capture objects written, and writes that failed
        self.captured: list[str] = []
        self.capture_errors: list[str] = []
        #: invocations whose CloudWatch metrics were put to moto, and puts that failed
        self.metrics_put = 0
        self.metric_errors: list[str] = []

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        operation: str,
        error_code: str | None = None,
        status: int | None = None,
        *,
        message: str | None = None,
        times: int = 1,
        endpoint_name: str | None = None,
        failure_reason: str | None = None,
        delay_s: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> Fault:
        """Make the next ``times`` calls of ``operation`` fail (see :class:`Fault`).

        ``operation`` is a SageMaker control-plane operation (``CreateEndpoint``) or
        ``InvokeEndpoint``. Without ``error_code``/``failure_reason``/``delay_s`` the
        default is ``InternalFailure``/``InternalServerError``.
        """
        if error_code is None and failure_reason is None and not delay_s:
            error_code = (
                "InternalFailure" if operation == "InvokeEndpoint" else "InternalServerError"
            )
        fault = Fault(
            operation=operation,
            error_code=error_code,
            status=status,
            message=message,
            times=times,
            endpoint_name=endpoint_name,
            failure_reason=failure_reason,
            delay_s=delay_s,
            extra=dict(extra or {}),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, operation: str, endpoint_name: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation != operation:
                    continue
                if fault.endpoint_name and fault.endpoint_name != endpoint_name:
                    continue
                fault.hits += 1
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_reply(fault: Fault, *, json11: bool) -> Reply:
        assert fault.error_code
        message = fault.message or f"Injected fault: {fault.error_code} ({fault.operation})"
        return wire.error_reply(
            fault.error_code, message, fault.status, json11=json11, extra=fault.extra
        )

    # --------------------------------------------------------------- inspection

    def endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint the emulator knows, with its deployments and containers."""
        with self._lock:
            return [s.summary() for s in self._endpoints.values()]

    def containers(self) -> list[str]:
        """Ids of the containers the emulator started and has not removed."""
        with self.runner._lock:
            return list(self.runner.started)

    def endpoint(self, name: str, region: str | None = None) -> EndpointState | None:
        with self._lock:
            for (r, n), state in self._endpoints.items():
                if n == name and (region is None or r == region):
                    return state
        return None

    def wait_idle(self, timeout_s: float = 300.0) -> None:
        """Wait until no deployment is in progress (tests that need a settled state)."""
        deadline = time.monotonic() + timeout_s
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        """Forget every endpoint and fault; stop every container and pulled image."""
        with self._lock:
            states = list(self._endpoints.values())
            self._endpoints.clear()
            self._faults.clear()
            self.calls.clear()
            self.captured.clear()
            self.capture_errors.clear()
            self.metrics_put = 0
            self.metric_errors.clear()
            for s in states:
                for d in (s.active, s.pending):
                    if d is not None:
                        d.cancel.set()
            threads, self._threads = list(self._threads), []
        for thread in threads:
            thread.join(30)
        self.runner.cleanup()

    def close(self) -> None:
        self.reset()
        self.runner.close()

    # ------------------------------------------------------------------- moto

    def _moto(self, region: str, service: str = "sagemaker") -> Any:
        """A boto3 client for moto itself (never the emulator: explicit endpoint_url)."""
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                import boto3
                from botocore.config import Config

                client = boto3.session.Session().client(
                    service,
                    region_name=region,
                    endpoint_url=self.moto_url,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"total_max_attempts": 1}),
                )
                self._clients[(service, region)] = client
            return client

    def account(self, region: str) -> str:
        if self._account is None:
            try:
                self._account = self._moto(region, "sts").get_caller_identity()["Account"]
            except Exception:
                self._account = "123456789012"
        return self._account

    def _arn(self, region: str, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{region}:{self.account(region)}:{kind}/{name.lower()}"

    def _forward(self, body: bytes, headers: dict[str, str]) -> Reply:
        """Send a control-plane request to moto unchanged and return its answer."""
        url = urllib.parse.urlsplit(self.moto_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        keep = {
            k: v
            for k, v in headers.items()
            if k.lower()
            in {
                "content-type",
                "x-amz-target",
                "authorization",
                "x-amz-date",
                "x-amz-security-token",
                "user-agent",
                "amz-sdk-invocation-id",
                "amz-sdk-request",
            }
        }
        try:
            conn.request("POST", url.path or "/", body=body, headers=keep)
            resp = conn.getresponse()
            data = resp.read()
            out = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() in {"content-type", "x-amzn-requestid", "x-amzn-errortype"}
            }
            return Reply(resp.status, data, out)
        finally:
            conn.close()

    # ----------------------------------------------------------- control plane

    def control_plane(self, target: str, body: bytes, headers: dict[str, str]) -> Reply:
        """Answer one ``X-Amz-Target: SageMaker.<Operation>`` request (JSON 1.1).

        ``headers`` must have lower-case names.
        """
        try:
            sig = wire.parse_sigv4(headers)
        except wire.AuthError as exc:
            return exc.reply(json11=True)
        operation = target.split(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return wire.error_reply("SerializationException", "Malformed JSON", 400, json11=True)
        name = params.get("EndpointName")
        with self._lock:
            self.calls.append((operation, name or ""))
        fault = self._take_fault(operation, name)
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault is not None and fault.error_code:
            return self._fault_reply(fault, json11=True)
        region = sig.region
        if operation == "UpdateEndpoint":
            return self._update_endpoint(region, params, fault)
        if operation == "ListEndpoints" and "StatusEquals" in params:
            # moto thinks every endpoint is InService: filter on the emulator's status.
            body = json.dumps({k: v for k, v in params.items() if k != "StatusEquals"}).encode()
        reply = self._forward(body, headers)
        if reply.status != 200:
            if operation in {"DescribeEndpoint", "DeleteEndpoint"} and name:
                self._drop(region, name)  # moto no longer knows it
            return reply
        if operation == "CreateEndpoint":
            arn = json.loads(reply.body)["EndpointArn"]
            self._create_endpoint(region, name, params["EndpointConfigName"], arn, fault)
        elif operation == "DescribeEndpoint":
            reply = self._patch_describe(region, reply)
        elif operation == "ListEndpoints":
            reply = self._patch_list(region, params, reply)
        elif operation == "DeleteEndpoint":
            self._drop(region, name)
        return reply

    def _create_endpoint(
        self, region: str, name: str, config: str, arn: str, fault: Fault | None
    ) -> None:
        state = EndpointState(region, name, arn, "Creating", config)
        deployment = Deployment(config)
        with self._lock:
            self._endpoints[(region, name)] = state
            state.pending = deployment
        self._start(state, deployment, fault.failure_reason if fault else None, update=False)

    def _update_endpoint(self, region: str, params: dict[str, Any], fault: Fault | None) -> Reply:
        name = params.get("EndpointName", "")
        config = params.get("EndpointConfigName", "")
        sm = self._moto(region)
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError:
            return wire.error_reply(
                "ValidationException",
                f'Could not find endpoint "{self._arn(region, "endpoint", name)}".',
                json11=True,
            )
        try:
            sm.describe_endpoint_config(EndpointConfigName=config)
        except sm.exceptions.ClientError:
            return wire.error_reply(
                "ValidationException",
                f'Could not find endpoint configuration "'
                f'{self._arn(region, "endpoint-config", config)}".',
                json11=True,
            )
        with self._lock:
            state = self._endpoints.get((region, name))
            if state is None:
                state = EndpointState(
                    region,
                    name,
                    described["EndpointArn"],
                    described["EndpointStatus"],
                    described["EndpointConfigName"],
                    adopted=True,
                )
                self._endpoints[(region, name)] = state
            if state.status != "InService":
                verb = "in-progress" if state.status in {"Creating", "Updating"} else "failed"
                return wire.error_reply(
                    "ValidationException",
                    f'Cannot update {verb} endpoint "{state.arn}".',
                    json11=True,
                )
            state.set_status("Updating")
            state.last_modified = wire.now()
            deployment = Deployment(config)
            state.pending = deployment
        self._start(state, deployment, fault.failure_reason if fault else None, update=True)
        return wire.json_reply({"EndpointArn": state.arn})

    def _start(
        self, state: EndpointState, deployment: Deployment, fail_with: str | None, *, update: bool
    ) -> None:
        thread = threading.Thread(
            target=self._deploy,
            args=(state, deployment, fail_with, update),
            name=f"sagemaker-emulator-deploy-{state.name}",
            daemon=True,
        )
        deployment.thread = thread
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _deploy(
        self, state: EndpointState, deployment: Deployment, fail_with: str | None, update: bool
    ) -> None:
        """Bring a config's containers into service, then switch the endpoint to it."""
        try:
            if fail_with:
                raise DeployError(fail_with)
            self._bring_up(state, deployment)
        except Cancelled:
            self._remove(deployment)
            return
        except DeployError as exc:
            self._remove(deployment)
            with self._lock:
                deployment.failure_reason = exc.reason
                deployment.logs = exc.logs
                state.failures.append(
                    {"config_name": deployment.config_name, "reason": exc.reason, "logs": exc.logs}
                )
                if state.pending is deployment:
                    state.pending = None
                    state.failure_reason = exc.reason
                    state.last_modified = wire.now()
                    # UpdateEndpoint rolls back: the old config keeps serving.
                    state.set_status(
                        "InService" if update and state.status == "Updating" else "Failed"
                    )
            return
        except Exception as exc:
            self._remove(deployment)
            with self._lock:
                if state.pending is deployment:
                    state.pending = None
                    state.set_status("InService" if update else "Failed")
                    state.failure_reason = f"emulator: {type(exc).__name__}: {exc}"
            return
        # Shift all traffic to the new containers, then terminate the old ones; like
        # SageMaker, the endpoint reports InService only once the old fleet is gone.
        with self._lock:
            stale = state.pending is not deployment or deployment.cancel.is_set()
            old = None
            if not stale:
                old, state.active = state.active, deployment
                deployment.healthy = True
                state.config_name = deployment.config_name
        if stale:
            self._remove(deployment)
            return
        if old is not None:
            self._remove(old)
        with self._lock:
            if state.pending is deployment:
                state.pending = None
                state.set_status("InService")
                state.failure_reason = None
                state.last_modified = wire.now()

    def _bring_up(self, state: EndpointState, deployment: Deployment) -> None:
        variants = self._resolve(state.region, deployment.config_name)
        deployment.variants = variants
        deployment.capture = self._capture_config(state.region, deployment.config_name)
        for variant in variants:
            ref = self.runner.pull(variant.image, variant.name)
            variant.resolved_image = ref.resolved
            variant.resolution_time = wire.now()
            if deployment.cancel.is_set():
                raise Cancelled()
            count = 1 if variant.serverless else max(1, variant.instance_count)
            memory = (variant.serverless or {}).get("MemorySizeInMB")
            for index in range(count):
                instance = self.runner.start(
                    variant.image,
                    endpoint=state.name,
                    variant=variant.name,
                    config=deployment.config_name,
                    index=index,
                    environment=variant.environment,
                    memory_mb=memory,
                )
                variant.instances.append(instance)
                if deployment.cancel.is_set():
                    raise Cancelled()
        for variant in variants:
            timeout = variant.startup_timeout_s or self.startup_timeout_s
            for instance in variant.instances:
                self.runner.wait_healthy(instance, timeout, deployment.cancel)

    def _resolve(self, region: str, config_name: str) -> list[Variant]:
        """Endpoint config -> production variants -> models -> images, from moto."""
        sm = self._moto(region)
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        except sm.exceptions.ClientError as exc:
            raise DeployError(f"Could not find endpoint configuration {config_name}.") from exc
        variants = []
        for pv in config.get("ProductionVariants", []):
            try:
                model = sm.describe_model(ModelName=pv["ModelName"])
            except sm.exceptions.ClientError as exc:
                raise DeployError(
                    f'Could not find model "{self._arn(region, "model", pv["ModelName"])}".'
                ) from exc
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            image = container.get("Image")
            if not image:
                raise DeployError(f"Model {pv['ModelName']} names no container image.")
            variants.append(
                Variant(
                    name=pv["VariantName"],
                    model_name=pv["ModelName"],
                    image=image,
                    environment=dict(container.get("Environment") or {}),
                    weight=float(pv.get("InitialVariantWeight", 1.0)),
                    instance_count=int(pv.get("InitialInstanceCount") or 1),
                    serverless=pv.get("ServerlessConfig"),
                    startup_timeout_s=pv.get("ContainerStartupHealthCheckTimeoutInSeconds"),
                )
            )
        if not variants:
            raise DeployError(f"Endpoint configuration {config_name} has no production variant.")
        return variants

    def _capture_config(self, region: str, config_name: str) -> dict[str, Any] | None:
        sm = self._moto(region)
        with contextlib.suppress(Exception):
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
            capture = config.get("DataCaptureConfig") or None
            if capture and capture.get("EnableCapture", True):
                return dict(capture)
        return None

    def _remove(self, deployment: Deployment) -> None:
        for instance in deployment.instances():
            with contextlib.suppress(Exception):
                self.runner.remove(instance.container_id)

    def _drop(self, region: str, name: str) -> None:
        """The endpoint is gone from moto: stop everything it ran."""
        with self._lock:
            state = self._endpoints.pop((region, name), None)
        if state is None:
            return
        for d in (state.pending, state.active):
            if d is None:
                continue
            d.cancel.set()
            if d.thread is not None and d.thread is not threading.current_thread():
                d.thread.join(30)
            self._remove(d)

    def _patch_describe(self, region: str, reply: Reply) -> Reply:
        data = json.loads(reply.body)
        with self._lock:
            state = self._endpoints.get((region, data.get("EndpointName", "")))
            if state is None:
                return reply
            data["EndpointStatus"] = state.status
            data["EndpointConfigName"] = state.config_name
            data["LastModifiedTime"] = state.last_modified
            data.pop("FailureReason", None)
            if state.failure_reason:
                data["FailureReason"] = state.failure_reason
            if state.active is not None:
                data["ProductionVariants"] = [v.describe() for v in state.active.variants]
            if state.pending is not None and state.status == "Updating":
                data["PendingDeploymentSummary"] = {
                    "EndpointConfigName": state.pending.config_name,
                    "StartTime": state.pending.started,
                    "ProductionVariants": [
                        {"VariantName": v.name, "DeployedImages": v.describe()["DeployedImages"]}
                        for v in state.pending.variants
                    ],
                }
        return Reply(reply.status, json.dumps(data).encode(), reply.headers)

    def _patch_list(self, region: str, params: dict[str, Any], reply: Reply) -> Reply:
        data = json.loads(reply.body)
        wanted = params.get("StatusEquals")
        out = []
        with self._lock:
            for item in data.get("Endpoints", []):
                state = self._endpoints.get((region, item.get("EndpointName", "")))
                if state is not None:
                    item["EndpointStatus"] = state.status
                    item["LastModifiedTime"] = state.last_modified
                if wanted and item.get("EndpointStatus") != wanted:
                    continue
                out.append(item)
        data["Endpoints"] = out
        return Reply(reply.status, json.dumps(data).encode(), reply.headers)

    # ----------------------------------------------------------------- runtime

    def invoke(
        self, method: str, url: str, name: str, body: bytes, headers: dict[str, str]
    ) -> Reply:
        """Answer ``POST /endpoints/{name}/invocations`` as sagemaker-runtime does.

        ``headers`` must have lower-case names; ``url`` is the full request URL (for
        signature checks).
        """
        try:
            sig = wire.parse_sigv4(headers)
            secret = self.credentials.get(sig.access_key)
            if secret is not None and not wire.verify_sigv4(
                sig, secret, method, url, headers, body
            ):
                raise wire.AuthError(
                    "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method.",
                )
        except wire.AuthError as exc:
            return exc.reply()
        with self._lock:
            self.calls.append(("InvokeEndpoint", name))
        fault = self._take_fault("InvokeEndpoint", name)
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault is not None and fault.error_code:
            return self._fault_reply(fault, json11=False)
        if len(body) > self.max_payload_bytes:
            return wire.error_reply(
                "ValidationError",
                "1 validation error detected: Value at 'body' failed to satisfy constraint: "
                f"Member must have length less than or equal to {self.max_payload_bytes}",
            )
        region = sig.region
        state = self._runtime_state(region, name)
        if isinstance(state, Reply):
            return state
        with self._lock:
            deployment = state.active
            if deployment is None or not deployment.healthy:
                if state.adopted and state.status in {"InService", "Updating"}:
                    return wire.error_reply(
                        "ModelNotReadyException",
                        f"Model for endpoint {name} is not ready yet: its container is "
                        "starting. Wait and try your request again.",
                    )
                return self._not_found(region, name)
            variant = self._pick_variant(deployment, headers.get("x-amzn-sagemaker-target-variant"))
            if variant is None:
                return wire.error_reply(
                    "ValidationError",
                    f"Variant {headers.get('x-amzn-sagemaker-target-variant')} not found for "
                    f"Endpoint: {state.arn}",
                )
            instance = variant.next_instance()
        if variant.serverless and len(body) > self.max_serverless_payload_bytes:
            return wire.error_reply(
                "ValidationError",
                "Request payload exceeds the serverless endpoint limit of "
                f"{self.max_serverless_payload_bytes} bytes.",
            )
        started = time.monotonic()
        reply = self._proxy(region, name, variant.name, instance, body, headers)
        self._publish_metrics(region, name, variant.name, reply, time.monotonic() - started)
        if reply.status == 200 and deployment.capture is not None:
            self._capture(region, name, variant.name, deployment.capture, body, headers, reply)
        return reply

    def _publish_metrics(
        self, region: str, name: str, variant: str, reply: Reply, seconds: float
    ) -> None:
        """SageMaker's per-invocation CloudWatch metrics (namespace ``AWS/SageMaker``,
        dimensions EndpointName and VariantName), put to moto: ``Invocations`` 1,
        ``Invocation4XXErrors``/``Invocation5XXErrors`` from the container's answer, and
        ``ModelLatency``/``OverheadLatency`` in microseconds (the container call; the
        emulator's own share is taken as nothing). SageMaker publishes per minute; one
        PutMetricData per invocation keeps the figures readable at once."""
        status = 200
        if reply.status != 200:
            try:
                status = int(json.loads(reply.body or b"{}").get("OriginalStatusCode") or 500)
            except (ValueError, AttributeError):
                status = 500
        dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
        data: list[dict[str, Any]] = [
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 1.0, "Unit": "None"},
            {
                "MetricName": "Invocation4XXErrors",
                "Dimensions": dims,
                "Value": 1.0 if 400 <= status < 500 else 0.0,
                "Unit": "None",
            },
            {
                "MetricName": "Invocation5XXErrors",
                "Dimensions": dims,
                "Value": 1.0 if status >= 500 or status == 0 else 0.0,
                "Unit": "None",
            },
        ]
        if 0 < status < 500:  # a model that answered has a latency
            data += [
                {
                    "MetricName": "ModelLatency",
                    "Dimensions": dims,
                    "Value": round(seconds * 1e6),
                    "Unit": "Microseconds",
                },
                {
                    "MetricName": "OverheadLatency",
                    "Dimensions": dims,
                    "Value": 0.0,
                    "Unit": "Microseconds",
                },
            ]
        try:
            self._moto(region, "cloudwatch").put_metric_data(
                Namespace="AWS/SageMaker", MetricData=data
            )
        except Exception as exc:  # the metrics never fail an invocation
            with self._lock:
                self.metric_errors.append(f"{name}: {exc}")
            return
        with self._lock:
            self.metrics_put += 1

    def _capture(
        self,
        region: str,
        name: str,
        variant: str,
        config: dict[str, Any],
        body: bytes,
        headers: dict[str, str],
        reply: Reply,
    ) -> None:
        """SageMaker's Data Capture of one answered invocation, when it is sampled."""
        percent = float(config.get("InitialSamplingPercentage") or 0)
        if random.random() * 100 >= percent:
            return
        modes = {o.get("CaptureMode") for o in config.get("CaptureOptions") or []}
        types = config.get("CaptureContentTypeHeader") or {}
        csv_types = set(types.get("CsvContentTypes") or [])
        json_types = set(types.get("JsonContentTypes") or [])

        def side(mode: str, ctype: str, data: bytes) -> dict[str, Any]:
            bare = ctype.split(";")[0].strip()
            encoding = "CSV" if bare in csv_types else "JSON" if bare in json_types else "BASE64"
            text = (
                base64.b64encode(data).decode()
                if encoding == "BASE64"
                else data.decode("utf-8", errors="replace")
            )
            return {"observedContentType": ctype, "mode": mode, "data": text, "encoding": encoding}

        capture: dict[str, Any] = {}
        if modes & {"Input", "InputAndOutput"}:
            capture["endpointInput"] = side(
                "INPUT", headers.get("content-type", "application/octet-stream"), body
            )
        if modes & {"Output", "InputAndOutput"}:
            capture["endpointOutput"] = side(
                "OUTPUT", reply.headers.get("Content-Type", "application/octet-stream"), reply.body
            )
        when = dt.datetime.now(dt.UTC)
        event_id = str(uuid.uuid4())
        line = {
            "captureData": capture,
            "eventMetadata": {
                "eventId": event_id,
                "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{when.microsecond // 1000:03d}Z",
            },
            "eventVersion": "0",
        }
        uri = str(config.get("DestinationS3Uri") or "")
        bucket, _, prefix = uri.split("://", 1)[-1].partition("/")
        key = (
            "/".join(
                p for p in (prefix.strip("/"), name, variant, when.strftime("%Y/%m/%d/%H")) if p
            )
            + f"/{uuid.uuid4()}.jsonl"
        )
        try:
            self._moto(region, "s3").put_object(
                Bucket=bucket, Key=key, Body=(json.dumps(line) + "\n").encode()
            )
        except Exception as exc:  # SageMaker drops a capture it cannot write, silently
            with self._lock:
                self.capture_errors.append(f"{bucket}/{key}: {exc}")
            return
        with self._lock:
            self.captured.append(f"s3://{bucket}/{key}")

    def _not_found(self, region: str, name: str) -> Reply:
        return wire.error_reply(
            "ValidationError", f"Endpoint {name} of account {self.account(region)} not found."
        )

    def _runtime_state(self, region: str, name: str) -> EndpointState | Reply:
        with self._lock:
            state = self._endpoints.get((region, name))
        if state is not None:
            return state
        sm = self._moto(region)
        try:
            described = sm.describe_endpoint(EndpointName=name)
        except sm.exceptions.ClientError:
            return self._not_found(region, name)
        # Created straight in moto (or before this emulator started): cold start now.
        with self._lock:
            state = self._endpoints.get((region, name))
            if state is not None:
                return state
            state = EndpointState(
                region,
                name,
                described["EndpointArn"],
                "InService",
                described["EndpointConfigName"],
                adopted=True,
            )
            self._endpoints[(region, name)] = state
            deployment = Deployment(state.config_name)
            state.pending = deployment
        self._start(state, deployment, None, update=False)
        return state

    @staticmethod
    def _pick_variant(deployment: Deployment, target: str | None) -> Variant | None:
        if target:
            return next((v for v in deployment.variants if v.name == target), None)
        weights = [max(v.weight, 0.0) for v in deployment.variants]
        if not any(weights):
            weights = [1.0] * len(weights)
        return random.choices(deployment.variants, weights=weights)[0]

    def _proxy(
        self,
        region: str,
        name: str,
        variant: str,
        instance: Instance,
        body: bytes,
        headers: dict[str, str],
    ) -> Reply:
        forward = {"Content-Type": headers.get("content-type", "application/octet-stream")}
        for key, out in (
            ("accept", "Accept"),
            ("x-amzn-sagemaker-custom-attributes", "X-Amzn-SageMaker-Custom-Attributes"),
            ("x-amzn-sagemaker-inference-id", "X-Amzn-SageMaker-Inference-Id"),
        ):
            if key in headers:
                forward[out] = headers[key]
        log_group = (
            f"arn:aws:logs:{region}:{self.account(region)}:log-group:"
            f"/aws/sagemaker/Endpoints/{name}"
        )
        conn = http.client.HTTPConnection(
            "127.0.0.1", instance.host_port, timeout=self.invocation_timeout_s
        )
        try:
            conn.request("POST", "/invocations", body=body, headers=forward)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        except TimeoutError:
            return wire.error_reply(
                "ModelError",
                "Your invocation timed out while waiting for a response from container "
                "primary. Review the latency metrics for each container in Amazon CloudWatch, "
                "resolve the issue, and try again.",
                extra={"LogStreamArn": log_group},
            )
        except (OSError, http.client.HTTPException) as exc:
            return wire.error_reply(
                "ModelError",
                f'Received server error (0) from primary with message "{exc}". See '
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in account "
                f"{self.account(region)} for more information.",
                extra={
                    "OriginalStatusCode": 0,
                    "OriginalMessage": str(exc),
                    "LogStreamArn": log_group,
                },
            )
        finally:
            conn.close()
        if status >= 400:
            text = data.decode(errors="replace")
            kind = "client" if status < 500 else "server"
            return wire.error_reply(
                "ModelError",
                f'Received {kind} error ({status}) from primary with message "{text}". See '
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in account "
                f"{self.account(region)} for more information.",
                extra={
                    "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
                    "OriginalStatusCode": status,
                    "OriginalMessage": text,
                    "LogStreamArn": log_group,
                },
            )
        out = {
            "Content-Type": resp_headers.get("content-type", "application/octet-stream"),
            "x-Amzn-Invoked-Production-Variant": variant,
            "x-amzn-RequestId": wire.request_id(),
        }
        if "x-amzn-sagemaker-custom-attributes" in resp_headers:
            out["X-Amzn-SageMaker-Custom-Attributes"] = resp_headers[
                "x-amzn-sagemaker-custom-attributes"
            ]
        return Reply(200, data, out)
