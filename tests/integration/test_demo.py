"""The README's run command, as a user runs it: `modelship demo` in a fresh home."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_modelship_demo_deploys_the_sample_locally_and_smoke_tests_it(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("modelship")
    env = {**os.environ, "MODELSHIP_HOME": str(tmp_path / "home")}
    port = _free_port()

    def modelship(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, timeout=300
        )

    run = modelship("demo", "--port", str(port), "--json")
    try:
        assert run.returncode == 0, run.stderr
        record = json.loads(run.stdout)
        assert record["name"] == "demo" and record["target"] == "local"
        assert record["smoke"]["passed"] is True
        version = record["versions"][0]
        # the proof ran on the bundled CSV's 300 rows, and all agreed
        assert "300 of 300 rows" in version["conversion"]
        proof = json.loads(Path(version["model_path"]).with_suffix(".proof.json").read_text())
        assert proof["class_labels"] == ["no", "yes"] and len(proof["rows"]) == 20
        assert Path(version["model_path"]).is_relative_to(tmp_path / "home")
        assert "==> Smoke-testing the endpoint" in run.stderr

        body = json.dumps(proof["rows"][:1]).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["predictions"] == proof["predictions"][:1]

        # re-runnable from the saved profile: same name, replaced in place
        again = modelship("deploy", "demo", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["smoke"]["passed"] is True
    finally:
        torn = modelship("teardown", "demo")
    assert torn.returncode == 0, torn.stderr
    with pytest.raises(ConnectionRefusedError):  # nothing is left listening
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
