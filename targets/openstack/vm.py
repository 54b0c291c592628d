"""The VM side: SSH that never trusts blindly, and shipping an image layer-aware.

SSH: the server's host keys come from its console log (cloud-init prints them between
``-----BEGIN SSH HOST KEY KEYS-----`` and ``-----END SSH HOST KEY KEYS-----``), are
pinned in the deployment's record, and paramiko connects with ``RejectPolicy``: any
other key is refused. A console without keys stops the deploy with the key's
fingerprint for the user to confirm (``--accept-host-key``).

Shipping: ask the VM's Docker which layers it has (``RootFS.Layers`` of its images),
build a ``docker save``-format tar on this computer that leaves out the layer tars
whose chain the VM already has, gzip it and pipe it into ``docker load`` over the SSH
channel. This relies on moby's ``image/tarexport/load.go``: for each layer it looks
up the chain ID (``l.lss.Get(r.ChainID())``) and only opens the layer file
(``loadLayer``) when that chain does not exist, so an omitted file is never read. A
model-only change then ships one small layer instead of the whole image.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import shlex
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.errors import TargetError
from app.nextstep import run_command, say

BEGIN_KEYS = "-----BEGIN SSH HOST KEY KEYS-----"
END_KEYS = "-----END SSH HOST KEY KEYS-----"
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ssh-rsa")


def host_keys_from_console(console: str) -> list[str]:
    """``KEYTYPE BASE64`` lines between the cloud-init markers (last block wins)."""
    if BEGIN_KEYS not in console or END_KEYS not in console:
        return []
    block = console.rsplit(BEGIN_KEYS, 1)[1].split(END_KEYS, 1)[0]
    keys = []
    for line in block.splitlines():
        # serial consoles may prefix lines with syslog noise: find the key type
        for kind in KEY_TYPES:
            if kind + " " in line:
                parts = line[line.index(kind) :].split()
                if len(parts) >= 2:
                    keys.append(f"{parts[0]} {parts[1]}")
                break
    return keys


def fingerprint(key_line_or_blob: str | bytes) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key line or key blob."""
    blob = (
        key_line_or_blob
        if isinstance(key_line_or_blob, bytes)
        else base64.b64decode(key_line_or_blob.split()[1])
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def offered_host_key(host: str, port: int, timeout: float = 15.0) -> str:
    """The host key the SSH server offers, as ``KEYTYPE BASE64`` (not trusted: shown to
    the user to confirm)."""
    import socket

    import paramiko

    with socket.create_connection((host, port), timeout=timeout) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
            return f"{key.get_name()} {key.get_base64()}"
        finally:
            transport.close()


def ssh_banner(host: str, port: int, timeout: float = 3.0) -> bool:
    """Does an SSH server answer there? (A port forward accepts before the guest is up.)"""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class Run:
    status: int
    out: str
    err: str


class Ssh:
    """One SSH connection to the VM (paramiko, RejectPolicy, pinned host keys)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        private_key: str,
        host_keys: Iterable[str],
        timeout: float = 20.0,
    ) -> None:
        import paramiko

        self.host, self.port, self.user = host, port, user
        self.sudo = "" if user == "root" else "sudo -n "
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(private_key))
        client = paramiko.SSHClient()
        name = host if port == 22 else f"[{host}]:{port}"
        for line in host_keys:
            kind, data = line.split()[:2]
            client.get_host_keys().add(
                name, kind, paramiko.PKey.from_type_string(kind, base64.b64decode(data))
            )
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                host,
                port=port,
                username=user,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except paramiko.BadHostKeyException as exc:
            raise TargetError(
                f"The VM at {host}:{port} presented a different SSH host key "
                f"({fingerprint(exc.key.asbytes())}) than the one pinned for it. Refusing "
                "to connect.",
                "Someone may be intercepting the connection, or the VM was rebuilt. If you "
                "rebuilt it yourself, tear the deployment down and deploy again.",
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TargetError(
                    f"The VM at {host}:{port} presented an SSH host key that is not the "
                    "pinned one. Refusing to connect.",
                    "Tear the deployment down and deploy again if the VM was rebuilt.",
                ) from None
            raise TargetError(
                f"Could not log in to the VM at {host}:{port} as {user}: {exc}",
                "Check the SSH user setting (Debian images: debian; Ubuntu: ubuntu).",
            ) from None
        except OSError as exc:
            raise TargetError(
                f"Could not reach the VM at {host}:{port} over SSH: {exc}",
                say(
                    "Check that the security group lets you in (Who may call it setting) and "
                    "that the VM runs (",
                    run_command("status", "NAME"),
                    ").",
                ),
            ) from None
        self.client = client

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Ssh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, command: str, timeout: float = 120.0, check: bool = True, stdin: bytes | None = None
    ) -> Run:
        """Run a shell command; TargetError with its output when it fails and ``check``."""
        chan = self.client.get_transport().open_session(timeout=timeout)  # type: ignore[union-attr]
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = _drain(chan)
        status = chan.recv_exit_status()
        chan.close()
        result = Run(status, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and status != 0:
            raise TargetError(
                f"A command on the VM failed (exit {status}): "
                f"{(result.err or result.out).strip()[-300:]}",
                "See the details (--debug).",
                details=f"$ {command}\n{result.out}\n{result.err}",
            )
        return result

    def docker(self, args: str, **kw: Any) -> Run:
        return self.run(f"{self.sudo}docker {args}", **kw)

    def pipe_in(
        self,
        command: str,
        chunks: Iterable[bytes],
        timeout: float = 1800.0,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Run:
        """Stream ``chunks`` into a command's stdin (``docker load``)."""
        chan = self.client.get_transport().open_session(timeout=60)  # type: ignore[union-attr]
        chan.settimeout(timeout)
        chan.exec_command(command)
        for chunk in chunks:
            if cancelled():
                chan.close()
                from app.errors import Cancelled

                raise Cancelled()
            chan.sendall(chunk)
        chan.shutdown_write()
        out, err = _drain(chan)
        status = chan.recv_exit_status()
        chan.close()
        result = Run(status, out.decode(errors="replace"), err.decode(errors="replace"))
        if status != 0:
            raise TargetError(
                f"Loading the image on the VM failed: {(result.err or result.out).strip()[-300:]}",
                "Check the VM's disk space (`df -h`) and deploy again.",
                details=result.out + result.err,
            )
        return result


def _drain(chan: Any) -> tuple[bytes, bytes]:
    out, err = bytearray(), bytearray()
    while True:
        got = False
        if chan.recv_ready():
            out += chan.recv(65536)
            got = True
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            got = True
        if not got:
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            time.sleep(0.01)
    return bytes(out), bytes(err)


# ---- layer-aware image shipping ---------------------------------------------------------


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Docker's chain IDs of a layer stack (ChainID(n) = sha256(ChainID(n-1) + " " + DiffID))."""
    out: list[str] = []
    for diff in diff_ids:
        if not out:
            out.append(diff)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest())
    return out


