"""A Nova server that is a real VM: the OpenStack emulator's QEMU backend.

Each server boots the Debian bookworm image that `.ci/vm.sh` builds and caches
(cloud-init, openssh-server, docker.io) from a copy-on-write overlay, with the user-data
the client sent as a NoCloud seed (`cloud-localds`). QEMU user-mode networking with
`restrict=on` keeps the guest off every network; its SSH port and the endpoint ports are
forwarded from 127.0.0.1 (an endpoint port has the same number on the host and in the
guest, so the endpoint's URL is the same from both sides). TCG only: `/dev/kvm` on this
kind of machine cannot run a stock kernel.

    backend = QemuBackend(ports=[8443])          # the emulator's Backend (backends.py)
    emulator = OpenStackEmulator(..., backend=backend)   # create(ServerRequest) per server
    # or directly:
    server = backend.boot(server_id, user_data, {"k": "v"}, name="web", public_keys=[pub])
    server.status()          # BUILD until sshd's banner answers, then ACTIVE; ERROR if qemu died
    server.console_text()    # serial console (cloud-init prints the SSH host keys there)
    server.ssh_port          # == server.host_port(22), on server.address (127.0.0.1)
    server.delete()          # QMP powerdown, then kill by PID; removes the overlay

create/boot return at once (qemu starts on a background thread, one at a time), as the
emulator's event loop needs; backend.delete(id) stops a VM behind, backend.close() waits.

No qemu outlives the Python process that started it: delete() for each server, an
atexit hook for the ones left, the kernel's parent-death signal (setpriv --pdeathsig) if
the process dies without running atexit, and a sweep of dead owners' VMs whenever a
backend is made. Measured under TCG on a 2-core machine (one VM, quiet machine; about
twice as long with a second VM or other load): sshd answers after ~56 s, the host keys
are on the console after ~100 s, `cloud-init status --wait` is done after ~105 s, delete
takes ~3 s; qemu takes 1.1-1.45 GB RSS at -m 1024. Boot at most two at once.

A fixed `ssh_port` (QemuBackend(ssh_port=2222)) lets a deployment profile name the SSH
port before the server exists; Nova's address for the server must then be 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .backends import BackendError, ServerRequest

BUILD = "BUILD"
ACTIVE = "ACTIVE"
ERROR = "ERROR"
SHUTOFF = "SHUTOFF"  # the guest powered itself off (qemu exited 0)
DELETED = "DELETED"

QEMU = "qemu-system-x86_64"
HOST = "127.0.0.1"

HOST_KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
HOST_KEYS_END = "-----END SSH HOST KEY KEYS-----"
_HOST_KEYS_RE = re.compile(re.escape(HOST_KEYS_BEGIN) + r"(.*?)" + re.escape(HOST_KEYS_END), re.S)
_KEY_RE = re.compile(r"((?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) AAAA[0-9A-Za-z+/=]+)")

_IMAGE_FILES = ("base.qcow2", "vmlinuz", "initrd.img")
_TOOLS = (QEMU, "qemu-img", "cloud-localds")


class BootError(BackendError):
    """qemu could not start the VM (its message included): Nova's fault."""


class CapacityError(BootError):
    """More VMs at once than the backend allows."""


