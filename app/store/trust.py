"""Decisions of the person at this computer: files, interpreters and addresses they trust.

Three things make ModelShip run code or send a credential somewhere: loading a model
file that refers to code ModelShip does not know, converting with a Python interpreter
other than its own, and talking to a service address other than the platform's own.
Each is a decision of the person at this computer, so it is kept here, in a local
store (``trust.json`` in the config folder, written atomically, readable only by its
owner), and never taken from a profile: a profile can be shared, and a shared file must
not be able to say "trust me".

* Model files are trusted by their SHA-256: the same bytes under another name are
  trusted, a changed file is not.
* An interpreter is trusted by its absolute path *and* the SHA-256 of the program: a
  program swapped in at the same path is not trusted.
* Service addresses (a Heroku ``api_url``, a registry) are trusted by their origin
  (``scheme://host[:port]``). HTTPS only; plain HTTP only to this computer (loopback).

The CLI sets them with ``modelship trust`` and ``modelship hosts``; the wizard asks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import nextstep as step
from app.errors import ModelShipError, UsageError
from app.paths import config_dir

STORE_NAME = "trust.json"
_LOCK = threading.Lock()


class UntrustedPythonError(UsageError):
    """A profile names an interpreter this computer has not been told to run."""


class UntrustedHostError(UsageError):
    """A setting names a service address that is not the platform's own and was not
    confirmed on this computer (or is plain HTTP to another computer)."""

    def __init__(
        self, message: str, hint: str, *, address: str, setting: str, confirmable: bool = True
    ) -> None:
        super().__init__(message, hint)
        self.address = address
        self.setting = setting
        # False: no confirmation helps (plain HTTP to another computer, not an address)
        self.confirmable = confirmable


# ---- the store ------------------------------------------------------------------------


def store_path() -> Path:
    return config_dir() / STORE_NAME


def _empty() -> dict[str, Any]:
    return {"version": 1, "models": {}, "pythons": {}, "hosts": {}}


def _load() -> dict[str, Any]:
    path = store_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except OSError as exc:
        raise ModelShipError(
            f"Cannot read ModelShip's trust settings {path}: {exc.strerror}.",
            "Check the file's permissions.",
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ModelShipError(
            f"ModelShip's trust settings {path} are damaged (not JSON).",
            "Delete the file (you will be asked again what to trust).",
        ) from None
    out = _empty()
    if isinstance(data, dict):
        for key in ("models", "pythons", "hosts"):
            if isinstance(data.get(key), dict):
                out[key] = data[key]
    return out


def _save(data: dict[str, Any]) -> None:
    """Atomically, readable by the owner only (0600)."""
    path = store_path()
    fd, tmp = tempfile.mkstemp(prefix=".trust-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _update(change: Callable[[dict[str, Any]], Any]) -> Any:
    with _LOCK:
        data = _load()
        result = change(data)
        _save(data)
        return result


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- model files ----------------------------------------------------------------------


def model_trusted(sha256: str) -> bool:
    return sha256 in _load()["models"]


def file_trusted(path: str | Path) -> bool:
    """Is this exact file (its content) trusted on this computer?"""
    from app.hashing import sha256_file

    try:
        return model_trusted(sha256_file(path))
    except (OSError, ModelShipError):  # unreadable, not a regular file: inspect says why
        return False


def trust_model(path: str | Path, sha256: str | None = None) -> str:
    """Trust this file's content; its SHA-256."""
    from app.hashing import sha256_file

    digest = sha256 or sha256_file(path)
    entry = {"name": Path(path).name, "added": _now()}
    _update(lambda d: d["models"].__setitem__(digest, entry))
    return digest


def forget_model(path_or_sha256: str | Path) -> bool:
    text = str(path_or_sha256)
    if re.fullmatch(r"[0-9a-f]{64}", text):
        digest = text
    else:
        from app.hashing import sha256_file

        digest = sha256_file(path_or_sha256)
    return bool(_update(lambda d: d["models"].pop(digest, None) is not None))


def trusted_models() -> dict[str, dict[str, Any]]:
    return dict(_load()["models"])


# ---- Python interpreters --------------------------------------------------------------


def python_path(python: str) -> Path | None:
    """The interpreter's absolute path (a name is looked up on PATH); None if none.

    Symbolic links are kept: a virtual environment's ``bin/python`` is a link to the
    system's, and it is the environment that is chosen."""
    text = os.path.expanduser(python)
    if "/" not in text and "\\" not in text:
        found = shutil.which(text)
        return Path(os.path.abspath(found)) if found else None
    path = Path(os.path.abspath(text))
    return path if path.is_file() else None


def _program_sha256(path: Path) -> str:
    from app.hashing import sha256_file

    return sha256_file(path)


def python_trusted(python: str) -> bool:
    path = python_path(python)
    if path is None:
        return False
    entry = _load()["pythons"].get(str(path))
    if not isinstance(entry, dict):
        return False
    try:
        return entry.get("sha256") == _program_sha256(path)
    except OSError:
        return False


def trust_python(python: str) -> Path:
    """Trust this interpreter (its path and its program's hash); its absolute path."""
    path = python_path(python)
    if path is None:
        raise UsageError(
            f"The Python interpreter {python} was not found.",
            "Give the full path to python in the environment the model was made in, "
            "e.g. ~/envs/train/bin/python.",
        )
    entry = {"sha256": _program_sha256(path), "added": _now()}
    _update(lambda d: d["pythons"].__setitem__(str(path), entry))
    return path


