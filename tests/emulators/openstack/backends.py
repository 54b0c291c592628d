"""What "a server" is behind the emulated Nova: pluggable backends.

The emulator owns the API state (ids, status, addresses, ports); a backend owns the
machine the target then talks to over SSH. Three kinds plug in the same way:

- `NullBackend`: nothing behind the API (API-only tests). Its console prints fake
  host keys, so a target that tries to SSH in fails the way it would on a real cloud
  with a broken image.
- `SshdBackend`: the local OpenSSH server on 127.0.0.1 is the VM; the keypair's
  public key goes into its authorized_keys and its real host keys appear on the
  console after a short, configurable "boot".
- a QEMU backend (`qemu.py`, written separately): boots a real VM with the user-data
  as a NoCloud seed and forwards ports to 127.0.0.1.

`Backend.create` is called from the emulator's event loop: it must return quickly
(start a boot in the background, never wait for it).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .sshd import SshdServer


class BackendError(Exception):
    """The backend could not make the server: Nova shows it as ERROR with this fault."""


@dataclass(frozen=True)
class ServerRequest:
    """What Nova was asked for, as far as the machine behind it cares."""

    server_id: str
    name: str
    user_data: bytes | None  # decoded from the base64 Nova received
    public_key: str | None  # the keypair's public key line, if key_name was given
    image_name: str
    flavor: dict
    metadata: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class BackendServer(Protocol):
    """The machine behind one server."""

    address: str  # where the server's public address (fixed or floating) really is

    def state(self) -> str:
        """'BUILD', 'ACTIVE' or 'ERROR' (Nova's status follows it)."""
        ...

    def fault(self) -> str | None:
        """Why the server is in ERROR (Nova's fault message), else None."""
        ...

    def console_text(self) -> str:
        """The serial console log so far (Nova's os-getConsoleOutput)."""
        ...

    def host_port(self, guest_port: int) -> int:
        """The port on `address` that reaches `guest_port` inside the machine."""
        ...


@runtime_checkable
class Backend(Protocol):
    """Creates and deletes the machines behind Nova's servers."""

    def create(self, request: ServerRequest) -> BackendServer:
        """Start a machine for `request` (return at once; boot in the background)."""
        ...

    def delete(self, server_id: str) -> None:
        """Stop and forget the machine (idempotent)."""
        ...

    def close(self) -> None:
        """Release everything the backend holds (called when the emulator stops)."""
        ...


# -- console text ------------------------------------------------------------------------


def _fingerprint(public_line: str) -> str:
    blob = base64.b64decode(public_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


_KEY_NAMES = {"ssh-ed25519": "ED25519", "ecdsa-sha2-nistp256": "ECDSA", "ssh-rsa": "RSA"}


def cloud_init_console(
    name: str, host_key_lines: list[str] | None, uptime: float, *, finished: bool = True
) -> str:
    """A serial console log shaped like Debian's cloud-init output.

    With `host_key_lines` None the boot has not reached the host-key stage yet.
    Targets parse only the BEGIN/END SSH HOST KEY KEYS block; the rest is there so
    that parsers are tested against realistic surroundings.
    """
    lines = [
        "[    0.000000] Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org)",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-cloud-amd64 "
        "root=PARTUUID=0b5e1e5c-01 ro console=tty0 console=ttyS0,115200",
        "[    2.413372] EXT4-fs (vda1): mounted filesystem with ordered data mode.",
        "[  OK  ] Started systemd-networkd.service - Network Configuration.",
        "Cloud-init v. 22.4.2 running 'init-local' at Thu, 21 Nov 2026 10:00:01 +0000. "
        "Up 4.21 seconds.",
        "Cloud-init v. 22.4.2 running 'init' at Thu, 21 Nov 2026 10:00:03 +0000. Up 6.02 seconds.",
        "ci-info: ++++++++++++++++++++++++++++++++++++++Net device info+++++++++++++++++++",
        "ci-info: | Device |  Up  |   Address   |    Mask   | Scope  |     Hw-Address    |",
        "ci-info: |  eth0  | True |  10.0.0.10  | 255.0.0.0 | global | fa:16:3e:2b:6c:11 |",
        "[  OK  ] Started ssh.service - OpenBSD Secure Shell server.",
    ]
    if host_key_lines is None:
        return "\n".join(lines) + "\n"
    lines += [
        f"<14>Nov 21 10:00:41 cloud-init: {'#' * 61}",
        "<14>Nov 21 10:00:41 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
    ]
    for line in host_key_lines:
        kind = _KEY_NAMES.get(line.split()[0], line.split()[0])
        lines.append(
            f"<14>Nov 21 10:00:41 cloud-init: 256 {_fingerprint(line)} root@{name} ({kind})"
        )
    lines += [
        "<14>Nov 21 10:00:41 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
        f"<14>Nov 21 10:00:41 cloud-init: {'#' * 61}",
        "-----BEGIN SSH HOST KEY KEYS-----",
        *(" ".join(line.split()[:2]) + f" root@{name}" for line in host_key_lines),
        "-----END SSH HOST KEY KEYS-----",
    ]
    if finished:
        lines.append(
            f"Cloud-init v. 22.4.2 finished at Thu, 21 Nov 2026 10:00:42 +0000. "
            f"Datasource DataSourceOpenStackLocal [net,ver=2].  Up {uptime:.2f} seconds"
        )
    return "\n".join(lines) + "\n"


# -- null backend --------------------------------------------------------------------------


@dataclass
class _TimedServer:
    """A server that is ACTIVE after `boot_delay` and prints host keys after
    `console_delay` (both in seconds since creation, read lazily: no timers)."""

    name: str
    address: str
    host_key_lines: list[str]
    boot_delay: float
    console_delay: float
    ports: dict[int, int] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)

    def state(self) -> str:
        return "ACTIVE" if time.monotonic() - self.created >= self.boot_delay else "BUILD"

    def fault(self) -> str | None:
        return None

    def console_text(self) -> str:
        uptime = time.monotonic() - self.created
        keys = self.host_key_lines if uptime >= self.console_delay else None
        return cloud_init_console(self.name, keys, uptime + 40.0)

    def host_port(self, guest_port: int) -> int:
        return self.ports.get(guest_port, guest_port)


_FAKE_HOST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyOfAServerWithNothingBehindIt0000 root@nothing"
)


