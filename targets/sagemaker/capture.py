"""Captured requests on SageMaker: its own Data Capture to S3, read back as ModelShip lines.

Where the ``sagemaker`` target runs, the serving runtime in the container does not keep
captured requests (a SageMaker instance's disk is not reachable): SageMaker's *Data
Capture* does, and writes them to S3. With ``capture_rate`` above 0 the endpoint config
gets a ``DataCaptureConfig`` (:func:`data_capture_config`) that sends the sampled
requests and answers to a bucket made for the deployment (:func:`bucket_name`),
under ``capture/``. SageMaker writes JSON Lines objects there, at
``capture/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<file>.jsonl``, one line per
captured request::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv",
       "mode": "INPUT", "data": "1.0,2.0", "encoding": "CSV"},
     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
       "data": "{\\"predictions\\": [1]}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-12-06T21:30:00Z"},
     "eventVersion": "0"}

:func:`pull_lines` lists and reads those objects and turns each line into the line the
ModelShip server writes itself (``{"v": 1, "t": ..., "route": "/invocations", "n": ...,
"columns": [...], "rows": [...], "predictions": [...]}``), using the model's signature
for the column names. SageMaker bounds nothing in S3: ``capture_max_mb`` is kept by
:func:`pull_lines`, which removes the oldest objects beyond it each time it reads.
Teardown removes every captured object and the bucket ModelShip made
(:func:`delete_bucket`).

Sampling: SageMaker takes a whole percentage from 1 to 100, so ``capture_rate`` is
rounded to the nearest whole percent (0.125 -> 13 %), and any rate above 0 captures at
least 1 % (0.001 -> 1 %).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain import Resource
from targets.sagemaker.client import AWS, is_not_found, tags

BUCKET = "s3_bucket"  # the capture bucket's resource kind (targets.sagemaker.resources)

if TYPE_CHECKING:
    from app.domain import DeploymentRecord
    from app.progress import Progress
    from app.store.journal import Journal

PREFIX = "capture"  # where in the bucket SageMaker writes
CSV_TYPES = ["text/csv", "application/csv"]
JSON_TYPES = ["application/json"]
ROUTE = "/invocations"


def sampling_percentage(rate: float) -> int:
    """``capture_rate`` (0..1) as SageMaker's InitialSamplingPercentage: a whole
    percent, rounded half up, at least 1 when the rate is above 0, at most 100."""
    if rate <= 0:
        return 0
    return max(1, min(100, math.floor(rate * 100 + 0.5)))


def bucket_name(account: str, region: str, deployment: str) -> str:
    """The deployment's capture bucket: ``modelship-<name>-<hash>``.

    Bucket names are global across AWS accounts; the hash of account, region and
    deployment keeps two accounts (or regions) from wanting the same one. Lower-case
    letters, digits and hyphens, 3-63 characters, as S3 requires."""
    digest = hashlib.sha256(f"{account}/{region}/{deployment}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", deployment.lower()).strip("-")
    slug = slug[: 63 - len("modelship--") - len(digest)].strip("-")
    return f"modelship-{slug}-{digest}" if slug else f"modelship-{digest}"


def destination(bucket: str) -> str:
    return f"s3://{bucket}/{PREFIX}"


def data_capture_config(rate: float, bucket: str) -> dict[str, Any]:
    """CreateEndpointConfig's ``DataCaptureConfig``: requests and answers, JSON and CSV
    kept as text (anything else SageMaker keeps base64-encoded)."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": sampling_percentage(rate),
        "DestinationS3Uri": destination(bucket),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": list(CSV_TYPES),
            "JsonContentTypes": list(JSON_TYPES),
        },
    }


