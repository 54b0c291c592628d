"""The ``local`` target: the serving runtime as a background process on this computer.

No Docker needed: the default target, and the edge/on-device option. The server
(``python -m app.serving MODEL --port P``) runs detached in its own session, bound to
127.0.0.1, and outlives the command that started it. Its pid, port, start time and
command line are journaled and recorded, so ``status`` and ``teardown`` find it again;
before signalling a pid we check that it is still *our* server (same start time and a
command line naming our model), so a pid reused by an unrelated process is never
killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import psutil
from pydantic import Field

from app.errors import TargetError
from app.paths import data_dir
from app.progress import CancelToken, NullProgress, Progress
from targets.base import (
    DeployContext,
    Endpoint,
    PlanItem,
    Problem,
    Resource,
    SecretRef,
    Target,
    TargetSettings,
    TargetStatus,
)

if TYPE_CHECKING:
    from app.profile import Profile
    from app.records import DeploymentRecord

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0


class LocalSettings(TargetSettings):
    port: int = Field(
        8080, ge=1, le=65535, title="Port", description="Port on 127.0.0.1 to answer on."
    )
    workers: int = Field(
        1, ge=1, le=64, title="Worker processes", description="Server processes to run."
    )
    api_key: SecretRef | None = Field(
        None,
        title="API key (keyring entry)",
        description="Name of a keyring entry holding an API key that callers must send "
        "as 'Authorization: Bearer KEY'. Empty: no key needed.",
    )
    start_timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        title="Start timeout",
        description="Seconds to wait for the server to load the model and answer.",
    )


def run_dir(name: str) -> Path:
    """The folder of a local deployment's logs."""
    return data_dir() / "local" / name


def port_free(port: int, host: str = HOST) -> bool:
    """True if a server could bind ``host:port`` now (SO_REUSEADDR, like uvicorn)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ---- process identity and stopping (psutil: Linux, Windows, macOS) ---------------------


def _process(pid: int) -> psutil.Process | None:
    """The live process with this pid, or None (gone, or a zombie: dead for our purposes)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, ValueError):
        return None


def _proc_start_time(pid: int) -> str | None:
    """An opaque start-time token for pid (None if no such process)."""
    proc = _process(pid)
    if proc is None:
        return None
    try:
        return f"{proc.create_time():.2f}"
    except psutil.Error:
        return None


def _proc_cmdline(pid: int) -> list[str]:
    proc = _process(pid)
    if proc is None:
        return []
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def is_our_process(data: dict) -> bool:
    """Is the recorded server still the same process (not a reused pid)?"""
    pid = data.get("pid")
    if not pid:
        return False
    started = _proc_start_time(int(pid))
    if started is None:
        return False
    if data.get("started_ticks") and started != data["started_ticks"]:
        return False
    cmd = _proc_cmdline(int(pid))
    model = str(data.get("model", ""))
    return bool(cmd) and model in cmd and str(data.get("port")) in cmd