def forget_python(python: str) -> bool:
    key = str(python_path(python) or Path(os.path.abspath(os.path.expanduser(python))))
    return bool(_update(lambda d: d["pythons"].pop(key, None) is not None))


def trusted_pythons() -> dict[str, dict[str, Any]]:
    return dict(_load()["pythons"])


def require_python(python: str | None) -> None:
    """Refuse a profile's interpreter unless it is trusted here (by path and hash)."""
    if not python:
        return
    path = python_path(python)
    if path is None:
        raise UntrustedPythonError(
            f"The profile asks to convert with the Python interpreter {python}, which was "
            "not found.",
            step.say(
                "Give the full path to python in the environment the model was made in ",
                step.use_python("with"),
                ", or remove 'python' from the profile.",
            ),
        )
    if python_trusted(python):
        return
    raise UntrustedPythonError(
        f"The profile asks to convert with the Python interpreter {path}, which you have "
        "not confirmed on this computer (a profile can come from someone else, and "
        "ModelShip would run that program).",
        step.say("If it is your own environment's python, ", step.trust_python(str(path)), "."),
    )


# ---- service addresses ----------------------------------------------------------------


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin(address: str) -> str:
    """``scheme://host[:port]`` of an address, lower case, default port left out.

    A bare ``host[:port]`` (a registry setting) is HTTPS, except on this computer
    (loopback), where registries speak plain HTTP, as the Docker Engine allows."""
    text = address.strip()
    if "://" not in text:
        host = text.split("/", 1)[0]
        name = urllib.parse.urlsplit(f"//{host}").hostname or ""
        text = f"{'http' if is_loopback(name) else 'https'}://{host}"
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        host, port = "", None
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise UsageError(
            f"{address!r} is not a service address.",
            "Give an address such as https://api.example.com or registry.example.com:5000.",
        )
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _plain_http_elsewhere(normal: str) -> bool:
    parts = urllib.parse.urlsplit(normal)
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def allow_host(address: str) -> str:
    """Confirm an address on this computer; its origin. Plain HTTP is refused unless it
    stays on this computer."""
    normal = origin(address)
    if _plain_http_elsewhere(normal):
        raise UsageError(
            f"{normal} is plain HTTP to another computer: keys sent there can be read on the way.",
            step.say(step.allow_host(normal.replace("http://", "https://", 1), form="https")),
        )
    entry = {"added": _now()}
    _update(lambda d: d["hosts"].__setitem__(normal, entry))
    return normal


def remove_host(address: str) -> bool:
    normal = origin(address)
    return bool(_update(lambda d: d["hosts"].pop(normal, None) is not None))


def allowed_hosts() -> list[str]:
    return sorted(_load()["hosts"])


def host_confirmed(address: str) -> bool:
    try:
        normal = origin(address)
    except UsageError:
        return False
    return normal in _load()["hosts"] and not _plain_http_elsewhere(normal)


def host_allowed(address: str, documented: Callable[[str], bool] | Iterable[str]) -> bool:
    """The platform's documented address (HTTPS), or one confirmed here."""
    try:
        normal = origin(address)
    except UsageError:
        return False
    if _is_documented(normal, documented):
        return True
    return host_confirmed(address)


def _is_documented(normal: str, documented: Callable[[str], bool] | Iterable[str]) -> bool:
    if not normal.startswith("https://"):
        return False
    if callable(documented):
        return bool(documented(normal))
    return normal in {origin(d) for d in documented}


def require_host(
    address: str,
    *,
    setting: str,
    service: str,
    sends: str,
    documented: Callable[[str], bool] | Iterable[str],
) -> None:
    """Refuse, before any traffic, an address that is neither the platform's own nor
    confirmed here. ``service`` names what it should be ("Heroku's Platform API"),
    ``sends`` what would go there ("your Heroku API key")."""
    try:
        normal = origin(address)
    except UsageError:
        raise UntrustedHostError(
            f"The {setting} setting {address!r} is not a service address.",
            f"Correct the {setting} setting (or leave it empty for {service}'s own).",
            address=address,
            setting=setting,
            confirmable=False,
        ) from None
    if _is_documented(normal, documented):
        return
    if _plain_http_elsewhere(normal):
        raise UntrustedHostError(
            f"The {setting} setting {address} is plain HTTP to another computer: "
            f"{sends} would travel readable by anyone on the way.",
            f"Use the service's https:// address in {setting}.",
            address=address,
            setting=setting,
            confirmable=False,
        )
    if normal in _load()["hosts"]:
        return
    raise UntrustedHostError(
        f"The {setting} setting {address} is not {service}'s own address, and you have "
        f"not confirmed it on this computer: ModelShip would send {sends} there.",
        step.say(
            "If you run that service or trust it, ",
            step.allow_host(normal),
            f"; otherwise correct {setting}.",
        ),
        address=address,
        setting=setting,
    )


__all__ = [
    "STORE_NAME",
    "UntrustedHostError",
    "UntrustedPythonError",
    "allow_host",
    "allowed_hosts",
    "file_trusted",
    "forget_model",
    "forget_python",
    "host_allowed",
    "host_confirmed",
    "is_loopback",
    "model_trusted",
    "origin",
    "python_path",
    "python_trusted",
    "remove_host",
    "require_host",
    "require_python",
    "store_path",
    "trust_model",
    "trust_python",
    "trusted_models",
    "trusted_pythons",
]
