"""`modelship deploy|status|rollback|teardown|profiles` end to end, as a user runs them.

Each command runs as a real subprocess of the installed CLI against a real model;
the server is a real background process. Checks the exit codes, that progress goes
to stderr and results to stdout, and that nothing is left after a failure, a Ctrl-C
or a crash.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app.paths import data_dir, profiles_dir
from tests.integration.test_local_target import (  # noqa: F401 - fixtures
    assert_nothing_left,
    free_port,
    iris_model,
    serving_pids,
)

pytestmark = pytest.mark.slow


def modelship(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 120) -> list[str]:
    """Read stderr until a line containing ``text`` (the step we want to interrupt)."""
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}; got:\n{''.join(seen)}")


def test_deploy_status_redeploy_rollback_teardown(iris_model: Path) -> None:  # noqa: F811
    port = free_port()
    res = modelship("deploy", str(iris_model), "--name", "iris", "--port", str(port))
    assert res.returncode == 0, res.stderr
    # results on stdout, progress on stderr
    assert f"Deployed 'iris' (version 1) to This computer: http://127.0.0.1:{port}" in res.stdout
    assert "Smoke test: The endpoint answered" in res.stdout
    assert "==> Converting to ONNX" in res.stderr and "==> Smoke-testing" in res.stderr
    assert "==>" not in res.stdout
    # the profile was saved so the deploy can be re-run by name
    saved = profiles_dir() / "iris.toml"
    assert saved.exists() and f"port = {port}" in saved.read_text()

    status = modelship("status", "iris", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["answering"] is True and info["version"] == 1
    first_pid = info["detail"].split()[1]

    # the server outlives the command that started it
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as resp:
        assert resp.status == 200

    again = modelship("deploy", "iris", "--json")  # re-run the saved profile
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["current_version"] == 2 and record["smoke"]["passed"] is True
    info = json.loads(modelship("status", "iris", "--json").stdout)
    assert info["version"] == 2 and info["detail"].split()[1] != first_pid
    assert len(serving_pids()) == 1

    back = modelship("rollback", "iris")
    assert back.returncode == 0, back.stderr
    assert "Rolled back 'iris' (version 1)" in back.stdout
    info = json.loads(modelship("status", "iris", "--json").stdout)
    assert info["version"] == 1 and info["answering"] is True

    listing = modelship("status")
    assert "iris  [local]  version 1  answering" in listing.stdout

    gone = modelship("teardown", "iris")
    assert gone.returncode == 0, gone.stderr
    assert "Removed 'iris'" in gone.stdout and "process modelship-iris-v1" in gone.stdout
    assert_nothing_left("iris", port)
    assert not (data_dir() / "local" / "iris").exists()
    # nothing runs any more; the history says it was removed (and does not answer: 1)
    after = modelship("status", "iris")
    assert after.returncode == 1 and "iris  [local]  version 1  removed" in after.stdout
    assert "iris" not in modelship("status").stdout.split("(")[0]  # live ones only
    assert "removed" in modelship("status", "--all").stdout
    assert modelship("status", "nosuch").returncode == 2  # never deployed: a usage error
    assert saved.exists()  # the profile stays: it can be deployed again


def test_bad_model_fails_with_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "model.joblib"
    bad.write_bytes(b"\x80\x04this is not a pickle at all")
    port = free_port()
    res = modelship("deploy", str(bad), "--name", "bad", "--port", str(port))
    assert res.returncode in {3, 4}, res.stderr  # ModelError / ConversionError
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr
    assert "next step:" in res.stderr
    assert res.stdout == ""
    assert_nothing_left("bad", port)


def test_port_taken_names_the_port_and_suggests_another(iris_model: Path) -> None:  # noqa: F811
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        res = modelship("deploy", str(iris_model), "--name", "busy", "--port", str(port))
    assert res.returncode == 7, res.stderr  # TargetError
    assert f"Port {port} on 127.0.0.1 is already in use" in res.stderr
    assert "--port" in res.stderr
    assert serving_pids() == set()
    assert not (data_dir() / "models" / "busy").exists()


def test_ctrl_c_cancels_and_rolls_back(iris_model: Path) -> None:  # noqa: F811
    port = free_port()
    proc = start("deploy", str(iris_model), "--name", "ctrlc", "--port", str(port))
    try:
        wait_for_line(proc, "Starting the server")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "error: Cancelled while deploying" in err
    assert "Removed:" in err
    assert_nothing_left("ctrlc", port)


def test_a_crashed_deploy_is_found_and_removed_by_teardown(iris_model: Path) -> None:  # noqa: F811
    """kill -9 mid-deploy: the journal still names the server, so teardown removes it."""
    port = free_port()
    proc = start("deploy", str(iris_model), "--name", "crash", "--port", str(port))
    try:
        wait_for_line(proc, "==> Smoke-testing")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(serving_pids()) == 1  # orphaned, still running
    status = modelship("status")
    assert "interrupted deploy of 'crash'" in status.stderr
    res = modelship("teardown", "crash")
    assert res.returncode == 0, res.stderr
    assert "process modelship-crash-v1" in res.stdout
    assert_nothing_left("crash", port)


def test_profiles_list_show_export_import(iris_model: Path, tmp_path: Path) -> None:  # noqa: F811
    profile = tmp_path / "mine.toml"
    profile.write_text(
        f'schema = 1\nname = "mine"\n\n[model]\npath = "{iris_model}"\n\n'
        '[target]\nkind = "local"\n\n[target.settings]\nport = 9555\n'
    )
    res = modelship("profiles", "import", str(profile))
    assert res.returncode == 0, res.stderr
    assert "Imported 'mine'" in res.stdout
    listed = json.loads(modelship("profiles", "list", "--json").stdout)
    assert [(p["name"], p["target"], p["error"]) for p in listed] == [("mine", "local", None)]
    shown = modelship("profiles", "show", "mine").stdout
    assert 'name = "mine"' in shown and "port = 9555" in shown
    out = tmp_path / "shared.toml"
    assert modelship("profiles", "export", "mine", str(out)).returncode == 0
    assert "port = 9555" in out.read_text()
    again = modelship("profiles", "import", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr

    broken = tmp_path / "broken.toml"
    broken.write_text(profile.read_text().replace("port = 9555", "prot = 9555"))
    bad = modelship("profiles", "import", str(broken))
    assert bad.returncode == 2
    assert "unknown key 'target.settings.prot'" in bad.stderr and "line 11" in bad.stderr


def test_deploy_flags_that_do_not_fit_are_usage_errors(iris_model: Path) -> None:  # noqa: F811
    res = modelship("deploy", str(iris_model), "--target", "nowhere")
    assert res.returncode == 2
    assert "nowhere" in res.stderr and "local" in res.stderr
    res = modelship("deploy", str(iris_model), "--name", "Not A Name")
    assert res.returncode == 2 and "name" in res.stderr
    res = modelship("deploy", "no-such-profile")
    assert res.returncode == 2 and "No profile named 'no-such-profile'" in res.stderr


# ---- the same with real Docker ----------------------------------------------------------


def ours_in_docker(client, name: str) -> tuple[list[str], list[str]]:
    """Containers and images that carry this deployment's label."""
    label = f"modelship.deployment={name}"
    containers = [
        c.name
        for c in client.containers.list(ignore_removed=True, all=True, filters={"label": label})
    ]
    images = [i.id for i in client.images.list(filters={"label": label})]
    return containers, images


