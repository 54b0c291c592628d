"""The thin layer over openstacksdk: connect, translate errors, import credentials.

openstacksdk is imported here and nowhere else (lazily: profiles validate and the
wizard draws its form without it). ``connect`` reads credentials exactly as the
``openstack`` command line does (clouds.yaml, secure.yaml, ``OS_CLIENT_CONFIG_FILE``,
``OS_*`` variables), so a bwCloud user's download works unchanged. Every SDK and
keystoneauth error that reaches the user goes through :func:`translate` first: a
401 says which credentials to fix, a quota error says which quota, a connection
error names the address that did not answer.

``import_credentials`` takes a downloaded clouds.yaml or openrc file, moves its
secret (password or application-credential secret) into the keyring and writes a
clouds.yaml entry without it; the secret reaches openstacksdk at connect time as an
``auth`` override, so no file on disk ever holds it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import CredentialError, TargetError
from app.nextstep import run_command, say, see_details

# Keyring entry naming: modelship/openstack/<cloud>/<field>
SECRET_FIELDS = ("password", "application_credential_secret")
# openrc variables that belong to the clouds.yaml entry, not to its ``auth`` section
ENTRY_FIELDS = {"region_name", "interface", "identity_api_version", "auth_type", "cacert"}


class CloudUnavailable(TargetError):
    """The cloud did not answer or failed on its side (connection error, HTTP 5xx):
    worth retrying inside a wait, unlike a refusal."""


def cloud_secret_name(cloud: str, field: str) -> str:
    """The keyring entry that holds a cloud's secret (imported by ``import_credentials``)."""
    safe = re.sub(r"[^A-Za-z0-9_.:@-]", "_", cloud)[:60] or "cloud"
    return f"openstack/{safe}/{field}"


def _stored_secret_overrides(cloud: str) -> dict[str, str]:
    """Secrets an earlier import moved into the keyring, as ``auth`` overrides."""
    from app.store.secrets import get_secret

    out: dict[str, str] = {}
    for field in SECRET_FIELDS:
        with contextlib.suppress(CredentialError):
            out[field] = get_secret(cloud_secret_name(cloud, field))
    return out


def connect(cloud: str, region: str | None = None) -> Any:
    """An ``openstack.connection.Connection`` for a clouds.yaml entry (or OS_* variables).

    Raises CredentialError/TargetError with next steps; never returns a half-made
    connection. Authentication happens here (``authorize``), so a wrong password is
    reported now, not at the first resource call.
    """
    try:
        import openstack
        import openstack.config
    except ImportError as exc:  # pragma: no cover - a broken install or bundle
        raise TargetError(
            "The OpenStack library (openstacksdk) is not installed.",
            "Install ModelShip with its OpenStack support (pip install openstacksdk).",
        ) from exc
    kwargs: dict[str, Any] = {"cloud": cloud, "load_yaml_config": True, "load_envvars": True}
    if region:
        kwargs["region_name"] = region
    overrides = _stored_secret_overrides(cloud)
    if overrides:
        kwargs["auth"] = overrides
    try:
        conn = openstack.connect(**kwargs)
        conn.authorize()
    except Exception as exc:
        raise translate(exc, f"connecting to cloud {cloud!r}", cloud=cloud) from exc
    return conn


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "http_status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    if response is not None and isinstance(getattr(response, "status_code", None), int):
        return int(response.status_code)
    # authorize() wraps keystoneauth's errors in a bare SDKException: "... (HTTP 401)"
    m = re.search(r"\(HTTP (\d{3})\)", str(exc))
    if m:
        return int(m.group(1))
    cause = exc.__cause__ or exc.__context__
    return _status(cause) if cause is not None and cause is not exc else None


