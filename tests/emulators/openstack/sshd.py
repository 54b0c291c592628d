"""A throwaway OpenSSH server on 127.0.0.1 (and ::1) that stands in for a cloud VM.

The OpenStack target's fast tests need a real SSH server with known host keys and
an authorized_keys file the emulator can write to (the way cloud-init writes the
keypair's public key into a fresh VM). Everything lives in one temporary folder:
config, host keys, pid file, authorized keys. The server runs as a child process
(`sshd -D -e`) and is stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SSHD = "/usr/sbin/sshd"


def sshd_available() -> bool:
    """Whether the OpenSSH server binary is installed (CI installs openssh-server)."""
    return os.access(SSHD, os.X_OK)


def ipv6_loopback() -> bool:
    """Whether this machine's loopback has ::1 (containers may run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class HostKey:
    """One host key of the server: the private key file and its public line."""

    path: Path
    public_line: str  # "ssh-ed25519 AAAA... root@host", as cloud-init prints it

    @property
    def key_type(self) -> str:
        return self.public_line.split()[0]

    @property
    def key_base64(self) -> str:
        return self.public_line.split()[1]


def _write_host_key(directory: Path, name: str, private_key, comment: str) -> HostKey:
    path = directory / f"ssh_host_{name}_key"
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)  # sshd ignores group/world-readable host keys
    public = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    (directory / f"ssh_host_{name}_key.pub").write_text(line + "\n")
    return HostKey(path, line)


class SshdServer:
    """The local sshd with its own config, keys and authorized_keys (not thread-safe
    for start/stop; the authorized keys are guarded by a lock because the emulator's
    HTTP thread writes them while a test reads them)."""

    def __init__(self, directory: Path | None = None, port: int | None = None) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="modelship-sshd-"))
        self.port = port or free_port()
        self.authorized_keys = self.directory / "authorized_keys"
        self.config = self.directory / "sshd_config"
        self.pid_file = self.directory / "sshd.pid"
        self.log_file = self.directory / "sshd.log"
        self.host_keys: list[HostKey] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # owner (server id) -> public key line

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> SshdServer:
        """Write config and keys, start sshd and wait for its SSH banner."""
        self.directory.mkdir(parents=True, exist_ok=True)
        comment = "root@modelship-vm"
        self.host_keys = [
            _write_host_key(
                self.directory, "ecdsa", ec.generate_private_key(ec.SECP256R1()), comment
            ),
            _write_host_key(
                self.directory, "ed25519", ed25519.Ed25519PrivateKey.generate(), comment
            ),
        ]
        self.authorized_keys.write_text("")
        self.authorized_keys.chmod(0o600)
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            # also ::1 when this machine has it: the emulator's IPv6-only region gives its
            # servers the address ::1 (sshd keeps serving 127.0.0.1 if ::1 cannot bind)
            *(["ListenAddress ::1"] if ipv6_loopback() else []),
            *(f"HostKey {key.path}" for key in self.host_keys),
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "MaxStartups 50:30:100",
            "MaxSessions 50",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation
        log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._wait_for_banner(timeout)
        return self

    def _wait_for_banner(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited early: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop the sshd process (by its PID) and remove its folder if we made it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # -- authorized keys --------------------------------------------------------------
    def authorize(self, owner: str, public_key: str) -> None:
        """Let `public_key` log in (on behalf of `owner`, e.g. a server id)."""
        with self._lock:
            self._keys[owner] = public_key.strip()
            self._write_keys()

    def revoke(self, owner: str) -> None:
        """Forget the key that `owner` added (its "VM" is gone)."""
        with self._lock:
            if self._keys.pop(owner, None) is not None:
                self._write_keys()

    def revoke_all(self) -> None:
        with self._lock:
            self._keys.clear()
            self._write_keys()

    def authorized(self) -> dict[str, str]:
        with self._lock:
            return dict(self._keys)

    def _write_keys(self) -> None:
        text = "".join(f"{key}\n" for key in self._keys.values())
        self.authorized_keys.write_text(text)

    # -- what a client needs -----------------------------------------------------------
    def known_hosts_lines(self, host: str = "127.0.0.1") -> list[str]:
        """known_hosts lines for this server (`[host]:port type key`)."""
        name = host if self.port == 22 else f"[{host}]:{self.port}"
        return [f"{name} {key.key_type} {key.key_base64}" for key in self.host_keys]

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
