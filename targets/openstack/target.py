"""The ``openstack`` target: the serving image on a fresh VM in an OpenStack cloud.

First deploy: an ed25519 keypair made for the deployment (private key in the keyring,
public key to Nova), a security group opening only SSH and the endpoint port to
``allowed_cidr``, the server with cloud-init user-data that makes sure Docker runs, a
floating IP only where the network gives no public address. Each is journaled before
it is created and tagged (Neutron tags, Nova metadata) with the deployment's name.

Then over SSH (host keys from the console log, pinned; paramiko ``RejectPolicy``): the
image is shipped layer-aware (``vm.ship_image``), and on the VM:

* ``/srv/modelship/NAME/secrets`` -- the API key and the deployment's TLS certificate
  and key, files readable only by the container's user, mounted read-only;
* a Docker network ``modelship-NAME`` and a *front* container publishing the endpoint
  port: a TCP relay (``resources/openstack/relay.py.txt``, run by the image's own
  Python) to the container named in ``/srv/modelship/NAME/front/backend``;
* one container per version (``modelship-NAME-vN``, restart policy, HTTPS).

Why the front: two containers cannot publish the same port, and the endpoint's URL and
certificate must not change between versions. A new version starts next to the old
one, must answer HTTPS inside the VM, and only then does the front switch to it (a
file rename: new connections go to the new one, open ones finish on the old one).
The old container is removed when the pipeline retires it after the smoke test; if the
smoke test fails, removing the new container switches the front back first. The
certificate is made once per deployment, so its pinned fingerprint holds for every
version.

The parts live beside this file: ``preflight`` (check, warnings, plan), ``cloud``
(Nova/Neutron), ``ssh`` (login, host keys), ``onvm`` (containers on the VM), ``tls``
(certificate, pinned client) and ``names``.
"""

from __future__ import annotations

import shlex
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, Resource
from app.endpoint.client import EndpointClient
from app.errors import CredentialError, TargetError
from app.progress import NullProgress, Progress
from targets.base import DeployContext, Target, TargetStatus
from targets.common import PreflightModule
from targets.kind import Kind
from targets.openstack import client as osc
from targets.openstack import preflight
from targets.openstack.cloud import create_cloud_resources, destroy_in_cloud, power, sweep_cloud
from targets.openstack.kind import KIND
from targets.openstack.names import MANAGED, base_name
from targets.openstack.onvm import destroy_on_vm, setup_vm, start_version, sweep_vm
from targets.openstack.settings import OpenStackSettings
from targets.openstack.ssh import Vm, ssh_ready, vm_of
from targets.openstack.tls import VmEndpointClient

if TYPE_CHECKING:
    from app.store.profile import Profile
    from targets.openstack.vm import Ssh