def remote_chains(ssh: Ssh, exclude_id: str | None = None) -> set[str]:
    """Chain IDs of every layer stack the VM's Docker has (its images' RootFS.Layers)."""
    ids = ssh.docker("image ls -q --no-trunc", check=False).out.split()
    ids = sorted({i for i in ids if i and i != exclude_id})
    if not ids:
        return set()
    fmt = shlex.quote("{{json .RootFS.Layers}}")
    res = ssh.docker(f"image inspect --format {fmt} {' '.join(ids)}", check=False)
    chains: set[str] = set()
    for line in res.out.splitlines():
        with contextlib.suppress(ValueError):
            chains.update(chain_ids(json.loads(line) or []))
    return chains


@dataclass
class Shipment:
    """What one transfer sent: layers sent/skipped and the compressed bytes on the wire."""

    layers_total: int = 0
    layers_sent: int = 0
    bytes_sent: int = 0  # gzip bytes through the SSH channel
    raw_bytes: int = 0  # uncompressed tar bytes
    seconds: float = 0.0
    skipped: bool = False  # the VM had the image already

    def describe(self) -> str:
        if self.skipped:
            return "the VM has this image already; nothing sent"
        return (
            f"sent {self.layers_sent} of {self.layers_total} layers, "
            f"{self.bytes_sent / 1e6:.2f} MB compressed in {self.seconds:.1f} s"
        )


