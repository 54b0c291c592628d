"""Conformance harness: the local target (a real server process on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conformance.harnesses.base import Harness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leftovers(name: str) -> list[str]:
    from app.run import versions_dir
    from targets.local.target import run_dir

    out = []
    folder = str(versions_dir(name))
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(folder in part for part in cmd):
            out.append(f"process {proc.info['pid']}: {' '.join(cmd)[:120]}")
    if versions_dir(name).exists():
        out.append(f"folder {versions_dir(name)}")
    if run_dir(name).exists():
        out.append(f"folder {run_dir(name)}")
    return out


@pytest.fixture
def harness_local() -> Iterator[Harness]:
    from app.store.profile import new_profile

    def profile(model: Path, name: str):
        return new_profile(model, name=name, target="local", settings={"port": _free_port()})

    yield Harness(kind="local", profile=profile, leftovers=_leftovers, timeout=120)
