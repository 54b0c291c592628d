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
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from app.domain import DeploymentRecord, Endpoint, Resource
from app.errors import TargetError
from app.nextstep import model_file, run_command, say, see_details, set_setting
from app.paths import data_dir
from app.progress import CancelToken, NullProgress, Progress
from app.waiting import wait_until
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus
from targets.common import (
    API_KEY_ENV,
    capture_env,
    endpoint_key_value,
    key_problems,
    wait_answering,
)
from targets.kind import Kind
from targets.local.kind import KIND
from targets.local.settings import LocalSettings
from targets.net import port_free, previous_holds, suggest_port

if TYPE_CHECKING:
    from app.store.profile import Profile

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0


def run_dir(name: str) -> Path:
    """The folder of a local deployment's logs."""
    return data_dir() / "local" / name


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


def _matches(cmd: list[str], data: dict[str, Any]) -> bool:
    """Does a command line belong to the server this resource describes?

    The model path is the deployment's own version folder and the port is in argv, so
    the pair identifies our server even without a pid.
    """
    model = str(data.get("model", ""))
    return bool(cmd) and bool(model) and model in cmd and str(data.get("port")) in cmd


def is_our_process(data: dict[str, Any]) -> bool:
    """Is the recorded server still the same process (not a reused pid)?"""
    pid = data.get("pid")
    if not pid:
        return False
    started = _proc_start_time(int(pid))
    if started is None:
        return False
    if data.get("started_ticks") and started != data["started_ticks"]:
        return False
    return _matches(_proc_cmdline(int(pid)), data)


def find_ours(data: dict[str, Any]) -> list[int]:
    """Pids of live servers started for this resource, recorded pid or not.

    The journal holds the server's command line before the server starts, so a command
    killed between starting it and writing its pid down still leaves enough to find it.
    """
    if is_our_process(data):
        return [int(data["pid"])]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if _matches(proc.info["cmdline"] or [], data) and _is_top(proc, data):
                found.append(int(proc.info["pid"]))
        except psutil.Error:
            continue
    return found


def _is_top(proc: psutil.Process, data: dict[str, Any]) -> bool:
    """Only the server's main process, not its workers (they die with it)."""
    try:
        parent = proc.parent()
        return parent is None or not _matches(parent.cmdline(), data)
    except psutil.Error:
        return True


def _reap(pid: int) -> None:
    """Collect the exit status if the server is our own child (avoids a zombie)."""
    if hasattr(os, "WNOHANG"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _stop(data: dict[str, Any], progress: Progress) -> bool:
    """Stop the server and its worker processes: terminate, then kill after a grace period.

    Returns True if a process was stopped. Only touches processes proven to be ours.
    On POSIX, terminate is SIGTERM, so in-flight requests finish; on Windows it ends
    the process at once (there is no graceful signal to send a detached process).
    Returns only once the processes are gone and the port is free again (or raises).
    """
    pids = find_ours(data)
    if not pids:
        return False
    family: list[psutil.Process] = []
    for pid in pids:
        proc = _process(pid)
        if proc is None:
            continue
        progress.update(message=f"Stopping server process {pid}")
        family.append(proc)
        with contextlib.suppress(psutil.Error):
            family.extend(proc.children(recursive=True))
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for pid in pids:
        _reap(pid)
    if alive:
        raise TargetError(
            f"Server process {alive[0].pid} did not stop.",
            f"Stop it by hand (kill -9 {alive[0].pid}), then run teardown again.",
        )
    port = data.get("port")
    if port:
        _wait_port_free(int(port))
    return True


def _wait_port_free(port: int, timeout: float = 10.0) -> None:
    try:
        wait_until(
            lambda: port_free(port),
            bool,
            timeout=timeout,
            what=f"port {port} to be free",
            hint=f"Something else holds port {port} now; find it with `ss -ltnp` / "
            "`netstat -ano` and stop it.",
            interval=0.05,
            max_interval=0.5,
        )
    except TargetError as exc:
        raise TargetError(
            f"The server stopped, but port {port} is still in use.", exc.hint
        ) from None


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_until_answering(
    resource: Resource, url: str, timeout: float, cancel: CancelToken, progress: Progress
) -> None:
    """Wait for /ping; fail early (with its log) if the server exits."""
    pid = int(resource.data["pid"])
    log = Path(resource.data["log"])

    def state() -> str | None:
        _reap(pid)
        return None if _proc_start_time(pid) is not None else "exited"

    def exited(state: str) -> str | None:
        if state != "exited":
            return None
        tail = _log_tail(log)
        return "the server process exited while starting: " + (
            tail.splitlines()[-1] if tail else "no output"
        )

    wait_answering(
        url,
        state,
        exited,
        timeout=timeout,
        cancel=cancel,
        progress=progress,
        what=f"the server on {url}",
        noun="Server",
        running="starting",
        fail_hint=say(
            "See ", see_details(), " or ", run_command("serve", "MODEL", verb="run"), " to try it."
        ),
        details=lambda: _log_tail(log),
    )


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
            say(run_command("serve", "MODEL", verb="Run"), " to see the error."),
        )
    return int(out.stdout.strip())