def save_to(engine: Any, image: str, out: Any) -> None:
    """``docker save`` of one local image (by tag, so the tag travels) into a file."""
    for chunk in engine.images.get(image).save(named=True):
        out.write(chunk)


def trimmed_tar(saved: Any, have: set[str], out: Any) -> tuple[int, int]:
    """Copy a ``docker save`` tar into ``out``, leaving out layer tars whose chain the VM
    has (``have``). Returns (layers in the image, layers written)."""
    with tarfile.open(fileobj=saved, mode="r:") as src:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        skip: set[str] = set()
        total = written = 0
        for item in manifest:
            config = json.load(src.extractfile(item["Config"]))  # type: ignore[arg-type]
            diff_ids = config["rootfs"]["diff_ids"]
            for path, chain in zip(item["Layers"], chain_ids(diff_ids), strict=True):
                total += 1
                if chain in have:
                    skip.add(path)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst:
            for member in src.getmembers():
                if member.name in skip:
                    continue
                if member.name.endswith("/layer.tar") or member.name.endswith(".tar"):
                    written += 1 if member.isfile() and member.name.endswith("layer.tar") else 0
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return total, written


def _gzip_chunks(raw: Any, counter: Shipment, size: int = 1 << 20) -> Iterable[bytes]:
    buf = io.BytesIO()
    gz = gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0)
    while True:
        data = raw.read(size)
        if not data:
            break
        counter.raw_bytes += len(data)
        gz.write(data)
        if buf.tell():
            chunk = buf.getvalue()
            buf.seek(0)
            buf.truncate()
            counter.bytes_sent += len(chunk)
            yield chunk
    gz.close()
    chunk = buf.getvalue()
    counter.bytes_sent += len(chunk)
    if chunk:
        yield chunk


def ship_image(
    ssh: Ssh,
    engine: Any,
    image_id: str,
    local_tag: str,
    vm_tag: str,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[str], None] = lambda s: None,
) -> Shipment:
    """Make ``vm_tag`` name image ``image_id`` on the VM, sending only missing layers."""
    started = time.monotonic()
    shipment = Shipment()
    have = ssh.docker(
        f"image inspect --format '{{{{.Id}}}}' {shlex.quote(vm_tag)}", check=False
    ).out.strip()
    if have == image_id:
        shipment.skipped = True
        return shipment
    chains = remote_chains(ssh, exclude_id=image_id)
    with tempfile.TemporaryFile() as saved, tempfile.TemporaryFile() as trimmed:
        progress("Saving the image on this computer")
        save_to(engine, local_tag, saved)
        saved.seek(0)
        shipment.layers_total, shipment.layers_sent = trimmed_tar(saved, chains, trimmed)
        trimmed.seek(0)
        progress(
            f"Sending {shipment.layers_sent} of {shipment.layers_total} image layers "
            "(the VM has the others)"
        )
        chunks = _gzip_chunks(trimmed, shipment)
        ssh.pipe_in(f"{ssh.sudo}docker load -q", chunks, cancelled=cancelled)
    ssh.docker(f"tag {image_id} {shlex.quote(vm_tag)}")
    shipment.seconds = time.monotonic() - started
    return shipment


__all__ = [
    "Shipment",
    "Ssh",
    "chain_ids",
    "fingerprint",
    "host_keys_from_console",
    "offered_host_key",
    "remote_chains",
    "ship_image",
    "ssh_banner",
    "trimmed_tar",
]