def image_dir() -> Path:
    """Where .ci/vm.sh caches the VM image."""
    env = os.environ.get("MODELSHIP_VM_IMAGE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("MODELSHIP_CI_CACHE", "/var/cache/modelship-ci")) / "vm"


def missing(images: Path | None = None) -> list[str]:
    """What this machine lacks to boot a VM: tools and image files (empty when none)."""
    images = images or image_dir()
    lacking = [tool for tool in _TOOLS if shutil.which(tool) is None]
    lacking += [str(images / f) for f in _IMAGE_FILES if not (images / f).is_file()]
    return lacking


def host_keys(console: str) -> list[str] | None:
    """The `type base64` host keys that cloud-init printed; None while not (yet) printed."""
    m = _HOST_KEYS_RE.search(console)
    if not m:
        return None
    return _KEY_RE.findall(m.group(1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ssh_banner(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    """Whether an SSH server answers. slirp accepts a TCP connect before the guest is up,
    so only the `SSH-` banner counts."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


T = TypeVar("T")


class _Launcher:
    """Starts every qemu from one thread that lives as long as the process.

    qemu gets the parent-death signal (setpriv --pdeathsig KILL), which Linux sends when
    the *thread* that forked it ends: started from an HTTP handler's thread, the VM would
    die with the request. A daemon thread ends with the process, and so do the VMs. It
    also starts one VM at a time, off the emulator's event loop.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            with contextlib.suppress(Exception):  # jobs record their own failures
                job()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qemu-launcher", daemon=True)
                self._thread.start()
        self._jobs.put(job)


_launcher = _Launcher()
_live: weakref.WeakSet[QemuServer] = weakref.WeakSet()


@atexit.register
def _delete_all() -> None:
    for server in list(_live):
        server.delete(grace=0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _sweep(root: Path) -> None:
    """Stop and remove VMs left by processes that died (pdeathsig should have killed them;
    this covers systems without setpriv and any VM dir left on disk)."""
    if not root.is_dir():
        return
    for vm in root.glob("vm-*"):
        try:
            owner = int((vm / "owner").read_text())
        except (OSError, ValueError):
            owner = 0
        if owner and _pid_alive(owner):
            continue
        try:
            pid = int((vm / "qemu.pid").read_text())
        except (OSError, ValueError):
            pid = 0
        # kill by PID only when that PID is still this VM's qemu (PIDs get reused)
        if pid and str(vm) in _cmdline(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(vm, ignore_errors=True)


def _qmp(sock: Path, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """One QMP command: greeting, qmp_capabilities, the command; its reply."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        f = s.makefile("rw", encoding="utf-8")

        def reply() -> dict[str, Any]:
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("QMP closed")
                msg = json.loads(line)
                if "return" in msg or "error" in msg:
                    return msg

        if "QMP" not in json.loads(f.readline()):
            raise ConnectionError("no QMP greeting")
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            msg = reply()
        return msg


def _hostname(name: str) -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return host or "server"


class QemuServer:
    """One VM (the emulator's BackendServer). Made by QemuBackend; stop it with delete()."""

    address = HOST

    def __init__(
        self,
        server_id: str,
        directory: Path,
        ssh_port: int,
        ports: Sequence[int],
        on_delete: Callable[[QemuServer], None] | None = None,
    ) -> None:
        self.server_id = server_id
        self.directory = directory
        self.ssh_port = ssh_port
        self.ports = tuple(ports)
        self.process: subprocess.Popen[bytes] | None = None  # set once qemu runs
        self.created = time.monotonic()
        self.active_after: float | None = None  # seconds from create to sshd's banner
        self._fault: str | None = None
        self._started = threading.Event()  # qemu runs, or failed to start
        self._on_delete = on_delete
        self._deleted = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def console_path(self) -> Path:
        return self.directory / "console.log"

    @property
    def qemu_log(self) -> str:
        try:
            return (self.directory / "qemu.log").read_text(errors="replace").strip()
        except OSError:
            return ""

    def running(self) -> bool:
        """Holds (or is about to hold) a qemu: counts against the backend's max_servers."""
        if self._deleted or self._fault:
            return False
        return self.process is None or self.process.poll() is None

    def status(self) -> str:
        """BUILD until sshd's banner answers, then ACTIVE; ERROR when qemu failed or died;
        SHUTOFF when the guest powered itself off; DELETED after delete()."""
        if self._deleted:
            return DELETED
        if self._fault:
            return ERROR
        if self.process is None:
            return BUILD
        rc = self.process.poll()
        if rc is not None:
            if rc == 0 and self.active_after is not None:
                return SHUTOFF
            self._fault = f"qemu exited ({rc}): {self.qemu_log}"
            return ERROR
        if self.active_after is not None:
            return ACTIVE
        if ssh_banner(self.ssh_port, timeout=1.5):
            self.active_after = time.monotonic() - self.created
            return ACTIVE
        return BUILD

    # -- the emulator's BackendServer protocol (backends.py) ------------------------------
    def state(self) -> str:
        status = self.status()
        if status == SHUTOFF and not self._fault:
            self._fault = "the guest powered off"
        return {SHUTOFF: ERROR, DELETED: ERROR}.get(status, status)

    def fault(self) -> str | None:
        return self._fault

    def host_port(self, guest_port: int) -> int:
        if guest_port == 22:
            return self.ssh_port
        if guest_port in self.ports:
            return guest_port
        raise KeyError(
            f"guest port {guest_port} is not forwarded (forwarded: 22, {list(self.ports)}); "
            "name it in QemuBackend(ports=...)"
        )

    # ------------------------------------------------------------------------------------
    def console_text(self, length: int | None = None) -> str:
        """The serial console so far; its last `length` lines when given (as Nova does)."""
        try:
            text = self.console_path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return ""
        if length is not None:
            text = "".join(text.splitlines(keepends=True)[-length:]) if length > 0 else ""
        return text

    def host_keys(self) -> list[str] | None:
        return host_keys(self.console_text())

    def wait(
        self, until: Callable[[], T | None], timeout: float, what: str, every: float = 1.0
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = until()
            if value:
                return value
            if self.status() in (ERROR, SHUTOFF, DELETED):
                raise BootError(f"{what}: server {self.status()}: {self._fault}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s")
            time.sleep(every)

    def wait_active(self, timeout: float = 600) -> float:
        """Seconds from create until sshd answered."""
        self.wait(lambda: self.status() == ACTIVE, timeout, "sshd banner")
        assert self.active_after is not None
        return self.active_after

    def wait_host_keys(self, timeout: float = 600) -> list[str]:
        return self.wait(self.host_keys, timeout, "host keys on the console")

    def delete(self, grace: float = 20.0) -> None:
        """ACPI powerdown through QMP, then SIGTERM/SIGKILL by PID after `grace` s; then
        the overlay, the seed and the console are removed. Blocks until qemu is gone."""
        with self._lock:
            if self._deleted:
                return
            self._deleted = True
        try:
            # a start under way finishes first (or sees _deleted and starts nothing)
            self._started.wait(timeout=120)
            process = self.process
            if process is not None:
                if process.poll() is None and grace > 0:
                    with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                        _qmp(self.directory / "qmp.sock", "system_powerdown")
                        process.wait(timeout=grace)
                for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
                    if process.poll() is not None:
                        break
                    process.send_signal(sig)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=wait)
        finally:
            if self.process is None or self.process.poll() is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            _live.discard(self)
            if self._on_delete:
                self._on_delete(self)

    def __repr__(self) -> str:
        return f"<QemuServer {self.server_id} pid={self.pid} ssh={HOST}:{self.ssh_port}>"


class QemuBackend:
    """The emulator's Backend (backends.py) whose servers are QEMU VMs.

    ports: endpoint ports every server forwards, same number on 127.0.0.1 and in the
    guest. ssh_port: the host port forwarded to each server's 22 (default: a free one per
    server; a fixed one lets a profile name it before the server exists, and then only
    one server at a time can run). max_servers: how many may run at once (2 fit a 2-core
    machine); one more is a BackendError (the server goes to ERROR).
    """

    def __init__(
        self,
        *,
        images: Path | None = None,
        workdir: Path | None = None,
        ports: Iterable[int] = (),
        ssh_port: int | None = None,
        memory_mb: int = 1024,
        cpus: int = 1,
        max_servers: int = 2,
        start_timeout: float = 60.0,
    ) -> None:
        self.images = Path(images) if images else image_dir()
        # a short path: QMP's unix socket path must stay under 108 bytes
        self.workdir = Path(workdir) if workdir else Path(tempfile.gettempdir()) / "modelship-qemu"
        self.ports = tuple(ports)
        self.ssh_port = ssh_port
        self.memory_mb = memory_mb
        self.cpus = cpus
        self.max_servers = max_servers
        self.start_timeout = start_timeout
        self.servers: dict[str, QemuServer] = {}
        self._stopping: list[threading.Thread] = []
        self._lock = threading.Lock()
        _sweep(self.workdir)

    # -- the emulator's Backend protocol --------------------------------------------------
    def create(self, request: ServerRequest) -> QemuServer:
        """Start a VM for Nova's request; returns at once (BUILD), qemu starts behind."""
        return self.boot(
            request.server_id,
            request.user_data,
            request.metadata,
            name=request.name,
            public_keys=[request.public_key] if request.public_key else (),
        )

    def delete(self, server_id: str) -> None:
        """Stop and forget a server; returns at once, the VM stops behind (close() waits)."""
        with self._lock:
            server = self.servers.pop(server_id, None)
            if server is None:
                return
            stopper = threading.Thread(
                target=server.delete, name=f"qemu-delete-{server_id}", daemon=True
            )
            self._stopping.append(stopper)
        stopper.start()

    def close(self) -> None:
        """Delete every server this backend made and wait until their qemus are gone."""
        for server in list(self.servers.values()):
            server.delete(grace=5)
        with self._lock:
            stopping, self._stopping = self._stopping, []
        for stopper in stopping:
            stopper.join()

    # ------------------------------------------------------------------------------------
    def boot(
        self,
        server_id: str,
        user_data: bytes | str | None,
        meta: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        public_keys: Sequence[str] = (),
        ssh_port: int | None = None,
        ports: Iterable[int] | None = None,
    ) -> QemuServer:
        """Boot a VM; returns at once (status BUILD) and starts qemu behind.

        user_data: as the guest gets it (the emulator base64-decodes Nova's field).
        meta: Nova's server metadata, in the seed's meta-data as `meta` (OpenStack's
        meta_data.json has it there too). name: the hostname (default: the server id).
        public_keys: the Nova keypair's public key(s), installed by cloud-init for the
        image's default user (`debian`) as on a real cloud. ssh_port: the host port
        forwarded to the guest's 22 (default: the backend's, else a free one). ports:
        forwarded with the same number on both sides (default: the backend's).
        """
        lacking = missing(self.images)
        if lacking:
            raise BootError("cannot boot a VM here, missing: " + ", ".join(lacking))
        fixed_port = ssh_port or self.ssh_port
        fwd = list(dict.fromkeys(ports if ports is not None else self.ports))
        with self._lock:
            running = [s for s in self.servers.values() if s.running()]
            if len(running) >= self.max_servers:
                raise CapacityError(f"{len(running)} VMs run already (at most {self.max_servers})")
            if server_id in self.servers:
                raise BootError(f"server {server_id} exists")
            # made under another name, then renamed: a sweep never sees one without owner
            token = secrets.token_hex(4)
            tmp = self.workdir / f".new-{token}"
            tmp.mkdir(parents=True)
            (tmp / "owner").write_text(str(os.getpid()))
            (tmp / "server_id").write_text(server_id)
            vm = tmp.rename(self.workdir / f"vm-{token}")
            server = QemuServer(server_id, vm, fixed_port or free_port(), fwd, self._forget)
            self.servers[server_id] = server
        _live.add(server)
        meta = dict(meta or {})
        _launcher.submit(
            lambda: self._start(server, user_data, meta, name, public_keys, fixed_port is None)
        )
        return server

    def get(self, server_id: str) -> QemuServer:
        return self.servers[server_id]

    def _forget(self, server: QemuServer) -> None:
        with self._lock:
            if self.servers.get(server.server_id) is server:
                del self.servers[server.server_id]

    def _start(
        self,
        server: QemuServer,
        user_data: bytes | str | None,
        meta: Mapping[str, Any],
        name: str | None,
        public_keys: Sequence[str],
        may_move_port: bool,
    ) -> None:
        """On the launcher thread: seed, overlay, qemu; the fault on failure."""
        vm = server.directory
        try:
            if server._deleted:
                return
            self._seed(vm, server.server_id, user_data, meta, name, public_keys)
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                 str(self.images / "base.qcow2"), str(vm / "disk.qcow2")],
                check=True, capture_output=True,
            )  # fmt: skip
            for attempt in range(3):
                if server._deleted:
                    return
                try:
                    server.process = self._qemu(vm, server)
                    return
                except BootError as e:
                    # another process took the free port between our probe and qemu's bind
                    taken = f"{HOST}:{server.ssh_port}-:22" in str(e)
                    if not may_move_port or attempt == 2 or not taken:
                        raise
                    server.ssh_port = free_port()
        except subprocess.CalledProcessError as e:
            err = (e.stderr or b"").decode(errors="replace").strip()
            server._fault = f"{e.cmd[0]} failed ({e.returncode}): {err}"
        except (BootError, OSError) as e:
            server._fault = str(e)
        finally:
            server._started.set()

    def _seed(
        self,
        vm: Path,
        server_id: str,
        user_data: bytes | str | None,
        meta: Mapping[str, Any],
        name: str | None,
        public_keys: Sequence[str],
    ) -> None:
        data = user_data.encode() if isinstance(user_data, str) else (user_data or b"")
        (vm / "user-data").write_bytes(data)
        meta_data: dict[str, Any] = {
            "instance-id": server_id,
            "local-hostname": _hostname(name or str(meta.get("name") or server_id)),
        }
        if public_keys:
            meta_data["public-keys"] = list(public_keys)
        if meta:
            meta_data["meta"] = {str(k): str(v) for k, v in meta.items()}
        (vm / "meta-data").write_text(json.dumps(meta_data, indent=1))  # JSON is YAML
        subprocess.run(
            ["cloud-localds", str(vm / "seed.iso"), str(vm / "user-data"), str(vm / "meta-data")],
            check=True, capture_output=True,
        )  # fmt: skip

    def _argv(self, vm: Path, server: QemuServer) -> list[str]:
        fwd = [f"hostfwd=tcp:{HOST}:{server.ssh_port}-:22"]
        fwd += [f"hostfwd=tcp:{HOST}:{p}-:{p}" for p in server.ports]
        argv = [
            QEMU, "-name", f"modelship-{server.server_id}",
            "-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max",
            "-m", str(self.memory_mb), "-smp", str(self.cpus),
            "-kernel", str(self.images / "vmlinuz"),
            "-initrd", str(self.images / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 apparmor=0",
            "-drive", f"file={vm / 'disk.qcow2'},if=virtio,format=qcow2,discard=unmap",
            "-drive", f"file={vm / 'seed.iso'},if=virtio,format=raw,readonly=on",
            "-netdev", "user,id=n0,restrict=on," + ",".join(fwd),
            "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-rng-pci",
            "-serial", f"file:{vm / 'console.log'}",
            "-display", "none", "-monitor", "none",
            "-qmp", f"unix:{vm / 'qmp.sock'},server=on,wait=off",
            "-pidfile", str(vm / "qemu.pid"),
        ]  # fmt: skip
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        return argv

    def _qemu(self, vm: Path, server: QemuServer) -> subprocess.Popen[bytes]:
        """Start qemu (on the launcher thread, see _Launcher) and wait until it runs."""
        with open(vm / "qemu.log", "wb") as log:
            process = subprocess.Popen(
                self._argv(vm, server), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        # QMP answers once qemu's main loop runs, i.e. after the disks and the host
        # forwards were set up; a taken port or a bad image makes qemu exit before that.
        deadline = time.monotonic() + self.start_timeout
        while True:
            if process.poll() is not None:
                text = (vm / "qemu.log").read_text(errors="replace").strip()
                raise BootError(f"qemu exited ({process.returncode}): {text}")
            try:
                _qmp(vm / "qmp.sock", "query-status", timeout=2)
                return process
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise BootError(f"qemu did not start within {self.start_timeout:.0f} s")
            time.sleep(0.2)