def bucket_policy_statement(bucket: str) -> dict[str, Any]:
    """What the endpoint's execution role needs for Data Capture: write into the prefix."""
    return {
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/*",
    }


# ---- the bucket ---------------------------------------------------------------------------


def ensure_bucket(
    aws: AWS,
    bucket: str,
    deployment: str,
    journal: Journal,
    progress: Progress,
    previous: Resource | None,
    base: dict[str, Any],
) -> Resource:
    """The capture bucket, created (journaled first) unless it exists.

    ``previous`` is the bucket resource an earlier version recorded: kept as it is."""
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if not (is_not_found(exc) or _code(exc) in {"404", "NoSuchBucket"}):
            with aws.errors(f"looking up the capture bucket {bucket}"):
                raise exc
    else:
        progress.update(None, f"Using the capture bucket {bucket}")
        if previous is not None and previous.id == bucket:
            return previous
        return Resource(
            BUCKET,
            bucket,
            name=f"S3 bucket {bucket} (captured requests)",
            data={**base, "prefix": PREFIX, "created": False},
        )
    resource = Resource(
        BUCKET,
        bucket,
        name=f"S3 bucket {bucket} (captured requests)",
        data={**base, "prefix": PREFIX, "created": True},
    )
    journal.record(resource)
    progress.update(None, f"Creating the S3 bucket {bucket} for captured requests")
    with aws.errors(f"creating the S3 bucket {bucket} (s3:CreateBucket)"):
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if aws.region != "us-east-1":  # S3's one region that takes no constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
        s3.create_bucket(**kwargs)
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(deployment)})
    return resource


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def delete_bucket(aws: AWS, resource: Resource) -> bool:
    """Remove the captured objects (every object when ModelShip made the bucket, else
    those under its prefix), then the bucket if ModelShip made it. False when gone."""
    s3 = aws.client("s3")
    bucket = resource.id
    created = bool(resource.data.get("created"))
    prefix = "" if created else f"{resource.data.get('prefix') or PREFIX}/"
    try:
        keys = [o["Key"] for o in _objects(s3, bucket, prefix)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 at a time
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if created:
            s3.delete_bucket(Bucket=bucket)
    except Exception as exc:
        if is_not_found(exc) or _code(exc) == "NoSuchBucket":
            return False
        with aws.errors(f"removing the capture bucket {bucket}"):
            raise exc
    return True


def _objects(s3: Any, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents") or []


# ---- reading it back --------------------------------------------------------------------


def pull_lines(record: DeploymentRecord, since: float | None = None) -> bytes:
    """The captured requests of a SageMaker deployment, as ModelShip capture lines.

    Reads every capture object of the endpoint from S3 (with the deployment's AWS
    profile and region; service addresses from botocore's standard settings), oldest
    first; with ``since``, only requests made after it (seconds since the epoch).
    Empty when capture is off or nothing was captured yet. Objects beyond the
    profile's ``capture_max_mb`` (all of them together) are removed first, oldest
    first: SageMaker itself keeps everything it writes."""
    endpoint = record.endpoint_obj()
    data = endpoint.data if endpoint is not None else {}
    uri = str(data.get("capture_uri") or "")
    if not uri.startswith("s3://"):
        return b""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    aws = AWS(data.get("aws_profile"), str(data.get("region") or ""))
    s3 = aws.client("s3")
    where = f"{prefix.strip('/')}/{data.get('endpoint_name')}/"
    columns, dtypes, label = _signature(record)
    out: list[tuple[float, bytes]] = []
    with aws.errors(f"reading captured requests from s3://{bucket}/{where}"):
        try:
            objects = sorted(
                _objects(s3, bucket, where), key=lambda o: (o["LastModified"], o["Key"])
            )
        except Exception as exc:
            if _code(exc) == "NoSuchBucket":
                return b""
            raise
        objects = _prune(s3, bucket, objects, _max_bytes(record))
        for obj in objects:
            if since is not None and obj["LastModified"].timestamp() < since - 1:
                continue  # written before `since` (S3 keeps whole seconds): all older
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for line in convert(body, columns, dtypes, label):
                if since is None or line["t"] > since:
                    out.append((line["t"], json.dumps(line, separators=(",", ":")).encode()))
    out.sort(key=lambda item: item[0])
    return b"".join(text + b"\n" for _, text in out)


def _max_bytes(record: DeploymentRecord) -> int:
    settings = (record.profile.get("target") or {}).get("settings") or {}
    try:
        mb = float(settings.get("capture_max_mb") or 50)
    except (TypeError, ValueError):
        mb = 50.0
    return int(mb * 1024 * 1024)


def _prune(
    s3: Any, bucket: str, objects: list[dict[str, Any]], max_bytes: int
) -> list[dict[str, Any]]:
    """Keep ``capture_max_mb``: SageMaker never bounds what it writes, so the oldest
    objects beyond the bound are removed here, each time ModelShip pulls. ``objects``
    are oldest first; the ones kept are returned."""
    total = sum(int(o.get("Size") or 0) for o in objects)
    drop = []
    while objects and total > max_bytes:
        oldest = objects.pop(0)
        total -= int(oldest.get("Size") or 0)
        drop.append({"Key": oldest["Key"]})
    for start in range(0, len(drop), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": drop[start : start + 1000]})
    return objects


def _signature(record: DeploymentRecord) -> tuple[list[str] | None, list[str], str | None]:
    """Column names and dtypes (None for a tensor model) and the label output's name."""
    from app.serving.signature import Signature

    version = record.version()
    if version is None:
        return None, [], None
    path = Signature.path_for(version.model_path)
    if not Path(path).is_file():
        return None, [], None
    try:
        sig = Signature.load(path)
    except (OSError, ValueError, TypeError):
        return None, [], None
    if not sig.columns:
        return None, [], sig.label_output
    return [c.name for c in sig.columns], [c.dtype for c in sig.columns], sig.label_output


def convert(
    body: bytes,
    columns: list[str] | None,
    dtypes: list[str] | None = None,
    label_output: str | None = None,
) -> list[dict[str, Any]]:
    """SageMaker capture lines (JSON Lines) -> ModelShip capture lines; lines that
    cannot be read are skipped (a capture file is never half written, but be kind)."""
    out = []
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
            line = _line(event, columns, dtypes or [], label_output)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            continue
        if line is not None:
            out.append(line)
    return out


def _line(
    event: dict[str, Any], columns: list[str] | None, dtypes: list[str], label: str | None
) -> dict[str, Any] | None:
    capture = event["captureData"]
    t = _time(event["eventMetadata"]["inferenceTime"])
    line: dict[str, Any] = {"v": 1, "t": t, "route": ROUTE}
    given = capture.get("endpointInput")
    answer = capture.get("endpointOutput")
    rows: list[list[Any]] | None = None
    shape: list[int] | None = None
    if given is not None:
        kind, text = _payload(given)
        if kind == "csv":
            rows = _csv_rows(text, columns, dtypes)
        elif kind == "json":
            rows, shape = _json_rows(json.loads(text), columns)
    predictions: list[Any] | None = None
    if answer is not None:
        kind, text = _payload(answer)
        if kind == "json":
            predictions = _json_predictions(json.loads(text), label)
        elif kind == "csv":
            predictions = _csv_predictions(text)
    if rows is None and shape is None and predictions is None:
        return None
    if shape is not None or columns is None:
        line["n"] = shape[0] if shape else len(predictions or [])
        line["columns"] = None
        line["shape"] = shape
    else:
        line["n"] = len(rows) if rows is not None else len(predictions or [])
        line["columns"] = list(columns)
        line["rows"] = rows or []
    line["predictions"] = predictions if predictions is not None else []
    return line


def _time(text: str) -> float:
    """SageMaker's inferenceTime (ISO 8601, UTC, ``Z``) in seconds since the epoch."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _payload(part: dict[str, Any]) -> tuple[str, str]:
    """("csv" | "json" | "other", text) of one side of a captured request."""
    encoding = str(part.get("encoding") or "").upper()
    data = str(part.get("data") or "")
    ctype = str(part.get("observedContentType") or "").split(";")[0].strip().lower()
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    if encoding == "CSV" or (encoding == "BASE64" and ctype in CSV_TYPES):
        return "csv", data
    if encoding == "JSON" or (
        encoding == "BASE64" and (ctype in {"", *JSON_TYPES} or ctype.endswith("+json"))
    ):
        return "json", data
    return "other", data


def _number(text: str, dtype: str) -> Any:
    """A CSV cell as the server reads it for a column of ``dtype`` (``any``: a number
    when it looks like one, else the text); an empty cell is missing (None)."""
    cell = text.strip()
    if cell == "":
        return None
    if dtype in {"str", "object"}:
        return text
    if dtype == "bool":
        return cell.lower() in {"1", "true", "yes"}
    try:
        value = float(cell)
    except ValueError:
        return text
    if dtype.startswith("float"):
        return value
    whole = dtype.startswith(("int", "uint")) or re.fullmatch(r"[-+]?\d+", cell)
    if value.is_integer() and whole:
        return int(value)
    return value


def _csv_rows(text: str, columns: list[str] | None, dtypes: list[str]) -> list[list[Any]]:
    table = [r for r in csv.reader(io.StringIO(text)) if r]
    if not table:
        return []
    if columns is None:
        return [[_number(c, "float64") for c in r] for r in table]
    kinds = dtypes if len(dtypes) == len(columns) else ["float64"] * len(columns)
    head = [c.strip() for c in table[0]]
    if set(head) == set(columns):  # a header row: its order may differ from the model's
        order = [head.index(c) for c in columns]
        table = table[1:]
    else:
        order = list(range(len(columns)))
    return [
        [_number(r[i], kinds[j]) if i < len(r) else None for j, i in enumerate(order)]
        for r in table
    ]


def _json_rows(
    payload: Any, columns: list[str] | None
) -> tuple[list[list[Any]] | None, list[int] | None]:
    """(rows, None) for rows or records, (None, shape) for a tensor (v2) request."""
    if isinstance(payload, dict) and "inputs" in payload:
        first = (payload.get("inputs") or [{}])[0]
        return None, [int(x) for x in first.get("shape") or []]
    if isinstance(payload, dict) and "rows" in payload:
        payload = payload["rows"]
    if not isinstance(payload, list):
        return None, None
    if columns is None:
        return None, _shape(payload)
    rows = []
    for row in payload:
        if isinstance(row, dict):
            rows.append([row.get(c) for c in columns])
        else:
            rows.append(list(row))
    return rows, None


def _shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _json_predictions(payload: Any, label: str | None) -> list[Any] | None:
    if isinstance(payload, dict) and "predictions" in payload:
        return list(payload["predictions"])
    if isinstance(payload, dict) and "outputs" in payload:  # an Open Inference v2 answer
        outputs = payload.get("outputs") or []
        chosen = next((o for o in outputs if o.get("name") == label), None)
        chosen = chosen or (outputs[0] if outputs else None)
        return list(chosen.get("data") or []) if chosen else None
    if isinstance(payload, list):
        return payload
    return None


def _csv_predictions(text: str) -> list[Any]:
    table = [r for r in csv.reader(io.StringIO(text)) if r]
    if table and table[0] and table[0][0].strip() == "prediction":
        table = table[1:]
    return [_number(r[0], "any") for r in table]


__all__ = [
    "BUCKET",
    "PREFIX",
    "bucket_name",
    "convert",
    "data_capture_config",
    "delete_bucket",
    "ensure_bucket",
    "pull_lines",
    "sampling_percentage",
]