class OpenStackTarget(PreflightModule, Target):
    preflight: ClassVar[ModuleType] = preflight  # check, warnings, plan
    kind: ClassVar[Kind] = KIND
    replacement: ClassVar = "side_by_side"

    # ---- deploy ---------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: OpenStackSettings = ctx.settings
        if ctx.image is None:
            raise TargetError(
                "There is no image to run.", "Deploy again; the build step makes the image."
            )
        for warning in self.warnings(ctx.profile):
            ctx.progress.update(None, f"Warning: {warning}")
        reuse = preflight.reusable(ctx.previous, s)
        ctx.cancel.raise_if_cancelled()
        if reuse is not None:
            shared = [r for r in reuse if r.kind != "container"]
            vm = vm_of(shared)
            assert vm is not None
            ssh = vm.connect()
            fp = str(ctx.previous.endpoint_obj().tls_sha256)  # type: ignore[union-attr]
        else:
            shared, vm, ssh, fp = self._create_vm(ctx)
        try:
            setup = next(r for r in shared if r.kind == "vm_setup")
            ctx.cancel.raise_if_cancelled()
            container = start_version(ctx, ssh, vm, setup)
        finally:
            ssh.close()
        server = next((r for r in shared if r.kind == "server"), None)
        sdata = server.data if server is not None else {}
        host = sdata.get("endpoint_host")
        return Endpoint(
            # the name when there is one (bwCloud: addresses may change, names stay);
            # the client connects to ``address`` and sends the name (SNI, Host)
            url=f"https://{host or _url_host(vm.host)}:{s.port}",
            target=self.name,
            resources=[*shared, container],
            auth="bearer" if s.api_key else "none",
            tls_sha256=fp,
            data={
                "region": s.region,
                "cloud": s.cloud,
                "address": vm.host,
                "reached_by": sdata.get("reached_by"),
            },
        )

    def client(self, endpoint: Endpoint, profile: Profile | None = None) -> EndpointClient:
        """HTTPS with the pinned certificate, connecting to the recorded address (IPv6
        in brackets in the URL) and naming ``endpoint_host`` for SNI and Host when the
        URL carries it; the name is looked up only if the address stops answering."""
        base = super().client(endpoint, profile)
        address = (endpoint.data or {}).get("address")
        return VmEndpointClient(
            endpoint.url,
            headers=base.headers,
            tls_sha256=endpoint.tls_sha256,
            connect_to=str(address) if address else None,
        )

    def _create_vm(self, ctx: DeployContext) -> tuple[list[Resource], Vm, Ssh, str]:
        """Keypair, security group, server, floating IP; then SSH in and set up the VM."""
        resources, vm, address = create_cloud_resources(ctx)
        ssh = ssh_ready(vm, ctx.settings, ctx)
        try:
            setup, fp = setup_vm(ctx, ssh, address)
        except BaseException:
            ssh.close()
            raise
        resources.append(setup)
        return resources, vm, ssh, fp

    # ---- remove ---------------------------------------------------------------------
    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        progress = progress or NullProgress()
        kind = resource.kind
        if kind in {"container", "vm_image", "vm_setup"}:
            return destroy_on_vm(resource, progress)
        if kind not in {"keypair", "security_group", "server", "floating_ip"}:
            return False
        return destroy_in_cloud(resource, progress)

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """After a new version passed on the same VM: remove the old container only.

        When no newer container took over (the name moved to another target), the VM
        is no longer used: everything of it goes."""
        containers = [r for r in record.resources() if r.kind == "container"]
        vm = vm_of(record.resources())
        if vm is None or not containers:
            return super().retire(record, progress)
        try:
            ssh = vm.connect(timeout=10)
        except (CredentialError, TargetError) as exc:
            # cannot tell whether a newer version runs there: remove nothing
            progress.log(f"Could not reach the previous VM to retire it ({exc.message})")
            return []
        try:
            ours = {c.id for c in containers}
            front = f"{base_name(record.name)}-front"
            running = ssh.docker(
                f"ps --filter label={MANAGED} "
                f"--filter label=modelship.deployment={shlex.quote(record.name)} "
                "--format '{{.Names}}'",
                timeout=60,
            ).out.split()
            taken_over = any(n not in ours and n != front for n in running)
        finally:
            ssh.close()
        if not taken_over:
            return super().retire(record, progress)
        return [c.describe() for c in containers if self.destroy(c, progress)]

    def teardown(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Everything of the deployment, VM side first; then check by listing."""
        removed: list[str] = []
        resources = [r for r in reversed(record.all_resources(self.name))]
        on_vm = [r for r in resources if r.kind in {"vm_image", "container", "vm_setup"}]
        cloud = [r for r in resources if r.kind in {"floating_ip", "server", "security_group",
                                                    "keypair"}]  # fmt: skip
        order = {"container": 0, "vm_image": 1, "vm_setup": 2}
        vm = vm_of(record.all_resources(self.name))
        if vm is not None:
            removed += sweep_vm(vm, record.name, progress)
        for r in sorted(on_vm, key=lambda r: order[r.kind]):
            if self.destroy(r, progress):
                removed.append(r.describe())
        order2 = {"floating_ip": 0, "server": 1, "security_group": 2, "keypair": 3}
        for r in sorted(cloud, key=lambda r: order2[r.kind]):
            if self.destroy(r, progress):
                removed.append(r.describe())
        removed += sweep_cloud(record, progress)
        return removed

    # ---- stop and start -------------------------------------------------------------
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """Shut the VM down (Nova ``os-stop``): it keeps its disk, addresses and pinned
        host key; the containers come back with it (``--restart unless-stopped``)."""
        power(record, progress, on=False)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Boot the stopped VM again (Nova ``os-start``); the caller waits for /ping."""
        power(record, progress, on=True)
        return None

    def status(self, record: DeploymentRecord) -> TargetStatus:
        servers = [r for r in record.resources() if r.kind == "server"]
        if not servers:
            return TargetStatus(False, "no server recorded")
        r = servers[0]
        try:
            conn = osc.connect(r.data["cloud"], r.data.get("region"))
        except (CredentialError, TargetError) as exc:
            return TargetStatus(False, exc.message)
        try:
            server = conn.compute.find_server(r.data.get("server_id") or r.id, ignore_missing=True)
        except Exception as exc:
            return TargetStatus(False, str(osc.translate(exc, "reading the server")))
        finally:
            conn.close()
        if server is None:
            return TargetStatus(False, f"server {r.id} is gone")
        data: dict[str, Any] = {"server": server.name, "status": server.status,
                                "address": r.data.get("host")}  # fmt: skip
        running = str(server.status).upper() == "ACTIVE"
        detail = f"server {server.name} {server.status} at {r.data.get('host')}"
        container = next((c for c in record.resources() if c.kind == "container"), None)
        vm = vm_of(record.resources())
        if running and container is not None and vm is not None:
            try:
                with vm.connect(timeout=10) as ssh:
                    state = (
                        ssh.docker(
                            f"inspect --format '{{{{.State.Status}}}}' {shlex.quote(container.id)}",
                            check=False,
                        ).out.strip()
                        or "gone"
                    )
                data["container"] = state
                detail += f", container {container.id} {state}"
                running = state == "running"
            except (CredentialError, TargetError) as exc:
                detail += f" (cannot log in: {exc.message})"
        return TargetStatus(running, detail, data)

    def logs(self, record: DeploymentRecord, lines: int = 100) -> str:
        container = next((c for c in record.resources() if c.kind == "container"), None)
        vm = vm_of(record.resources())
        if container is None or vm is None:
            return ""
        with vm.connect() as ssh:
            res = ssh.docker(f"logs --tail {int(lines)} {shlex.quote(container.id)}", check=False)
        return (res.out + res.err).rstrip()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
