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
  port: a TCP relay (``FRONT_PY``, run by the image's own Python) to the container
  named in ``/srv/modelship/NAME/front/backend``;
* one container per version (``modelship-NAME-vN``, restart policy, HTTPS).

Why the front: two containers cannot publish the same port, and the endpoint's URL and
certificate must not change between versions. A new version starts next to the old
one, must answer HTTPS inside the VM, and only then does the front switch to it (a
file rename: new connections go to the new one, open ones finish on the old one).
The old container is removed when the pipeline retires it after the smoke test; if the
smoke test fails, removing the new container switches the front back first. The
certificate is made once per deployment, so its pinned fingerprint holds for every
version.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from app.domain import DeploymentRecord, Endpoint, Resource
from app.endpoint import EndpointClient
from app.errors import CredentialError, TargetError
from app.progress import NullProgress, Progress
from app.waiting import wait_until
from targets.base import DeployContext, PlanItem, Problem, Target, TargetStatus
from targets.openstack import client as osc
from targets.openstack.settings import OpenStackSettings

if TYPE_CHECKING:
    from app.profile import Profile
    from targets.openstack.vm import Ssh

MANAGED = "modelship.managed=true"
CONTAINER_PORT = 8080
FRONT_PORT = 8443
VM_ROOT = "/srv/modelship"
SECRET_DIR_IN_CONTAINER = "/run/modelship"
DOCKER_MB = 400  # what Docker, the OS and the server need besides the model
# cloud-init: make sure Docker is there and runs. Images with docker.io preinstalled
# (and clouds whose VMs reach no package mirror) skip the install.
USER_DATA = """#cloud-config
# made by ModelShip for deployment {name}
runcmd:
  - [sh, -c, "command -v docker >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io)"]
  - [systemctl, enable, --now, docker]
"""  # noqa: E501
# The front: a TCP relay from FRONT_PORT to "host port" read from /front/backend for
# every new connection (so a rename of that file switches versions without a gap).
FRONT_PY = r"""
import socket, threading, time
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def backend():
    # a few tries: the backend may be restarting, or its name not yet in Docker's DNS
    for _ in range(40):
        try:
            host, port = open("/front/backend").read().split()
            u = socket.create_connection((host, int(port)), timeout=10)
            u.settimeout(None)
            return u
        except (OSError, ValueError):
            time.sleep(0.25)
    return None
def handle(c):
    u = backend()
    if u is None:
        c.close()
        return
    t = threading.Thread(target=pipe, args=(c, u), daemon=True)
    t.start()
    pipe(u, c)
    t.join()
    c.close()
    u.close()
srv = socket.create_server(("0.0.0.0", FRONT_PORT), backlog=1024)
while True:
    try:
        conn, _ = srv.accept()
    except OSError:  # a client that gave up before accept, or no descriptors left
        time.sleep(0.05)
        continue
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
""".replace("FRONT_PORT", str(FRONT_PORT))


# The image's HEALTHCHECK asks plain HTTP; on the VM the server speaks HTTPS only.
HEALTH_PY = (
    "import ssl,urllib.request as u;c=ssl.create_default_context();c.check_hostname=False;"
    f"c.verify_mode=ssl.CERT_NONE;u.urlopen('https://127.0.0.1:{CONTAINER_PORT}/ping',"
    "timeout=2,context=c)"
)


def base_name(deployment: str) -> str:
    return f"modelship-{deployment}"


def container_name(deployment: str, version: int) -> str:
    return f"modelship-{deployment}-v{version}"


def vm_tag(deployment: str, version: int | str) -> str:
    return (
        f"modelship-vm/{deployment}:v{version}"
        if version != "front"
        else (f"modelship-vm/{deployment}:front")
    )


def ssh_key_secret(deployment: str) -> str:
    return f"openstack/deploy/{deployment}/ssh-key"


def _tag(deployment: str) -> str:
    return f"modelship-deployment={deployment}"[:60]


@dataclass
class Vm:
    """How to reach the deployment's VM (what every SSH step needs)."""

    host: str
    ssh_port: int
    ssh_user: str
    host_keys: list[str]
    key_secret: str

    def connect(self, timeout: float = 20.0) -> Ssh:
        from app.secrets import get_secret
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


def _vm_of(resources: list[Resource]) -> Vm | None:
    for r in resources:
        if r.kind == "server":
            return Vm.from_data(r.data)
    return None


def _make_ssh_key() -> tuple[str, str]:
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


def make_certificate(
    address: str | list[str], deployment: str, names: list[str] | None = None
) -> tuple[bytes, bytes, str]:
    """(cert PEM, key PEM, SHA-256 fingerprint) of a self-made certificate for the VM.

    The client pins the fingerprint, so no CA is involved; the SAN names every address
    (IPv4, IPv6, floating) and DNS name (``endpoint_host``) the endpoint is reached by
    anyway, so tools that check names (curl --pinnedpubkey) work too.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"modelship-{deployment}"[:64])])
    sans: list[x509.GeneralName] = [x509.DNSName(f"modelship-{deployment}"[:63])]
    sans += [x509.DNSName(n) for n in dict.fromkeys(names or [])]
    for a in dict.fromkeys([address] if isinstance(address, str) else address):
        with contextlib.suppress(ValueError):
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    from app.endpoint import fingerprint

    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        fingerprint(der),
    )


class OpenStackTarget(Target):
    name: ClassVar[str] = "openstack"
    Settings: ClassVar[type[OpenStackSettings]] = OpenStackSettings
    ships: ClassVar = "image"
    replacement: ClassVar = "side_by_side"

    # ---- preflight ------------------------------------------------------------------
    def check(self, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
        s: OpenStackSettings = profile.target.settings
        problems: list[Problem] = []
        if s.api_key:
            from app.secrets import get_secret

            try:
                get_secret(s.api_key)
            except CredentialError as exc:
                problems.append(
                    Problem(exc.message, exc.hint or "", kind="credential", setting="api_key")
                )
        try:
            conn = osc.connect(s.cloud, s.region)
        except CredentialError as exc:
            return [*problems, Problem(exc.message, exc.hint or "", "credential", "cloud")]
        except TargetError as exc:
            return [*problems, Problem(exc.message, exc.hint or "", "environment", "cloud")]
        try:
            problems += self._cloud_problems(conn, profile, previous)
        except TargetError as exc:
            problems.append(Problem(exc.message, exc.hint or "", "environment"))
        except Exception as exc:  # an SDK error we did not expect: say it in words
            err = osc.translate(exc, "checking the cloud", s.cloud)
            problems.append(Problem(str(err), "", "environment"))
        finally:
            conn.close()
        return problems

    def _cloud_problems(
        self, conn: Any, profile: Profile, previous: DeploymentRecord | None
    ) -> list[Problem]:
        s: OpenStackSettings = profile.target.settings
        problems: list[Problem] = []
        reuse = _reusable(previous, s) is not None
        image = conn.image.find_image(s.image, ignore_missing=True)
        if image is None:
            names = [i.name for i in conn.image.images() if i.name]
            problems.append(
                Problem(
                    f"The cloud has no image named {s.image!r}.",
                    osc.close_names(s.image, names),
                    "setting",
                    "image",
                )
            )
        flavor = conn.compute.find_flavor(s.flavor, ignore_missing=True)
        if flavor is None:
            names = [f.name for f in conn.compute.flavors()]
            problems.append(
                Problem(
                    f"The cloud has no flavor named {s.flavor!r}.",
                    osc.close_names(s.flavor, names),
                    "setting",
                    "flavor",
                )
            )
        try:
            network = _network(conn, s.network)
        except TargetError as exc:
            problems.append(Problem(exc.message, exc.hint or "", "setting", "network"))
            network = None
        if flavor is not None:
            need = DOCKER_MB + 3 * _model_mb(profile)
            if int(flavor.ram) < need:
                problems.append(
                    Problem(
                        f"The flavor {s.flavor} has {flavor.ram} MB of memory; the model and "
                        f"Docker need about {need} MB.",
                        "Pick a flavor with more memory (the Size setting).",
                        "setting",
                        "flavor",
                    )
                )
        if reuse:
            return problems
        limits = conn.compute.get_limits().absolute
        if flavor is not None:
            checks = [
                ("instances", limits.instances, limits.instances_used, 1, "servers"),
                ("cores", limits.total_cores, limits.total_cores_used, flavor.vcpus, "CPUs"),
                ("ram", limits.total_ram, limits.total_ram_used, flavor.ram, "MB of memory"),
            ]
            for _, limit, used, want, words in checks:
                if limit is not None and limit >= 0 and (used or 0) + want > limit:
                    problems.append(
                        Problem(
                            f"Your project's quota allows {limit} {words} and {used or 0} are "
                            f"in use; this VM needs {want} more.",
                            "Delete a server you no longer need, pick a smaller flavor, or "
                            "ask the cloud's support for more quota.",
                            "quota",
                            "flavor",
                        )
                    )
        quota = conn.network.get_quota(conn.current_project_id, details=True)
        wants = [("security_groups", "security group")]
        if network is not None:
            reach = _choose(s, _facts(conn, network))
            problems += _reach_problems(s, reach)
            if reach.how == "floating IP":
                wants.append(("floating_ips", "floating IP"))
        for attr, words in wants:
            q = getattr(quota, attr, None) or {}
            limit, used = q.get("limit", -1), q.get("used", 0) + q.get("reserved", 0)
            if limit is not None and limit >= 0 and used + 1 > limit:
                problems.append(
                    Problem(
                        f"Your project's quota allows {limit} {words}(s) and {used} are in use.",
                        f"Free a {words} or ask for more quota"
                        + (
                            "; or choose a network that gives public addresses (e.g. "
                            "public-belwue) with Public address = auto."
                            if attr == "floating_ips"
                            else "."
                        ),
                        "quota",
                        "floating_ip" if attr == "floating_ips" else None,
                    )
                )
        return problems

    def warnings(self, profile: Profile) -> list[str]:
        s: OpenStackSettings = profile.target.settings
        out = []
        if any(n.prefixlen == 0 for n in s.cidrs()):
            out.append(
                f"SSH and the endpoint (port {s.port}) will be open to the whole internet; "
                "set 'Who may call it' (allowed_cidr) to your network to narrow it."
            )
        if not s.api_key:
            out.append("The endpoint needs no API key: anyone who can reach it can call it.")
        return out

    def plan(self, profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
        s: OpenStackSettings = profile.target.settings
        n = base_name(profile.name)
        vm = f"{s.cloud}{'/' + s.region if s.region else ''}"
        items = []
        if _reusable(previous, s) is None:
            items += [
                PlanItem("create", "keypair", n, "ed25519; private key in your keyring"),
                PlanItem(
                    "create",
                    "security group",
                    n,
                    f"SSH ({s.ssh_port}) and port {s.port} from "
                    + ", ".join(str(c) for c in s.cidrs())
                    + " (IPv4 and IPv6 rules)",
                ),
                PlanItem(
                    "create",
                    "server",
                    n,
                    f"{s.image}, {s.flavor}, network {s.network or '(default)'} on {vm}",
                ),
            ]
            reach = _plan_reach(s)
            if reach is None:
                if s.floating_ip != "never":
                    items.append(
                        PlanItem(
                            "create if needed",
                            "floating IP",
                            n,
                            "where asked and the region has them; else the public IPv4 "
                            "address, else the server's IPv6 address",
                        )
                    )
            else:
                if reach.how == "floating IP":
                    items.append(PlanItem("create", "floating IP", n, reach.why))
                items.append(PlanItem("reach", "address", reach.how, reach.why))
            if s.endpoint_host:
                items.append(
                    PlanItem("name", "endpoint", s.endpoint_host, "in the URL and certificate")
                )
            items.append(
                PlanItem("create", "TLS certificate", n, "made for this deployment, pinned")
            )
        else:
            items.append(PlanItem("reuse", "server", n, f"the VM of the running version on {vm}"))
        items.append(
            PlanItem(
                "create",
                "container",
                f"{n}-v{(previous.next_version_number() if previous else 1)}",
                f"https on port {s.port}; the image's missing layers sent over SSH",
            )
        )
        return items

    # ---- deploy ---------------------------------------------------------------------
    def deploy(self, ctx: DeployContext) -> Endpoint:
        s: OpenStackSettings = ctx.settings
        if ctx.image is None:
            raise TargetError(
                "There is no image to run.", "Deploy again; the build step makes the image."
            )
        for warning in self.warnings(ctx.profile):
            ctx.progress.update(None, f"Warning: {warning}")
        reuse = _reusable(ctx.previous, s)
        ctx.cancel.raise_if_cancelled()
        if reuse is not None:
            shared = [r for r in reuse if r.kind != "container"]
            vm = _vm_of(shared)
            assert vm is not None
            ssh = vm.connect()
            fp = str(ctx.previous.endpoint_obj().tls_sha256)  # type: ignore[union-attr]
        else:
            shared, vm, ssh, fp = self._create_vm(ctx)
        try:
            setup = next(r for r in shared if r.kind == "vm_setup")
            ctx.cancel.raise_if_cancelled()
            container = self._start_version(ctx, ssh, vm, setup)
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
        from app.secrets import set_secret

        s: OpenStackSettings = ctx.settings
        name = base_name(ctx.name)
        where = {"cloud": s.cloud, "region": s.region, "deployment": ctx.name}
        conn = osc.connect(s.cloud, s.region)
        try:
            resources: list[Resource] = []
            with osc.calls("looking up the image, flavor and network", s.cloud):
                image = conn.image.find_image(s.image, ignore_missing=False)
                flavor = conn.compute.find_flavor(s.flavor, ignore_missing=False)
                network = _network(conn, s.network)
            # keypair: private key to the keyring, public key to Nova
            ctx.cancel.raise_if_cancelled()
            secret = ssh_key_secret(ctx.name)
            keypair = Resource("keypair", name, f"keypair {name}", {**where, "key_secret": secret})
            ctx.journal.record(keypair)
            ctx.progress.update(None, f"Creating keypair {name}")
            private, public = _make_ssh_key()
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
                conn.network.set_tags(sg, [_tag(ctx.name)])
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
            ctx.progress.update(None, f"Creating server {name} ({s.image}, {s.flavor})")
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
            server = self._wait_active(conn, server.id, s, ctx)
            with osc.calls("looking up the server's network", s.cloud):
                reach = _choose(s, _facts(conn, network))
            if reach.how is None:
                raise TargetError(reach.why, reach.fix)
            fixed4 = _fixed_address(server, network.name, 4)
            fixed6 = _fixed_address(server, network.name, 6)
            address = fixed6 if reach.how == "IPv6" else fixed4
            ctx.progress.update(None, f"Reaching the server by its {reach.how}: {reach.why}")
            if reach.how == "floating IP":
                ctx.cancel.raise_if_cancelled()
                fip_res = Resource("floating_ip", name, f"floating IP for {name}", dict(where))
                ctx.journal.record(fip_res)
                ctx.progress.update(None, "Giving the server a public address (floating IP)")
                with osc.calls("creating the floating IP", s.cloud):
                    ext = _external_network(conn)
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
                    conn.network.set_tags(fip, [_tag(ctx.name)])
                address = fip.floating_ip_address
                resources.append(fip_res)
            if not address:
                raise TargetError(
                    f"The server {name} has no {reach.how} address this computer can reach.",
                    "Set Public address (floating_ip) to auto or always, or pick the "
                    "public network (bwCloud: public-belwue).",
                )
            host_keys = self._host_keys(conn, server.id, address, s, ctx)
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
        ssh = self._ssh_ready(vm, s, ctx)
        try:
            setup, fp = self._setup_vm(ctx, ssh, address)
        except BaseException:
            ssh.close()
            raise
        resources.append(setup)
        return resources, vm, ssh, fp

    def _wait_active(self, conn: Any, server_id: str, s: OpenStackSettings, ctx: DeployContext):
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

    def _host_keys(
        self, conn: Any, server_id: str, address: str, s: OpenStackSettings, ctx: DeployContext
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
            if accepted and _banner(address, s.ssh_port):
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
            hint="The image may not run cloud-init: deploy with --accept-host-key after "
            "checking the key's fingerprint, or choose an image with cloud-init.",
            interval=0.3,
            max_interval=3.0,  # under uvicorn's 5 s keep-alive: fewer stale pooled connections
        )
        if outcome == "keys":
            return list(state["keys"])
        wait_until(
            lambda: _banner(address, s.ssh_port),
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
            "Compare it with the key shown in the cloud's dashboard (Instance > Log) and, "
            f"if it matches, deploy again with --accept-host-key {fp}.",
        )

    def _ssh_ready(self, vm: Vm, s: OpenStackSettings, ctx: DeployContext) -> Ssh:
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
            ctx.progress.update(None, "Waiting for cloud-init to finish on the VM")
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

    def _setup_vm(self, ctx: DeployContext, ssh: Ssh, address: str) -> tuple[Resource, str]:
        """The deployment's folder (secrets, front), its Docker network; the certificate."""
        name = ctx.name
        root = f"{VM_ROOT}/{name}"
        setup = Resource(
            "vm_setup",
            name,
            f"setup of {base_name(name)} on the VM",
            {"root": root, "network": base_name(name), "front": f"{base_name(name)}-front"},
        )
        vm_data = _vm_of_ctx(ctx, ssh)
        setup.data.update(vm_data)
        ctx.journal.record(setup)
        ctx.progress.update(None, "Preparing the VM (certificate, network)")
        server = next((r for r in ctx.journal.resources() if r.kind == "server"), None)
        sdata = server.data if server is not None else {}
        host = sdata.get("endpoint_host")
        cert, key, fp = make_certificate(
            sdata.get("addresses") or address, name, [host] if host else None
        )
        q = shlex.quote
        ssh.run(
            f"{ssh.sudo}sh -c {q(f'umask 077; mkdir -p {root}/secrets {root}/front')}",
        )
        _write(ssh, f"{root}/secrets/tls.crt", cert)
        _write(ssh, f"{root}/secrets/tls.key", key)
        _write(ssh, f"{root}/front/proxy.py", FRONT_PY.encode(), mode="644")
        ssh.run(f"{ssh.sudo}chmod 755 {VM_ROOT} {root} {root}/front")
        ssh.docker(
            f"network create --label {MANAGED} --label modelship.deployment={q(name)} "
            f"{q(base_name(name))}",
            check=False,
        )
        return setup, fp

    def _start_version(self, ctx: DeployContext, ssh: Ssh, vm: Vm, setup: Resource) -> Resource:
        """Ship the image, start this version's container, switch the front to it."""
        from app.image import connect as engine_connect
        from targets.openstack.vm import ship_image

        s: OpenStackSettings = ctx.settings
        image = ctx.image
        assert image is not None
        name = ctx.name
        root = setup.data["root"]
        q = shlex.quote
        tag = vm_tag(name, ctx.version)
        img_res = Resource(
            "vm_image", f"{name}:v{ctx.version}", f"image {tag} on the VM",
            {**vm.to_data(), "tag": tag, "image_id": image.id},
        )  # fmt: skip
        ctx.journal.record(img_res)
        ctx.progress.update(None, "Sending the image to the VM (only the layers it lacks)")
        engine = engine_connect()
        try:
            shipment = ship_image(
                ssh,
                engine,
                image.id,
                image.tag,
                tag,
                cancelled=lambda: ctx.cancel.cancelled,
                progress=lambda text: ctx.progress.update(None, text),
            )
        finally:
            engine.close()
        img_res.data["shipment"] = {
            "layers_total": shipment.layers_total,
            "layers_sent": shipment.layers_sent,
            "bytes_sent": shipment.bytes_sent,
            "seconds": round(shipment.seconds, 2),
            "skipped": shipment.skipped,
        }
        ctx.journal.update(img_res)
        ctx.progress.update(None, f"Image on the VM: {shipment.describe()}")
        ctx.cancel.raise_if_cancelled()
        # secrets: readable only by the image's user, mounted read-only
        user = (
            ssh.docker(
                f"image inspect --format '{{{{.Config.User}}}}' {q(tag)}", check=False
            ).out.strip()
            or "0"
        )
        uid, _, gid = user.partition(":")
        uid = uid if uid.isdigit() else "0"
        gid = gid if gid.isdigit() else uid
        secrets_dir = f"{root}/secrets"
        env = []
        if s.api_key:
            from app.secrets import get_secret

            _write(ssh, f"{secrets_dir}/api_key", get_secret(s.api_key).encode())
            env.append(f"-e MODELSHIP_API_KEY_FILE={SECRET_DIR_IN_CONTAINER}/api_key")
        ssh.run(
            f"{ssh.sudo}sh -c {q(f'chown -R {uid}:{gid} {secrets_dir} && chmod 500 {secrets_dir} && chmod 400 {secrets_dir}/*')}"  # noqa: E501
        )
        env += [
            f"-e MODELSHIP_TLS_CERT_FILE={SECRET_DIR_IN_CONTAINER}/tls.crt",
            f"-e MODELSHIP_TLS_KEY_FILE={SECRET_DIR_IN_CONTAINER}/tls.key",
            f"-e PORT={CONTAINER_PORT}",
        ]
        cname = container_name(name, ctx.version)
        front = setup.data["front"]
        current = _backend_now(ssh, root)
        res = Resource(
            "container",
            cname,
            f"container {cname} on the VM",
            {
                **vm.to_data(),
                "root": root,
                "front": front,
                "previous_backend": current[0] if current else None,
                "version": ctx.version,
            },
        )
        ctx.journal.record(res)
        ssh.docker(f"rm -f {q(cname)}", check=False)  # a crashed run's, same name
        ctx.progress.update(None, f"Starting container {cname} on the VM")
        labels = f"--label {MANAGED} --label modelship.deployment={q(name)}"
        ssh.docker(
            f"run -d --name {q(cname)} {labels} --label modelship.version-number={ctx.version} "
            f"--restart unless-stopped --network {q(base_name(name))} "
            f"--health-cmd {q('python -c ' + q(HEALTH_PY))} "
            f"-v {q(secrets_dir)}:{SECRET_DIR_IN_CONTAINER}:ro {' '.join(env)} {q(tag)} serve"
        )
        self._wait_answering(ssh, cname, s, ctx)
        # the front: made once (with this image, tagged so pruning a version keeps it)
        exists = ssh.docker(f"inspect --format '{{{{.State.Running}}}}' {q(front)}", check=False)
        _write(ssh, f"{root}/front/backend.new", f"{cname} {CONTAINER_PORT}\n".encode(), "644")
        _switch(ssh, root)
        if exists.out.strip() != "true":
            ssh.docker(f"rm -f {q(front)}", check=False)
            ssh.docker(f"tag {q(tag)} {q(vm_tag(name, 'front'))}")
            ctx.progress.update(None, f"Publishing port {s.port} on the VM")
            ssh.docker(
                f"run -d --name {q(front)} {labels} --label modelship.role=front --no-healthcheck "
                f"--restart unless-stopped --network {q(base_name(name))} "
                f"-p {s.port}:{FRONT_PORT} -v {q(root + '/front')}:/front:ro "
                f"--entrypoint python {q(vm_tag(name, 'front'))} /front/proxy.py"
            )
        else:
            ctx.progress.update(None, f"Switched the endpoint to {cname}")
        return res

    def _wait_answering(self, ssh: Ssh, cname: str, s: OpenStackSettings, ctx: DeployContext):
        """The new container answers HTTPS /ping inside the VM (before any switch)."""
        q = shlex.quote
        check = (
            "import ssl,urllib.request as u;"
            "c=ssl.create_default_context();c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;"
            f"u.urlopen('https://127.0.0.1:{CONTAINER_PORT}/ping',timeout=3,context=c)"
        )

        def probe() -> str:
            state = ssh.docker(
                f"inspect --format '{{{{.State.Status}}}} {{{{.RestartCount}}}}' {q(cname)}",
                check=False,
            ).out.split()
            if not state:
                return "gone"
            if state[0] in {"exited", "dead"} or (len(state) > 1 and state[1] != "0"):
                return "stopped"
            if state[0] != "running":
                return state[0]
            ok = ssh.docker(f"exec {q(cname)} python -c {q(check)}", check=False, timeout=30)
            return "answering" if ok.status == 0 else "starting"

        def tail() -> str:
            return ssh.docker(f"logs --tail 20 {q(cname)}", check=False).err[-2000:]

        wait_until(
            probe,
            lambda v: v == "answering",
            lambda v: {"gone": "the container disappeared", "stopped": "the container stopped"}.get(
                v
            ),
            timeout=s.start_timeout,
            cancel=ctx.cancel,
            progress=ctx.progress,
            what=f"container {cname} on the VM",
            describe=lambda v: f"Container {v}",
            fail_hint="Read its log in the details (--debug).",
            details=tail,
            interval=0.3,
            max_interval=1.0,  # it answers within seconds: poll closely
        )

    # ---- remove ---------------------------------------------------------------------
    def destroy(self, resource: Resource, progress: Progress | None = None) -> bool:
        progress = progress or NullProgress()
        kind = resource.kind
        if kind in {"container", "vm_image", "vm_setup"}:
            return self._destroy_on_vm(resource, progress)
        if kind not in {"keypair", "security_group", "server", "floating_ip"}:
            return False
        data = resource.data
        if kind == "keypair":
            removed = False
            from app.secrets import delete_secret

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
                    return _sweep_fips(conn, data["deployment"], progress)
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
                return _delete_server(conn, server_id, resource.id, data["cloud"], progress)
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

    def _destroy_on_vm(self, resource: Resource, progress: Progress) -> bool:
        vm = Vm.from_data(resource.data)
        if vm is None:
            return False
        try:
            ssh = vm.connect(timeout=10)
        except (CredentialError, TargetError) as exc:
            # no key any more, or no VM: what lived on it went with it
            progress.log(f"Skipping {resource.describe()}: cannot reach the VM ({exc.message})")
            return False
        q = shlex.quote
        try:
            if resource.kind == "vm_image":
                tag = resource.data["tag"]
                if ssh.docker(f"image inspect {q(tag)}", check=False).status != 0:
                    return False
                progress.update(None, f"Removing {tag} from the VM")
                ssh.docker(f"rmi {q(tag)}", check=False)
                return True
            if resource.kind == "container":
                cname = resource.id
                if ssh.docker(f"inspect {q(cname)}", check=False).status != 0:
                    return False
                root = resource.data.get("root")
                prev = resource.data.get("previous_backend")
                if root:
                    now = _backend_now(ssh, root)
                    if now and now[0] == cname and prev and prev != cname:
                        running = ssh.docker(
                            f"inspect --format '{{{{.State.Running}}}}' {q(prev)}", check=False
                        ).out.strip()
                        if running == "true":  # the replacement failed: switch back first
                            _write(
                                ssh,
                                f"{root}/front/backend.new",
                                f"{prev} {CONTAINER_PORT}\n".encode(),
                                "644",
                            )
                            _switch(ssh, root)
                            progress.update(None, f"Switched the endpoint back to {prev}")
                progress.update(None, f"Removing container {cname} on the VM")
                ssh.docker(f"rm -f {q(cname)}", check=False)
                return True
            # vm_setup: front container, network, front tag, folder
            root = resource.data["root"]
            front = resource.data["front"]
            found = (
                ssh.run(f"{ssh.sudo}test -d {q(root)} && echo yes || true", check=False).out.strip()
                == "yes"
            )
            found = ssh.docker(f"inspect {q(front)}", check=False).status == 0 or found
            ssh.docker(f"rm -f {q(front)}", check=False)
            ssh.docker(f"network rm {q(resource.data['network'])}", check=False)
            ssh.docker(f"rmi {q(vm_tag(resource.id, 'front'))}", check=False)
            ssh.run(f"{ssh.sudo}rm -rf {q(root)}", check=False)
            if found:
                progress.update(None, "Removed the deployment's folder and network on the VM")
            return found
        finally:
            ssh.close()

    def retire(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """After a new version passed on the same VM: remove the old container only.

        When no newer container took over (the name moved to another target), the VM
        is no longer used: everything of it goes."""
        containers = [r for r in record.resources() if r.kind == "container"]
        vm = _vm_of(record.resources())
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
        vm = _vm_of(record.all_resources(self.name))
        if vm is not None:
            removed += self._sweep_vm(vm, record.name, progress)
        for r in sorted(on_vm, key=lambda r: order[r.kind]):
            if self.destroy(r, progress):
                removed.append(r.describe())
        order2 = {"floating_ip": 0, "server": 1, "security_group": 2, "keypair": 3}
        for r in sorted(cloud, key=lambda r: order2[r.kind]):
            if self.destroy(r, progress):
                removed.append(r.describe())
        removed += self._sweep_cloud(record, progress)
        return removed

    def _sweep_vm(self, vm: Vm, deployment: str, progress: Progress) -> list[str]:
        """Everything of the deployment on the VM, found by label and name (also what a
        crashed run left): containers (the front too), image tags, network, folder."""
        try:
            ssh = vm.connect(timeout=10)
        except (CredentialError, TargetError):
            return []
        q = shlex.quote
        out = []
        try:
            ids = ssh.docker(
                f"ps -aq --filter label={MANAGED} "
                f"--filter label=modelship.deployment={q(deployment)}",
                check=False,
            ).out.split()
            names = []
            for cid in ids:
                cname = ssh.docker(f"inspect --format '{{{{.Name}}}}' {cid}", check=False)
                names.append(cname.out.strip().lstrip("/"))
            victims = [n for n in names if n]
            if victims:
                ssh.docker(f"rm -f {' '.join(q(n) for n in victims)}", check=False)
                out += [f"container {n}" for n in victims]
            tags = ssh.docker(
                "image ls --format '{{.Repository}}:{{.Tag}}' "
                f"modelship-vm/{q(deployment)}",
                check=False,
            ).out.split()
            for tag in tags:
                ssh.docker(f"rmi {q(tag)}", check=False)
                out.append(f"image {tag} on the VM")
            network = base_name(deployment)
            if ssh.docker(f"network rm {q(network)}", check=False).status == 0:
                out.append(f"network {network} on the VM")
            root = f"{VM_ROOT}/{deployment}"
            found = ssh.run(f"{ssh.sudo}test -d {q(root)} && echo yes || true", check=False)
            if found.out.strip() == "yes":
                ssh.run(f"{ssh.sudo}rm -rf {q(root)}", check=False)
                out.append(f"folder {root} on the VM")
        finally:
            ssh.close()
        if out:
            progress.update(None, f"Removed {len(out)} thing(s) on the VM")
        return out

    def _sweep_cloud(self, record: DeploymentRecord, progress: Progress) -> list[str]:
        """Find what is still tagged or named for the deployment, remove it, list again."""
        s = OpenStackSettings.model_validate(record.profile["target"]["settings"])
        name = base_name(record.name)
        conn = osc.connect(s.cloud, s.region)
        out = []
        try:
            with osc.calls("checking that nothing is left", s.cloud):
                for server in conn.compute.servers(name=f"^{name}$"):
                    if (server.metadata or {}).get("modelship.deployment") == record.name:
                        _delete_server(conn, server.id, name, s.cloud, progress)
                        out.append(f"server {name}")
                if _sweep_fips(conn, record.name, progress):
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
                      for x in conn.network.ips(tags=_tag(record.name))],
                ]  # fmt: skip
                if conn.compute.find_keypair(name, ignore_missing=True) is not None:
                    left.append(f"keypair {name}")
        finally:
            conn.close()
        from app.secrets import delete_secret

        with contextlib.suppress(CredentialError):
            if delete_secret(ssh_key_secret(record.name)):
                out.append("SSH key in the keyring")
        if left:
            raise TargetError(
                f"These are still in the cloud after the teardown: {', '.join(left)}.",
                "Run teardown again in a minute (the cloud may still be deleting them).",
            )
        return out

    # ---- later ----------------------------------------------------------------------
    # ---- stop and start -------------------------------------------------------------
    def stop(self, record: DeploymentRecord, progress: Progress) -> None:
        """Shut the VM down (Nova ``os-stop``): it keeps its disk, addresses and pinned
        host key; the containers come back with it (``--restart unless-stopped``)."""
        self._power(record, progress, on=False)

    def start(self, record: DeploymentRecord, progress: Progress) -> Endpoint | None:
        """Boot the stopped VM again (Nova ``os-start``); the caller waits for /ping."""
        self._power(record, progress, on=True)
        return None

    def _power(self, record: DeploymentRecord, progress: Progress, *, on: bool) -> None:
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
        vm = _vm_of(record.resources())
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
        vm = _vm_of(record.resources())
        if container is None or vm is None:
            return ""
        with vm.connect() as ssh:
            res = ssh.docker(f"logs --tail {int(lines)} {shlex.quote(container.id)}", check=False)
        return (res.out + res.err).rstrip()


