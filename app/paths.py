"""Where ModelShip keeps things: profiles (config), deployment records (data), caches.

Uses platformdirs, so it is the right place on Windows, macOS and Linux. Setting
``MODELSHIP_HOME`` puts everything under one folder instead (tests, portable
installs on lab machines).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "modelship"


def _home() -> Path | None:
    value = os.environ.get("MODELSHIP_HOME")
    return Path(value) if value else None


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def config_dir() -> Path:
    """Saved profiles and settings."""
    home = _home()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP)))


def data_dir() -> Path:
    """Deployment records, journals, converted models, local-target logs."""
    home = _home()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP)))


def cache_dir() -> Path:
    """Wheelhouses and other things that can be downloaded again."""
    home = _home()
    return _ensure(home / "cache" if home else Path(platformdirs.user_cache_dir(APP)))


def profiles_dir() -> Path:
    return _ensure(config_dir() / "profiles")


def deployments_dir() -> Path:
    return _ensure(data_dir() / "deployments")