class NullBackend:
    """No machine behind the API: for tests of the API calls alone."""

    def __init__(
        self, boot_delay: float = 0.0, console_delay: float = 0.0, address: str = "127.0.0.1"
    ) -> None:
        self.boot_delay = boot_delay
        self.console_delay = console_delay
        self.address = address
        self.requests: dict[str, ServerRequest] = {}

    def create(self, request: ServerRequest) -> BackendServer:
        self.requests[request.server_id] = request
        return _TimedServer(
            request.name, self.address, [_FAKE_HOST_KEY], self.boot_delay, self.console_delay
        )

    def delete(self, server_id: str) -> None:
        self.requests.pop(server_id, None)

    def close(self) -> None:
        self.requests.clear()


class SshdBackend:
    """The local sshd is every server's machine.

    `create` puts the keypair's public key into the sshd's authorized_keys (what
    cloud-init does with Nova's key_name) and returns a server whose console shows
    the sshd's real host keys `console_delay` seconds after creation. `delete` takes
    the key out again. Port 22 of the "VM" is the sshd's port; other ports are the
    same on 127.0.0.1 (a container published by the local Docker Engine).
    """

    def __init__(
        self, sshd: SshdServer, boot_delay: float = 0.0, console_delay: float = 0.5
    ) -> None:
        self.sshd = sshd
        self.boot_delay = boot_delay
        self.console_delay = console_delay
        self.requests: dict[str, ServerRequest] = {}
        self.on_power: Callable[[str, bool], None] | None = None

    @property
    def ssh_port(self) -> int:
        return self.sshd.port

    def create(self, request: ServerRequest) -> BackendServer:
        self.requests[request.server_id] = request
        if request.public_key:
            self.sshd.authorize(request.server_id, request.public_key)
        return _TimedServer(
            request.name,
            "127.0.0.1",
            [key.public_line for key in self.sshd.host_keys],
            self.boot_delay,
            self.console_delay,
            ports={22: self.sshd.port},
        )

    def delete(self, server_id: str) -> None:
        self.requests.pop(server_id, None)
        self.sshd.revoke(server_id)

    def power(self, server_id: str, on: bool) -> None:
        """os-stop / os-start: a stopped VM takes no logins and runs nothing. Its key
        goes out of (and back into) authorized_keys; ``on_power(server_id, on)``, when
        set, stops and starts what the test ran "on the VM" (the Engine is shared)."""
        request = self.requests.get(server_id)
        if on and request is not None and request.public_key:
            self.sshd.authorize(server_id, request.public_key)
        if self.on_power is not None:
            self.on_power(server_id, on)
        if not on:
            self.sshd.revoke(server_id)

    def close(self) -> None:
        for server_id in list(self.requests):
            self.delete(server_id)
