"""The sagemaker target, beyond the conformance suite, against moto + the SageMaker emulator.

`modelship deploy PROFILE` (the CLI's own code) reaching an InService endpoint whose
smoke test went through InvokeEndpoint, with autoscaling registered in Application
Auto Scaling, the cost stated before anything was created; the plan's cost;
`modelship invoke NAME --csv`; status with the running cost; missing credentials
(exit 6); serverless mode; teardown leaving nothing in moto or the registry. Captured
requests (issue 24): with capture_rate 1 the endpoint config asks SageMaker's Data
Capture for every request, the emulator writes them to S3 (moto) as SageMaker does,
pull_lines reads them back in ModelShip's line format, and teardown removes them and
their bucket; with capture off there is no DataCaptureConfig and no bucket. Dashboard
charts (issue 24): invocations put SageMaker's CloudWatch metrics (moto), read back by
the target as the dashboard's per-minute series, 4xx and latency percentiles included.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main
from app.domain import ConvertedModel
from app.run import plan, run_deploy, teardown
from app.store.profile import save_profile
from tests.conformance.harnesses.sagemaker import (
    REGION,
    aws_leftovers,
    registry_tags,
    sagemaker_profile,
)
from tests.emulators.sagemaker_runtime.fixtures import registry_address, registry_available

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 4))
    y = (X[:, 1] - X[:, 3] > 0).astype(int)
    path = tmp_path_factory.mktemp("sagemaker-model") / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    return path


@pytest.fixture
def registry() -> str:
    from tests.conftest import require

    require(registry_available(registry_address()), f"the local registry at {registry_address()}")
    return registry_address()


@pytest.fixture(autouse=True)
def _registry_confirmed() -> None:
    """Every profile here names the local registry in place of ECR: confirmed on this
    test's computer as a person would (`modelship hosts allow`)."""
    from tests.emulators.confirm import confirm_hosts

    confirm_hosts(registry_address())


def _nothing_left(name: str, emulator, docker_client) -> None:
    assert aws_leftovers(name, emulator) == []
    assert registry_tags(f"modelship/{name}") == []
    label = ["modelship.managed=true", f"modelship.deployment={name}"]
    assert docker_client.api.images(filters={"label": label}, quiet=True) == []