@pytest.mark.integration
def test_docker_deploy_redeploy_rollback_teardown(
    iris_model: Path,  # noqa: F811
    base_image: str,
    docker_client,
) -> None:
    name = f"clidock-{os.getpid()}"
    port = free_port()
    try:
        res = modelship(
            "deploy", str(iris_model), "--target", "docker", "--name", name,
            "--base-image", base_image, "--port", str(port), "--json",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        record = json.loads(res.stdout)
        assert record["target"] == "docker" and record["smoke"]["passed"] is True
        assert "==> Building the serving image" in res.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as resp:
            assert resp.status == 200

        again = modelship("deploy", name, "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["current_version"] == 2
        containers, _ = ours_in_docker(docker_client, name)
        assert containers == [f"modelship-{name}-v2"]  # the old container was replaced

        back = modelship("rollback", name, "--json")
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["current_version"] == 1
        info = json.loads(modelship("status", name, "--json").stdout)
        assert info["answering"] is True and info["version"] == 1
    finally:
        gone = modelship("teardown", name)
    assert gone.returncode == 0, gone.stderr
    assert ours_in_docker(docker_client, name) == ([], [])
    assert port_is_free(port)


def port_is_free(port: int) -> bool:
    from targets.local.target import port_free

    return port_free(port)  # SO_REUSEADDR like a server: our own TIME_WAITs do not count


@pytest.mark.integration
def test_docker_ctrl_c_mid_build_leaves_nothing(
    iris_model: Path,  # noqa: F811
    base_image: str,
    docker_client,
) -> None:
    name = f"clicancel-{os.getpid()}"
    port = free_port()
    env_before = os.environ.get("MODELSHIP_BUILD_NOCACHE")
    os.environ["MODELSHIP_BUILD_NOCACHE"] = "1"  # a real build to interrupt, not a cache hit
    try:
        proc = start(
            "deploy", str(iris_model), "--target", "docker", "--name", name,
            "--base-image", base_image, "--port", str(port), "-v",
        )  # fmt: skip
        try:
            wait_for_line(proc, "==> Building the serving image", timeout=300)
            wait_for_line(proc, "Step ", timeout=300)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        if env_before is None:
            os.environ.pop("MODELSHIP_BUILD_NOCACHE", None)
        else:
            os.environ["MODELSHIP_BUILD_NOCACHE"] = env_before
    assert proc.returncode == 130, err
    assert "Cancelled while building the serving image" in err
    assert ours_in_docker(docker_client, name) == ([], [])
    assert not (data_dir() / "models" / name).exists()
    assert port_is_free(port)


def test_a_refused_or_cancelled_deploy_leaves_the_saved_profile_byte_identical(
    iris_model: Path,  # noqa: F811
) -> None:
    port = free_port()
    res = modelship("deploy", str(iris_model), "--name", "kept", "--port", str(port))
    assert res.returncode == 0, res.stderr
    saved = profiles_dir() / "kept.toml"
    before = saved.read_bytes()
    assert f"port = {port}" in before.decode()
    # refused by preflight: another program holds the new port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        res = modelship("deploy", "kept", "--port", str(taken))
    assert res.returncode == 7, res.stderr
    assert saved.read_bytes() == before
    # failed mid-run: cancelled while the new server starts on another port
    proc = start("deploy", "kept", "--port", str(free_port()))
    try:
        wait_for_line(proc, "Starting the server")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert saved.read_bytes() == before
    # the old deployment still answers, on the port its profile names
    assert modelship("status", "kept").returncode == 0
    assert modelship("teardown", "kept").returncode == 0
    assert_nothing_left("kept", port)


@pytest.mark.parametrize(
    "marker", ["==> Reading the model", "==> Converting", "Starting the server", "==> Smoke"]
)
def test_kill_9_at_each_point_of_a_local_deploy_leaves_nothing_after_teardown(
    iris_model: Path,  # noqa: F811
    marker: str,
) -> None:
    name = "killed"
    port = free_port()
    proc = start("deploy", str(iris_model), "--name", name, "--port", str(port))
    try:
        wait_for_line(proc, marker)
        proc.kill()  # SIGKILL: no rollback, no cleanup, as a power cut would be
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    status = modelship("status")
    assert status.returncode == 0, status.stderr
    res = modelship("teardown", name)
    # whatever it had started is found from the journal and removed
    assert res.returncode in (0, 2), res.stderr  # 2: nothing had been journaled yet
    assert_nothing_left(name, port)
