"""What the wizard offers in the SageMaker form: AWS profiles, regions, instance types
with their price, and the cost estimate the review page shows.

Plain functions, no Qt. Profiles are read the way the AWS command line reads them
(``~/.aws/config`` and ``~/.aws/credentials``, or ``AWS_CONFIG_FILE`` and
``AWS_SHARED_CREDENTIALS_FILE``) with configparser, so listing them needs no SDK and
no network; boto3 is imported lazily (from the wizard's worker threads) for the list of
regions it knows and for the question whether a profile has usable credentials.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.cost import Cost
from targets.sagemaker import prices


def config_file() -> Path:
    return Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config").expanduser()


def credentials_file() -> Path:
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials"
    return Path(path).expanduser()


def _read(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return configparser.RawConfigParser()
    return parser


@dataclass(frozen=True)
class AwsProfile:
    name: str
    region: str | None  # from ~/.aws/config
    has_keys: bool  # access keys in ~/.aws/credentials (or the config file)
    sso: bool  # signs in through AWS SSO / IAM Identity Center


def aws_profiles() -> list[AwsProfile]:
    """The profiles of ``~/.aws`` (config and credentials), ``default`` first."""
    config = _read(config_file())
    creds = _read(credentials_file())
    found: dict[str, dict[str, str]] = {}
    for section in config.sections():
        name = section[len("profile ") :].strip() if section.startswith("profile ") else section
        if section.startswith(("sso-session ", "services ")):
            continue
        found.setdefault(name, {}).update(dict(config.items(section)))
    for section in creds.sections():
        found.setdefault(section, {}).update(dict(creds.items(section)))
    out = [
        AwsProfile(
            name,
            values.get("region") or None,
            bool(values.get("aws_access_key_id") and values.get("aws_secret_access_key"))
            or "credential_process" in values
            or "role_arn" in values,
            "sso_start_url" in values or "sso_session" in values,
        )
        for name, values in found.items()
    ]
    return sorted(out, key=lambda p: (p.name != "default", p.name))


def keyring_key_names(profile: str | None) -> tuple[str, str]:
    """Keyring entries of an access key the wizard stored for ``profile``."""
    name = profile or "default"
    return f"aws/{name}/access_key_id", f"aws/{name}/secret_access_key"


def keyring_keys(profile: str | None) -> tuple[str, str] | None:
    """An access key stored in the keyring for ``profile`` (the wizard's "Set one up"),
    used only when ``~/.aws`` has no profile of that name: files set up with the AWS
    tools always win."""
    from app.errors import CredentialError
    from app.store.secrets import get_secret, has_secret

    names = keyring_key_names(profile)
    try:
        if not all(has_secret(n) for n in names):
            return None
        if any(p.name == (profile or "default") for p in aws_profiles()):
            return None
        return get_secret(names[0]), get_secret(names[1])
    except CredentialError:  # no keyring at all: boto3's own chain decides
        return None


def env_credentials() -> bool:
    """Credentials in the environment (``AWS_ACCESS_KEY_ID``...), as boto3 uses them."""
    return bool(os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))


def credentials_found(profile: str | None = None) -> bool:
    """Whether boto3 finds credentials for ``profile`` (None: its default chain) without
    asking AWS (no instance metadata either: that is for servers, not analysts' PCs)."""
    import boto3
    import botocore.exceptions

    old = os.environ.get("AWS_EC2_METADATA_DISABLED")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        session = boto3.session.Session(profile_name=profile or None)
        return session.get_credentials() is not None
    except botocore.exceptions.BotoCoreError:
        return False
    finally:
        if old is None:
            os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
        else:
            os.environ["AWS_EC2_METADATA_DISABLED"] = old


def credentials_state() -> tuple[bool, str]:
    """(credentials found, words), without asking AWS: reads the two small files."""
    profiles = aws_profiles()
    if keyring_keys(None) is not None and not profiles:
        return True, "Using the AWS access key kept in your system keyring."
    if profiles:
        names = ", ".join(p.name for p in profiles)
        return True, f"AWS profiles found on this computer: {names}."
    if env_credentials():
        return True, "Using the AWS access key set in this session's environment."
    return False, "No AWS profile found on this computer."


REGION_NAMES = {
    "us-east-1": "N. Virginia",
    "us-east-2": "Ohio",
    "us-west-1": "N. California",
    "us-west-2": "Oregon",
    "eu-central-1": "Frankfurt",
    "eu-central-2": "Zurich",
    "eu-west-1": "Ireland",
    "eu-west-2": "London",
    "eu-west-3": "Paris",
    "eu-north-1": "Stockholm",
    "eu-south-1": "Milan",
    "ap-northeast-1": "Tokyo",
    "ap-southeast-1": "Singapore",
    "ap-southeast-2": "Sydney",
    "ap-south-1": "Mumbai",
    "ca-central-1": "Canada",
    "sa-east-1": "São Paulo",
}


_regions: list[tuple[str, str]] | None = None  # botocore's list, once read


def regions() -> list[tuple[str, str]]:
    """(region, label) of the regions SageMaker runs in, from botocore's own data
    (no call): "eu-central-1 (Frankfurt)". Importing boto3 takes a noticeable moment:
    the wizard asks this from a worker thread and shows :func:`known_regions` until
    then."""
    global _regions
    if _regions is None:
        try:
            import boto3

            names = boto3.session.Session().get_available_regions("sagemaker")
        except Exception:  # botocore's data missing: the regions we know
            names = list(REGION_NAMES)
        _regions = _labelled(names or list(REGION_NAMES))
    return list(_regions)


def known_regions() -> list[tuple[str, str]]:
    """:func:`regions` if already read, else the regions named here, without boto3."""
    return list(_regions) if _regions is not None else _labelled(list(REGION_NAMES))


def _labelled(names: list[str]) -> list[tuple[str, str]]:
    names = sorted(names, key=lambda r: (not r.startswith("eu-"), r))
    return [(r, f"{r} ({REGION_NAMES[r]})" if r in REGION_NAMES else r) for r in names]


def instance_types() -> list[tuple[str, str]]:
    """(instance type, label with its price per hour), cheapest first."""
    out = []
    for t in sorted(prices.INSTANCE_TYPES.values(), key=lambda t: (t.usd_per_hour, t.name)):
        extra = ", GPU" if t.gpu else (", ARM" if t.arch == "arm64" else "")
        out.append(
            (
                t.name,
                f"{t.name}: ${t.usd_per_hour:.2f} per hour ({t.vcpus} CPU, "
                f"{t.memory_gib:g} GB{extra})",
            )
        )
    return out


def estimate(settings: Any) -> Cost:
    """The cost of a SageMaker deployment with ``settings`` (a SageMakerSettings)."""
    note = prices.table_note(settings.region)
    if settings.mode == "serverless":
        return Cost(
            None,
            None,
            "Billed per request: " + prices.serverless_cost(settings.memory_mb).line() + ".",
            note,
        )
    count = max(settings.instance_count, settings.min_instances)
    hourly = prices.hourly(settings.instance_type, count)
    if hourly is None:
        return Cost(
            None, None, prices.realtime_cost(settings.instance_type, count).line() + ".", note
        )
    words = (
        f"${hourly:.2f} per hour, about ${hourly * 24 * 30:,.0f} per month "
        f"({count} × {settings.instance_type}) while it runs"
    )
    detail = f"{count} × {settings.instance_type} while it runs"
    if settings.max_instances > count:
        top = prices.hourly(settings.instance_type, settings.max_instances) or hourly
        more = f"; up to ${top:.2f} per hour when it scales to {settings.max_instances}"
        words += more
        detail += more
    return Cost(hourly, hourly * 24 * 30, words + ".", note, detail + ".")


__all__ = [
    "AwsProfile",
    "Cost",
    "aws_profiles",
    "config_file",
    "credentials_file",
    "credentials_found",
    "credentials_state",
    "env_credentials",
    "estimate",
    "instance_types",
    "keyring_key_names",
    "keyring_keys",
    "known_regions",
    "regions",
]