class LocalTarget(Target):
    kind: ClassVar[Kind] = KIND
    replacement: ClassVar = "stop_old_first"  # the new server wants the old one's port

    # ---- preflight ------------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        problems = []
        settings: LocalSettings = profile.target.settings
        model = Path(profile.model.path)
        # a model file, or an MLflow model folder (app.model.mlflowmodel); an MLflow runs:/ or
        # models:/ URI (kept as text) is downloaded by the intake step, which says why not
        on_disk = isinstance(profile.model.path, Path)
        if on_disk and not (model.is_file() or (model / "MLmodel").is_file()):
            problems.append(
                Problem(
                    f"The model file {profile.model.path} does not exist.",
                    say("Check ", model_file(), "."),
                    kind="setting",
                    setting="model.path",
                )
            )
        problems += key_problems(settings.api_key)
        port = settings.port
        if not port_free(port) and not (
            _ours_on_port(previous, port) or _holds_other_target(previous, port)
        ):
            problems.append(
                Problem(
                    f"Port {port} on {HOST} is already in use by another program.",
                    say(
                        f"Choose a free port, e.g. {suggest_port(port)} (",
                        set_setting("port", "Port"),
                        ").",
                    ),
                    kind="environment",
                    setting="port",
                )
            )
        return problems

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        settings: LocalSettings = profile.target.settings
        action = "replace" if previous is not None else "create"
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
                say(
                    f"Choose a free port, e.g. {suggest_port(port)} (",
                    set_setting("port", "Port"),
                    ").",
                ),
            )
        rdir = run_dir(ctx.name)
        rdir.mkdir(parents=True, exist_ok=True)
        log = rdir / f"server-v{ctx.version}.log"
        model = str(Path(ctx.model.onnx_path).resolve())
        argv = _serving_argv(model, port, settings.workers)
        resource = Resource(
            kind="process",
            id=f"modelship-{ctx.name}-v{ctx.version}",
            name=f"process modelship-{ctx.name}-v{ctx.version} on {HOST}:{port}",
            data={"port": port, "model": model, "log": str(log), "argv": argv, "pid": None},
        )
        # Journaled with its command line before it starts: find_ours() can find the
        # server from this alone if we are killed before its pid is written down.
        ctx.journal.record(resource)
        ctx.progress.update(message=f"Starting the server on {HOST}:{port}")
        pid = _spawn_detached(argv, log, server_env(settings, capture_dir(ctx.name)), rdir)
        resource.data.update(
            {"pid": pid, "started_ticks": _proc_start_time(pid), "started": time.time()}
        )
        ctx.journal.update(resource)
        url = f"http://{HOST}:{port}"
        _wait_until_answering(resource, url, settings.start_timeout, ctx.cancel, ctx.progress)
        return Endpoint(
            url=url,
            target=self.name,
            resources=[resource],
            auth="bearer" if settings.api_key else "none",
        )

    # ---- later ------------------------------------------------------------------------
    def captured(
        self, record: DeploymentRecord, since: float | None = None, client: Any = None
    ) -> bytes:
        """Read straight from the server's capture folder on this computer."""
        from app.serving.capture import read_lines

        return read_lines(capture_dir(record.name), since)

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

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        for r in record.resources():
            if r.kind == "process" and r.data.get("log"):
                return _log_tail(Path(r.data["log"]), lines)
        return ""

    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        progress = progress or NullProgress()
        if resource.kind != "process":
            return False
        stopped = _stop(resource.data, progress)
        log = resource.data.get("log")
        if log:
            Path(log).unlink(missing_ok=True)
            folder = Path(log).parent
            if not any(folder.glob("server-v*.log")):  # no other version's server is left
                shutil.rmtree(folder / "capture", ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        return stopped

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
        settings = LocalSettings.model_validate(
            (record.profile.get("target") or {}).get("settings") or {}
        )
        for r in ep.resources:
            if r.kind != "process" or is_our_process(r.data):
                continue
            if not port_free(int(r.data["port"])):
                progress.log(f"Cannot restart the previous server: port {r.data['port']} in use")
                continue
            log = Path(r.data["log"])
            log.parent.mkdir(parents=True, exist_ok=True)
            env = server_env(settings, capture_dir(record.name))
            pid = _spawn_detached(list(r.data["argv"]), log, env, log.parent)
            r.data.update(
                {"pid": pid, "started_ticks": _proc_start_time(pid), "started": time.time()}
            )
            try:
                _wait_until_answering(
                    r, f"http://{HOST}:{r.data['port']}", settings.start_timeout,
                    CancelToken(), progress,
                )  # fmt: skip
            except TargetError as exc:
                progress.log(f"The previous server did not come back: {exc.message}")
                continue
            progress.update(message=f"Restarted the previous server (process {pid})")
        return ep

    # ---- stop and start -------------------------------------------------------------
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """Stop the server process; its log, model and command stay for ``start``."""
        self.suspend(record, progress)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Start the server again from its recorded command (a new pid)."""
        ep = self.resume(record, progress)
        procs = [r for r in (ep.resources if ep else []) if r.kind == "process"]
        if not procs or not all(is_our_process(r.data) for r in procs):
            log = next((r.data.get("log") for r in procs if r.data.get("log")), None)
            tail = _log_tail(Path(log), 15) if log else ""
            raise TargetError(
                f"{record.name!r} did not start again.",
                "Check that its port is free and read its log; or deploy it again.",
                details=tail or None,
            )
        return ep


def _ours_on_port(previous: DeploymentRecord | None, port: int) -> bool:
    """Is the port held by the deployment being replaced (same name)?"""
    if previous is None:
        return False
    return any(
        r.kind == "process" and r.data.get("port") == port and is_our_process(r.data)
        for r in previous.resources()
    )


def _holds_other_target(previous: DeploymentRecord | None, port: int) -> bool:
    """A deployment of the same name on another target (docker) holds the port: it is
    stopped before the new server starts."""
    return previous is not None and previous.target != "local" and previous_holds(previous, port)


def _serving_argv(model: str, port: int, workers: int) -> list[str]:
    from app.runtime import serving_command

    return serving_command(model, "--host", HOST, "--port", str(port), "--workers", str(workers))


# What the server takes from the user's environment, and nothing else: finding programs
# and libraries, the locale, temporary files, a home folder, proxy settings, and what
# Windows needs to start Python at all. Cloud credentials (AWS_*, OS_*, HEROKU_API_KEY),
# tokens and the shell's MODELSHIP_* settings stay out of a process that answers the
# network.
_PASSED_ON = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TEMP", "TMP", "LANG", "LANGUAGE",
        "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy",
        "https_proxy", "no_proxy", "all_proxy",
        # Windows
        "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE",
        "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "NUMBER_OF_PROCESSORS",
    }
)  # fmt: skip


def capture_dir(name: str) -> Path:
    """Where the deployment's server keeps its captured requests (removed on teardown)."""
    return run_dir(name) / "capture"


def server_env(settings: LocalSettings, capture: Path | None = None) -> dict[str, str]:
    """The server's whole environment, made explicitly.

    Only what :data:`_PASSED_ON` names (and the ``LC_*`` locale variables) comes from the
    user's shell: no cloud credential, and nothing ``MODELSHIP_*`` (a key or setting
    exported there must not change what a deployment does, or make its smoke test
    fail). The API key comes from the keyring, through the environment (never argv,
    which any user can read with ps); only the same user can read a process's
    environment.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _PASSED_ON or (k.startswith("LC_") and k.isupper())
    }
    env["PYTHONUNBUFFERED"] = "1"
    key = endpoint_key_value(settings)
    if key is not None:
        env[API_KEY_ENV] = key
    if capture is not None:
        env.update(capture_env(settings, str(capture)))
    return env


__all__ = ["LocalTarget", "capture_dir", "find_ours", "port_free", "run_dir", "server_env"]