def _reap(pid: int) -> None:
    """Collect the exit status if the server is our own child (avoids a zombie)."""
    if hasattr(os, "WNOHANG"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _stop(data: dict, progress: Progress) -> bool:
    """Stop the server and its worker processes: terminate, then kill after a grace period.

    Returns True if a process was stopped. Only touches a process proven to be ours.
    On POSIX, terminate is SIGTERM, so in-flight requests finish; on Windows it ends
    the process at once (there is no graceful signal to send a detached process).
    """
    if not is_our_process(data):
        return False
    pid = int(data["pid"])
    proc = _process(pid)
    if proc is None:
        return False
    progress.update(message=f"Stopping server process {pid}")
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        family = [proc]
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    _reap(pid)
    return True


def _ping(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_until_answering(
    resource: Resource, url: str, timeout: float, cancel: CancelToken
) -> None:
    """Wait for /ping; fail early (with its log) if the server exits."""
    pid = int(resource.data["pid"])
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        cancel.raise_if_cancelled()
        if _ping(url, timeout=1.0):
            return
        _reap(pid)
        if _proc_start_time(pid) is None:
            tail = _log_tail(Path(resource.data["log"]))
            last = tail.splitlines()[-1] if tail else "no output"
            raise TargetError(
                f"The server process exited while starting: {last}",
                "See the details (--debug) or run `modelship serve MODEL` to try it.",
                details=tail,
            )
        if time.monotonic() > deadline:
            raise TargetError(
                f"The server did not answer on {url}/ping within {timeout:.0f} s.",
                "Raise [target.settings] start_timeout for a large model.",
                details=_log_tail(Path(resource.data["log"])),
            )
        cancel.wait(delay)
        delay = min(delay * 1.5, 0.5)


_LAUNCHER = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
log = open(spec["log"], "ab")
# Windows: DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP; POSIX: a session of its own.
kw = {"creationflags": 0x08 | 0x200} if os.name == "nt" else {"start_new_session": True}
p = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     cwd=spec["cwd"], close_fds=True, **kw)
print(p.pid, flush=True)
"""


def _detached() -> dict:
    """Popen arguments that let the server outlive us, on every platform."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _spawn_detached(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> int:
    """Start argv fully detached and return its pid.

    A short-lived launcher starts the server and exits, so the server is re-parented to
    init: it outlives us, and a long-running caller (the wizard) never collects zombies
    or gets ResourceWarnings about a child it no longer waits for.
    """
    # The environment (it may hold the API key) goes through the environment, never
    # through argv, which any user can read with `ps`.
    spec = json.dumps({"argv": argv, "log": str(log), "cwd": str(cwd)})
    python = sys.executable
    if getattr(sys, "frozen", False):  # the bundle has no interpreter: start directly
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                env=env, cwd=cwd, **_detached(),
            )  # fmt: skip
        return proc.pid
    out = subprocess.run(
        [python, "-c", _LAUNCHER, spec], capture_output=True, text=True, timeout=60, env=env
    )
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise TargetError(
            f"Could not start the server process: {out.stderr.strip()[-300:]}",
            "Run `modelship serve MODEL` to see the error.",
        )
    return int(out.stdout.strip())


