"""Nova and Neutron: the deployment's keypair, security group, server and floating IP
(made, waited for, powered, removed, swept), and how the VM is reached (``Facts`` read
from the cloud, ``Reach`` chosen from them)."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from typing import Any

from app.domain import DeploymentRecord, Resource
from app.errors import CredentialError, TargetError
from app.progress import Progress, long_wait
from app.waiting import wait_until
from targets.base import DeployContext, Problem
from targets.openstack import client as osc
from targets.openstack.kind import VM_BOOT
from targets.openstack.names import USER_DATA, base_name, cloud_tag, ssh_key_secret
from targets.openstack.settings import OpenStackSettings
from targets.openstack.ssh import Vm, make_ssh_key, read_host_keys


def create_cloud_resources(ctx: DeployContext) -> tuple[list[Resource], Vm, str]:
    """Keypair, security group, server, floating IP; the VM's pinned host keys.

    Returns what was made, how to reach the VM and the address it is reached by."""
    from app.store.secrets import set_secret

    s: OpenStackSettings = ctx.settings
    name = base_name(ctx.name)
    where = {"cloud": s.cloud, "region": s.region, "deployment": ctx.name}
    conn = osc.connect(s.cloud, s.region)
    try:
        resources: list[Resource] = []
        with osc.calls("looking up the image, flavor and network", s.cloud):
            image = conn.image.find_image(s.image, ignore_missing=False)
            flavor = conn.compute.find_flavor(s.flavor, ignore_missing=False)
            network = find_network(conn, s.network)
        # keypair: private key to the keyring, public key to Nova
        ctx.cancel.raise_if_cancelled()
        secret = ssh_key_secret(ctx.name)
        keypair = Resource("keypair", name, f"keypair {name}", {**where, "key_secret": secret})
        ctx.journal.record(keypair)
        ctx.progress.update(None, f"Creating keypair {name}")
        private, public = make_ssh_key()
        set_secret(secret, private)
        with osc.calls("creating the keypair", s.cloud):
            conn.compute.create_keypair(name=name, public_key=public, type="ssh")
        resources.append(keypair)
        # security group: SSH and the endpoint port, from allowed_cidr only
        ctx.cancel.raise_if_cancelled()
        sg_res = Resource("security_group", name, f"security group {name}", dict(where))
        ctx.journal.record(sg_res)
        ctx.progress.update(None, f"Creating security group {name}")
        with osc.calls("creating the security group", s.cloud):
            sg = conn.network.create_security_group(
                name=name, description=f"ModelShip deployment {ctx.name}"
            )
            sg_res.data["sg_id"] = sg.id
            ctx.journal.update(sg_res)
            conn.network.set_tags(sg, [cloud_tag(ctx.name)])
            for cidr in s.cidrs():
                for port in sorted({s.ssh_port, s.port}):
                    conn.network.create_security_group_rule(
                        security_group_id=sg.id,
                        direction="ingress",
                        ethertype=f"IPv{cidr.version}",
                        protocol="tcp",
                        port_range_min=port,
                        port_range_max=port,
                        remote_ip_prefix=str(cidr),
                    )
        resources.append(sg_res)
        # the server
        ctx.cancel.raise_if_cancelled()
        srv = Resource("server", name, f"server {name}", dict(where))
        ctx.journal.record(srv)
        long_wait(ctx.progress, VM_BOOT, f"Creating server {name} ({s.image}, {s.flavor})")
        user_data = USER_DATA.format(name=ctx.name)
        with osc.calls("creating the server", s.cloud):
            server = conn.compute.create_server(
                name=name,
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
                key_name=name,
                security_groups=[{"name": sg.id}],
                user_data=base64.b64encode(user_data.encode()).decode(),
                metadata={"modelship.managed": "true", "modelship.deployment": ctx.name},
            )
        srv.data["server_id"] = server.id
        ctx.journal.update(srv)
        resources.append(srv)
        server = wait_active(conn, server.id, s, ctx)
        with osc.calls("looking up the server's network", s.cloud):
            reach = choose(s, facts(conn, network))
        if reach.how is None:
            raise TargetError(reach.why, reach.fix)
        fixed4 = fixed_address(server, network.name, 4)
        fixed6 = fixed_address(server, network.name, 6)
        address = fixed6 if reach.how == "IPv6" else fixed4
        ctx.progress.update(None, f"Reaching the server by its {reach.how}: {reach.why}")
        if reach.how == "floating IP":
            ctx.cancel.raise_if_cancelled()
            fip_res = Resource("floating_ip", name, f"floating IP for {name}", dict(where))
            ctx.journal.record(fip_res)
            ctx.progress.update(None, "Giving the server a public address (floating IP)")
            with osc.calls("creating the floating IP", s.cloud):
                ext = external_network(conn)
                ports = list(conn.network.ports(device_id=server.id))
                if not ports:
                    raise TargetError(
                        "The server has no network port for a floating IP.",
                        "Deploy again; if it keeps happening, choose another network.",
                    )
                fip = conn.network.create_ip(
                    floating_network_id=ext.id,
                    port_id=ports[0].id,
                    description=f"ModelShip deployment {ctx.name}",
                )
                fip_res.data["fip_id"] = fip.id
                fip_res.data["address"] = fip.floating_ip_address
                ctx.journal.update(fip_res)
                conn.network.set_tags(fip, [cloud_tag(ctx.name)])
            address = fip.floating_ip_address
            resources.append(fip_res)
        if not address:
            raise TargetError(
                f"The server {name} has no {reach.how} address this computer can reach.",
                "Set Public address (floating_ip) to auto or always, or pick the "
                "public network (bwCloud: public-belwue).",
            )
        host_keys = read_host_keys(conn, server.id, address, s, ctx)
    finally:
        conn.close()
    vm = Vm(address, s.ssh_port, s.ssh_user, host_keys, secret)
    srv.data.update(vm.to_data())
    srv.data["address"] = address
    srv.data["reached_by"] = reach.how
    # every address the endpoint may be reached by, for the certificate
    srv.data["addresses"] = list(
        dict.fromkeys(
            a
            for a in (
                address,
                fixed4 if reach.public_v4 else None,
                fixed6 if reach.ipv6 else None,
            )
            if a
        )
    )
    if s.endpoint_host:
        srv.data["endpoint_host"] = endpoint_name(s, server.id, ctx.name)
    ctx.journal.update(srv)
    return resources, vm, address


def wait_active(conn: Any, server_id: str, s: OpenStackSettings, ctx: DeployContext):
    def probe() -> Any:
        with osc.calls("waiting for the server", s.cloud):
            return conn.compute.get_server(server_id)

    def failed(server: Any) -> str | None:
        if str(server.status).upper() == "ERROR":
            fault = (server.fault or {}).get("message") if server.fault else None
            return f"the cloud could not start it ({fault or 'no reason given'})"
        return None

    return wait_until(
        probe,
        lambda server: str(server.status).upper() == "ACTIVE",
        failed,
        timeout=s.start_timeout,
        cancel=ctx.cancel,
        progress=ctx.progress,
        what="the server",
        describe=lambda server: f"Server {server.status}",
        hint="The cloud is slow to start VMs right now: deploy again later.",
        retry_on=(osc.CloudUnavailable,),
        fail_hint="Pick another flavor or image, or ask the cloud's support; "
        "the deploy's preflight shows quota problems.",
        interval=0.2,
        max_interval=5.0,
    )


def destroy_in_cloud(resource: Resource, progress: Progress) -> bool:
    """Remove a keypair, security group, server or floating IP (False: it was gone)."""
    kind = resource.kind
    data = resource.data
    if kind == "keypair":
        removed = False
        from app.store.secrets import delete_secret

        conn = osc.connect(data["cloud"], data.get("region"))
        try:
            with osc.calls("removing the keypair", data["cloud"]):
                if conn.compute.find_keypair(resource.id, ignore_missing=True) is not None:
                    progress.update(None, f"Removing keypair {resource.id}")
                    conn.compute.delete_keypair(resource.id, ignore_missing=True)
                    removed = True
        finally:
            conn.close()
        with contextlib.suppress(CredentialError):
            removed = delete_secret(data.get("key_secret") or ssh_key_secret("x")) or removed
        return removed
    conn = osc.connect(data["cloud"], data.get("region"))
    try:
        if kind == "floating_ip":
            fip_id = data.get("fip_id")
            if not fip_id:
                return sweep_fips(conn, data["deployment"], progress)
            with osc.calls("removing the floating IP", data["cloud"]):
                if conn.network.find_ip(fip_id, ignore_missing=True) is None:
                    return False
                progress.update(None, f"Removing floating IP {data.get('address') or ''}")
                conn.network.delete_ip(fip_id, ignore_missing=True)
            return True
        if kind == "server":
            server_id = data.get("server_id")
            if not server_id:  # journaled, then creation failed or crashed: find by name
                found = conn.compute.find_server(resource.id, ignore_missing=True)
                if found is None:
                    return False
                server_id = found.id
            return delete_server(conn, server_id, resource.id, data["cloud"], progress)
        # security group
        sg_id = data.get("sg_id")
        with osc.calls("removing the security group", data["cloud"]):
            sg = (
                conn.network.find_security_group(sg_id, ignore_missing=True)
                if sg_id
                else conn.network.find_security_group(resource.id, ignore_missing=True)
            )
            if sg is None:
                return False
            progress.update(None, f"Removing security group {sg.name}")
            conn.network.delete_security_group(sg.id, ignore_missing=True)
        return True
    finally:
        conn.close()


def sweep_cloud(record: DeploymentRecord, progress: Progress) -> list[str]:
    """Find what is still tagged or named for the deployment, remove it, list again."""
    s = OpenStackSettings.model_validate(record.profile["target"]["settings"])
    name = base_name(record.name)
    conn = osc.connect(s.cloud, s.region)
    out = []
    try:
        with osc.calls("checking that nothing is left", s.cloud):
            for server in conn.compute.servers(name=f"^{name}$"):
                if (server.metadata or {}).get("modelship.deployment") == record.name:
                    delete_server(conn, server.id, name, s.cloud, progress)
                    out.append(f"server {name}")
            if sweep_fips(conn, record.name, progress):
                out.append("floating IP")
            for sg in conn.network.security_groups(name=name):
                conn.network.delete_security_group(sg.id, ignore_missing=True)
                out.append(f"security group {name}")
            if conn.compute.find_keypair(name, ignore_missing=True) is not None:
                conn.compute.delete_keypair(name, ignore_missing=True)
                out.append(f"keypair {name}")
            left = [
                *[f"server {x.name}" for x in conn.compute.servers(name=f"^{name}$")
                  if (x.metadata or {}).get("modelship.deployment") == record.name],
                *[f"security group {x.name}" for x in conn.network.security_groups(name=name)],
                *[f"floating IP {x.floating_ip_address}"
                  for x in conn.network.ips(tags=cloud_tag(record.name))],
            ]  # fmt: skip
            if conn.compute.find_keypair(name, ignore_missing=True) is not None:
                left.append(f"keypair {name}")
    finally:
        conn.close()
    from app.store.secrets import delete_secret

    with contextlib.suppress(CredentialError):
        if delete_secret(ssh_key_secret(record.name)):
            out.append("SSH key in the keyring")
    if left:
        raise TargetError(
            f"These are still in the cloud after the teardown: {', '.join(left)}.",
            "Run teardown again in a minute (the cloud may still be deleting them).",
        )
    return out


def power(record: DeploymentRecord, progress: Progress, *, on: bool) -> None:
    r = next((r for r in record.resources() if r.kind == "server"), None)
    if r is None:
        raise TargetError(f"{record.name!r} has no server recorded.", "Deploy it again.")
    server_id, cloud = r.data.get("server_id") or r.id, r.data["cloud"]
    want, verb = ("ACTIVE", "start") if on else ("SHUTOFF", "stop")
    conn = osc.connect(cloud, r.data.get("region"))
    try:
        with osc.calls("starting the server" if on else "stopping the server", cloud):
            server = conn.compute.find_server(server_id, ignore_missing=True)
            if server is None:
                raise TargetError(f"The server {r.id} is gone.", "Deploy it again.")
            if str(server.status).upper() != want:
                progress.update(None, f"{'Starting' if on else 'Stopping'} server {r.id}")
                if on:
                    conn.compute.start_server(server_id)
                else:
                    conn.compute.stop_server(server_id)
            wait_until(
                lambda: str(conn.compute.get_server(server_id).status).upper(),
                lambda status: status == want,
                lambda status: f"the server went to {status}" if status == "ERROR" else None,
                timeout=600,
                progress=progress,
                what=f"the server {r.id} to {verb}",
                interval=0.2,
                max_interval=5,
            )
    finally:
        conn.close()


def find_network(conn: Any, name: str | None) -> Any:
    """The network named in the settings, else the only one, else the public one."""
    with osc.calls("looking up the network"):
        nets = list(conn.network.networks())
    if name:
        for n in nets:
            if name in {n.name, n.id}:
                return n
        raise TargetError(
            f"The cloud has no network named {name!r}.",
            osc.close_names(name, [n.name for n in nets if n.name]),
        )
    if len(nets) == 1:
        return nets[0]
    # servers go on a shared network or one of the project's own; an external network
    # that is neither (bwCloud's IPv6 regions) is only a router's gateway
    usable = [n for n in nets if n.is_shared or n.project_id == conn.current_project_id]
    if len(usable) == 1:
        return usable[0]
    external = [n for n in (usable or nets) if n.is_router_external]
    if len(external) == 1:
        return external[0]
    raise TargetError(
        "The cloud has several networks; which one should the VM use?",
        "Set the Network setting: " + ", ".join(repr(n.name) for n in nets) + ".",
    )


def external_network(conn: Any) -> Any:
    external = [n for n in conn.network.networks() if n.is_router_external]
    if not external:
        raise TargetError(
            "The cloud has no external network to take a floating IP from.",
            "Set Public address (floating_ip) to never and use a network with public addresses.",
        )
    return external[0]


@dataclass
class Facts:
    """What the cloud reports about reaching a server on ``network``."""

    network: str
    region: str
    public_v4: bool  # an IPv4 subnet on an external (router:external) network: no NAT
    ipv6: bool  # an IPv6 subnet: IPv6 is routed, never NATed
    floating: bool  # the region can give this network a floating IP
    no_floating: str  # why not, in words ("" when it can)


@dataclass
class Reach:
    """How the endpoint is reached (``how`` None: no way) and why, in plain words."""

    how: str | None  # "floating IP" | "public IPv4" | "IPv6"
    why: str
    fix: str = ""
    public_v4: bool = False
    ipv6: bool = False


def facts(conn: Any, network: Any) -> Facts:
    """Read from the cloud, never from address ranges: the network's subnets (IPv4 on an
    external network is public; IPv6 is public), external networks, routers and the
    floating-IP quota."""
    versions = set()
    for sid in network.subnet_ids or []:
        sub = conn.network.get_subnet(sid)
        versions.add(int(sub.ip_version))
    external = bool(network.is_router_external)
    region = str(getattr(conn.config, "region_name", None) or "this region")
    reasons: list[str] = []
    if external:
        reasons.append(f"the network {network.name} is itself external")
    else:
        exts = [n for n in conn.network.networks() if n.is_router_external]
        ext4 = [
            n
            for n in exts
            if any(int(conn.network.get_subnet(i).ip_version) == 4 for i in n.subnet_ids or [])
        ]
        if not ext4:
            reasons.append(f"{region} has no external IPv4 network to take them from")
        else:
            quota = conn.network.get_quota(conn.current_project_id, details=True)
            limit = (getattr(quota, "floating_ips", None) or {}).get("limit", -1)
            if limit == 0:
                reasons.append(f"your project's floating-IP quota in {region} is 0")
            ids = {n.id for n in ext4}
            routed = any(
                (r.external_gateway_info or {}).get("network_id") in ids
                for r in conn.network.routers()
            )
            if not routed:
                reasons.append(f"no router connects {network.name} to the external network")
    return Facts(
        network=str(network.name),
        region=region,
        public_v4=external and 4 in versions,
        ipv6=6 in versions,
        floating=not reasons,
        no_floating="; ".join(reasons),
    )


def choose(s: OpenStackSettings, f: Facts) -> Reach:
    """A floating IP where the profile asks for one and the region has them; else the
    network's public IPv4 address; else the server's IPv6 address."""
    wants = s.floating_ip == "always" or (s.floating_ip == "auto" and not f.public_v4)
    extra = {"public_v4": f.public_v4, "ipv6": f.ipv6}
    if wants and f.floating:
        why = (
            "asked for (Public address = always)"
            if s.floating_ip == "always"
            else f"the network {f.network} gives no public IPv4 address"
        )
        return Reach("floating IP", why, **extra)
    no_fip = f"no floating IP: {f.no_floating}" if wants else ""
    if f.public_v4:
        why = f"the network {f.network} gives public IPv4 addresses"
        return Reach("public IPv4", why + (f" ({no_fip})" if no_fip else ""), **extra)
    if f.ipv6:
        why = (
            f"no IPv4 ingress in {f.region}: the network {f.network} gives only private IPv4 "
            "addresses (behind NAT)"
            + (f" and {no_fip}" if no_fip else ", and Public address is never")
            + "; its IPv6 address is reached directly (IPv6 is not NATed), so callers need "
            "IPv6"
        )
        return Reach("IPv6", why, **extra)
    return Reach(
        None,
        f"The network {f.network} in {f.region} gives no address your computer can reach: "
        "its IPv4 addresses are private (behind NAT), it has no IPv6 subnet"
        + (f", and {no_fip}." if no_fip else ", and Public address is set to never."),
        "Choose a network with public addresses (the Network setting; bwCloud: "
        "public-belwue), set Public address "
        "(floating_ip) to auto in a region that has floating IPs, or ask the cloud's "
        "support for floating IPs.",
        **extra,
    )


def reach_problems(s: OpenStackSettings, reach: Reach) -> list[Problem]:
    if reach.how is None:
        kind = "quota" if "quota" in reach.why else "environment"
        return [Problem(reach.why, reach.fix, kind, "network")]
    family = 6 if reach.how == "IPv6" else 4
    if not any(c.version == family for c in s.cidrs()):
        return [
            Problem(
                f"The endpoint will be reached over IPv{family} ({reach.why}), but 'Who may "
                f"call it' ({s.allowed_cidr}) names only IPv{10 - family} ranges, so no one "
                "could reach it.",
                f"Add your IPv{family} range to allowed_cidr, e.g. "
                + ("2001:7c0::/32" if family == 6 else "132.230.0.0/16")
                + ", or 0.0.0.0/0 for anyone.",
                "setting",
                "allowed_cidr",
            )
        ]
    return []


def plan_reach(s: OpenStackSettings) -> Reach | None:
    """The address choice for the plan; None when the cloud cannot say now."""
    try:
        conn = osc.connect(s.cloud, s.region)
    except Exception:
        return None
    try:
        return choose(s, facts(conn, find_network(conn, s.network)))
    except Exception:
        return None
    finally:
        conn.close()


def endpoint_name(s: OpenStackSettings, server_id: str, deployment: str) -> str | None:
    """``endpoint_host`` filled in for this server (bwCloud's instance names)."""
    if not s.endpoint_host:
        return None
    return s.endpoint_host.format(
        server_id=server_id, region=(s.region or "").lower(), name=base_name(deployment)
    )


def fixed_address(server: Any, network_name: str, version: int = 4) -> str | None:
    """The server's fixed address of ``version`` on its network (else on any)."""
    addresses = server.addresses or {}

    def fixed(entry: dict[str, Any]) -> bool:
        return (
            int(entry.get("version", 4)) == version
            and entry.get("OS-EXT-IPS:type", "fixed") == "fixed"
        )

    for entry in addresses.get(network_name) or []:
        if fixed(entry):
            return str(entry["addr"])
    for entries in addresses.values():
        for entry in entries:
            if fixed(entry):
                return str(entry["addr"])
    return None


def delete_server(conn: Any, server_id: str, name: str, cloud: str, progress: Progress) -> bool:
    with osc.calls("removing the server", cloud):
        if conn.compute.find_server(server_id, ignore_missing=True) is None:
            return False
        progress.update(None, f"Removing server {name}")
        conn.compute.delete_server(server_id, ignore_missing=True)

        def gone() -> bool:
            return conn.compute.find_server(server_id, ignore_missing=True) is None

        wait_until(
            gone,
            bool,
            timeout=600,
            progress=progress,
            what=f"the server {name} to go",
            interval=0.2,
            max_interval=5,
        )
    return True


def sweep_fips(conn: Any, deployment: str, progress: Progress) -> bool:
    found = False
    for fip in conn.network.ips(tags=cloud_tag(deployment)):
        progress.update(None, f"Removing floating IP {fip.floating_ip_address}")
        conn.network.delete_ip(fip.id, ignore_missing=True)
        found = True
    return found