def test_cli_deploy_reaches_an_autoscaled_endpoint_smoke_tested_through_invoke_endpoint(
    sagemaker_emulator, docker_client, base_image, model, registry, tmp_path, capsys
) -> None:
    import boto3

    name = "sm-cli"
    profile = sagemaker_profile(model, name, base_image, max_instances=3, capture_rate=1.0)
    save_profile(profile)
    items = [str(i) for i in plan(profile)]
    text = "\n".join(items)
    assert "$0.056 per hour (1 × ml.t2.medium)" in text, text
    assert "S3 bucket" in text and "per GB-month of captured data" in text, text
    assert "keeps 100 % of the requests" in text, text
    assert "billing stops at `modelship teardown sm-cli`" in text
    assert "up to $0.168 per hour at 3 instances" in text
    try:
        code = main(["deploy", name])
        out, err = capsys.readouterr()
        assert code == 0, err
        # the cost is said before anything is created
        assert "SageMaker bills the realtime endpoint while it exists: $0.056 per hour" in err
        assert err.index("SageMaker bills") < err.index("Creating ECR repository")
        assert "Smoke test" in out
        # the endpoint is InService in moto/the emulator, and was called: InvokeEndpoint
        sm = boto3.session.Session(region_name=REGION).client("sagemaker")
        described = sm.describe_endpoint(EndpointName="modelship-sm-cli")
        assert described["EndpointStatus"] == "InService"
        assert ("InvokeEndpoint", "modelship-sm-cli") in sagemaker_emulator.calls
        # autoscaling registered with Application Auto Scaling
        aas = boto3.session.Session(region_name=REGION).client("application-autoscaling")
        [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert target["ResourceId"] == "endpoint/modelship-sm-cli/variant/AllTraffic"
        assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
        [policy] = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        spec = policy["TargetTrackingScalingPolicyConfiguration"]
        assert spec["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
            "SageMakerVariantInvocationsPerInstance"
        )
        # the role ModelShip made trusts SageMaker only
        iam = boto3.session.Session(region_name=REGION).client("iam")
        role = iam.get_role(RoleName="ModelShip-sm-cli")["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        account = boto3.session.Session(region_name=REGION).client("sts").get_caller_identity()
        assert trust["Statement"][0]["Condition"] == {
            "StringEquals": {"aws:SourceAccount": account["Account"]}
        }
        # the "Try it" line calls it as SageMaker wants: signed, through the AWS CLI
        assert "aws sagemaker-runtime invoke-endpoint --endpoint-name modelship-sm-cli" in out
        assert "curl" not in out and "Bearer" not in out
        # the model runs the pushed image by digest, with the serving limit of SageMaker
        [m] = sm.list_models()["Models"]
        container = sm.describe_model(ModelName=m["ModelName"])["PrimaryContainer"]
        assert container["Image"].startswith(f"{registry}/modelship/sm-cli@sha256:")
        assert container["Environment"]["MODELSHIP_MAX_BODY_BYTES"] == str(6 * 1024 * 1024)

        # invoke with a CSV, through the deployment's SigV4 client
        rows = tmp_path / "rows.csv"
        rows.write_text("f0,f1,f2,f3\n0.1,2.0,0.3,-1.0\n0.5,-2.0,0.1,1.0\n")
        assert main(["invoke", name, "--csv", str(rows)]) == 0
        answer = capsys.readouterr().out.strip().splitlines()
        assert len(answer) == 3, answer  # header + one line per row

        # captured requests: SageMaker's Data Capture, read back as ModelShip lines
        _captured_in_s3_and_pulled(name, sm, answer)

        # status: running, with the cost and the time since deploy
        assert main(["status", name]) == 0
        out = capsys.readouterr().out
        assert "InService" in out and "$0.056 per hour" in out and "since deploy" in out
        # logs: CloudWatch has none in moto, so it says where to look
        assert main(["logs", name]) == 0
        assert "/aws/sagemaker/Endpoints/modelship-sm-cli" in capsys.readouterr().out
    finally:
        teardown(name)
    _nothing_left(name, sagemaker_emulator, docker_client)
    assert sagemaker_emulator.captured, "the emulator wrote no capture object"
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    bucket = sagemaker_emulator.captured[0].removeprefix("s3://").split("/")[0]
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def _captured_in_s3_and_pulled(name: str, sm, answer: list[str]) -> None:
    import boto3

    from app.model.convert.report import proof_path_for
    from app.store.records import load_record
    from targets.sagemaker.capture import pull_lines

    [c] = sm.list_endpoint_configs()["EndpointConfigs"]
    config = sm.describe_endpoint_config(EndpointConfigName=c["EndpointConfigName"])
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    bucket, _, prefix = capture["DestinationS3Uri"].removeprefix("s3://").partition("/")
    assert bucket.startswith("modelship-sm-cli-") and prefix == "capture"
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    # SageMaker's layout: <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl
    assert keys and all(
        re.fullmatch(r"capture/modelship-sm-cli/AllTraffic/\d{4}/\d\d/\d\d/\d\d/[^/]+\.jsonl", k)
        for k in keys
    ), keys
    record = load_record(name)
    proof = json.loads(proof_path_for(record.version().model_path).read_text())
    lines = [json.loads(x) for x in pull_lines(record, None).splitlines()]
    assert len(lines) >= 2, lines  # the smoke test's request and the CSV invoke
    for line in lines:
        assert line["v"] == 1 and line["route"] == "/invocations"
        assert line["columns"] == proof["columns"]
        assert len(line["rows"]) == line["n"] == len(line["predictions"])
    last = max(lines, key=lambda x: x["t"])
    assert last["rows"] == [[0.1, 2.0, 0.3, -1.0], [0.5, -2.0, 0.1, 1.0]]
    assert [str(p) for p in last["predictions"]] == [r.split(",")[0] for r in answer[1:]]
    assert pull_lines(record, last["t"]) == b""  # nothing after the last one


def test_the_execution_role_trusts_sagemaker_for_this_account_only(
    moto_server, tmp_path: Path
) -> None:
    """The role ModelShip creates may be taken on by SageMaker acting for this account
    only (aws:SourceAccount from sts:GetCallerIdentity), not by SageMaker for anyone."""
    import boto3

    from app.store.journal import Journal
    from targets.base import DeployContext
    from targets.sagemaker.client import AWS
    from targets.sagemaker.target import SageMakerTarget

    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    profile = sagemaker_profile(model, "sm-role", "base:latest")
    ctx = DeployContext(
        profile=profile,
        name="sm-role",
        model=ConvertedModel(model),
        journal=Journal.create("sm-role", target="sagemaker"),
    )
    arn, resource = SageMakerTarget()._role(ctx, AWS(None, REGION), profile.target.settings, {}, [])
    assert resource is not None and arn.endswith(":role/ModelShip-sm-role")
    session = boto3.session.Session(region_name=REGION)
    account = session.client("sts").get_caller_identity()["Account"]
    document = session.client("iam").get_role(RoleName="ModelShip-sm-role")["Role"][
        "AssumeRolePolicyDocument"
    ]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    ]


def test_missing_credentials_exit_6_before_anything_is_created(
    sagemaker_emulator, model, base_image, monkeypatch, capsys
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_SECURITY_TOKEN"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    name = "sm-nocreds"
    save_profile(sagemaker_profile(model, name, base_image))
    code = main(["deploy", name])
    err = capsys.readouterr().err
    assert code == 6, err
    assert "credentials" in err.lower() and "aws configure" in err
    assert sagemaker_emulator.calls == []


def test_serverless_endpoint_answers_and_tears_down(
    sagemaker_emulator, docker_client, base_image, model, registry
) -> None:
    import boto3

    name = "sm-serverless"
    profile = sagemaker_profile(
        model, name, base_image, mode="serverless", memory_mb=2048, max_concurrency=2,
        max_instances=1,
    )  # fmt: skip
    text = "\n".join(str(i) for i in plan(profile))
    assert "per second of request processing (2048 MB)" in text and "nothing while idle" in text
    try:
        record = run_deploy(profile)
        assert record.smoke["passed"]
        sm = boto3.session.Session(region_name=REGION).client("sagemaker")
        [config] = sm.list_endpoint_configs()["EndpointConfigs"]
        variant = sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])[
            "ProductionVariants"
        ][0]
        assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
        # capture off (the default): no DataCaptureConfig, no bucket, nothing captured
        described = sm.describe_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
        assert not described.get("DataCaptureConfig")
        assert sagemaker_emulator.captured == []
        s3 = boto3.session.Session(region_name=REGION).client("s3")
        assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("modelship-")]
        aas = boto3.session.Session(region_name=REGION).client("application-autoscaling")
        assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
        [m] = sm.list_models()["Models"]
        env = sm.describe_model(ModelName=m["ModelName"])["PrimaryContainer"]["Environment"]
        assert env["MODELSHIP_MAX_BODY_BYTES"] == str(4 * 1024 * 1024)
        _charts_from_cloudwatch(name, record, profile, sagemaker_emulator)
    finally:
        teardown(name)
    _nothing_left(name, sagemaker_emulator, docker_client)