class LocalTarget(Target):
    name: ClassVar[str] = "local"
    title: ClassVar[str] = "This computer"
    summary: ClassVar[str] = (
        "Run the model as a background process on this computer (127.0.0.1); "
        "no Docker needed. Good for trying it out and for edge devices."
    )
    Settings: ClassVar[type[TargetSettings]] = LocalSettings
    needs_image: ClassVar[bool] = False
    side_by_side: ClassVar[bool] = False  # the new one wants the old one's port

    # ---- preflight ------------------------------------------------------------------
    def _ours_on_port(self, profile: Profile, port: int) -> bool:
        """Is the port held by the deployment this profile replaces?"""
        from app.records import find_record

        record = find_record(profile.name)
        if record is None:
            return False
        return any(
            r.kind == "process" and r.data.get("port") == port and is_our_process(r.data)
            for r in record.resources()
        )

    def check(self, profile: Profile) -> list[Problem]:
        problems = []
        settings: LocalSettings = profile.target.settings
        if not Path(profile.model.path).is_file():
            problems.append(
                Problem(
                    f"The model file {profile.model.path} does not exist.",
                    "Check [model] path in the profile.",
                )
            )
        if settings.api_key:
            from app.errors import CredentialError
            from app.secrets import get_secret

            try:
                get_secret(settings.api_key)
            except CredentialError as exc:
                problems.append(Problem(exc.message, exc.hint or ""))
        port = settings.port
        if not port_free(port) and not self._ours_on_port(profile, port):
            problems.append(
                Problem(
                    f"Port {port} on {HOST} is already in use by another program.",
                    f"Choose a free port, e.g. {_suggest_port(port)} "
                    "(the Port setting; --port on the command line).",
                )
            )
        return problems

    def plan(self, profile: Profile) -> list[PlanItem]:
        settings: LocalSettings = profile.target.settings
        from app.records import find_record

        action = "replace" if find_record(profile.name) else "create"
        return [
            PlanItem(
                action,
                "process",
                f"modelship-{profile.name}",
                f"serving on http://{HOST}:{settings.port} ({settings.workers} worker(s))",
            )
        ]

    # ---- deploy -----------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        settings: LocalSettings = ctx.settings
        port = settings.port
        ctx.cancel.raise_if_cancelled()
        if not port_free(port):
            raise TargetError(
                f"Port {port} on {HOST} is already in use.",
                f"Choose a free port, e.g. {_suggest_port(port)} "
                "(the Port setting; --port on the command line).",
            )
        rdir = run_dir(ctx.name)
        rdir.mkdir(parents=True, exist_ok=True)
        log = rdir / f"server-v{ctx.version}.log"
        model = str(Path(ctx.model_path).resolve())
        argv = _serving_argv(model, port, settings.workers)
        resource = Resource(
            kind="process",
            id=f"modelship-{ctx.name}-v{ctx.version}",
            name=f"process modelship-{ctx.name}-v{ctx.version} on {HOST}:{port}",
            data={"port": port, "model": model, "log": str(log), "argv": argv, "pid": None},
        )
        ctx.journal.record(resource)
        ctx.progress.update(message=f"Starting the server on {HOST}:{port}")
        env = dict(os.environ)
        env.pop("MODELSHIP_HOST", None)
        env["PYTHONUNBUFFERED"] = "1"
        secret_env = _secret_env(settings)
        env.update(secret_env)
        pid = _spawn_detached(argv, log, env, rdir)
        resource.data.update(
            {"pid": pid, "started_ticks": _proc_start_time(pid), "started": time.time()}
        )
        ctx.journal.update(resource)
        url = f"http://{HOST}:{port}"
        _wait_until_answering(resource, url, settings.start_timeout, ctx.cancel)
        return Endpoint(url=url, target=self.name, resources=[resource])

    # ---- later ------------------------------------------------------------------------
    def status(self, record: DeploymentRecord) -> TargetStatus:
        for r in record.resources():
            if r.kind == "process":
                if is_our_process(r.data):
                    started = r.data.get("started")
                    since = (
                        time.strftime(" since %Y-%m-%d %H:%M", time.localtime(started))
                        if started
                        else ""
                    )
                    return TargetStatus(
                        True,
                        f"process {r.data['pid']} on port {r.data['port']}{since}",
                        {"pid": r.data["pid"], "port": r.data["port"], "log": r.data.get("log")},
                    )
                return TargetStatus(
                    False, f"process {r.data.get('pid')} is not running", {"log": r.data.get("log")}
                )
        return TargetStatus(False, "no server process recorded")

    def destroy(self, resource: Resource, progress: Progress | None = None) -> None:
        progress = progress or NullProgress()
        if resource.kind != "process":
            return
        _stop(resource.data, progress)
        log = resource.data.get("log")
        if log:
            Path(log).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                Path(log).parent.rmdir()  # only when empty

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        removed = super().teardown(record, progress)
        shutil.rmtree(run_dir(record.name), ignore_errors=True)
        return removed

    def suspend(self, record: DeploymentRecord, progress: Progress) -> None:
        """Stop the old server (keep its log and model) so the new one gets the port."""
        for r in record.resources():
            if r.kind == "process":
                _stop(r.data, progress)

    def resume(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Start the old server again with the same command (new pid)."""
        ep = record.endpoint_obj()
        if ep is None:
            return None
        for r in ep.resources:
            if r.kind != "process" or is_our_process(r.data):
                continue
            if not port_free(int(r.data["port"])):
                progress.log(f"Cannot restart the previous server: port {r.data['port']} in use")
                continue
            log = Path(r.data["log"])
            log.parent.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ)
            env.pop("MODELSHIP_HOST", None)
            settings = LocalSettings.model_validate(
                (record.profile.get("target") or {}).get("settings") or {}
            )
            env.update(_secret_env(settings))
            pid = _spawn_detached(list(r.data["argv"]), log, env, log.parent)
            r.data.update(
                {"pid": pid, "started_ticks": _proc_start_time(pid), "started": time.time()}
            )
            try:
                _wait_until_answering(r, f"http://{HOST}:{r.data['port']}", settings.start_timeout,
                                      CancelToken())  # fmt: skip
            except TargetError as exc:
                progress.log(f"The previous server did not come back: {exc.message}")
                continue
            progress.update(message=f"Restarted the previous server (process {pid})")
        return ep


def _serving_argv(model: str, port: int, workers: int) -> list[str]:
    from app.runtime import serving_command

    return serving_command(model, "--host", HOST, "--port", str(port), "--workers", str(workers))


def _secret_env(settings: TargetSettings) -> dict[str, str]:
    """Environment for secrets the settings name (values from the keyring)."""
    name = getattr(settings, "api_key", None)
    if not name:
        return {}
    from app.secrets import get_secret

    return {"MODELSHIP_API_KEY": get_secret(name)}


def _suggest_port(port: int) -> int:
    for candidate in range(port + 1, min(port + 50, 65535)):
        if port_free(candidate):
            return candidate
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


__all__ = ["LocalSettings", "LocalTarget", "port_free"]
