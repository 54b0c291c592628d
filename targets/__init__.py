"""Deployment targets: one package per kind, listed explicitly in :mod:`targets.catalog`.

``targets.base`` is the protocol (v2) every target implements; ``targets.settings`` the
base of their settings. Importing this package loads only the catalog (settings
classes, no SDK); a target's implementation is imported when it is used.
"""

from __future__ import annotations

from targets.catalog import CATALOG, Kind, get_kind, get_target

__all__ = ["CATALOG", "Kind", "get_kind", "get_target"]