def _charts_from_cloudwatch(name: str, record, profile, emulator) -> None:
    """Each invocation puts SageMaker's AWS/SageMaker metrics to CloudWatch (moto); the
    target reads the last hour back as the dashboard's per-minute series, and the
    dashboard's (Qt-free) snapshot carries them with the words on where they come from."""
    from app.endpoint.client import EndpointError
    from app.endpoint.dashboard import snapshot
    from targets import get_target

    target = get_target("sagemaker")
    client = target.client(record.endpoint_obj(), profile)
    for _ in range(3):
        assert len(client.predict([[0.1, 2.0, 0.3, -1.0]])["predictions"]) == 1
    with pytest.raises(EndpointError) as bad:  # the model refuses it: a 4xx
        client.predict([["not", "a", "number"]])
    assert 400 <= bad.value.status < 500, bad.value
    ep = record.endpoint_obj().data["endpoint_name"]
    sent = sum(1 for call in emulator.calls if call == ("InvokeEndpoint", ep))
    assert sent >= 4 and emulator.metrics_put == sent and not emulator.metric_errors

    usage = target.usage_history(record)
    assert usage is not None and not usage.quiet
    series = usage.series
    assert sum(v for _, v in series["requests"]) == sent  # every invocation, per minute
    assert sum(v for _, v in series["client"]) == 1  # the refused one
    assert sum(v for _, v in series["server"]) == 0
    assert series["rows"] == []  # CloudWatch counts no rows: said in the note
    assert "CloudWatch" in usage.note and "rows" in usage.note
    minutes = [t for t, _ in series["requests"]]
    assert all(t % 60 == 0 for t in minutes) and minutes == sorted(minutes)
    latencies = [v for key in ("p50", "p95", "p99") for _, v in series[key] if v is not None]
    assert latencies and all(0 < v < 60 for v in latencies)  # seconds, from microseconds
    for (_, p50), (_, p99) in zip(series["p50"], series["p99"], strict=True):
        assert p50 is None or p99 is None or p50 <= p99

    snap = snapshot(name)  # no MetricsBook: the platform's own figures
    assert snap.history == series and not snap.quiet
    assert snap.history_note == usage.note
    assert f"{sent} in the last hour" in snap.metrics_note


