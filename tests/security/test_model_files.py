"""inspect and convert read regular files only, up to a size limit, without slurping them
(issue 19, item 7): a FIFO, a device or a socket gets a plain message at once, a file
over the limit is refused before it is read, and a large file that is not a model is
told apart by its first bytes.

Each command runs in a child process with a timeout: before this, ``inspect`` on a FIFO
blocked forever.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.model.files import max_model_bytes
from tests.unit import mlflow_models

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and sparse files: POSIX")


def modelship(*args: str, env: dict | None = None, timeout: float = 60) -> tuple[int, str, float]:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - t0


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_a_fifo_is_refused_at_once(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    code, text, _ = modelship(command, str(fifo))
    assert code == 3, text
    assert "model.pkl is a named pipe (FIFO), not a file ModelShip can read" in text
    assert "next step: Give the model file itself" in text and "Traceback" not in text


def test_devices_sockets_and_links_to_them_are_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.joblib"
    link.symlink_to("/dev/zero")
    code, text, _ = modelship("inspect", str(link))
    assert code == 3 and "zero.joblib is a device" in text, text
    sock_path = tmp_path / "model.onnx"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        code, text, _ = modelship("inspect", str(sock_path))
    finally:
        sock.close()
    assert code == 3 and "model.onnx is a socket" in text, text


def test_a_fifo_inside_an_mlflow_folder_is_refused(tmp_path: Path) -> None:
    folder = mlflow_models.mlflow_xgboost(tmp_path / "mlflow")
    model = next(p for p in folder.iterdir() if p.name.startswith("model."))
    model.unlink()
    os.mkfifo(model)
    code, text, _ = modelship("inspect", str(folder))
    assert code == 3 and "is a named pipe (FIFO)" in text, text


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path, command: str) -> None:
    big = tmp_path / "huge.joblib"
    with open(big, "wb") as fh:  # sparse: takes no disk space
        fh.truncate(max_model_bytes() + 1)
    code, text, took = modelship(command, str(big))
    assert code == 3, text
    assert "huge.joblib is 4.0 GiB, larger than the 4.0 GiB ModelShip reads as a model" in text
    assert "MODELSHIP_MAX_MODEL_GB" in text and took < 30
    # the limit can be set: a small one refuses a small file too
    small = tmp_path / "small.pkl"
    small.write_bytes(b"\x80\x04" + b"\x00" * (2 << 20))
    code, text, _ = modelship(command, str(small), env={"MODELSHIP_MAX_MODEL_GB": "0.001"})
    assert code == 3 and "small.pkl is 2.0 MiB, larger than the 1.0 MiB" in text, text


def test_a_large_file_that_is_no_model_is_not_read_whole(tmp_path: Path) -> None:
    """2 GiB (sparse) of something else: told apart by its first bytes, in seconds, with
    far less memory than the file's size."""
    junk = tmp_path / "export.bin"
    with open(junk, "wb") as fh:
        fh.write(b"id,age,income\n1,2,3\n4,5,6\n")
        fh.truncate(2 << 30)
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "inspect", str(junk)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - t0
    text = done.stdout + done.stderr
    assert done.returncode == 3 and "export.bin is not a model file" in text, text
    assert "CSV" in text and took < 30
    # its peak memory (KiB on Linux) stays far below the 2 GiB a whole read would take
    peak_kib = int(text.rsplit("PEAK-KIB ", 1)[1].split()[0])
    assert peak_kib < 1_000_000, peak_kib


# VmHWM, not getrusage's ru_maxrss: that one survives execve, so a child of a large
# pytest process (the whole suite in one) would report the parent's high-water mark.
PEAK = """
import sys
from app.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as fh:
    hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
print("PEAK-KIB", hwm, file=sys.stderr)
sys.exit(code)
"""
