"""Request handlers of the emulated Keystone, Nova, Neutron and Glance.

Each `*_routes(emulator)` returns `(method, path regex relative to the service's
versioned root, handler)` rows; handlers take the request `Ctx` and the regex's
named groups and return a Starlette response or raise `ApiError`. They run under
the emulator's lock, so they may change state freely.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.responses import Response

from .emulator import (
    FLAVORS,
    IMAGES,
    ApiError,
    Ctx,
    Fault,
    RegionState,
    ServerRecord,
    _empty,
    _json,
    _matches_filters,
    fingerprint_md5,
    glance_error,
    keystone_error,
    neutron_error,
    nova_error,
    now_iso,
    stable_id,
)

if TYPE_CHECKING:
    from .emulator import OpenStackEmulator

Row = tuple[str, str, Any]
ID = r"(?P<id>[^/]+)"
# Nova's vm_state for each status the emulator shows
VM_STATES = {"ACTIVE": "active", "BUILD": "building", "SHUTOFF": "stopped"}


def _link(href: str, rel: str = "self") -> dict[str, str]:
    return {"href": href, "rel": rel}


# =============================================================================== identity


def identity_versions(emu: OpenStackEmulator, ctx: Ctx) -> Response:
    return _json(300, {"versions": {"values": [_identity_version_doc(ctx)]}})


def identity_version(emu: OpenStackEmulator, ctx: Ctx) -> Response:
    return _json(200, {"version": _identity_version_doc(ctx)})


def _identity_version_doc(ctx: Ctx) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [_link(f"{ctx.base}/identity/v3/")],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


def identity_routes(emu: OpenStackEmulator) -> list[Row]:
    c = emu.creds
    unauthorized = "The request you have made requires authentication."

    def _domain_ok(spec: dict[str, Any] | None, domain_id: str, domain_name: str) -> bool:
        if not spec:
            return True
        return spec.get("id", domain_id) == domain_id and spec.get("name", domain_name) in (
            domain_name,
            domain_id,
        )

    def _check_scope(scope: Any) -> None:
        if not scope:
            return
        project = scope.get("project") if isinstance(scope, dict) else None
        if project is None:
            raise keystone_error(401, unauthorized)
        if "id" in project and project["id"] != c.project_id:
            raise keystone_error(401, unauthorized)
        if "name" in project and (
            project["name"] != c.project_name
            or not _domain_ok(project.get("domain"), c.project_domain_id, c.project_domain_name)
        ):
            raise keystone_error(401, unauthorized)

    def create_token(ctx: Ctx) -> Response:
        body = ctx.json() or {}
        auth = body.get("auth") or {}
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if not methods:
            raise keystone_error(400, "Expecting to find identity in auth.")
        app_cred = False
        for method in methods:
            data = identity.get(method) or {}
            if method == "password":
                user = data.get("user") or {}
                name_ok = ("id" in user and user["id"] == c.user_id) or (
                    user.get("name") == c.username
                    and _domain_ok(user.get("domain"), c.user_domain_id, c.user_domain_name)
                )
                if not name_ok or user.get("password") != c.password:
                    raise keystone_error(401, unauthorized)
            elif method == "application_credential":
                app_cred = True
                if "id" in data:
                    ok_id = data["id"] == c.application_credential_id
                else:
                    user = data.get("user") or {}
                    ok_user = user.get("id") == c.user_id or (
                        user.get("name") == c.username
                        and _domain_ok(user.get("domain"), c.user_domain_id, c.user_domain_name)
                    )
                    ok_id = ok_user and data.get("name") == c.application_credential_name
                if not ok_id or data.get("secret") != c.application_credential_secret:
                    raise keystone_error(401, unauthorized)
                if auth.get("scope"):
                    raise keystone_error(401, "Application credentials cannot request a scope.")
            elif method == "token":
                if (data.get("id") or "") not in emu.tokens:
                    raise keystone_error(401, unauthorized)
            else:
                raise keystone_error(401, "Attempted to authenticate with an unsupported method.")
        _check_scope(auth.get("scope"))
        token_id, token = emu.issue_token(methods, app_cred)
        return _json(201, token, {"X-Subject-Token": token_id})

    def validate_token(ctx: Ctx) -> Response:
        subject = ctx.headers.get("x-subject-token", "")
        token = emu.tokens.get(subject)
        if token is None:
            raise keystone_error(404, f"Could not find token: {subject}.")
        return _json(200, token["body"], {"X-Subject-Token": subject})

    def revoke_token(ctx: Ctx) -> Response:
        emu.tokens.pop(ctx.headers.get("x-subject-token", ""), None)
        return _empty(204)

    def _project() -> dict[str, Any]:
        return {
            "id": c.project_id,
            "name": c.project_name,
            "domain_id": c.project_domain_id,
            "description": "",
            "enabled": True,
            "is_domain": False,
            "parent_id": c.project_domain_id,
            "tags": [],
            "options": {},
            "links": {"self": f"/identity/v3/projects/{c.project_id}"},
        }

    def get_project(ctx: Ctx, id: str) -> Response:
        if id != c.project_id:
            raise keystone_error(
                403, "You are not authorized to perform the requested action: identity:get_project."
            )
        return _json(200, {"project": _project()})

    def list_projects(ctx: Ctx) -> Response:
        project = _project()
        items = [project] if _matches_filters(project, ctx.query, set()) else []
        return _json(200, {"projects": items, "links": {"self": None, "next": None}})

    def user_projects(ctx: Ctx, id: str) -> Response:
        return _json(200, {"projects": [_project()], "links": {"self": None, "next": None}})

    return [
        ("POST", "/auth/tokens", create_token),
        ("GET", "/auth/tokens", validate_token),
        ("HEAD", "/auth/tokens", validate_token),
        ("DELETE", "/auth/tokens", revoke_token),
        ("GET", "/auth/projects", list_projects),
        ("GET", "/projects", list_projects),
        ("GET", f"/projects/{ID}", get_project),
        ("GET", f"/users/{ID}/projects", user_projects),
    ]


# ================================================================== version discovery


def service_versions(emu: OpenStackEmulator, ctx: Ctx, service: str, root: str) -> Response:
    if service == "compute":
        return _json(
            200,
            {
                "versions": [
                    {
                        "id": "v2.0",
                        "status": "SUPPORTED",
                        "version": "",
                        "min_version": "",
                        "updated": "2011-01-21T11:33:21Z",
                        "links": [_link(f"{root}/v2/")],
                    },
                    _compute_version_doc(emu, f"{root}/v2.1/"),
                ]
            },
        )
    if service == "network":
        return _json(
            200,
            {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [_link(f"{root}/v2.0/")]}]},
        )
    versions = [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == 16 else "SUPPORTED"}
        for minor in (16, 15, 9, 7, 6, 5, 4, 3, 2, 1, 0)
    ]
    for version in versions:
        version["links"] = [_link(f"{root}/v2/")]
    return _json(300, {"versions": versions})


def _compute_version_doc(emu: OpenStackEmulator, href: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": f"{emu.compute_max[0]}.{emu.compute_max[1]}",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [_link(href)],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


def compute_version(emu: OpenStackEmulator, ctx: Ctx) -> Response:
    return _json(200, {"version": _compute_version_doc(emu, f"{ctx.service_root}/")})


# ======================================================================== compute (Nova)


def _flavor(region: RegionState, base: str, name: str, vcpus: int, ram: int, disk: int) -> dict:
    flavor_id = stable_id("flavor", name)
    return {
        "OS-FLV-DISABLED:disabled": False,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "disk": disk,
        "id": flavor_id,
        "links": [
            _link(f"{base}/flavors/{flavor_id}"),
            _link(f"{base}/flavors/{flavor_id}", "bookmark"),
        ],
        "name": name,
        "os-flavor-access:is_public": True,
        "ram": ram,
        "rxtx_factor": 1.0,
        "swap": 0,
        "vcpus": vcpus,
        "description": None,
        "extra_specs": {},
    }


def _image(base: str, name: str, distro: str, version: str) -> dict[str, Any]:
    image_id = stable_id("image", name)
    return {
        "image_state": "available",
        "container_format": "bare",
        "min_ram": 0,
        "updated_at": "2026-10-02T05:05:02Z",
        "file": f"/v2/images/{image_id}/file",
        "size": 3402170368,
        "disk_format": "qcow2",
        "id": image_id,
        "schema": "/v2/schemas/image",
        "status": "active",
        "tags": [],
        "visibility": "public",
        "min_disk": 4,
        "virtual_size": 4294967296,
        "name": name,
        "checksum": "ee36e35a297980dee1b514de9803ec6d",
        "created_at": "2026-10-02T05:03:11Z",
        "protected": True,
        "os_hash_algo": "sha512",
        "os_hash_value": stable_id("hash", name).replace("-", "") * 4,
        "os_hidden": False,
        "owner": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "os_distro": distro,
        "os_version": version,
        "hw_disk_bus": "scsi",
        "self": f"/v2/images/{image_id}",
    }


def all_flavors(region: RegionState, base: str) -> list[dict[str, Any]]:
    return [_flavor(region, base, *row) for row in FLAVORS]


def all_images(base: str) -> list[dict[str, Any]]:
    return [_image(base, *row) for row in IMAGES]


_KEYPAIR_NAME = re.compile(r"^[A-Za-z0-9 _.@-]{1,255}$")


def _valid_public_key(text: str) -> bool:
    parts = text.strip().split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        return False
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(blob) > 4 and parts[0].encode() in blob[:64]


def compute_routes(emu: OpenStackEmulator) -> list[Row]:
    c = emu.creds

    def mv(ctx: Ctx) -> tuple[int, int]:
        return ctx.microversion

    # -- flavors -------------------------------------------------------------------
    def list_flavors(ctx: Ctx) -> Response:
        flavors = all_flavors(ctx.region, ctx.service_root)
        return _json(
            200,
            {
                "flavors": [
                    {"id": f["id"], "name": f["name"], "links": f["links"], "description": None}
                    for f in flavors
                ]
            },
        )

    def list_flavors_detail(ctx: Ctx) -> Response:
        flavors = all_flavors(ctx.region, ctx.service_root)
        min_ram = ctx.q("minRam")
        if min_ram:
            flavors = [f for f in flavors if f["ram"] >= int(min_ram)]
        return _json(200, {"flavors": flavors})

    def get_flavor(ctx: Ctx, id: str) -> Response:
        for flavor in all_flavors(ctx.region, ctx.service_root):
            if flavor["id"] == id:
                return _json(200, {"flavor": flavor})
        raise nova_error(404, f"Flavor {id} could not be found.")

    def flavor_extra_specs(ctx: Ctx, id: str) -> Response:
        get_flavor(ctx, id)
        return _json(200, {"extra_specs": {}})

    # -- keypairs ------------------------------------------------------------------
    def _keypair_view(kp: dict[str, Any], ctx: Ctx, full: bool) -> dict[str, Any]:
        view = {
            "name": kp["name"],
            "public_key": kp["public_key"],
            "fingerprint": kp["fingerprint"],
        }
        if mv(ctx) >= (2, 2):
            view["type"] = kp["type"]
        if full:
            view.update(
                user_id=c.user_id,
                id=kp["id"],
                created_at=kp["created_at"],
                deleted=False,
                deleted_at=None,
                updated_at=None,
            )
        return view

    def create_keypair(ctx: Ctx) -> Response:
        body = (ctx.json() or {}).get("keypair")
        if not isinstance(body, dict) or "name" not in body:
            raise nova_error(400, "Invalid input for field/attribute keypair.")
        name = str(body["name"])
        if not _KEYPAIR_NAME.match(name):
            raise nova_error(
                400, "Keypair data is invalid: Keypair name contains unsafe characters"
            )
        region = ctx.region
        if name in region.keypairs:
            raise nova_error(409, f"Key pair '{name}' already exists.")
        if len(region.keypairs) >= region.compute_quota["key_pairs"]:
            raise nova_error(403, "Quota exceeded, too many key pairs.")
        public_key = body.get("public_key")
        private_key = None
        if public_key is None:
            if mv(ctx) >= (2, 92):
                raise nova_error(400, "Invalid input for field/attribute keypair.")
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_key = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode()
            public_key = (
                key.public_key()
                .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
                .decode()
                + " Generated-by-Nova"
            )
        elif not _valid_public_key(str(public_key)):
            raise nova_error(400, "Keypair data is invalid: failed to generate fingerprint")
        kp = {
            "name": name,
            "public_key": str(public_key).strip(),
            "fingerprint": fingerprint_md5(str(public_key)),
            "type": body.get("type", "ssh"),
            "id": len(region.keypairs) + 1,
            "created_at": now_iso(),
        }
        region.keypairs[name] = kp
        view = _keypair_view(kp, ctx, full=False)
        view["user_id"] = c.user_id
        if private_key:
            view["private_key"] = private_key
        return _json(201 if mv(ctx) >= (2, 2) else 200, {"keypair": view})

    def list_keypairs(ctx: Ctx) -> Response:
        items = [{"keypair": _keypair_view(kp, ctx, False)} for kp in ctx.region.keypairs.values()]
        return _json(200, {"keypairs": items})

    def get_keypair(ctx: Ctx, id: str) -> Response:
        kp = ctx.region.keypairs.get(id)
        if kp is None:
            raise nova_error(404, f"Keypair {id} not found for user {c.user_id}")
        return _json(200, {"keypair": _keypair_view(kp, ctx, True)})

    def delete_keypair(ctx: Ctx, id: str) -> Response:
        if ctx.region.keypairs.pop(id, None) is None:
            raise nova_error(404, f"Keypair {id} not found for user {c.user_id}")
        return _empty(204 if mv(ctx) >= (2, 2) else 202)

    # -- servers -----------------------------------------------------------------
    def _server(ctx: Ctx, id: str) -> ServerRecord:
        server = ctx.region.servers.get(id)
        if server is None:
            raise nova_error(404, f"Instance {id} could not be found.")
        return server

    def _addresses(region: RegionState, server: ServerRecord) -> dict[str, list[dict]]:
        addresses: dict[str, list[dict]] = {}
        for port_id in server.port_ids:
            port = region.ports.get(port_id)
            if port is None:
                continue
            net_name = region.networks[port["network_id"]]["name"]
            entries = addresses.setdefault(net_name, [])
            for fixed in port["fixed_ips"]:
                entries.append(
                    {
                        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                        "version": region.subnets[fixed["subnet_id"]]["ip_version"],
                        "addr": fixed["ip_address"],
                        "OS-EXT-IPS:type": "fixed",
                    }
                )
            for fip in region.floatingips.values():
                if fip["port_id"] == port_id:
                    entries.append(
                        {
                            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                            "version": 4,
                            "addr": fip["floating_ip_address"],
                            "OS-EXT-IPS:type": "floating",
                        }
                    )
        return addresses

    def _server_view(ctx: Ctx, server: ServerRecord) -> dict[str, Any]:
        region = ctx.region
        status = server.status()
        link = f"{ctx.service_root}/servers/{server.id}"
        if mv(ctx) >= (2, 47):
            flavor: dict[str, Any] = {
                "vcpus": server.flavor["vcpus"],
                "ram": server.flavor["ram"],
                "disk": server.flavor["disk"],
                "ephemeral": 0,
                "swap": 0,
                "original_name": server.flavor["name"],
                "extra_specs": {},
            }
        else:
            flavor = {
                "id": server.flavor["id"],
                "links": [_link(f"{ctx.service_root}/flavors/{server.flavor['id']}", "bookmark")],
            }
        view: dict[str, Any] = {
            "OS-EXT-STS:task_state": "spawning" if status == "BUILD" else None,
            "addresses": _addresses(region, server) if status in {"ACTIVE", "SHUTOFF"} else {},
            "links": [_link(link), _link(link, "bookmark")],
            "image": {
                "id": server.image["id"],
                "links": [_link(f"{ctx.service_root}/images/{server.image['id']}", "bookmark")],
            },
            "OS-EXT-STS:vm_state": VM_STATES.get(status, "error"),
            "OS-SRV-USG:launched_at": (
                server.created_at if status in {"ACTIVE", "SHUTOFF"} else None
            ),
            "flavor": flavor,
            "id": server.id,
            "security_groups": [{"name": name} for name in server.security_groups],
            "user_id": c.user_id,
            "OS-DCF:diskConfig": "MANUAL",
            "accessIPv4": "",
            "accessIPv6": "",
            "progress": 0 if status != "ACTIVE" else 100,
            # Nova's power states: 1 RUNNING, 4 SHUTDOWN, 0 NOSTATE
            "OS-EXT-STS:power_state": {"ACTIVE": 1, "SHUTOFF": 4}.get(status, 0),
            "OS-EXT-AZ:availability_zone": "nova",
            "metadata": dict(server.metadata),
            "status": status,
            "updated": server.updated_at or server.created_at,
            "hostId": "89d165f04384e3ffa4b6536669eb49104d30d6ca832bba2684605dbc",
            "OS-SRV-USG:terminated_at": None,
            "key_name": server.key_name,
            "name": server.name,
            "created": server.created_at,
            "tenant_id": c.project_id,
            "os-extended-volumes:volumes_attached": [],
            "config_drive": "",
        }
        if mv(ctx) >= (2, 9):
            view["locked"] = False
        if mv(ctx) >= (2, 19):
            view["description"] = server.description
        if mv(ctx) >= (2, 26):
            view["tags"] = list(server.tags)
        if mv(ctx) >= (2, 73):
            view["locked_reason"] = None
        if status == "ERROR":
            view["fault"] = {
                "code": 500,
                "created": server.updated_at or server.created_at,
                "message": server.fault,
                "details": "",
            }
        return view

    def _check_tags(tags: Any) -> list[str]:
        if not isinstance(tags, list) or len(tags) > 50:
            raise nova_error(400, "Invalid input for field/attribute tags.")
        for tag in tags:
            if not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "," in tag or "/" in tag:
                raise nova_error(400, f"Invalid input for field/attribute tags. Value: {tag}.")
        return list(dict.fromkeys(tags))

    def create_server(ctx: Ctx) -> Response:
        region = ctx.region
        body = (ctx.json() or {}).get("server")
        if not isinstance(body, dict) or not body.get("name"):
            raise nova_error(400, "Invalid input for field/attribute server.")
        flavor_ref = str(body.get("flavorRef", "")).rstrip("/").split("/")[-1]
        flavor = next(
            (f for f in all_flavors(region, ctx.service_root) if f["id"] == flavor_ref), None
        )
        if flavor is None:
            raise nova_error(400, f"Flavor {flavor_ref} could not be found.")
        image_ref = str(body.get("imageRef", "")).rstrip("/").split("/")[-1]
        image = next((i for i in all_images("") if i["id"] == image_ref), None)
        if image is None:
            raise nova_error(400, "Can not find requested image")
        key_name = body.get("key_name")
        public_key = None
        if key_name is not None:
            kp = region.keypairs.get(key_name)
            if kp is None:
                raise nova_error(400, "Invalid key_name provided.")
            public_key = kp["public_key"]
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > region.compute_quota["metadata_items"]:
            raise nova_error(400, "Invalid input for field/attribute metadata.")
        tags = _check_tags(body.get("tags", []))
        if tags and mv(ctx) < (2, 52):
            raise nova_error(400, "Additional properties are not allowed ('tags' was unexpected)")
        # networks
        networks = body.get("networks")
        net_ids: list[str] = []
        if networks in (None, "auto"):
            visible = list(region.networks.values())
            if len(visible) > 1:
                raise nova_error(
                    409, "Multiple possible networks found, use a Network ID to be more specific."
                )
            net_ids = [n["id"] for n in visible]
        elif networks == "none":
            net_ids = []
        elif isinstance(networks, list):
            for net in networks:
                if "port" in net:
                    raise nova_error(400, "Booting with an existing port is not supported here.")
                if net.get("uuid") not in region.networks:
                    raise nova_error(400, f"Network {net.get('uuid')} could not be found.")
                net_ids.append(net["uuid"])
        else:
            raise nova_error(400, "Invalid input for field/attribute networks.")
        # security groups
        sg_names: list[str] = []
        sg_ids: list[str] = []
        for entry in body.get("security_groups") or [{"name": "default"}]:
            sg = region.find_security_group(str(entry.get("name", "")))
            if sg is None:
                raise nova_error(
                    400, f"Security group {entry.get('name')} not found for project {c.project_id}."
                )
            sg_names.append(sg["name"])
            sg_ids.append(sg["id"])
        # user data
        user_data_b64 = body.get("user_data")
        user_data = None
        if user_data_b64 is not None:
            try:
                user_data = base64.b64decode(user_data_b64, validate=True)
            except (binascii.Error, ValueError):
                raise nova_error(400, "User data needs to be valid base 64.") from None
            if len(user_data_b64) > 65535:
                raise nova_error(400, "User data too large.")
        # quota
        used = region.usage()
        quota = region.compute_quota
        wanted = {"instances": 1, "cores": flavor["vcpus"], "ram": flavor["ram"]}
        for resource in ("instances", "cores", "ram"):
            if used[resource] + wanted[resource] > quota[resource]:
                raise nova_error(
                    403,
                    f"Quota exceeded for {resource}: Requested {wanted[resource]}, but already "
                    f"used {used[resource]} of {quota[resource]} {resource}",
                )
        server_id = str(uuid.uuid4())
        record = ServerRecord(
            id=server_id,
            name=str(body["name"]),
            flavor=flavor,
            image=image,
            key_name=key_name,
            metadata={str(k): str(v) for k, v in metadata.items()},
            tags=tags,
            security_groups=sg_names,
            user_data=user_data,
            user_data_b64=user_data_b64,
            port_ids=[],
            created_at=now_iso(),
            description=body.get("description"),
            backend=None,
            admin_pass=secrets.token_urlsafe(9),
        )
        emu.create_backend_server(region, record, public_key)
        if record.fault is None:
            for net_id in net_ids:
                port = _new_port(region, net_id, sg_ids, device_id=server_id)
                record.port_ids.append(port["id"])
        region.servers[server_id] = record
        link = f"{ctx.service_root}/servers/{server_id}"
        return _json(
            202,
            {
                "server": {
                    "id": server_id,
                    "links": [_link(link), _link(link, "bookmark")],
                    "OS-DCF:diskConfig": "MANUAL",
                    "security_groups": [{"name": n} for n in sg_names],
                    "adminPass": record.admin_pass,
                }
            },
            {"Location": link},
        )

    def _filtered_servers(ctx: Ctx) -> list[ServerRecord]:
        out = []
        for server in ctx.region.servers.values():
            name = ctx.q("name")
            if name and not re.search(name, server.name):
                continue
            status = ctx.q("status")
            if status and server.status() != status.upper():
                continue
            item = {"tags": server.tags}
            tag_query = [(k, v) for k, v in ctx.query if k.startswith(("tags", "not-tags"))]
            if not _matches_filters(item, tag_query, set()):
                continue
            out.append(server)
        return out

    def list_servers(ctx: Ctx) -> Response:
        items = []
        for s in _filtered_servers(ctx):
            link = f"{ctx.service_root}/servers/{s.id}"
            items.append(
                {"id": s.id, "name": s.name, "links": [_link(link), _link(link, "bookmark")]}
            )
        return _json(200, {"servers": items})

    def list_servers_detail(ctx: Ctx) -> Response:
        return _json(200, {"servers": [_server_view(ctx, s) for s in _filtered_servers(ctx)]})

    def get_server(ctx: Ctx, id: str) -> Response:
        return _json(200, {"server": _server_view(ctx, _server(ctx, id))})

    def update_server(ctx: Ctx, id: str) -> Response:
        server = _server(ctx, id)
        body = (ctx.json() or {}).get("server") or {}
        if "name" in body:
            server.name = str(body["name"])
        if "description" in body:
            server.description = body["description"]
        server.updated_at = now_iso()
        return _json(200, {"server": _server_view(ctx, server)})

    def delete_server(ctx: Ctx, id: str) -> Response:
        region = ctx.region
        server = _server(ctx, id)
        for port_id in server.port_ids:
            _delete_port(region, port_id)
        del region.servers[id]
        emu.backend.delete(id)
        return _empty(204)

    def server_action(ctx: Ctx, id: str) -> Response:
        server = _server(ctx, id)
        body = ctx.json() or {}
        if "os-getConsoleOutput" in body:
            status = server.status()
            if status == "BUILD" or server.backend is None:
                raise nova_error(409, f"Instance {id} is not ready.")
            length = (body["os-getConsoleOutput"] or {}).get("length")
            text = server.backend.console_text()
            if length not in (None, -1, "-1"):
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-int(length) :]) if int(length) > 0 else ""
            return _json(200, {"output": text})
        for action in ("reboot", "os-stop", "os-start"):
            if action in body:
                # Nova: reboot and os-stop need an active server, os-start a stopped one
                status = server.status()
                if status != ("SHUTOFF" if action == "os-start" else "ACTIVE"):
                    raise nova_error(
                        409,
                        f"Cannot '{action}' instance {id} while it is in vm_state "
                        f"{VM_STATES.get(status, 'error')}",
                    )
                if action != "reboot":
                    server.powered = action == "os-start"
                    server.updated_at = now_iso()
                    power = getattr(emu.backend, "power", None)
                    if power is not None:
                        power(id, server.powered)
                return _empty(202)
        raise nova_error(400, f"There is no such action: {','.join(body or {})}")

    # metadata
    def get_metadata(ctx: Ctx, id: str) -> Response:
        return _json(200, {"metadata": dict(_server(ctx, id).metadata)})

    def _set_metadata(ctx: Ctx, id: str, replace: bool) -> Response:
        server = _server(ctx, id)
        metadata = (ctx.json() or {}).get("metadata")
        if not isinstance(metadata, dict):
            raise nova_error(400, "Malformed request body")
        merged = {} if replace else dict(server.metadata)
        merged.update({str(k): str(v) for k, v in metadata.items()})
        if len(merged) > ctx.region.compute_quota["metadata_items"]:
            raise nova_error(403, "Quota exceeded for metadata_items")
        server.metadata = merged
        return _json(200, {"metadata": dict(merged)})

    def post_metadata(ctx: Ctx, id: str) -> Response:
        return _set_metadata(ctx, id, replace=False)

    def put_metadata(ctx: Ctx, id: str) -> Response:
        return _set_metadata(ctx, id, replace=True)

    def get_meta_item(ctx: Ctx, id: str, key: str) -> Response:
        server = _server(ctx, id)
        if key not in server.metadata:
            raise nova_error(404, "Metadata item was not found")
        return _json(200, {"meta": {key: server.metadata[key]}})

    def put_meta_item(ctx: Ctx, id: str, key: str) -> Response:
        server = _server(ctx, id)
        meta = (ctx.json() or {}).get("meta")
        if not isinstance(meta, dict) or list(meta) != [key]:
            raise nova_error(400, "Request body and URI mismatch")
        server.metadata[key] = str(meta[key])
        return _json(200, {"meta": {key: server.metadata[key]}})

    def delete_meta_item(ctx: Ctx, id: str, key: str) -> Response:
        server = _server(ctx, id)
        if server.metadata.pop(key, None) is None:
            raise nova_error(404, "Metadata item was not found")
        return _empty(204)

    # tags
    def get_tags(ctx: Ctx, id: str) -> Response:
        return _json(200, {"tags": list(_server(ctx, id).tags)})

    def put_tags(ctx: Ctx, id: str) -> Response:
        server = _server(ctx, id)
        server.tags = _check_tags((ctx.json() or {}).get("tags"))
        return _json(200, {"tags": list(server.tags)})

    def delete_tags(ctx: Ctx, id: str) -> Response:
        _server(ctx, id).tags = []
        return _empty(204)

    def get_tag(ctx: Ctx, id: str, tag: str) -> Response:
        if tag not in _server(ctx, id).tags:
            raise nova_error(404, f"Tag '{tag}' could not be found.")
        return _empty(204)

    def put_tag(ctx: Ctx, id: str, tag: str) -> Response:
        server = _server(ctx, id)
        if tag in server.tags:
            return _empty(204)
        server.tags = _check_tags([*server.tags, tag])
        return _empty(201)

    def delete_tag(ctx: Ctx, id: str, tag: str) -> Response:
        server = _server(ctx, id)
        if tag not in server.tags:
            raise nova_error(404, f"Tag '{tag}' could not be found.")
        server.tags.remove(tag)
        return _empty(204)

    def server_interfaces(ctx: Ctx, id: str) -> Response:
        server = _server(ctx, id)
        items = []
        for port_id in server.port_ids:
            port = ctx.region.ports[port_id]
            items.append(
                {
                    "port_id": port_id,
                    "net_id": port["network_id"],
                    "mac_addr": port["mac_address"],
                    "port_state": port["status"],
                    "fixed_ips": copy.deepcopy(port["fixed_ips"]),
                }
            )
        return _json(200, {"interfaceAttachments": items})

    def server_security_groups(ctx: Ctx, id: str) -> Response:
        server = _server(ctx, id)
        groups = []
        for name in server.security_groups:
            sg = ctx.region.find_security_group(name)
            if sg is not None:
                groups.append(
                    {
                        "id": sg["id"],
                        "name": sg["name"],
                        "description": sg["description"],
                        "tenant_id": c.project_id,
                        "rules": [],
                    }
                )
        return _json(200, {"security_groups": groups})

    # limits / quotas
    def limits(ctx: Ctx) -> Response:
        region = ctx.region
        quota, used, net = region.compute_quota, region.usage(), region.network_usage()
        absolute = {
            "maxTotalInstances": quota["instances"],
            "totalInstancesUsed": used["instances"],
            "maxTotalCores": quota["cores"],
            "totalCoresUsed": used["cores"],
            "maxTotalRAMSize": quota["ram"],
            "totalRAMUsed": used["ram"],
            "maxTotalKeypairs": quota["key_pairs"],
            "maxServerMeta": quota["metadata_items"],
            "maxImageMeta": 128,
            "maxPersonality": quota["injected_files"],
            "maxPersonalitySize": quota["injected_file_content_bytes"],
            "maxServerGroups": quota["server_groups"],
            "maxServerGroupMembers": quota["server_group_members"],
            "totalServerGroupsUsed": 0,
        }
        if mv(ctx) < (2, 36):
            absolute.update(
                maxSecurityGroups=region.network_quota["security_group"],
                maxSecurityGroupRules=region.network_quota["security_group_rule"],
                maxTotalFloatingIps=region.network_quota["floatingip"],
                totalFloatingIpsUsed=net["floatingip"],
                totalSecurityGroupsUsed=net["security_group"],
            )
        return _json(200, {"limits": {"rate": [], "absolute": absolute}})

    def quota_set(ctx: Ctx, id: str, detail: bool = False) -> Response:
        if id != c.project_id:
            raise nova_error(403, "Policy doesn't allow os_compute_api:os-quota-sets:show")
        region = ctx.region
        used = region.usage()
        keys = dict(region.compute_quota)
        if mv(ctx) >= (2, 57):
            keys.pop("injected_files", None)
            keys.pop("injected_file_content_bytes", None)
            keys.pop("injected_file_path_bytes", None)
        if detail or _truthy_q(ctx.q("usage")):
            data: dict[str, Any] = {
                k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0} for k, v in keys.items()
            }
        else:
            data = dict(keys)
        data["id"] = id
        return _json(200, {"quota_set": data})

    def quota_set_detail(ctx: Ctx, id: str) -> Response:
        return quota_set(ctx, id, detail=True)

    def availability_zones(ctx: Ctx) -> Response:
        return _json(
            200,
            {
                "availabilityZoneInfo": [
                    {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}
                ]
            },
        )

    def extensions(ctx: Ctx) -> Response:
        return _json(200, {"extensions": []})

    def nova_images(ctx: Ctx) -> Response:
        return _json(
            200,
            {"images": [{"id": i["id"], "name": i["name"], "links": []} for i in all_images("")]},
        )

    return [
        ("GET", "/flavors", list_flavors),
        ("GET", "/flavors/detail", list_flavors_detail),
        ("GET", f"/flavors/{ID}", get_flavor),
        ("GET", f"/flavors/{ID}/os-extra_specs", flavor_extra_specs),
        ("POST", "/os-keypairs", create_keypair),
        ("GET", "/os-keypairs", list_keypairs),
        ("GET", f"/os-keypairs/{ID}", get_keypair),
        ("DELETE", f"/os-keypairs/{ID}", delete_keypair),
        ("POST", "/servers", create_server),
        ("GET", "/servers", list_servers),
        ("GET", "/servers/detail", list_servers_detail),
        ("GET", f"/servers/{ID}", get_server),
        ("PUT", f"/servers/{ID}", update_server),
        ("DELETE", f"/servers/{ID}", delete_server),
        ("POST", f"/servers/{ID}/action", server_action),
        ("GET", f"/servers/{ID}/metadata", get_metadata),
        ("POST", f"/servers/{ID}/metadata", post_metadata),
        ("PUT", f"/servers/{ID}/metadata", put_metadata),
        ("GET", f"/servers/{ID}/metadata/(?P<key>[^/]+)", get_meta_item),
        ("PUT", f"/servers/{ID}/metadata/(?P<key>[^/]+)", put_meta_item),
        ("DELETE", f"/servers/{ID}/metadata/(?P<key>[^/]+)", delete_meta_item),
        ("GET", f"/servers/{ID}/tags", get_tags),
        ("PUT", f"/servers/{ID}/tags", put_tags),
        ("DELETE", f"/servers/{ID}/tags", delete_tags),
        ("GET", f"/servers/{ID}/tags/(?P<tag>[^/]+)", get_tag),
        ("PUT", f"/servers/{ID}/tags/(?P<tag>[^/]+)", put_tag),
        ("DELETE", f"/servers/{ID}/tags/(?P<tag>[^/]+)", delete_tag),
        ("GET", f"/servers/{ID}/os-interface", server_interfaces),
        ("GET", f"/servers/{ID}/os-security-groups", server_security_groups),
        ("GET", "/limits", limits),
        ("GET", f"/os-quota-sets/{ID}", quota_set),
        ("GET", f"/os-quota-sets/{ID}/detail", quota_set_detail),
        ("GET", "/os-availability-zone", availability_zones),
        ("GET", "/extensions", extensions),
        ("GET", "/images", nova_images),
    ]


def _truthy_q(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes"}


# ======================================================================= network (Neutron)


def _new_port(
    region: RegionState, network_id: str, sg_ids: list[str], device_id: str = "", name: str = ""
) -> dict[str, Any]:
    if len(region.ports) >= region.network_quota["port"]:
        raise nova_error(403, "Maximum number of ports exceeded")
    fixed_ips = region.allocate_ips(network_id)
    port = region._neutron_common(name)
    mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
    port.update(
        id=str(uuid.uuid4()),
        network_id=network_id,
        mac_address=mac,
        fixed_ips=fixed_ips,
        device_id=device_id,
        device_owner="compute:nova" if device_id else "",
        status="ACTIVE" if device_id else "DOWN",
        admin_state_up=True,
        security_groups=list(sg_ids),
        allowed_address_pairs=[],
        extra_dhcp_opts=[],
        port_security_enabled=True,
        dns_name="",
        dns_assignment=[],
        binding_vnic_type="normal",
        propagate_uplink_status=False,
    )
    port["binding:vnic_type"] = "normal"
    del port["binding_vnic_type"]
    region.ports[port["id"]] = port
    return port


def _delete_port(region: RegionState, port_id: str) -> None:
    region.ports.pop(port_id, None)
    for fip in region.floatingips.values():
        if fip["port_id"] == port_id:
            fip.update(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
            fip["port_details"] = None


_NEUTRON_KINDS = {
    "networks": ("network", "networks", "NetworkNotFound", "Network"),
    "subnets": ("subnet", "subnets", "SubnetNotFound", "Subnet"),
    "ports": ("port", "ports", "PortNotFound", "Port"),
    "routers": ("router", "routers", "RouterNotFound", "Router"),
    "security-groups": (
        "security_group",
        "security_groups",
        "SecurityGroupNotFound",
        "Security group",
    ),
    "security-group-rules": (
        "security_group_rule",
        "security_group_rules",
        "SecurityGroupRuleNotFound",
        "Security group rule",
    ),
    "floatingips": ("floatingip", "floatingips", "FloatingIPNotFound", "Floating IP"),
}

_EXTENSIONS = (
    "agent",
    "allowed-address-pairs",
    "availability_zone",
    "binding",
    "external-net",
    "extra_dhcp_opt",
    "extraroute",
    "ip-substring-filtering",
    "network-ip-availability",
    "port-security",
    "project-id",
    "quotas",
    "quota_details",
    "router",
    "security-group",
    "standard-attr-description",
    "standard-attr-revisions",
    "standard-attr-tag",
    "standard-attr-timestamp",
    "subnet_allocation",
    "tag-creation",
    "fip-port-details",
)


def network_routes(emu: OpenStackEmulator) -> list[Row]:
    def store(region: RegionState, collection: str) -> dict[str, dict[str, Any]]:
        return {
            "networks": region.networks,
            "subnets": region.subnets,
            "ports": region.ports,
            "routers": region.routers,
            "security-groups": region.security_groups,
            "security-group-rules": region.rules,
            "floatingips": region.floatingips,
        }[collection]

    def view(region: RegionState, collection: str, item: dict[str, Any]) -> dict[str, Any]:
        if collection == "security-groups":
            return region.security_group_view(item)
        return copy.deepcopy(item)

    def not_found(collection: str, id: str) -> ApiError:
        _, _, kind, label = _NEUTRON_KINDS[collection]
        return neutron_error(404, kind, f"{label} {id} could not be found.")

    def fields(ctx: Ctx, item: dict[str, Any]) -> dict[str, Any]:
        wanted = ctx.q_all("fields")
        if not wanted:
            return item
        return {k: v for k, v in item.items() if k in wanted}

    def list_items(ctx: Ctx, collection: str) -> Response:
        region = ctx.region
        plural = _NEUTRON_KINDS[collection][1]
        items = [
            fields(ctx, view(region, collection, item))
            for item in store(region, collection).values()
            if _matches_filters(view(region, collection, item), ctx.query, set())
        ]
        return _json(200, {plural: items})

    def get_item(ctx: Ctx, collection: str, id: str) -> Response:
        item = store(ctx.region, collection).get(id)
        if item is None:
            raise not_found(collection, id)
        singular = _NEUTRON_KINDS[collection][0]
        return _json(200, {singular: fields(ctx, view(ctx.region, collection, item))})

    def over_quota(region: RegionState, resource: str, count: int) -> None:
        if count >= region.network_quota[resource]:
            raise neutron_error(409, "OverQuota", f"Quota exceeded for resources: ['{resource}'].")

    def body_of(ctx: Ctx, singular: str) -> dict[str, Any]:
        body = (ctx.json() or {}).get(singular)
        if not isinstance(body, dict):
            raise neutron_error(400, "BadRequest", f"Resource body required: {singular}.")
        return body

    # -- security groups ----------------------------------------------------------
    def create_sg(ctx: Ctx) -> Response:
        region = ctx.region
        body = body_of(ctx, "security_group")
        name = str(body.get("name", ""))
        if name == "default":
            raise neutron_error(
                409, "SecurityGroupDefaultAlreadyExists", "Default security group already exists."
            )
        over_quota(region, "security_group", len(region.security_groups))
        sg = region._neutron_common(name, str(body.get("description", "")))
        sg.update(
            id=str(uuid.uuid4()),
            security_group_rules=[],
            stateful=bool(body.get("stateful", True)),
            shared=False,
        )
        sg["tags"] = list(body.get("tags") or [])
        region.security_groups[sg["id"]] = sg
        for ethertype in ("IPv4", "IPv6"):
            region.add_rule(sg["id"], direction="egress", ethertype=ethertype)
        return _json(201, {"security_group": region.security_group_view(sg)})

    def update_sg(ctx: Ctx, id: str) -> Response:
        region = ctx.region
        sg = region.security_groups.get(id)
        if sg is None:
            raise not_found("security-groups", id)
        body = body_of(ctx, "security_group")
        for key in ("name", "description"):
            if key in body:
                sg[key] = str(body[key])
        sg["revision_number"] += 1
        sg["updated_at"] = now_iso()
        return _json(200, {"security_group": region.security_group_view(sg)})

    def delete_sg(ctx: Ctx, id: str) -> Response:
        region = ctx.region
        if id not in region.security_groups:
            raise not_found("security-groups", id)
        if id == region.default_sg_id:
            raise neutron_error(
                409,
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            )
        if any(id in port["security_groups"] for port in region.ports.values()):
            raise neutron_error(409, "SecurityGroupInUse", f"Security Group {id} in use.")
        del region.security_groups[id]
        for rule_id in [r for r, rule in region.rules.items() if rule["security_group_id"] == id]:
            del region.rules[rule_id]
        return _empty(204)

    def create_rule(ctx: Ctx) -> Response:
        region = ctx.region
        body = body_of(ctx, "security_group_rule")
        sg_id = body.get("security_group_id")
        if sg_id not in region.security_groups:
            raise neutron_error(
                404, "SecurityGroupNotFound", f"Security group {sg_id} does not exist"
            )
        direction = body.get("direction")
        if direction not in ("ingress", "egress"):
            raise neutron_error(
                400,
                "HTTPBadRequest",
                f"Invalid input for direction. Reason: '{direction}' is not in "
                "['ingress', 'egress'].",
            )
        ethertype = body.get("ethertype", "IPv4")
        protocol = body.get("protocol")
        if protocol is not None:
            protocol = str(protocol).lower()
            if protocol not in ("tcp", "udp", "icmp", "icmpv6", "6", "17", "1", "any"):
                raise neutron_error(
                    400,
                    "SecurityGroupRuleInvalidProtocol",
                    f"Security group rule protocol {protocol} not supported.",
                )
            if protocol == "any":
                protocol = None
        pmin, pmax = body.get("port_range_min"), body.get("port_range_max")
        if pmin is not None or pmax is not None:
            if protocol not in ("tcp", "udp", "6", "17", "icmp", "icmpv6", "1"):
                raise neutron_error(
                    400,
                    "SecurityGroupProtocolRequiredWithPorts",
                    "Must also specify protocol if port range is given.",
                )
            pmin = int(pmin) if pmin is not None else None
            pmax = int(pmax) if pmax is not None else pmin
            if protocol in ("tcp", "udp", "6", "17") and (
                pmin is None or not 1 <= pmin <= 65535 or not 1 <= pmax <= 65535 or pmin > pmax
            ):
                raise neutron_error(
                    400,
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                )
        prefix = body.get("remote_ip_prefix")
        if prefix is not None:
            try:
                network = ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                raise neutron_error(
                    400,
                    "HTTPBadRequest",
                    f"Invalid input for remote_ip_prefix. Reason: '{prefix}' is not a valid "
                    "IP subnet.",
                ) from None
            if (network.version == 4) != (ethertype == "IPv4"):
                raise neutron_error(
                    400,
                    "SecurityGroupRuleParameterConflict",
                    f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                )
            prefix = str(network)
        remote_group = body.get("remote_group_id")
        if remote_group is not None and remote_group not in region.security_groups:
            raise neutron_error(
                404, "SecurityGroupNotFound", f"Security group {remote_group} does not exist"
            )
        values = dict(
            direction=direction,
            ethertype=ethertype,
            protocol=protocol,
            port_range_min=pmin,
            port_range_max=pmax,
            remote_ip_prefix=prefix,
            remote_group_id=remote_group,
        )
        for rule in region.rules.values():
            if rule["security_group_id"] == sg_id and all(rule[k] == v for k, v in values.items()):
                raise neutron_error(
                    409,
                    "SecurityGroupRuleExists",
                    f"Security group rule already exists. Rule id is {rule['id']}.",
                )
        over_quota(region, "security_group_rule", len(region.rules))
        rule = region.add_rule(sg_id, description=body.get("description", ""), **values)
        return _json(201, {"security_group_rule": copy.deepcopy(rule)})

    def delete_rule(ctx: Ctx, id: str) -> Response:
        if ctx.region.rules.pop(id, None) is None:
            raise not_found("security-group-rules", id)
        return _empty(204)

    # -- floating IPs ------------------------------------------------------------------
    def _associate(
        region: RegionState, fip: dict[str, Any], port_id: str | None, fixed: str | None
    ) -> None:
        if port_id is None:
            fip.update(
                port_id=None,
                fixed_ip_address=None,
                router_id=None,
                status="DOWN",
                port_details=None,
            )
            return
        port = region.ports.get(port_id)
        if port is None:
            raise neutron_error(404, "PortNotFound", f"Port {port_id} could not be found.")
        for other in region.floatingips.values():
            if other["port_id"] == port_id and other["id"] != fip["id"]:
                raise neutron_error(
                    409,
                    "FloatingIPPortAlreadyAssociated",
                    f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) "
                    f"with port {port_id} using fixed IP "
                    f"{port['fixed_ips'][0]['ip_address']}, as that fixed IP already has a "
                    f"floating IP on external network {other['floating_network_id']}.",
                )
        subnet_ids = [f["subnet_id"] for f in port["fixed_ips"]]
        router_id = region.routers_reaching(fip["floating_network_id"], subnet_ids)
        if router_id is None:
            raise neutron_error(
                404,
                "ExternalGatewayForFloatingIPNotFound",
                f"External network {fip['floating_network_id']} is not reachable from subnet "
                f"{subnet_ids[0] if subnet_ids else ''}.  Therefore, cannot associate "
                f"Port {port_id} "
                f"with a Floating IP.",
            )
        address = fixed or port["fixed_ips"][0]["ip_address"]
        fip.update(port_id=port_id, fixed_ip_address=address, router_id=router_id, status="ACTIVE")
        fip["port_details"] = {
            "name": port["name"],
            "network_id": port["network_id"],
            "mac_address": port["mac_address"],
            "admin_state_up": True,
            "status": port["status"],
            "device_id": port["device_id"],
            "device_owner": port["device_owner"],
        }

    def create_fip(ctx: Ctx) -> Response:
        region = ctx.region
        body = body_of(ctx, "floatingip")
        net_id = body.get("floating_network_id")
        network = region.networks.get(net_id)
        if network is None:
            raise neutron_error(404, "NetworkNotFound", f"Network {net_id} could not be found.")
        if not network["router:external"]:
            raise neutron_error(
                400,
                "BadRequest",
                f"Bad floatingip request: Network {net_id} is not a valid external network.",
            )
        over_quota(region, "floatingip", len(region.floatingips))
        fip = region._neutron_common(None, str(body.get("description", "")))
        fip.update(
            id=str(uuid.uuid4()),
            floating_ip_address=region.public_address,
            floating_network_id=net_id,
            router_id=None,
            port_id=None,
            fixed_ip_address=None,
            status="DOWN",
            dns_domain="",
            dns_name="",
            port_details=None,
            qos_policy_id=None,
            port_forwardings=[],
        )
        fip["tags"] = list(body.get("tags") or [])
        _associate(region, fip, body.get("port_id"), body.get("fixed_ip_address"))
        region.floatingips[fip["id"]] = fip
        return _json(201, {"floatingip": copy.deepcopy(fip)})

    def update_fip(ctx: Ctx, id: str) -> Response:
        region = ctx.region
        fip = region.floatingips.get(id)
        if fip is None:
            raise not_found("floatingips", id)
        body = body_of(ctx, "floatingip")
        if "port_id" in body:
            _associate(region, fip, body.get("port_id"), body.get("fixed_ip_address"))
        if "description" in body:
            fip["description"] = str(body["description"])
        fip["revision_number"] += 1
        return _json(200, {"floatingip": copy.deepcopy(fip)})

    def delete_fip(ctx: Ctx, id: str) -> Response:
        if ctx.region.floatingips.pop(id, None) is None:
            raise not_found("floatingips", id)
        return _empty(204)

    # -- ports -----------------------------------------------------------------------
    def create_port(ctx: Ctx) -> Response:
        region = ctx.region
        body = body_of(ctx, "port")
        net_id = body.get("network_id")
        if net_id not in region.networks:
            raise neutron_error(404, "NetworkNotFound", f"Network {net_id} could not be found.")
        over_quota(region, "port", len(region.ports))
        sg_ids = body.get("security_groups")
        if sg_ids is None:
            sg_ids = [region.default_sg_id]
        for sg_id in sg_ids:
            if sg_id not in region.security_groups:
                raise neutron_error(
                    404, "SecurityGroupNotFound", f"Security group {sg_id} does not exist"
                )
        port = _new_port(region, net_id, sg_ids, name=str(body.get("name", "")))
        port["tags"] = list(body.get("tags") or [])
        return _json(201, {"port": copy.deepcopy(port)})

    def delete_port(ctx: Ctx, id: str) -> Response:
        region = ctx.region
        port = region.ports.get(id)
        if port is None:
            raise not_found("ports", id)
        if port["device_owner"].startswith("compute:") and port["device_id"] in region.servers:
            raise neutron_error(
                409,
                "PortInUse",
                f"Port {id} cannot be deleted directly via the port API: has device "
                f"owner {port['device_owner']}.",
            )
        _delete_port(region, id)
        return _empty(204)

    # -- tags --------------------------------------------------------------------------
    def _tagged(ctx: Ctx, collection: str, id: str) -> dict[str, Any]:
        item = store(ctx.region, collection).get(id)
        if item is None:
            raise not_found(collection, id)
        return item

    def _valid_tags(tags: Any) -> list[str]:
        if not isinstance(tags, list) or any(
            not isinstance(t, str) or not 0 < len(t) <= 255 or "," in t for t in tags
        ):
            raise neutron_error(400, "InvalidInput", "Invalid input for operation: Invalid tags.")
        return list(dict.fromkeys(tags))

    def get_tags(ctx: Ctx, collection: str, id: str) -> Response:
        return _json(200, {"tags": list(_tagged(ctx, collection, id)["tags"])})

    def put_tags(ctx: Ctx, collection: str, id: str) -> Response:
        item = _tagged(ctx, collection, id)
        item["tags"] = _valid_tags((ctx.json() or {}).get("tags"))
        item["revision_number"] += 1
        return _json(200, {"tags": list(item["tags"])})

    def delete_tags(ctx: Ctx, collection: str, id: str) -> Response:
        _tagged(ctx, collection, id)["tags"] = []
        return _empty(204)

    def get_tag(ctx: Ctx, collection: str, id: str, tag: str) -> Response:
        if tag not in _tagged(ctx, collection, id)["tags"]:
            raise neutron_error(
                404, "TagNotFound", f"Tag {tag} could not be found for {collection} {id}."
            )
        return _empty(204)

    def put_tag(ctx: Ctx, collection: str, id: str, tag: str) -> Response:
        item = _tagged(ctx, collection, id)
        if tag not in item["tags"]:
            item["tags"] = _valid_tags([*item["tags"], tag])
        return _empty(201)

    def delete_tag(ctx: Ctx, collection: str, id: str, tag: str) -> Response:
        item = _tagged(ctx, collection, id)
        if tag not in item["tags"]:
            raise neutron_error(
                404, "TagNotFound", f"Tag {tag} could not be found for {collection} {id}."
            )
        item["tags"].remove(tag)
        return _empty(204)

    # -- quotas / extensions -------------------------------------------------------------
    def quota(ctx: Ctx, id: str) -> Response:
        if id != emu.creds.project_id:
            raise neutron_error(
                403,
                "HTTPForbidden",
                "Non-admin is not authorized to access quotas for another project",
            )
        return _json(200, {"quota": dict(ctx.region.network_quota)})

    def quota_details(ctx: Ctx, id: str) -> Response:
        quota(ctx, id)
        used = ctx.region.network_usage()
        return _json(
            200,
            {
                "quota": {
                    k: {"limit": v, "used": used.get(k, 0), "reserved": 0}
                    for k, v in ctx.region.network_quota.items()
                }
            },
        )

    def extensions(ctx: Ctx) -> Response:
        return _json(
            200,
            {
                "extensions": [
                    {
                        "alias": a,
                        "name": a,
                        "description": a,
                        "updated": "2013-01-01T10:00:00-00:00",
                        "links": [],
                    }
                    for a in _EXTENSIONS
                ]
            },
        )

    rows: list[Row] = [("GET", "/extensions", extensions)]
    coll = (
        r"(?P<collection>networks|subnets|ports|routers|security-groups"
        r"|security-group-rules|floatingips)"
    )
    rows += [
        ("POST", "/security-groups", create_sg),
        ("PUT", f"/security-groups/{ID}", update_sg),
        ("DELETE", f"/security-groups/{ID}", delete_sg),
        ("POST", "/security-group-rules", create_rule),
        ("DELETE", f"/security-group-rules/{ID}", delete_rule),
        ("POST", "/floatingips", create_fip),
        ("PUT", f"/floatingips/{ID}", update_fip),
        ("DELETE", f"/floatingips/{ID}", delete_fip),
        ("POST", "/ports", create_port),
        ("DELETE", f"/ports/{ID}", delete_port),
        ("GET", f"/quotas/{ID}/details", quota_details),
        ("GET", f"/quotas/{ID}", quota),
        ("GET", f"/{coll}/{ID}/tags", get_tags),
        ("PUT", f"/{coll}/{ID}/tags", put_tags),
        ("DELETE", f"/{coll}/{ID}/tags", delete_tags),
        ("GET", f"/{coll}/{ID}/tags/(?P<tag>[^/]+)", get_tag),
        ("PUT", f"/{coll}/{ID}/tags/(?P<tag>[^/]+)", put_tag),
        ("DELETE", f"/{coll}/{ID}/tags/(?P<tag>[^/]+)", delete_tag),
        ("GET", f"/{coll}", list_items),
        ("GET", f"/{coll}/{ID}", get_item),
    ]
    return rows


# =========================================================================== image (Glance)


def image_routes(emu: OpenStackEmulator) -> list[Row]:
    def list_images(ctx: Ctx) -> Response:
        images = [i for i in all_images("") if _matches_filters(i, ctx.query, set())]
        return _json(200, {"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"})

    def get_image(ctx: Ctx, id: str) -> Response:
        for image in all_images(""):
            if image["id"] == id:
                return _json(200, image)
        raise glance_error(404, f"No image found with ID {id}")

    return [("GET", "/images", list_images), ("GET", f"/images/{ID}", get_image)]


# ====================================================================== test control API


def control_routes(emu: OpenStackEmulator) -> list[Row]:
    def inject(ctx: Ctx) -> Response:
        body = ctx.json() or {}
        fault = emu.inject(
            body.get("method", "*"),
            body["path_regex"],
            int(body.get("status", 500)),
            body.get("body"),
            body.get("times", 1),
            body.get("headers"),
        )
        return _json(201, fault.to_dict())

    def faults(ctx: Ctx) -> Response:
        return _json(200, {"faults": [f.to_dict() for f in emu.faults]})

    def clear(ctx: Ctx) -> Response:
        emu.clear_faults()
        return _empty(204)

    def quotas(ctx: Ctx) -> Response:
        body = ctx.json() or {}
        emu.set_compute_quota(body.get("region"), **(body.get("compute") or {}))
        emu.set_network_quota(body.get("region"), **(body.get("network") or {}))
        return _json(
            200,
            {
                r.spec.name: {"compute": r.compute_quota, "network": r.network_quota}
                for r in emu.regions.values()
            },
        )

    def fail_servers(ctx: Ctx) -> Response:
        body = ctx.json() or {}
        emu.fail_next_servers(
            body.get("message") or "No valid host was found. There are not enough hosts available.",
            int(body.get("times", 1)),
        )
        return _empty(204)

    def listing(ctx: Ctx) -> Response:
        return _json(200, emu.listing(ctx.q("region")))

    def servers(ctx: Ctx) -> Response:
        out = []
        for region in emu.regions.values():
            for s in region.servers.values():
                out.append(
                    {
                        "region": region.spec.name,
                        "id": s.id,
                        "name": s.name,
                        "status": s.status(),
                        "key_name": s.key_name,
                        "metadata": s.metadata,
                        "tags": s.tags,
                        "user_data": s.user_data_b64,
                        "fault": s.fault,
                        "ssh_port": s.backend.host_port(22) if s.backend is not None else None,
                    }
                )
        return _json(200, {"servers": out})

    def calls(ctx: Ctx) -> Response:
        return _json(200, {"calls": [c.__dict__ for c in emu.calls]})

    def reset(ctx: Ctx) -> Response:
        emu.reset()
        return _empty(204)

    def info(ctx: Ctx) -> Response:
        return _json(
            200,
            {
                "auth_url": f"{ctx.base}/identity/v3",
                "regions": emu.region_names,
                "credentials": emu.creds.__dict__,
            },
        )

    return [
        ("GET", "/", info),
        ("POST", "/inject", inject),
        ("GET", "/faults", faults),
        ("DELETE", "/faults", clear),
        ("POST", "/quotas", quotas),
        ("POST", "/fail-servers", fail_servers),
        ("GET", "/listing", listing),
        ("GET", "/servers", servers),
        ("GET", "/requests", calls),
        ("POST", "/reset", reset),
    ]


__all__ = ["Fault"]