def test_a_failing_endpoint_reports_sagemakers_reason(
    sagemaker_emulator, docker_client, base_image, model, registry
) -> None:
    from app.errors import TargetError

    name = "sm-fails"
    reason = "The primary container for production variant AllTraffic did not pass the ping"
    sagemaker_emulator.inject("CreateEndpoint", failure_reason=reason)
    with pytest.raises(TargetError) as info:
        run_deploy(sagemaker_profile(model, name, base_image))
    assert reason in info.value.message and "Rolled back" in info.value.message
    _nothing_left(name, sagemaker_emulator, docker_client)


def test_check_names_the_setting_to_fix(sagemaker_emulator, model, base_image) -> None:
    from targets import get_target

    target = get_target("sagemaker")
    bad = sagemaker_profile(model, "sm-check", base_image, instance_type="ml.x9.huge")
    [problem] = target.check(bad, None)
    assert problem.setting == "instance_type" and "ml.t2.medium" in problem.fix
    graviton = sagemaker_profile(model, "sm-arm", base_image, instance_type="ml.c7g.large")
    assert target.platforms(graviton) == ("linux/arm64",)
    assert target.platforms(sagemaker_profile(model, "x", base_image)) == ("linux/amd64",)


def test_a_failed_redeploy_leaves_the_old_version_serving(
    sagemaker_emulator, docker_client, base_image, model, registry, tmp_path
) -> None:
    """A redeploy that fails after UpdateEndpoint switched (a smoke-test-like failure)
    points the endpoint back at the old config; one that SageMaker rolls back itself
    reports its FailureReason. Either way version 1 answers throughout and after."""
    import boto3

    from app.errors import TargetError
    from tests.conformance.test_conformance import InjectedFailure, _train

    name = "sm-redeploy"
    first = sagemaker_profile(model, name, base_image)
    sm = boto3.session.Session(region_name=REGION).client("sagemaker")
    try:
        v1 = run_deploy(first)
        config_v1 = sm.describe_endpoint(EndpointName="modelship-sm-redeploy")["EndpointConfigName"]
        rows = json.loads(v1.version().proof_path.read_text())["rows"][:5]
        from targets import get_target

        client = get_target("sagemaker").client(v1.endpoint_obj(), first)
        before = client.predict(rows)["predictions"]
        second = first.model_copy(deep=True)
        second.model.path = _train(tmp_path / "other.joblib", 3)

        def fail_after_deploy(event) -> None:
            if event.kind == "step_finished" and event.step == "deploy":
                raise InjectedFailure("after the switch")

        with pytest.raises(InjectedFailure):
            run_deploy(second, on_event=fail_after_deploy)
        described = sm.describe_endpoint(EndpointName="modelship-sm-redeploy")
        assert described["EndpointConfigName"] == config_v1
        assert described["EndpointStatus"] == "InService"
        assert client.predict(rows)["predictions"] == before
        assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == [
            config_v1
        ]

        reason = "The primary container for production variant AllTraffic did not pass the ping"
        sagemaker_emulator.inject("UpdateEndpoint", failure_reason=reason)
        with pytest.raises(TargetError) as info:
            run_deploy(second)
        assert reason in info.value.message and "rolled back by SageMaker" in info.value.message
        assert client.predict(rows)["predictions"] == before
        assert len(sm.list_models()["Models"]) == 1
    finally:
        teardown(name)
    _nothing_left(name, sagemaker_emulator, docker_client)