# ---- helpers ----------------------------------------------------------------------------


def _reusable(previous: DeploymentRecord | None, s: OpenStackSettings) -> list[Resource] | None:
    """The previous version's live resources when it runs on a VM this profile can reuse
    (same cloud and region, a server and its setup recorded)."""
    if previous is None or previous.target != "openstack" or previous.endpoint is None:
        return None
    resources = previous.resources()
    server = next((r for r in resources if r.kind == "server"), None)
    if server is None or not any(r.kind == "vm_setup" for r in resources):
        return None
    if server.data.get("cloud") != s.cloud or server.data.get("region") != s.region:
        return None
    if server.data.get("ssh_user") != s.ssh_user or int(server.data.get("ssh_port", 0)) != (
        s.ssh_port
    ):
        return None
    if not previous.endpoint_obj() or not previous.endpoint_obj().tls_sha256:  # type: ignore[union-attr]
        return None
    if not previous.url or not previous.url.endswith(f":{s.port}"):
        return None
    return resources


def _vm_of_ctx(ctx: DeployContext, ssh: Ssh) -> dict[str, Any]:
    for r in ctx.journal.resources():
        if r.kind == "server":
            return {k: r.data[k] for k in ("host", "ssh_port", "ssh_user", "host_keys",
                                           "key_secret") if k in r.data}  # fmt: skip
    return {}


