"""Reaching the VM: how to log in (``Vm``), the deployment's SSH key, the host keys
read from the console (or confirmed by the user), and waiting until SSH and Docker answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.domain import Resource
from app.errors import TargetError
from app.nextstep import say, set_setting
from app.progress import long_wait
from app.waiting import wait_until
from targets.base import DeployContext
from targets.openstack import client as osc
from targets.openstack.kind import CLOUD_INIT
from targets.openstack.settings import OpenStackSettings

if TYPE_CHECKING:
    from targets.openstack.vm import Ssh


@dataclass
class Vm:
    """How to reach the deployment's VM (what every SSH step needs)."""

    host: str
    ssh_port: int
    ssh_user: str
    host_keys: list[str]
    key_secret: str

    def connect(self, timeout: float = 20.0) -> Ssh:
        from app.store.secrets import get_secret
        from targets.openstack.vm import Ssh

        return Ssh(
            self.host,
            self.ssh_port,
            self.ssh_user,
            get_secret(self.key_secret),
            self.host_keys,
            timeout=timeout,
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ssh_port": self.ssh_port,
            "ssh_user": self.ssh_user,
            "host_keys": list(self.host_keys),
            "key_secret": self.key_secret,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Vm | None:
        if not data.get("host") or not data.get("host_keys"):
            return None
        return cls(
            data["host"],
            int(data["ssh_port"]),
            data["ssh_user"],
            list(data["host_keys"]),
            data["key_secret"],
        )


def vm_of(resources: list[Resource]) -> Vm | None:
    for r in resources:
        if r.kind == "server":
            return Vm.from_data(r.data)
    return None


def make_ssh_key() -> tuple[str, str]:
    """(private key in OpenSSH PEM, public key line) of a new ed25519 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + " modelship"


def vm_data_of(ctx: DeployContext, ssh: Ssh) -> dict[str, Any]:
    for r in ctx.journal.resources():
        if r.kind == "server":
            return {k: r.data[k] for k in ("host", "ssh_port", "ssh_user", "host_keys",
                                           "key_secret") if k in r.data}  # fmt: skip
    return {}


def banner(host: str, port: int) -> bool:
    from targets.openstack.vm import ssh_banner

    return ssh_banner(host, port)


def read_host_keys(
    conn: Any, server_id: str, address: str, s: OpenStackSettings, ctx: DeployContext
) -> list[str]:
    """The host keys cloud-init printed on the console; else the key the user confirmed."""
    from targets.openstack.vm import fingerprint, host_keys_from_console, offered_host_key

    accepted = (s.accept_host_key or "").strip() or None
    state: dict[str, Any] = {}

    def probe() -> str:
        with osc.calls("reading the server's console", s.cloud):
            out = conn.compute.get_server_console_output(server_id) or {}
        console = str(out.get("output") or "")
        state["keys"] = host_keys_from_console(console)
        if state["keys"]:
            return "keys"
        if accepted and banner(address, s.ssh_port):
            return "confirm"
        if "Cloud-init" in console and " finished at " in console:
            return "no keys"
        return "booting"

    outcome = wait_until(
        probe,
        lambda v: v in {"keys", "confirm", "no keys"},
        timeout=s.start_timeout,
        cancel=ctx.cancel,
        progress=ctx.progress,
        what="the server's SSH host keys on its console",
        describe=lambda v: "Waiting for the VM to boot (host keys on its console)",
        retry_on=(osc.CloudUnavailable,),
        hint=say(
            "The image may not run cloud-init: deploy with ",
            set_setting("accept_host_key", "Accepted SSH host key"),
            " set to the key's fingerprint after checking it, or choose an image with cloud-init.",
        ),
        interval=0.3,
        max_interval=3.0,  # under uvicorn's 5 s keep-alive: fewer stale pooled connections
    )
    if outcome == "keys":
        return list(state["keys"])
    wait_until(
        lambda: banner(address, s.ssh_port),
        bool,
        timeout=s.start_timeout,
        cancel=ctx.cancel,
        progress=ctx.progress,
        what=f"SSH on {address}:{s.ssh_port}",
        interval=0.5,
    )
    offered = offered_host_key(address, s.ssh_port)
    fp = fingerprint(offered)
    if accepted and accepted == fp:
        ctx.progress.update(None, f"Using the host key you confirmed ({fp})")
        return [offered]
    raise TargetError(
        f"The VM's console shows no SSH host keys, so its key cannot be checked "
        f"automatically. The VM at {address}:{s.ssh_port} offers the key {fp}"
        + (f", not the one you confirmed ({accepted})." if accepted else "."),
        say(
            "Compare it with the key shown in the cloud's dashboard (Instance > Log) and, "
            f"if it matches, deploy again with {fp} in ",
            set_setting("accept_host_key", "Accepted SSH host key"),
            ".",
        ),
    )


def ssh_ready(vm: Vm, s: OpenStackSettings, ctx: DeployContext) -> Ssh:
    """Log in, wait for cloud-init to finish, and make sure Docker answers."""
    holder: dict[str, Ssh] = {}

    def probe() -> bool:
        try:
            holder["ssh"] = vm.connect(timeout=15)
        except TargetError as exc:
            if "host key" in exc.message:
                raise
            return False
        return True

    wait_until(
        probe,
        bool,
        timeout=s.start_timeout,
        cancel=ctx.cancel,
        progress=ctx.progress,
        what=f"SSH login to {vm.host}:{vm.ssh_port} as {vm.ssh_user}",
        describe=lambda v: "Waiting for SSH",
        hint="Check the SSH user setting (Debian: debian, Ubuntu: ubuntu).",
        interval=0.5,
    )
    ssh = holder["ssh"]
    try:
        long_wait(ctx.progress, CLOUD_INIT, "Waiting for cloud-init to finish on the VM")
        ssh.run(
            "if command -v cloud-init >/dev/null; then cloud-init status --wait "
            ">/dev/null 2>&1 || true; fi",
            timeout=s.start_timeout,
        )
        ctx.cancel.raise_if_cancelled()
        res = ssh.docker("version --format '{{.Server.Version}}'", check=False, timeout=60)
        if res.status != 0:
            raise TargetError(
                f"Docker does not run on the VM: {(res.err or res.out).strip()[-200:]}",
                "The image needs cloud-init (which installs Docker) or Docker itself: "
                "choose an image such as 'Debian 12'.",
            )
    except BaseException:
        ssh.close()
        raise
    return ssh
