"""What SageMaker charges while an endpoint runs, from a small table shipped with ModelShip.

The plan states the cost *before* anything is created and ``status`` repeats it, so
nobody is surprised by an endpoint left billing. The table is dated and for one region
(us-east-1, on-demand, real-time inference); other regions cost somewhat more or less,
and the plan says so. It is also the list of instance types ModelShip offers: the CPU
architecture decides the image platform (Graviton types need linux/arm64).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from targets.cost import Cost

HOURS_PER_MONTH = 720  # the month the monthly figures use (30 days)

PRICES_DATE = "2024-11-01"
PRICES_REGION = "us-east-1"
PRICES_SOURCE = "https://aws.amazon.com/sagemaker/pricing/"


@dataclass(frozen=True)
class InstanceType:
    name: str
    usd_per_hour: float
    vcpus: int
    memory_gib: float
    arch: Literal["x86_64", "arm64"] = "x86_64"
    gpu: bool = False


_TABLE = [
    # burstable and general purpose (x86_64)
    InstanceType("ml.t2.medium", 0.056, 2, 4),
    InstanceType("ml.t2.large", 0.111, 2, 8),
    InstanceType("ml.t2.xlarge", 0.223, 4, 16),
    InstanceType("ml.m5.large", 0.115, 2, 8),
    InstanceType("ml.m5.xlarge", 0.230, 4, 16),
    InstanceType("ml.m5.2xlarge", 0.461, 8, 32),
    InstanceType("ml.m5.4xlarge", 0.922, 16, 64),
    InstanceType("ml.c5.large", 0.102, 2, 4),
    InstanceType("ml.c5.xlarge", 0.204, 4, 8),
    InstanceType("ml.c5.2xlarge", 0.408, 8, 16),
    InstanceType("ml.c5.4xlarge", 0.816, 16, 32),
    InstanceType("ml.r5.large", 0.151, 2, 16),
    InstanceType("ml.r5.xlarge", 0.302, 4, 32),
    # Graviton (arm64): the image is built for linux/arm64
    InstanceType("ml.c6g.large", 0.082, 2, 4, "arm64"),
    InstanceType("ml.c6g.xlarge", 0.163, 4, 8, "arm64"),
    InstanceType("ml.c6g.2xlarge", 0.326, 8, 16, "arm64"),
    InstanceType("ml.m6g.large", 0.092, 2, 8, "arm64"),
    InstanceType("ml.m6g.xlarge", 0.185, 4, 16, "arm64"),
    InstanceType("ml.r6g.large", 0.121, 2, 16, "arm64"),
    InstanceType("ml.c7g.large", 0.087, 2, 4, "arm64"),
    InstanceType("ml.c7g.xlarge", 0.174, 4, 8, "arm64"),
    InstanceType("ml.m7g.large", 0.098, 2, 8, "arm64"),
    # GPU (x86_64); ONNX Runtime on CPU still runs there, at a GPU's price
    InstanceType("ml.g4dn.xlarge", 0.736, 4, 16, gpu=True),
    InstanceType("ml.g5.xlarge", 1.408, 4, 16, gpu=True),
]
INSTANCE_TYPES: dict[str, InstanceType] = {t.name: t for t in _TABLE}

# Serverless inference: billed per GB-second of compute while requests run, plus data
# processed in and out; nothing while idle.
SERVERLESS_USD_PER_GB_SECOND = 0.00002
SERVERLESS_USD_PER_GB_DATA = 0.016
ECR_USD_PER_GB_MONTH = 0.10
# S3 Standard storage (the first 50 TB a month), where Data Capture writes, plus a
# PUT request per object SageMaker writes.
S3_USD_PER_GB_MONTH = 0.023
S3_USD_PER_1000_PUTS = 0.005

_GRAVITON = re.compile(r"^ml\.[a-z]+\d+g[a-z]*\.")


def is_graviton(instance_type: str) -> bool:
    """Graviton instance types (c6g, m7g, r6gd...) need an arm64 image; g4dn/g5 are GPUs."""
    known = INSTANCE_TYPES.get(instance_type)
    if known is not None:
        return known.arch == "arm64"
    return bool(_GRAVITON.match(instance_type))


def hourly(instance_type: str, count: int) -> float | None:
    known = INSTANCE_TYPES.get(instance_type)
    return None if known is None else known.usd_per_hour * count


def realtime_cost(instance_type: str, count: int, hours: float | None = None) -> Cost:
    """ "$0.056 per hour (1 × ml.t2.medium), about $40 per month while it runs"; with
    ``hours`` (since deploy), also what it has cost in that time."""
    per_hour = hourly(instance_type, count)
    if per_hour is None:
        return Cost.said(
            f"{count} × {instance_type}: price not in ModelShip's table (see {PRICES_SOURCE})"
        )
    return Cost(
        per_hour,
        per_hour * HOURS_PER_MONTH,
        f"{count} × {instance_type} while it runs",
        detail=f"{count} × {instance_type}",
        when="while it runs",
        spent=None if hours is None else per_hour * hours,
        since="since deploy",
    )


def serverless_cost(memory_mb: int) -> Cost:
    """Billed per second of request processing: words, no hourly figure."""
    gb = memory_mb / 1024
    per_second = SERVERLESS_USD_PER_GB_SECOND * gb
    return Cost.said(
        f"${per_second:.6f} per second of request processing ({memory_mb} MB), plus "
        f"${SERVERLESS_USD_PER_GB_DATA} per GB of data in and out; nothing while idle"
    )


def table_note(region: str) -> str:
    note = f"prices from ModelShip's table of {PRICES_DATE} for {PRICES_REGION}"
    if region != PRICES_REGION:
        note += f"; {region} differs somewhat (see {PRICES_SOURCE})"
    return note


__all__ = [
    "INSTANCE_TYPES",
    "PRICES_DATE",
    "InstanceType",
    "hourly",
    "is_graviton",
    "realtime_cost",
    "serverless_cost",
    "table_note",
]