def test_pull_lines_reads_s3_since_a_time_and_keeps_capture_max_mb(
    moto_server, tmp_path: Path
) -> None:
    """pull_lines against S3 (moto) alone: objects written by hand in SageMaker's format,
    read back in order, `since` honoured, and the oldest removed beyond capture_max_mb."""
    import boto3

    from app.domain import DeploymentRecord, Endpoint, ModelVersion
    from app.serving.signature import ColumnSpec, Signature, TensorSpec
    from targets.sagemaker.capture import pull_lines

    onnx = tmp_path / "m.onnx"
    Signature(
        inputs=[TensorSpec("x", "float32", [None, 2])],
        outputs=[TensorSpec("label", "int64", [None])],
        columns=[ColumnSpec("a", "float32", "x", 0), ColumnSpec("b", "float32", "x", 1)],
    ).save(Signature.path_for(onnx))
    s3 = boto3.session.Session(region_name=REGION).client("s3")
    s3.create_bucket(Bucket="modelship-pull-test")
    keys = []
    for hour in range(3):
        line = json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "mode": "INPUT",
                        "data": f"{hour}.5,1.0",
                        "encoding": "CSV",
                    },
                    "endpointOutput": {
                        "observedContentType": "application/json",
                        "mode": "OUTPUT",
                        "data": f'{{"predictions": [{hour}]}}',
                        "encoding": "JSON",
                    },
                },
                "eventMetadata": {
                    "eventId": f"e{hour}",
                    "inferenceTime": f"2026-12-06T{10 + hour:02d}:00:00Z",
                },
                "eventVersion": "0",
            }
        )
        key = f"capture/modelship-pull/AllTraffic/2026/12/06/{10 + hour:02d}/{hour}.jsonl"
        s3.put_object(Bucket="modelship-pull-test", Key=key, Body=(line + "\n").encode())
        keys.append(key)
    size = s3.head_object(Bucket="modelship-pull-test", Key=keys[0])["ContentLength"]

    def record(max_mb: float) -> DeploymentRecord:
        endpoint = Endpoint(
            url="http://x/endpoints/modelship-pull/invocations",
            target="sagemaker",
            resources=[],
            data={"endpoint_name": "modelship-pull", "region": REGION, "aws_profile": None,
                  "capture_uri": "s3://modelship-pull-test/capture"},
        )  # fmt: skip
        return DeploymentRecord(
            name="pull",
            target="sagemaker",
            profile={"target": {"kind": "sagemaker", "settings": {"capture_max_mb": max_mb}}},
            endpoint=endpoint.to_dict(),
            versions=[ModelVersion(1, str(onnx), str(onnx), "sagemaker").to_dict()],
            current_version=1,
        )

    lines = [json.loads(x) for x in pull_lines(record(50)).splitlines()]
    assert [x["rows"] for x in lines] == [[[0.5, 1.0]], [[1.5, 1.0]], [[2.5, 1.0]]]
    assert [x["predictions"] for x in lines] == [[0], [1], [2]]
    assert all(x["columns"] == ["a", "b"] for x in lines)
    later = [json.loads(x) for x in pull_lines(record(50), lines[0]["t"]).splitlines()]
    assert [x["predictions"] for x in later] == [[1], [2]]
    # room for two objects: the oldest goes
    kept = pull_lines(record((2 * size + 10) / 2**20))
    assert [json.loads(x)["predictions"] for x in kept.splitlines()] == [[1], [2]]
    left = [o["Key"] for o in s3.list_objects_v2(Bucket="modelship-pull-test")["Contents"]]
    assert left == keys[1:]
