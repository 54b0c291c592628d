"""The SageMaker stand-ins behave like SageMaker on the wire and run images as it does.

Non-integration tests need only moto and the emulator (no Docker); integration tests run
the contract image from the local registry in the real Docker Engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from .containers import LABEL_ENDPOINT, LABEL_RUN
from .emulator import Emulator
from .fixtures import REGION, emulator_inject, emulator_state
from .server import MotoServer, free_port

ONE_TRY = Config(retries={"total_max_attempts": 1}, read_timeout=90)


def sm():
    return boto3.client("sagemaker", config=ONE_TRY)


def runtime():
    return boto3.client("sagemaker-runtime", config=ONE_TRY)


def make_endpoint(
    image: str,
    name: str,
    *,
    config: str | None = None,
    env: dict[str, str] | None = None,
    serverless: bool = False,
    create: bool = True,
    client=None,
) -> str:
    """Model + endpoint config (+ endpoint) through boto3, as the target will do it."""
    client = client or sm()
    config = config or f"{name}-cfg"
    model = f"{config}-model"
    client.create_model(
        ModelName=model,
        PrimaryContainer={"Image": image, "Environment": env or {}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/modelship-test",
    )
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialVariantWeight": 1.0}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 1024, "MaxConcurrency": 2}
    else:
        variant.update(InitialInstanceCount=1, InstanceType="ml.m5.large")
    client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    if create:
        client.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return config


def wait_status(name: str, wanted: set[str], timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        described = sm().describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] in wanted:
            return described
        assert time.monotonic() < deadline, described
        time.sleep(0.2)


def invoke(name: str, payload: object, **kwargs) -> tuple[dict, dict]:
    response = runtime().invoke_endpoint(
        EndpointName=name,
        Body=json.dumps(payload).encode(),
        ContentType="application/json",
        **kwargs,
    )
    return json.loads(response["Body"].read()), response


def labelled(docker_client, emulator: Emulator, endpoint: str | None = None) -> list:
    labels = [f"{LABEL_RUN}={emulator.run_id}"]
    if endpoint:
        labels.append(f"{LABEL_ENDPOINT}={endpoint}")
    return docker_client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)


# --------------------------------------------------------------- wiring (no Docker)


def test_boto3_reaches_the_stand_ins_through_env_vars_only(moto_server, sagemaker_emulator):
    assert os.environ["AWS_ENDPOINT_URL"] == moto_server.url
    assert os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] == sagemaker_emulator.url
    assert os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == sagemaker_emulator.url
    assert sm().meta.endpoint_url == sagemaker_emulator.url
    assert runtime().meta.endpoint_url == sagemaker_emulator.url
    assert boto3.client("sts").meta.endpoint_url == moto_server.url
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"

    # The control plane goes through the emulator to moto.
    make_endpoint("127.0.0.1:5055/none/none:v1", "wired", create=False)
    assert ("CreateEndpointConfig", "") in sagemaker_emulator.calls
    direct = boto3.client("sagemaker", endpoint_url=moto_server.url)
    assert direct.describe_endpoint_config(EndpointConfigName="wired-cfg")["ProductionVariants"]

    # The runtime is the emulator's (moto would answer with canned data).
    with pytest.raises(runtime().exceptions.ValidationError) as err:
        invoke("nowhere", {"x": 1})
    assert "Endpoint nowhere of account 123456789012 not found." in str(err.value)
    assert ("InvokeEndpoint", "nowhere") in sagemaker_emulator.calls


RUNTIME_ERRORS = [
    ("ValidationError", 400),
    ("ModelError", 424),
    ("ModelNotReadyException", 429),
    ("ServiceUnavailable", 503),
    ("InternalFailure", 500),
    ("InternalDependencyException", 530),
]


@pytest.mark.parametrize(("code", "status"), RUNTIME_ERRORS)
def test_invoke_errors_parse_into_botocores_exception_classes(sagemaker_emulator, code, status):
    extra = {"OriginalStatusCode": 418, "OriginalMessage": "teapot", "LogStreamArn": "arn:x"}
    sagemaker_emulator.inject(
        "InvokeEndpoint", code, message="injected", extra=extra if code == "ModelError" else None
    )
    client = runtime()
    with pytest.raises(getattr(client.exceptions, code)) as err:
        client.invoke_endpoint(EndpointName="any", Body=b"{}", ContentType="application/json")
    response = err.value.response
    assert response["Error"]["Code"] == code
    assert response["Error"]["Message"] == "injected"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    if code == "ModelError":
        assert response["OriginalStatusCode"] == 418
        assert response["OriginalMessage"] == "teapot"
        assert response["LogStreamArn"] == "arn:x"
    # times=1: the next call reaches the (missing) endpoint again.
    with pytest.raises(client.exceptions.ValidationError, match="not found"):
        client.invoke_endpoint(EndpointName="any", Body=b"{}")


def test_payload_over_6_mb_is_a_validation_error(sagemaker_emulator):
    client = runtime()
    with pytest.raises(client.exceptions.ValidationError) as err:
        client.invoke_endpoint(EndpointName="any", Body=b"x" * (6 * 1024 * 1024 + 1))
    assert "less than or equal to 6291456" in str(err.value)
    # Exactly 6 MB passes the limit (and then meets the missing endpoint).
    with pytest.raises(client.exceptions.ValidationError, match="not found"):
        client.invoke_endpoint(EndpointName="any", Body=b"x" * (6 * 1024 * 1024))


def test_requests_must_be_sigv4_signed(sagemaker_emulator):
    url = f"{sagemaker_emulator.url}/endpoints/any/invocations"
    req = urllib.request.Request(url, data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
    assert err.value.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationToken")
    req = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"Authorization": "Bearer xyz"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.headers["x-amzn-ErrorType"].startswith("IncompleteSignature")

    # With the secret known, the emulator recomputes botocore's signature.
    sagemaker_emulator.credentials = {"testing": "testing"}
    with pytest.raises(runtime().exceptions.ValidationError, match="not found"):
        invoke("any", {"rows": [1, 2]}, CustomAttributes="trace=1", Accept="application/json")
    sagemaker_emulator.credentials = {"testing": "wrong"}
    with pytest.raises(runtime().exceptions.ClientError) as err:
        invoke("any", {"rows": [1, 2]})
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_control_plane_faults_and_passthrough(moto_server, sagemaker_emulator):
    client = sm()
    make_endpoint("127.0.0.1:5055/none/none:v1", "faulty", create=False)
    sagemaker_emulator.inject("CreateEndpoint", "ResourceLimitExceeded", message="quota")
    with pytest.raises(client.exceptions.ResourceLimitExceeded, match="quota"):
        client.create_endpoint(EndpointName="faulty", EndpointConfigName="faulty-cfg")
    direct = boto3.client("sagemaker", endpoint_url=moto_server.url)
    assert direct.list_endpoints()["Endpoints"] == []  # the failed call created nothing

    sagemaker_emulator.inject("DescribeEndpoint", "ThrottlingException", status=400, times=2)
    for _ in range(2):
        with pytest.raises(client.exceptions.ClientError) as err:
            client.describe_endpoint(EndpointName="faulty")
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(client.exceptions.ClientError) as err:
        client.describe_endpoint(EndpointName="faulty")
    assert err.value.response["Error"]["Code"] == "ValidationException"  # moto's own answer


def test_injected_deployment_failure_reaches_failed_with_reason(moto_server, sagemaker_emulator):
    sagemaker_emulator.inject(
        "CreateEndpoint", failure_reason="Insufficient capacity for ml.m5.large."
    )
    make_endpoint("127.0.0.1:5055/none/none:v1", "doomed")
    described = wait_status("doomed", {"Failed"})
    assert described["FailureReason"] == "Insufficient capacity for ml.m5.large."
    listed = sm().list_endpoints(StatusEquals="Failed")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["doomed"]
    with pytest.raises(runtime().exceptions.ValidationError, match="not found"):
        invoke("doomed", {})
    with pytest.raises(sm().exceptions.ClientError, match="Cannot update failed endpoint"):
        sm().update_endpoint(EndpointName="doomed", EndpointConfigName="doomed-cfg")
    sm().delete_endpoint(EndpointName="doomed")
    assert sagemaker_emulator.endpoints() == []


def test_update_endpoint_validates_its_arguments(sagemaker_emulator):
    client = sm()
    with pytest.raises(client.exceptions.ClientError, match="Could not find endpoint") as err:
        client.update_endpoint(EndpointName="ghost", EndpointConfigName="x")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    sagemaker_emulator.inject("CreateEndpoint", failure_reason="never mind")
    make_endpoint("127.0.0.1:5055/none/none:v1", "real")
    with pytest.raises(client.exceptions.ClientError, match="endpoint configuration"):
        client.update_endpoint(EndpointName="real", EndpointConfigName="missing-cfg")


def test_control_api_for_out_of_process_use(sagemaker_emulator):
    fault = emulator_inject(
        sagemaker_emulator.url, "InvokeEndpoint", error_code="ServiceUnavailable"
    )
    assert fault["times"] == 1
    with pytest.raises(runtime().exceptions.ServiceUnavailable):
        invoke("any", {})
    state = emulator_state(sagemaker_emulator.url)
    assert state["faults"] == [] and state["containers"] == []
    assert ["InvokeEndpoint", "any"] in state["calls"]


def test_runs_as_a_process(moto_server, monkeypatch):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.sagemaker_runtime",
            "--port",
            str(port),
            "--moto-url",
            moto_server.url,
        ],
        cwd=str(__import__("tests.conftest").conftest.REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/__emulator__/health", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
        make_endpoint("127.0.0.1:5055/none/none:v1", "proc", create=False)
        emulator_inject(url, "InvokeEndpoint", error_code="ModelNotReadyException")
        with pytest.raises(runtime().exceptions.ModelNotReadyException):
            invoke("proc", {})
        assert ["CreateEndpointConfig", ""] in emulator_state(url)["calls"]
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def test_moto_server_helper_starts_and_stops_on_its_own():
    server = MotoServer().start()
    try:
        client = boto3.client(
            "iam",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
        server.reset()
        assert client.list_roles()["Roles"] == []
    finally:
        server.stop()


# ------------------------------------------------------------ real containers


@pytest.mark.integration
def test_endpoint_runs_its_image_as_sagemaker_does(
    docker_client, sagemaker_echo_image, sagemaker_emulator
):
    make_endpoint(sagemaker_echo_image.uri, "echo", env={"ECHO_VERSION": "v1"})
    # A cached echo image can answer /ping before this first describe arrives, so the
    # wire shows Creating or already InService; the endpoint's history shows both.
    first = sm().describe_endpoint(EndpointName="echo")["EndpointStatus"]
    assert first in {"Creating", "InService"}
    described = wait_status("echo", {"InService", "Failed"})
    assert described["EndpointStatus"] == "InService", str(sagemaker_emulator.endpoints())
    assert sagemaker_emulator.endpoint("echo").history == ["Creating", "InService"]
    image = described["ProductionVariants"][0]["DeployedImages"][0]
    assert image["SpecifiedImage"] == sagemaker_echo_image.uri
    assert "@sha256:" in image["ResolvedImage"]

    (container,) = labelled(docker_client, sagemaker_emulator, "echo")
    assert container.attrs["Config"]["Cmd"] == ["serve"]
    binding = container.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    assert "ECHO_VERSION=v1" in container.attrs["Config"]["Env"]

    answer, response = invoke(
        "echo", {"rows": [[1, 2]]}, Accept="application/json", CustomAttributes="trace=7"
    )
    assert answer["version"] == "v1"
    assert answer["accept"] == "application/json"
    assert answer["content_type"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["CustomAttributes"] == "echo=trace=7"
    assert response["ContentType"] == "application/json"

    # The model's own 4xx becomes ModelError with the original status and message.
    with pytest.raises(runtime().exceptions.ModelError) as err:
        invoke("echo", {"status": 400, "why": "age must be a number"})
    response = err.value.response
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"] == "bad input: age must be a number"
    assert "Received client error (400) from primary" in response["Error"]["Message"]
    assert response["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/echo")

    # 60 s model timeout (shortened here).
    sagemaker_emulator.invocation_timeout_s = 1
    with pytest.raises(runtime().exceptions.ModelError, match="timed out"):
        invoke("echo", {"sleep": 3})

    # Payloads up to 6 MB reach the model.
    big = runtime().invoke_endpoint(EndpointName="echo", Body=b"7" * (6 * 1024 * 1024))
    assert json.loads(big["Body"].read())["bytes"] == 6 * 1024 * 1024

    sm().delete_endpoint(EndpointName="echo")
    assert labelled(docker_client, sagemaker_emulator) == []
    with pytest.raises(runtime().exceptions.ValidationError, match="not found"):
        invoke("echo", {})


@pytest.mark.integration
def test_update_endpoint_is_blue_green_with_rollback(
    docker_client, sagemaker_echo_image, sagemaker_emulator
):
    uri = sagemaker_echo_image.uri
    make_endpoint(uri, "bg", config="bg-v1", env={"ECHO_VERSION": "v1"})
    wait_status("bg", {"InService"})
    (old,) = labelled(docker_client, sagemaker_emulator, "bg")

    # v2 takes a few seconds to become healthy: v1 keeps answering meanwhile.
    make_endpoint(
        uri,
        "bg",
        config="bg-v2",
        env={"ECHO_VERSION": "v2", "ECHO_READY_AFTER": "3"},
        create=False,
    )
    sm().update_endpoint(EndpointName="bg", EndpointConfigName="bg-v2")
    described = sm().describe_endpoint(EndpointName="bg")
    assert described["EndpointStatus"] == "Updating"
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "bg-v2"
    assert invoke("bg", {})[0]["version"] == "v1"
    with pytest.raises(sm().exceptions.ClientError, match="in-progress"):
        sm().update_endpoint(EndpointName="bg", EndpointConfigName="bg-v1")
    described = wait_status("bg", {"InService"})
    assert described["EndpointConfigName"] == "bg-v2"
    assert "FailureReason" not in described
    assert invoke("bg", {})[0]["version"] == "v2"
    ids = [c.id for c in labelled(docker_client, sagemaker_emulator, "bg")]
    assert old.id not in ids and len(ids) == 1

    # A config whose container crashes: the update fails, v2 keeps serving.
    make_endpoint(uri, "bg", config="bg-bad", env={"ECHO_MODE": "crash"}, create=False)
    sm().update_endpoint(EndpointName="bg", EndpointConfigName="bg-bad")
    described = wait_status("bg", {"InService"})
    assert described["EndpointConfigName"] == "bg-v2"
    assert "did not pass the ping health check" in described["FailureReason"]
    assert invoke("bg", {})[0]["version"] == "v2"
    assert [c.id for c in labelled(docker_client, sagemaker_emulator, "bg")] == ids
    (failure,) = sagemaker_emulator.endpoint("bg").failures
    assert "crashing on purpose" in failure["logs"]

    sm().delete_endpoint(EndpointName="bg")
    assert labelled(docker_client, sagemaker_emulator) == []


@pytest.mark.integration
def test_unhealthy_or_missing_images_fail_the_endpoint(
    docker_client, sagemaker_echo_image, sagemaker_emulator
):
    sagemaker_emulator.startup_timeout_s = 3
    make_endpoint(sagemaker_echo_image.uri, "sick", env={"ECHO_MODE": "unhealthy"})
    missing = f"{sagemaker_echo_image.registry}/modelship-test-{uuid.uuid4().hex[:8]}/no:v1"
    make_endpoint(missing, "absent")
    sick = wait_status("sick", {"Failed", "InService"}, timeout_s=60)
    assert sick["EndpointStatus"] == "Failed"
    assert sick["FailureReason"] == (
        "The primary container for production variant AllTraffic did not pass the ping "
        "health check. Please check CloudWatch logs for this endpoint."
    )
    absent = wait_status("absent", {"Failed", "InService"}, timeout_s=60)
    assert absent["EndpointStatus"] == "Failed"
    assert "Failed to pull the image" in absent["FailureReason"]
    assert labelled(docker_client, sagemaker_emulator) == []


@pytest.mark.integration
def test_endpoint_created_straight_in_moto_cold_starts(
    docker_client, moto_server, sagemaker_echo_image, sagemaker_emulator
):
    direct = boto3.client("sagemaker", endpoint_url=moto_server.url)
    make_endpoint(
        sagemaker_echo_image.uri,
        "cold",
        env={"ECHO_VERSION": "cold", "ECHO_READY_AFTER": "1"},
        serverless=True,
        client=direct,
    )
    with pytest.raises(runtime().exceptions.ModelNotReadyException):
        invoke("cold", {})
    deadline = time.monotonic() + 60
    while True:
        try:
            answer, _ = invoke("cold", {})
            break
        except runtime().exceptions.ModelNotReadyException:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    assert answer["version"] == "cold"
    (container,) = labelled(docker_client, sagemaker_emulator, "cold")
    assert container.attrs["HostConfig"]["Memory"] == 1024 * 1024 * 1024  # MemorySizeInMB
    with pytest.raises(runtime().exceptions.ValidationError, match="serverless"):
        runtime().invoke_endpoint(EndpointName="cold", Body=b"x" * (4 * 1024 * 1024 + 1))
    sm().delete_endpoint(EndpointName="cold")
    assert labelled(docker_client, sagemaker_emulator) == []
