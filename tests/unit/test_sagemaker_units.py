"""The sagemaker target's parts that need no AWS: prices, platforms, names, errors, preflight.

Near-instant (no moto, no Docker): the error translation is checked with botocore's own
exception objects, the plan with a profile whose settings never reach AWS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import CredentialError, TargetError
from targets.sagemaker import prices
from targets.sagemaker.client import aws_errors, is_not_found
from targets.sagemaker.resources import aws_name, endpoint_name, role_name


def _client_error(code: str, message: str = "boom", status: int = 400, **extra):
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "Operation")


def _profile(tmp_path: Path, **settings):
    from app.store.profile import Profile

    model = tmp_path / "m.onnx"
    model.write_bytes(b"0" * 100)
    return Profile.model_validate(
        {
            "schema": 1,
            "name": "iris",
            "model": {"path": str(model)},
            "target": {"kind": "sagemaker", "settings": {"region": "us-east-1", **settings}},
        }
    )


def test_graviton_types_need_arm64_and_gpus_do_not() -> None:
    assert prices.is_graviton("ml.c7g.large") and prices.is_graviton("ml.m6gd.xlarge")
    assert not prices.is_graviton("ml.g4dn.xlarge") and not prices.is_graviton("ml.g5.xlarge")
    assert not prices.is_graviton("ml.m5.large")


def test_platform_follows_the_instance_and_serverless_is_x86(tmp_path: Path) -> None:
    from targets import get_target

    target = get_target("sagemaker")
    assert target.platforms(_profile(tmp_path, instance_type="ml.c6g.large")) == ("linux/arm64",)
    assert target.platforms(_profile(tmp_path, instance_type="ml.m5.large")) == ("linux/amd64",)
    serverless = _profile(tmp_path, mode="serverless", instance_type="ml.c6g.large")
    assert target.platforms(serverless) == ("linux/amd64",)


def test_costs_in_words() -> None:
    two = prices.realtime_cost("ml.t2.medium", 2, hours=10.0)
    assert two.line().startswith("$0.112 per hour (2 × ml.t2.medium)")
    assert two.line().endswith("; about $1.12 since deploy")
    assert "not in ModelShip's table" in prices.realtime_cost("ml.x1.odd", 1).line()
    assert prices.serverless_cost(1024).line().startswith("$0.000020 per second")
    assert "differs" in prices.table_note("eu-central-1")
    assert "differs" not in prices.table_note("us-east-1")


def test_aws_names_are_valid_sagemaker_names() -> None:
    assert endpoint_name("iris_v2") == "modelship-iris-v2"
    long = endpoint_name("x" * 63)
    assert len(long) <= 63 and not long.endswith("-")
    assert aws_name("a__b--c-") == "a-b-c"
    assert role_name("iris") == "ModelShip-iris" and len(role_name("y" * 63)) <= 64


def test_missing_credentials_are_a_credential_error_with_a_next_step() -> None:
    from botocore.exceptions import NoCredentialsError

    with pytest.raises(CredentialError) as info, aws_errors("asking who you are", "work"):
        raise NoCredentialsError()
    assert info.value.exit_code == 6
    assert "aws configure --profile work" in (info.value.hint or "")
    with pytest.raises(CredentialError), aws_errors("x"):
        raise _client_error("ExpiredToken", "expired")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("AccessDeniedException", "Ask your AWS administrator"),
        ("ResourceLimitExceeded", "quota"),
        ("ThrottlingException", "Wait a minute"),
        ("ValidationException", "Check the settings"),
    ],
)
def test_client_errors_become_target_errors_that_say_what_to_do(code: str, words: str) -> None:
    with pytest.raises(TargetError) as info, aws_errors("creating the model"):
        raise _client_error(code)
    assert not isinstance(info.value, CredentialError)
    assert words in f"{info.value.message} {info.value.hint}"


def test_not_found_in_each_services_words() -> None:
    assert is_not_found(_client_error("NoSuchEntity"))
    assert is_not_found(_client_error("ValidationException", 'Could not find endpoint "x".'))
    assert is_not_found(_client_error("ValidationException", "No scaling policy found for x"))
    assert not is_not_found(_client_error("ValidationException", "Value too long"))


def test_runtime_errors_map_to_http_statuses() -> None:
    from targets.sagemaker.runtime import _as_endpoint_error

    model_error = _client_error(
        "ModelError", "Received client error (422)", 424, OriginalStatusCode=422,
        OriginalMessage='{"error": "column x"}',
    )  # fmt: skip
    err = _as_endpoint_error(model_error)
    assert err.status == 422 and "column x" in err.body
    assert _as_endpoint_error(_client_error("ValidationError", "too big")).status == 400
    assert _as_endpoint_error(_client_error("ModelNotReadyException")).status == 503


def test_preflight_refuses_a_sample_over_the_serverless_limit(tmp_path: Path) -> None:
    from targets.sagemaker.preflight import setting_problems

    sample = tmp_path / "rows.csv"
    row = ",".join(["123456.789"] * 50)
    sample.write_text("\n".join([",".join(f"c{i}" for i in range(50))] + [row] * 7000))
    profile = _profile(tmp_path, mode="serverless")
    profile.model.sample_csv = sample
    [problem] = setting_problems(profile)
    assert "4 MB" in problem.message and "serverless" in problem.message
    profile.target.settings.mode = "realtime"
    assert setting_problems(profile) == []


def test_preflight_names_the_setting(tmp_path: Path) -> None:
    from targets.sagemaker.preflight import setting_problems

    [bad] = setting_problems(_profile(tmp_path, instance_type="ml.nope.large"))
    assert bad.setting == "instance_type" and "ml.m5.large" in bad.fix
    [out_of_range] = setting_problems(
        _profile(tmp_path, instance_count=5, min_instances=1, max_instances=3)
    )
    assert out_of_range.setting == "instance_count"


def test_plan_states_the_cost_and_when_billing_stops(tmp_path: Path) -> None:
    from targets import get_target

    profile = _profile(tmp_path, instance_type="ml.m5.large", min_instances=1, max_instances=4)
    items = get_target("sagemaker").plan(profile, None)
    [endpoint] = [i for i in items if i.kind == "endpoint"]
    assert endpoint.cost is not None and endpoint.cost.per_hour == 0.115
    assert endpoint.cost.line().startswith("$0.115 per hour (1 × ml.m5.large)")
    assert "billing stops at `modelship teardown iris`" in endpoint.detail
    [scaling] = [i for i in items if i.kind == "autoscaling"]
    assert "1-4 instances" in scaling.detail
    assert str(scaling.cost) == "up to $0.46 per hour at 4 instances"
    assert any(i.kind == "IAM role" for i in items)
