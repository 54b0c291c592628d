"""schemathesis, driven by the server's own /openapi.json, finds no 500 on any route."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serving_fixtures import ServerProcess, make_classifier, make_mixed

KEY = "schemathesis-key"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    d = tmp_path_factory.mktemp("models")
    clf, _, _ = make_classifier(d)
    mixed, _, _ = make_mixed(d)
    procs = {
        "clf": ServerProcess(clf, env={"MODELSHIP_MAX_ROWS": "50"}),
        "mixed": ServerProcess(mixed, env={"MODELSHIP_API_KEY": KEY}),
    }
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["clf", "mixed"])
def test_schemathesis_finds_no_server_error(servers, which: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        exe = Path(shutil.which("schemathesis") or "schemathesis")
    s = servers[which]
    cmd = [
        str(exe),
        "run",
        f"{s.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--seed",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "10",
        "--report-dir",
        str(tmp_path),
        "--workers",
        "1",  # hypothesis is not thread-safe in describing strategies
    ]
    if which == "mixed":
        cmd += ["-H", f"Authorization: Bearer {KEY}"]
    env = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert " passed" in out and "0 passed" not in out.split("generated")[-1][:12], out[-3000:]
    assert "Internal error" not in s.output()
