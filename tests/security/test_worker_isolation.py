"""The conversion worker: no code from beside the model, an explicit environment, and
(Linux) no network and a read-only file system except its job folder (issue 19, item 2).

Every planted module writes a marker when imported; converting must succeed with the
real libraries and the marker must never appear. The sandbox is tested from the inside:
a pickle the user trusts runs code in the worker that tries what an attacker would
(read the environment, connect to a listening socket, write outside the job folder).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.cli import main
from app.model.convert import ConvertOptions, convert_model, isolation_here
from app.model.convert import isolation as iso
from app.progress import RecordingProgress
from tests.conftest import IN_CI, require
from tests.unit import mlflow_models, models

SHADOWED = ["xgboost", "sklearn", "lightgbm", "numpy", "scipy", "joblib", "skl2onnx", "onnx"]
SHADOWED += ["onnxmltools", "pandas"]
FAST = ConvertOptions(generated_rows=30)


def plant(folder: Path, marker: Path) -> None:
    """A module for each library the worker imports, writing ``marker`` when imported."""
    for name in SHADOWED:
        (folder / f"{name}.py").write_text(
            f"with open({str(marker)!r}, 'a') as fh:\n    fh.write('{name} ran\\n')\n",
            encoding="utf-8",
        )


@pytest.fixture
def no_cwd_on_our_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m pytest`` puts '' (the working directory) on *this* process's path; the
    test is about the worker, so keep the test process itself from importing plants."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", os.getcwd())])


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    d = tmp_path_factory.mktemp("planted")
    marker = d / "PLANTED-CODE-RAN"
    made = {}
    for key, make, name in (
        ("xgboost-json", models.xgboost_native, "booster.json"),
        ("lightgbm-txt", models.lightgbm_native, "booster.txt"),
        ("pickle", models.sklearn_forest_regressor, "forest.pkl"),
    ):
        folder = d / key
        folder.mkdir()
        made[key] = make(folder / name)
        plant(folder, marker)
    made["mlflow-xgboost"] = mlflow_models.mlflow_xgboost(d / "mlflow-xgb")
    plant(made["mlflow-xgboost"], marker)
    return made, marker


@pytest.mark.parametrize("key", ["xgboost-json", "lightgbm-txt", "pickle", "mlflow-xgboost"])
def test_modules_beside_the_model_are_never_imported(
    planted, key: str, tmp_path: Path, no_cwd_on_our_path
) -> None:
    files, marker = planted
    result = convert_model(files[key], tmp_path / "m.onnx", FAST)
    assert result.report.passed
    assert not marker.exists(), marker.read_text()


def test_modules_in_the_working_directory_are_never_imported(
    planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_cwd_on_our_path
) -> None:
    files, _ = planted
    here = tmp_path / "cwd"
    here.mkdir()
    marker = tmp_path / "CWD-CODE-RAN"
    plant(here, marker)
    monkeypatch.chdir(here)
    for key in ("xgboost-json", "pickle"):
        result = convert_model(files[key], tmp_path / f"{key}.onnx", FAST)
        assert result.report.passed
    # also through the command line, as a user types it in that folder
    assert main(["convert", str(files["lightgbm-txt"]), "-o", str(tmp_path / "l.onnx")]) == 0
    assert not marker.exists(), marker.read_text()


def test_a_class_beside_a_torch_model_is_not_imported(tmp_path: Path, no_cwd_on_our_path) -> None:
    """A whole-module torch file whose class sits next to it in tinynet.py: that file is
    not imported (the user is told to use the training environment's Python)."""
    from app.errors import ModelError

    pytest.importorskip("torch")
    _, whole = models.torch_models(tmp_path / "torch")
    marker = tmp_path / "TINYNET-RAN"
    tinynet = whole.parent / "tinynet.py"
    tinynet.write_text(
        f"with open({str(marker)!r}, 'w') as fh:\n    fh.write('ran')\n" + tinynet.read_text()
    )
    with pytest.raises(ModelError) as err:
        convert_model(
            whole, tmp_path / "t.onnx", ConvertOptions(input_shape=[1, 3, 8, 8], trust=True)
        )
    assert "--python" in err.value.hint and "next to the model" not in err.value.hint
    assert not marker.exists()


# ---------------------------------------------------------------------------
# the sandbox, tested from inside the worker
# ---------------------------------------------------------------------------
ATTACK = """
import json, os, socket
rep = {"env": sorted(os.environ)}
rep["run"] = sorted(os.listdir("/run")) if os.path.isdir("/run") else []
try:
    socket.create_connection(("127.0.0.1", __PORT__), timeout=3).close()
    rep["net"] = "connected"
except OSError as exc:
    rep["net"] = "failed: %s" % exc
try:
    with open(__OUTSIDE__, "w") as fh:
        fh.write("written from the worker")
    rep["write"] = "written"
except OSError as exc:
    rep["write"] = "failed: %s" % exc
try:
    with open(os.path.join(os.getcwd(), "inside.txt"), "w") as fh:
        fh.write("the job folder stays writable")
    rep["write_job"] = "written"
except OSError as exc:
    rep["write_job"] = "failed: %s" % exc
print("ATTACK-REPORT " + json.dumps(rep), flush=True)
"""


class _Attack:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple:
        return (exec, (self.code,))


def _listener() -> tuple[socket.socket, list[str]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    got: list[str] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            got.append("connection")
            conn.close()

    threading.Thread(target=accept, name="isolation-listener", daemon=True).start()
    return srv, got


def test_trusted_payload_finds_no_secrets_no_network_and_no_writable_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    for name, value in {
        "HEROKU_API_KEY": "heroku-secret",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "OS_PASSWORD": "openstack-secret",
        "MODELSHIP_X": "ours",
        "PYTHONPATH": str(tmp_path),
        "GITHUB_TOKEN": "gh-secret",
    }.items():
        monkeypatch.setenv(name, value)
    srv, connections = _listener()
    outside = tmp_path / "OUTSIDE-WRITTEN"
    code = ATTACK.replace("__PORT__", str(srv.getsockname()[1])).replace(
        "__OUTSIDE__", repr(str(outside))
    )
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LinearRegression().fit(X, X @ [1.0, 2.0, 3.0])
    model.payload_ = _Attack(code)
    path = tmp_path / "trusted.pkl"
    path.write_bytes(pickle.dumps(model, protocol=4))
    progress = RecordingProgress()
    try:
        result = convert_model(
            path, tmp_path / "t.onnx", ConvertOptions(trust=True, generated_rows=20), progress
        )
    finally:
        srv.close()
    # the payload's output comes back as the worker's log (or inside a progress message)
    said = [v if isinstance(v, str) else str(v[1]) for _, v in progress.events]
    lines = [t for t in said if "ATTACK-REPORT " in t]
    assert lines, progress.events
    rep = json.loads(lines[0].split("ATTACK-REPORT ", 1)[1].strip())
    # the environment: nothing of the shell's secrets or ours
    leaked = [k for k in rep["env"] if k.startswith(("AWS_", "OS_", "HEROKU_", "MODELSHIP_"))]
    assert not leaked and "PYTHONPATH" not in rep["env"] and "GITHUB_TOKEN" not in rep["env"]
    ours = {"HOME", "TMPDIR", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONSAFEPATH"}
    # (scikit-learn sets KMP_* itself when imported, inside the worker)
    inherited = {k for k in rep["env"] if not k.startswith("KMP_")}
    assert inherited <= {*iso._PASS, *ours, "PYTHONNOUSERSITE"}
    applied = result.report.isolation_applied
    assert result.report.isolation == iso.describe(applied)
    if IN_CI or sys.platform.startswith("linux"):
        require(applied.get("network") and applied.get("read_only"), "the worker's sandbox")
        assert rep["net"].startswith("failed") and not connections
        assert rep["write"].startswith("failed") and not outside.exists()
        assert rep["write_job"] == "written"
        # the Docker Engine's and D-Bus's sockets (under /run) are out of sight
        assert applied.get("sockets_hidden") and rep["run"] == []
        assert result.report.isolation.startswith("Conversion runs isolated: no network")


def test_the_probe_tests_what_it_claims(tmp_path: Path) -> None:
    """isolation.py run on its own, from another folder: it applies, then tries for real."""
    if not sys.platform.startswith("linux"):
        rec = isolation_here()
        assert rec["network"] is False and "no sandbox" in rec["network_why"]
        return
    srv, connections = _listener()
    job = tmp_path / "job"
    job.mkdir()
    outside = tmp_path / "outside.txt"
    probe_args = [str(srv.getsockname()[1]), str(outside)]
    try:
        done = subprocess.run(
            [sys.executable, str(Path(iso.__file__)), "--probe", str(job), *probe_args],
            capture_output=True,
            env=iso.worker_env(str(job)),
            cwd=str(job),
            timeout=60,
            check=True,
        )
    finally:
        srv.close()
    rec = json.loads(done.stdout)
    require(rec["network"] and rec["read_only"], "user namespaces and Landlock")
    assert rec["connect_test"].startswith("failed") and not connections
    assert rec["write_test"].startswith("failed") and not outside.exists()
    assert isolation_here()["summary"].startswith("Conversion runs isolated")


def test_inspect_says_which_protections_apply(planted, capsys) -> None:
    files, _ = planted
    assert main(["inspect", str(files["xgboost-json"])]) == 0
    text = capsys.readouterr().out
    assert isolation_here()["summary"] in text
    assert main(["inspect", "--json", str(files["pickle"])]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["conversion_isolation"]["summary"] == isolation_here()["summary"]
    assert doc["conversion_isolation"]["needed"] is True
    if IN_CI:
        assert doc["conversion_isolation"]["network"] and doc["conversion_isolation"]["read_only"]


def test_the_environment_is_explicit() -> None:
    env = iso.worker_env(
        "/job",
        environ={
            "PATH": "/usr/bin",
            "LANG": "C.UTF-8",
            "HOME": "/home/u",
            "AWS_SECRET_ACCESS_KEY": "x",
            "HEROKU_API_KEY": "x",
            "OS_PASSWORD": "x",
            "MODELSHIP_PYTHON": "/x",
            "PYTHONPATH": "/x",
            "SSH_AUTH_SOCK": "/run/user/0/ssh",
            "_PYI_APPLICATION_HOME_DIR": "/tmp/_MEI",
        },
    )
    assert env["HOME"] == env["TMPDIR"] == "/job" and env["PATH"] == "/usr/bin"
    assert env["LANG"] == "C.UTF-8" and env["PYTHONSAFEPATH"] == "1"
    for gone in ("AWS_SECRET_ACCESS_KEY", "HEROKU_API_KEY", "OS_PASSWORD", "MODELSHIP_PYTHON"):
        assert gone not in env
    assert "PYTHONPATH" not in env and "SSH_AUTH_SOCK" not in env
    assert "_PYI_APPLICATION_HOME_DIR" not in env  # only the frozen app passes its own on
    frozen = iso.worker_env("/job", frozen=True, environ={"_PYI_APPLICATION_HOME_DIR": "/t"})
    assert frozen["_PYI_APPLICATION_HOME_DIR"] == "/t"


def test_describe_says_what_was_not_possible() -> None:
    text = iso.describe(
        {"network": False, "network_why": "user namespaces are not available", "read_only": True}
    )
    assert "network NOT blocked (user namespaces are not available)" in text
    assert "read-only files except its output" in text
    assert "partly" in text
    tcp = iso.describe({"network": False, "network_why": "x", "tcp_blocked": True})
    assert "TCP connections blocked" in tcp and "files NOT read-only" in tcp