def translate(exc: BaseException, doing: str, cloud: str | None = None) -> Exception:
    """A ModelShip error (with a next step) for an SDK or keystoneauth exception."""
    from app.errors import ModelShipError

    if isinstance(exc, ModelShipError):
        return exc
    text = str(getattr(exc, "details", None) or exc).strip() or type(exc).__name__
    name = type(exc).__name__
    status = _status(exc)
    where = f" (cloud {cloud!r})" if cloud else ""
    if name == "ConfigException" or ("Cloud" in text and "was not found" in text):
        return CredentialError(
            f"OpenStack could not find the cloud{where}: {text}",
            "Download clouds.yaml from your cloud's dashboard (bwCloud: Project > API "
            "Access > Download OpenStack RC File > clouds.yaml), put it in "
            "~/.config/openstack/ (or point OS_CLIENT_CONFIG_FILE at it), and set the "
            "Cloud setting to its entry name.",
        )
    if status == 401 or name in {"Unauthorized", "MissingAuthPlugin", "MissingRequiredOptions"}:
        return CredentialError(
            f"OpenStack refused the credentials{where}: {text}",
            "Check the password or application credential (they expire); make a new "
            "application credential in the dashboard (Identity > Application Credentials) "
            "and import the new clouds.yaml.",
        )
    if status in (403, 413) and re.search(r"quota|exceed|limit", text, re.I):
        return TargetError(
            f"Over quota while {doing}: {text}",
            "Free something in the cloud (delete an unused server, floating IP or "
            "security group), pick a smaller flavor, or ask the cloud's support for more.",
            details=text,
        )
    if status == 403:
        return CredentialError(
            f"OpenStack does not allow {doing}{where}: {text}",
            "Your project lacks the permission: ask the cloud's support, or use another "
            "project's credentials.",
        )
    if status == 404 or name in {"NotFoundException", "ResourceNotFound"}:
        return TargetError(
            f"OpenStack could not find what was asked for while {doing}: {text}",
            "Check the names in the settings (image, flavor, network); the deploy's "
            "preflight suggests close names.",
        )
    if status == 409 or name == "ConflictException":
        return TargetError(
            f"OpenStack reported a conflict while {doing}: {text}",
            say(
                "Something of the same name exists or is still in use: wait a minute and "
                "deploy again, or ",
                run_command("teardown", "NAME", verb="run"),
                " first.",
            ),
        )
    if name in {"ConnectFailure", "ConnectionError", "ConnectTimeout", "DiscoveryFailure",
                "EndpointNotFound", "SSLError", "UnknownConnectionError"}:  # fmt: skip
        return CloudUnavailable(
            f"Could not reach the cloud while {doing}: {text}",
            "Check the network (VPN for university clouds) and the auth_url in clouds.yaml.",
        )
    if status is not None and status >= 500:
        return CloudUnavailable(
            f"The cloud failed while {doing} (HTTP {status}): {text}",
            "The cloud had a problem on its side: deploy again in a few minutes.",
            details=text,
        )
    return TargetError(
        f"OpenStack failed while {doing}: {text}",
        say("See ", see_details(), "; deploy again after fixing the cause."),
        details=f"{name}: {text}",
    )


@contextlib.contextmanager
def calls(doing: str, cloud: str | None = None) -> Iterator[None]:
    """``with calls("creating the server"):`` -- SDK errors come out translated."""
    try:
        yield
    except Exception as exc:
        from app.errors import ModelShipError

        if isinstance(exc, ModelShipError):
            raise
        raise translate(exc, doing, cloud) from exc


def is_not_found(exc: BaseException) -> bool:
    return _status(exc) == 404 or type(exc).__name__ in {"NotFoundException", "ResourceNotFound"}


def close_names(name: str, candidates: list[str]) -> str:
    """``Did you mean 'Debian 12' or 'Debian 11'?`` (or the list of what exists)."""
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.4)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(repr(c) for c in sorted(candidates)[:8])
    return f"Available: {shown}." if candidates else "There are none in this project."


# ---- importing downloaded credentials -------------------------------------------------


