"""SageMaker Data Capture: the endpoint config's DataCaptureConfig, the bucket's name, and
SageMaker's capture lines turned into ModelShip's capture lines.

The SageMaker lines here are written by hand from AWS's documented format (the Model
Monitor guide's "captureData" example: JSON Lines with endpointInput/endpointOutput,
each with observedContentType, mode, data and encoding CSV, JSON or BASE64), not by the
emulator's writer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest

from targets.sagemaker.capture import (
    bucket_name,
    convert,
    data_capture_config,
    sampling_percentage,
)

COLUMNS = ["tenure_months", "plan", "age"]
DTYPES = ["int64", "str", "float64"]


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


CSV_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"12,basic,34\\n40,pro,61.5\\n","encoding":"CSV"},"endpointOutput":'
    '{"observedContentType":"text/csv; charset=utf-8","mode":"OUTPUT","data":"0\\n1\\n",'
    '"encoding":"CSV"}},"eventMetadata":{"eventId":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",'
    '"inferenceTime":"2026-12-06T17:25:49Z"},"eventVersion":"0"}'
)
JSON_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"application/json",'
    '"mode":"INPUT","data":"[{\\"age\\": 22, \\"plan\\": \\"basic\\", \\"tenure_months\\": 3}]",'
    '"encoding":"JSON"},"endpointOutput":{"observedContentType":"application/json",'
    '"mode":"OUTPUT","data":"{\\"model\\": \\"m\\", \\"predictions\\": [\\"stay\\"],'
    ' \\"probabilities\\": [{\\"leave\\": 0.2, \\"stay\\": 0.8}]}","encoding":"JSON"}},'
    '"eventMetadata":{"eventId":"4651a1bf-4b00-4248-a309-4a18b11e4277",'
    '"inferenceTime":"2026-12-06T17:26:01.250Z"},"eventVersion":"0"}'
)


def _base64_line() -> str:
    given = base64.b64encode(b"tenure_months,plan,age\n7,pro,45\n").decode()
    answer = base64.b64encode(b'{"predictions": [1]}').decode()
    return (
        '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
        f'"data":"{given}","encoding":"BASE64"}},"endpointOutput":{{"observedContentType":'
        f'"application/json","mode":"OUTPUT","data":"{answer}","encoding":"BASE64"}}}},'
        '"eventMetadata":{"eventId":"8f45e35c-fa44-40d2-8ed3-1bcab3a596f3",'
        '"inferenceTime":"2026-12-06T17:27:00Z"},"eventVersion":"0"}'
    )


def test_csv_rows_and_answers_become_modelship_lines() -> None:
    [line] = convert(CSV_LINE.encode(), COLUMNS, DTYPES)
    assert line == {
        "v": 1,
        "t": _epoch("2026-12-06T17:25:49Z"),
        "route": "/invocations",
        "n": 2,
        "columns": COLUMNS,
        "rows": [[12, "basic", 34.0], [40, "pro", 61.5]],
        "predictions": [0, 1],
    }


def test_json_records_are_put_in_the_signatures_column_order() -> None:
    [line] = convert(JSON_LINE.encode(), COLUMNS, DTYPES)
    assert line["rows"] == [[3, "basic", 22]]
    assert line["predictions"] == ["stay"]
    assert line["t"] == pytest.approx(_epoch("2026-12-06T17:26:01.250Z"))
    assert line["n"] == 1 and line["columns"] == COLUMNS


def test_base64_csv_with_a_header_in_its_own_order_is_read() -> None:
    [line] = convert(
        _base64_line().encode(), ["plan", "age", "tenure_months"], ["str", "int64", "int64"]
    )
    # the header names the columns: the values follow the model's order, not the file's
    assert line["columns"] == ["plan", "age", "tenure_months"]
    assert line["rows"] == [["pro", 45, 7]]
    assert line["predictions"] == [1]


def test_several_lines_in_one_object_and_a_broken_line_is_skipped() -> None:
    body = "\n".join([CSV_LINE, '{"captureData": {"endpointIn', JSON_LINE, ""]).encode()
    lines = convert(body, COLUMNS, DTYPES)
    assert [x["n"] for x in lines] == [2, 1]
    for x in lines:  # each converts to one JSON line with the contract's keys only
        assert set(json.loads(json.dumps(x))) == {"v", "t", "route", "n", "columns", "rows",
                                                  "predictions"}  # fmt: skip


def test_a_tensor_model_has_no_columns_but_a_shape() -> None:
    v2 = json.dumps({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32",
                                 "data": [0, 1, 2, 3, 4, 5]}]})  # fmt: skip
    out = json.dumps({"outputs": [{"name": "label", "shape": [2], "datatype": "INT64",
                                   "data": [4, 7]}]})  # fmt: skip
    event = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": v2,
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": out,
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": "x", "inferenceTime": "2026-12-06T18:00:00Z"},
        "eventVersion": "0",
    }
    [line] = convert(json.dumps(event).encode(), None, None, "label")
    assert line["columns"] is None and "rows" not in line
    assert line["shape"] == [2, 3] and line["n"] == 2 and line["predictions"] == [4, 7]


@pytest.mark.parametrize(
    ("rate", "percent"),
    [(0.0, 0), (0.001, 1), (0.004, 1), (0.1, 10), (0.125, 13), (0.29, 29), (0.5, 50), (1.0, 100)],
)
def test_the_rate_is_a_whole_percent_rounded_half_up_and_at_least_one(
    rate: float, percent: int
) -> None:
    assert sampling_percentage(rate) == percent


def test_data_capture_config_has_the_api_shape() -> None:
    config = data_capture_config(0.25, "modelship-x-0123456789")
    assert config == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": "s3://modelship-x-0123456789/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv", "application/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }
    # botocore's own model of CreateEndpointConfig accepts it
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateEndpointConfig").input_shape
    report = ParamValidator().validate(
        {
            "EndpointConfigName": "c",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
            "DataCaptureConfig": config,
        },
        shape,
    )
    assert not report.has_errors(), report.generate_report()


def test_bucket_names_are_valid_s3_names_and_differ_by_account_and_region() -> None:
    names = {
        bucket_name("123456789012", "us-east-1", "churn"),
        bucket_name("123456789012", "eu-central-1", "churn"),
        bucket_name("210987654321", "us-east-1", "churn"),
    }
    assert len(names) == 3
    long = bucket_name("123456789012", "us-east-1", "My_Very.Long--Deployment name " * 4)
    for name in [*names, long, bucket_name("1", "us-east-1", "---")]:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name), name
        assert "--" not in name
    assert bucket_name("123456789012", "us-east-1", "churn").startswith("modelship-churn-")


def test_the_role_may_write_only_into_the_capture_prefix() -> None:
    from targets.sagemaker.resources import role_policy

    plain = role_policy("us-east-1", "123456789012", "modelship/x")
    assert not [s for s in plain["Statement"] if "s3:PutObject" in s["Action"]]
    with_capture = role_policy("us-east-1", "123456789012", "modelship/x", "modelship-x-0a1b")
    [s3] = [s for s in with_capture["Statement"] if "s3:PutObject" in s["Action"]]
    assert s3 == {
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": "arn:aws:s3:::modelship-x-0a1b/capture/*",
    }


def test_serverless_with_capture_is_refused_before_anything_is_made(tmp_path) -> None:
    from targets.sagemaker.preflight import setting_problems
    from tests.conformance.harnesses.sagemaker import sagemaker_profile

    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    on = sagemaker_profile(model, "x", "base", mode="serverless", max_instances=1,
                           capture_rate=0.1)  # fmt: skip
    [problem] = [p for p in setting_problems(on) if p.setting == "capture_rate"]
    assert "serverless" in problem.message and "realtime" in str(problem.fix)
    off = sagemaker_profile(model, "x", "base", mode="serverless", max_instances=1)
    assert not [p for p in setting_problems(off) if p.setting == "capture_rate"]
    realtime = sagemaker_profile(model, "x", "base", capture_rate=0.1)
    assert not [p for p in setting_problems(realtime) if p.setting == "capture_rate"]