def _write(ssh: Ssh, path: str, data: bytes, mode: str = "600") -> None:
    q = shlex.quote
    ssh.run(f"{ssh.sudo}sh -c {q(f'umask 077; cat > {q(path)} && chmod {mode} {q(path)}')}",
            stdin=data)  # fmt: skip


def _backend_now(ssh: Ssh, root: str) -> list[str]:
    """``[container, port]`` the front forwards to now ([] before the first version).
    Read with sudo: the deployment's folder is root's (a non-root login cannot list it)."""
    return ssh.run(f"{ssh.sudo}cat {root}/front/backend 2>/dev/null || true").out.split()


def _switch(ssh: Ssh, root: str) -> None:
    """Point the front at the backend in ``backend.new`` (rename: atomic for readers)."""
    ssh.run(f"{ssh.sudo}mv -f {root}/front/backend.new {root}/front/backend")


def _banner(host: str, port: int) -> bool:
    from targets.openstack.vm import ssh_banner

    return ssh_banner(host, port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _model_mb(profile: Profile) -> int:
    from pathlib import Path

    with contextlib.suppress(OSError):  # a URI (a str) is no file: 1
        return max(1, int(Path(profile.model.path).stat().st_size / 1e6))
    return 1


def _network(conn: Any, name: str | None) -> Any:
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


def _external_network(conn: Any) -> Any:
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


def _facts(conn: Any, network: Any) -> Facts:
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


def _choose(s: OpenStackSettings, f: Facts) -> Reach:
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


def _reach_problems(s: OpenStackSettings, reach: Reach) -> list[Problem]:
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


def _plan_reach(s: OpenStackSettings) -> Reach | None:
    """The address choice for the plan; None when the cloud cannot say now."""
    try:
        conn = osc.connect(s.cloud, s.region)
    except Exception:
        return None
    try:
        return _choose(s, _facts(conn, _network(conn, s.network)))
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


def _fixed_address(server: Any, network_name: str, version: int = 4) -> str | None:
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


class VmEndpointClient(EndpointClient):
    """Connects to ``connect_to`` (the address the deploy reached and smoke-tested)
    while the URL names the endpoint: the name goes into SNI and Host, the pinned
    certificate is checked as always. If the address refuses, the name is looked up
    (bwCloud: an instance's public address may change; its name stays)."""

    def __init__(self, url: str, *, connect_to: str | None = None, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.connect_to = connect_to

    def _connection(self, timeout: float) -> tuple[Any, bool]:
        conn, absolute = super()._connection(timeout)
        address = self.connect_to
        if not address or address == self._host or not isinstance(conn, _https_type()):
            return conn, absolute
        if getattr(conn, "_tunnel_host", None):  # through a proxy: the proxy resolves
            return conn, absolute
        return _addressed_https(self._host, self._port, address, conn), absolute


def _https_type() -> type:
    import http.client

    return http.client.HTTPSConnection


def _addressed_https(host: str, port: int, address: str, template: Any) -> Any:
    """An HTTPSConnection to ``host`` (SNI, Host header) whose socket goes to
    ``address`` first, then to ``host`` by DNS if the address does not answer."""
    import http.client
    import socket

    class Addressed(http.client.HTTPSConnection):
        def connect(self) -> None:
            try:
                sock = socket.create_connection((address, self.port), self.timeout)
            except OSError:
                sock = socket.create_connection((self.host, self.port), self.timeout)
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    return Addressed(host, port, timeout=template.timeout, context=template._context)


def _delete_server(conn: Any, server_id: str, name: str, cloud: str, progress: Progress) -> bool:
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


def _sweep_fips(conn: Any, deployment: str, progress: Progress) -> bool:
    found = False
    for fip in conn.network.ips(tags=_tag(deployment)):
        progress.update(None, f"Removing floating IP {fip.floating_ip_address}")
        conn.network.delete_ip(fip.id, ignore_missing=True)
        found = True
    return found


__all__ = ["OpenStackTarget", "container_name", "make_certificate", "vm_tag"]