@dataclass
class Imported:
    """What ``import_credentials`` did: the cloud entry written and the secrets moved."""

    cloud: str
    clouds_yaml: Path
    secrets: list[str]  # keyring entry names
    region: str | None = None


def _parse_openrc(text: str) -> dict[str, str]:
    """``export OS_X=value`` lines of an openrc file (comments and prompts ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        m = re.match(r"^(OS_[A-Z_]+)=(.*)$", line)
        if not m:
            continue
        try:
            parts = shlex.split(m.group(2))
        except ValueError:
            continue
        value = parts[0] if parts else ""
        if "$" in value:  # `OS_PASSWORD=$OS_PASSWORD_INPUT` (asked at source time)
            continue
        out[m.group(1)] = value
    return out


def _entry_from_openrc(env: dict[str, str]) -> dict[str, Any]:
    auth: dict[str, Any] = {}
    entry: dict[str, Any] = {"identity_api_version": 3, "interface": "public"}
    for key, value in env.items():
        field = key[len("OS_") :].lower()
        if field in ENTRY_FIELDS:
            entry[field] = value
        else:
            auth[field] = value
    entry["auth"] = auth
    return entry


def default_clouds_yaml() -> Path:
    """Where openstacksdk looks first for the user's own clouds.yaml."""
    configured = os.environ.get("OS_CLIENT_CONFIG_FILE")
    if configured:
        return Path(configured)
    return Path.home() / ".config" / "openstack" / "clouds.yaml"


def import_credentials(
    source: Path,
    cloud: str | None = None,
    target: Path | None = None,
    secret: str | None = None,
) -> Imported:
    """Import a downloaded clouds.yaml or openrc file; its secret goes to the keyring.

    ``cloud`` names the entry to import (clouds.yaml) or to write (openrc; default
    "openstack", the name bwCloud's download uses). ``secret`` is the password an openrc
    file only asks for when sourced. The entry is written to ``target`` (default: the
    clouds.yaml openstacksdk reads) without any secret; ``connect`` adds it back from
    the keyring. Returns what was done; never prints or returns a secret.
    """
    import yaml

    from app.store.secrets import set_secret

    text = Path(source).read_text(encoding="utf-8")
    entries: dict[str, dict[str, Any]]
    if re.search(r"^\s*(export\s+)?OS_[A-Z_]+=", text, re.M):
        entry = _entry_from_openrc(_parse_openrc(text))
        entries = {cloud or "openstack": entry}
    else:
        data = yaml.safe_load(text) or {}
        entries = dict(data.get("clouds") or {})
        if not entries:
            raise CredentialError(
                f"{source} holds no clouds.",
                "Download clouds.yaml or the openrc file from the dashboard's API Access page.",
            )
    if cloud is not None and cloud in entries:
        entries = {cloud: entries[cloud]}
    elif len(entries) > 1:
        raise CredentialError(
            f"{source} holds several clouds ({', '.join(entries)}).",
            "Name the one to import.",
        )
    [(name, entry)] = list(entries.items())
    entry = dict(entry)
    auth = dict(entry.get("auth") or {})
    moved: list[str] = []
    if secret and "application_credential_id" not in auth:
        auth["password"] = secret
    for field in SECRET_FIELDS:
        value = auth.pop(field, None)
        if value:
            ref = cloud_secret_name(name, field)
            set_secret(ref, str(value))
            moved.append(ref)
    if "application_credential_id" in auth or "application_credential_name" in auth:
        entry.setdefault("auth_type", "v3applicationcredential")
    entry["auth"] = auth
    path = target or default_clouds_yaml()
    existing: dict[str, Any] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    existing.setdefault("clouds", {})[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(existing, sort_keys=False), encoding="utf-8")
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    return Imported(name, path, moved, entry.get("region_name"))


__all__ = [
    "CloudUnavailable",
    "Imported",
    "calls",
    "close_names",
    "cloud_secret_name",
    "connect",
    "import_credentials",
    "is_not_found",
    "translate",
]
