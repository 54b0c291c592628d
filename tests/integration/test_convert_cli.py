"""The README's run command, as a user runs it: `modelship demo` in a fresh home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_modelship_demo_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("modelship")
    env = {**os.environ, "MODELSHIP_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [str(exe), "demo", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["report"]["passed"] is True and data["report"]["rows"] == 300
    assert data["report"]["labels_agreeing"] == 300
    proof = json.loads(Path(data["proof_path"]).read_text())
    assert proof["class_labels"] == ["no", "yes"] and len(proof["rows"]) == 20
    assert "==> Proving the conversion" in run.stderr
    assert Path(data["onnx_path"]).is_relative_to(tmp_path / "home")
