"""An OpenStack cloud (Keystone v3, Nova, Neutron, Glance) that the real openstacksdk
talks to unchanged.

Why: no OpenStack can run here, and a Python mock of the SDK would test nothing of
the wire protocol. This app speaks the HTTP API the SDK expects (shapes from
openstacksdk's own fakes: `openstack/tests/unit/cloud/fakes.py`, request sequences of
`tests/unit/cloud/test_create_server.py`, tokens from `keystoneauth1.fixture.V3Token`),
keeps the state a target creates, enforces quotas, answers with the errors real
services give (401, 403 over quota, 404, 409) and fails any call on request.

Layout of the URLs (the catalog points the SDK at them; only `auth_url` is
configured): `/identity/v3`, and per region (one cluster each, as on bwCloud)
`/<region>/compute/v2.1`, `/<region>/network/v2.0`, `/<region>/image/v2`.
Test control: `/__emulator__/...` (see `control.py` docs in `OpenStackEmulator`).
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from .backends import Backend, BackendError, BackendServer, NullBackend, ServerRequest


def _v3_token_class() -> Any:
    """keystoneauth1's V3Token fixture (the token shape its own tests use).

    `keystoneauth1.fixture` imports the `fixtures` package on import; when that is
    not installed, load the self-contained v3 module from keystoneauth1's files.
    """
    try:
        from keystoneauth1.fixture import V3Token

        return V3Token
    except ImportError:
        import importlib.util
        from pathlib import Path

        import keystoneauth1

        folder = Path(keystoneauth1.__file__).parent / "fixture"
        spec = importlib.util.spec_from_file_location(
            "_modelship_ks_fixture_exception", folder / "exception.py"
        )
        assert spec is not None and spec.loader is not None
        exception = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(exception)
        source = (folder / "v3.py").read_text()
        source = source.replace("from keystoneauth1.fixture import exception", "")
        namespace: dict[str, Any] = {"__name__": "_modelship_ks_fixture_v3", "exception": exception}
        exec(compile(source, str(folder / "v3.py"), "exec"), namespace)
        return namespace["Token"]


V3Token = _v3_token_class()

NS = uuid.UUID("6f1d8a52-93a4-4c8e-9a55-3b0b3c1f0e11")


def stable_id(*parts: str) -> str:
    """Deterministic UUIDs for the seeded resources (same ids every run)."""
    return str(uuid.uuid5(NS, "/".join(parts)))


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSpec:
    """One region = one cluster with its own Nova/Neutron/Glance state.

    `external_network` is the public provider network servers may sit on directly
    (bwCloud: `public-belwue`). With `private_network` set, the region also has a
    project network behind a router whose gateway is on the external network, so
    floating IPs (from the external network) can reach servers there.
    """

    name: str
    external_network: str = "public-belwue"
    private_network: str | None = "private"
    floating_ip_quota: int = 2
    # the private network also has an IPv6 subnet (routed, not NATed): its ports get
    # the emulator's `public_address6` (::1), as bwCloud's IPv6 regions give servers a
    # public IPv6 address next to a private IPv4 address behind SNAT
    ipv6: bool = False
    # whether projects may attach servers to the external network itself (bwCloud's
    # IPv6 regions: no; servers sit on the shared project-side network)
    external_shared: bool = True

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")


# Freiburg: servers only on the provider network, no floating IPs (as on bwCloud).
# Karlsruhe: provider network plus a private network with a router and floating IPs.
# Mannheim: no IPv4 ingress: servers sit on "public-belwue", a project-side network
# with a private IPv4 subnet behind a SNAT router and a public IPv6 subnet; the external
# network ("ext-belwue") gives no floating IPs (quota 0). Reachable only over IPv6.
DEFAULT_REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec("Freiburg", private_network=None, floating_ip_quota=0),
    RegionSpec("Karlsruhe"),
    RegionSpec(
        "Mannheim",
        external_network="ext-belwue",
        private_network="public-belwue",
        floating_ip_quota=0,
        ipv6=True,
        external_shared=False,
    ),
)


@dataclass(frozen=True)
class Credentials:
    """The one user/project of the emulated cloud and its application credential."""

    username: str = "analyst@uni-freiburg.de"
    password: str = "correct horse battery staple"
    user_id: str = "9c119f4beaaa438792ce89387362b3ad"
    user_domain_name: str = "Default"
    user_domain_id: str = "default"
    project_name: str = "analyst-project"
    project_id: str = "1c36b64c840a42cd9e9b931a369337f0"
    project_domain_name: str = "Default"
    project_domain_id: str = "default"
    application_credential_id: str = "aa7b8e1d2c3f4a5b9c0d1e2f3a4b5c6d"
    application_credential_name: str = "modelship"
    application_credential_secret: str = "app-cred-secret-4ff0"


DEFAULT_COMPUTE_QUOTA: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "key_pairs": 100,
    "metadata_items": 128,
    "server_groups": 10,
    "server_group_members": 10,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}

DEFAULT_NETWORK_QUOTA: dict[str, int] = {
    "network": 10,
    "subnet": 10,
    "port": 50,
    "router": 10,
    "floatingip": 2,
    "security_group": 10,
    "security_group_rule": 100,
    "rbac_policy": 10,
}

# What a basic bwCloud account gets (issue 11): one small VM.
BWCLOUD_BASIC_COMPUTE_QUOTA: dict[str, int] = {"instances": 1, "cores": 1, "ram": 1024}

FLAVORS: tuple[tuple[str, int, int, int], ...] = (
    # name, vcpus, ram MB, disk GB
    ("m1.tiny", 1, 1024, 12),
    ("m1.small", 1, 2048, 12),
    ("m1.medium", 2, 4096, 20),
    ("m1.large", 4, 8192, 40),
)

IMAGES: tuple[tuple[str, str, str], ...] = (
    # name, os_distro, os_version
    ("Debian 12", "debian", "12"),
    ("Ubuntu 24.04", "ubuntu", "24.04"),
    ("Debian 11", "debian", "11"),
)

DEFAULT_SERVER_FAULT = "No valid host was found. There are not enough hosts available."


def _parse_version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


# -- errors --------------------------------------------------------------------------------


class ApiError(Exception):
    """Stops a handler with an HTTP error response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
}


def nova_error(status: int, message: str) -> ApiError:
    key = _NOVA_KEYS.get(status, "computeFault")
    return ApiError(status, {key: {"code": status, "message": message}})


def neutron_error(status: int, kind: str, message: str) -> ApiError:
    return ApiError(status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


def glance_error(status: int, message: str) -> ApiError:
    titles = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 403: "Forbidden"}
    title = titles.get(status, "Error")
    return ApiError(status, f"{status} {title}\n\n{message}\n\n   ")


def keystone_error(status: int, message: str) -> ApiError:
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    return ApiError(
        status,
        {"error": {"code": status, "title": titles.get(status, "Error"), "message": message}},
    )


def default_error_body(service: str, status: int, message: str) -> Any:
    """What each service's error looks like (used for injected faults without a body)."""
    if service == "compute":
        return nova_error(status, message).body
    if service == "network":
        return neutron_error(status, "InjectedFault", message).body
    if service == "image":
        return glance_error(status, message).body
    return keystone_error(status, message).body


# -- fault injection ---------------------------------------------------------------------


@dataclass
class Fault:
    """Answer `status`/`body` to the next `times` calls matching method and path.

    `path_regex` is searched in the full path (e.g. `/karlsruhe/compute/v2.1/servers`);
    `method` "*" matches any. `times=None` keeps failing until cleared.
    """

    method: str
    path_regex: str
    status: int
    body: Any = None
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method.upper()):
            return False
        return re.search(self.path_regex, path) is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path_regex": self.path_regex,
            "status": self.status,
            "body": self.body,
            "times": self.times,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (for tests that check call sequences)."""

    method: str
    path: str
    query: str
    status: int
    injected: bool = False


# -- state ---------------------------------------------------------------------------------


@dataclass
class ServerRecord:
    id: str
    name: str
    flavor: dict[str, Any]
    image: dict[str, Any]
    key_name: str | None
    metadata: dict[str, str]
    tags: list[str]
    security_groups: list[str]  # names
    user_data: bytes | None
    user_data_b64: str | None
    port_ids: list[str]
    created_at: str
    description: str | None
    backend: BackendServer | None
    fault: str | None = None
    admin_pass: str = ""
    updated_at: str = ""
    powered: bool = True  # False after os-stop (Nova: status SHUTOFF, vm_state stopped)

    def status(self) -> str:
        if self.fault is not None:
            return "ERROR"
        if self.backend is None:
            return "ERROR"
        state = self.backend.state()
        if state == "ERROR":
            self.fault = self.backend.fault() or "The machine behind the server failed."
        if state == "ACTIVE" and not self.powered:
            return "SHUTOFF"
        return state


class RegionState:
    """Nova + Neutron + Glance state of one region."""

    def __init__(
        self,
        spec: RegionSpec,
        creds: Credentials,
        public_address: str,
        compute_quota: dict[str, int],
        network_quota: dict[str, int],
        public_address6: str = "::1",
    ) -> None:
        self.spec = spec
        self.creds = creds
        self.public_address = public_address
        self.public_address6 = public_address6
        self.compute_quota = dict(compute_quota)
        self.network_quota = dict(network_quota)
        self.network_quota["floatingip"] = spec.floating_ip_quota
        self.servers: dict[str, ServerRecord] = {}
        self.keypairs: dict[str, dict[str, Any]] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.routers: dict[str, dict[str, Any]] = {}
        self.router_subnets: dict[str, list[str]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.security_groups: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.floatingips: dict[str, dict[str, Any]] = {}
        self.default_sg_id = ""
        self._next_ip = 10
        self._seed()

    # seeded resources -----------------------------------------------------------------
    def _neutron_common(self, name: str | None, description: str = "") -> dict[str, Any]:
        stamp = now_iso()
        data: dict[str, Any] = {
            "tenant_id": self.creds.project_id,
            "project_id": self.creds.project_id,
            "description": description,
            "created_at": stamp,
            "updated_at": stamp,
            "revision_number": 1,
            "tags": [],
        }
        if name is not None:
            data["name"] = name
        return data

    def _seed(self) -> None:
        spec = self.spec
        ext_id = stable_id(spec.slug, "network", spec.external_network)
        ext_subnet = stable_id(spec.slug, "subnet", spec.external_network)
        self.networks[ext_id] = self._network(
            ext_id, spec.external_network, [ext_subnet], external=True, shared=spec.external_shared
        )
        self.networks[ext_id]["project_id"] = self.networks[ext_id]["tenant_id"] = (
            "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # owned by the operator, shared with all
        )
        self.subnets[ext_subnet] = self._subnet(
            ext_subnet, f"{spec.external_network}-subnet", ext_id, "127.0.0.0/8", "127.0.0.254"
        )
        self.external_network_id = ext_id
        if spec.private_network:
            net_id = stable_id(spec.slug, "network", spec.private_network)
            sub_id = stable_id(spec.slug, "subnet", spec.private_network)
            subnets = [sub_id]
            if spec.ipv6:
                subnets.append(stable_id(spec.slug, "subnet6", spec.private_network))
            self.networks[net_id] = self._network(
                net_id, spec.private_network, subnets, shared=spec.ipv6
            )
            self.subnets[sub_id] = self._subnet(
                sub_id, f"{spec.private_network}-subnet", net_id, "10.0.0.0/24", "10.0.0.1"
            )
            if spec.ipv6:
                # "::/64" holds ::1 (loopback, where the sshd stand-in listens): the
                # target must decide by what Neutron reports, not by the range
                self.subnets[subnets[1]] = self._subnet(
                    subnets[1], f"{spec.private_network}-subnet6", net_id, "::/64", None
                )
            router_id = stable_id(spec.slug, "router")
            router = self._neutron_common("router")
            router.update(
                id=router_id,
                status="ACTIVE",
                admin_state_up=True,
                external_gateway_info={
                    "network_id": ext_id,
                    "enable_snat": True,
                    "external_fixed_ips": [
                        {"subnet_id": ext_subnet, "ip_address": self.public_address}
                    ],
                },
                routes=[],
                availability_zones=["nova"],
                availability_zone_hints=[],
                distributed=False,
                ha=False,
                flavor_id=None,
            )
            self.routers[router_id] = router
            self.router_subnets[router_id] = [sub_id]
        self.default_sg_id = stable_id(spec.slug, "security-group", "default")
        sg = self._neutron_common("default", "Default security group")
        sg.update(id=self.default_sg_id, security_group_rules=[], stateful=True, shared=False)
        self.security_groups[self.default_sg_id] = sg
        for ethertype in ("IPv4", "IPv6"):
            self.add_rule(self.default_sg_id, direction="egress", ethertype=ethertype)
            self.add_rule(
                self.default_sg_id,
                direction="ingress",
                ethertype=ethertype,
                remote_group_id=self.default_sg_id,
            )
        # bwCloud's default group opens SSH to the world, nothing else.
        self.add_rule(
            self.default_sg_id,
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
            remote_ip_prefix="0.0.0.0/0",
        )

    def _network(
        self,
        net_id: str,
        name: str,
        subnets: list[str],
        external: bool = False,
        shared: bool = False,
    ) -> dict[str, Any]:
        net = self._neutron_common(name)
        net.update(
            id=net_id,
            status="ACTIVE",
            admin_state_up=True,
            shared=shared,
            subnets=subnets,
            mtu=1500,
            port_security_enabled=True,
            availability_zones=["nova"],
            availability_zone_hints=[],
            ipv4_address_scope=None,
            ipv6_address_scope=None,
            is_default=external,
            l2_adjacency=True,
            dns_domain="",
        )
        net["router:external"] = external
        return net

    def _subnet(
        self, sub_id: str, name: str, net_id: str, cidr: str, gateway: str | None
    ) -> dict[str, Any]:
        network = ipaddress.ip_network(cidr)
        v6 = network.version == 6
        sub = self._neutron_common(name)
        sub.update(
            id=sub_id,
            network_id=net_id,
            ip_version=network.version,
            cidr=cidr,
            gateway_ip=gateway,
            enable_dhcp=True,
            allocation_pools=[{"start": str(network.network_address + 2), "end": str(network[-2])}],
            dns_nameservers=[],
            host_routes=[],
            ipv6_ra_mode="slaac" if v6 else None,
            ipv6_address_mode="slaac" if v6 else None,
            subnetpool_id=None,
            service_types=[],
            segment_id=None,
            dns_publish_fixed_ip=False,
        )
        return sub

    # helpers ------------------------------------------------------------------------
    def add_rule(self, sg_id: str, **values: Any) -> dict[str, Any]:
        rule = self._neutron_common(None, values.pop("description", "") or "")
        rule.update(
            id=str(uuid.uuid4()),
            security_group_id=sg_id,
            direction=values.get("direction", "ingress"),
            ethertype=values.get("ethertype", "IPv4"),
            protocol=values.get("protocol"),
            port_range_min=values.get("port_range_min"),
            port_range_max=values.get("port_range_max"),
            remote_ip_prefix=values.get("remote_ip_prefix"),
            remote_group_id=values.get("remote_group_id"),
            remote_address_group_id=None,
            normalized_cidr=values.get("remote_ip_prefix"),
            belongs_to_default_sg=sg_id == self.default_sg_id,
        )
        self.rules[rule["id"]] = rule
        return rule

    def security_group_view(self, sg: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(sg)
        view["security_group_rules"] = [
            copy.deepcopy(r) for r in self.rules.values() if r["security_group_id"] == sg["id"]
        ]
        return view

    def network_of_subnet(self, subnet_id: str) -> dict[str, Any]:
        return self.networks[self.subnets[subnet_id]["network_id"]]

    def allocate_ip(self, network_id: str) -> tuple[str, str]:
        net = self.networks[network_id]
        subnet_id = net["subnets"][0]
        if net["router:external"]:
            return subnet_id, self.public_address
        cidr = ipaddress.ip_network(self.subnets[subnet_id]["cidr"])
        address = str(cidr.network_address + self._next_ip)
        self._next_ip += 1
        return subnet_id, address

    def allocate_ips(self, network_id: str) -> list[dict[str, str]]:
        """A port's fixed IPs: the first (IPv4) subnet's, plus ``public_address6`` from
        an IPv6 subnet of the network (SLAAC: one address per port)."""
        subnet_id, address = self.allocate_ip(network_id)
        fixed = [{"subnet_id": subnet_id, "ip_address": address}]
        for other in self.networks[network_id]["subnets"][1:]:
            if self.subnets[other]["ip_version"] == 6:
                fixed.append({"subnet_id": other, "ip_address": self.public_address6})
        return fixed

    def routers_reaching(self, external_network_id: str, subnet_ids: Iterable[str]) -> str | None:
        wanted = set(subnet_ids)
        for router_id, router in self.routers.items():
            gateway = router.get("external_gateway_info") or {}
            if gateway.get("network_id") != external_network_id:
                continue
            if wanted & set(self.router_subnets.get(router_id, [])):
                return router_id
        return None

    def find_security_group(self, name_or_id: str) -> dict[str, Any] | None:
        if name_or_id in self.security_groups:
            return self.security_groups[name_or_id]
        matches = [sg for sg in self.security_groups.values() if sg["name"] == name_or_id]
        return matches[0] if len(matches) == 1 else None

    def usage(self) -> dict[str, int]:
        used = {"instances": 0, "cores": 0, "ram": 0}
        for server in self.servers.values():
            used["instances"] += 1
            used["cores"] += server.flavor["vcpus"]
            used["ram"] += server.flavor["ram"]
        used["key_pairs"] = len(self.keypairs)
        return used

    def network_usage(self) -> dict[str, int]:
        return {
            "network": sum(
                1 for n in self.networks.values() if n["project_id"] == self.creds.project_id
            ),
            "subnet": sum(
                1 for s in self.subnets.values() if s["project_id"] == self.creds.project_id
            ),
            "port": len(self.ports),
            "router": len(self.routers),
            "floatingip": len(self.floatingips),
            "security_group": len(self.security_groups),
            "security_group_rule": len(self.rules),
            "rbac_policy": 0,
        }


# -- request context -------------------------------------------------------------------


@dataclass
class Ctx:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    raw_body: bytes
    base: str  # scheme://host:port of the emulator as the client sees it
    region: RegionState | None = None
    service_root: str = ""  # e.g. http://127.0.0.1:P/karlsruhe/compute/v2.1
    microversion: tuple[int, int] = (2, 1)
    token: dict[str, Any] | None = None

    def json(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise ApiError(
                400, {"badRequest": {"code": 400, "message": "Malformed JSON"}}
            ) from None

    def q(self, key: str) -> str | None:
        for k, v in self.query:
            if k == key:
                return v
        return None

    def q_all(self, key: str) -> list[str]:
        return [v for k, v in self.query if k == key]


Handler = Callable[..., Response]


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error_response(error: ApiError) -> Response:
    if isinstance(error.body, str):
        return Response(error.body, status_code=error.status, headers=error.headers)
    return _json(error.status, error.body, error.headers)


def _empty(status: int) -> Response:
    return Response(b"", status_code=status)


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _matches_filters(item: dict[str, Any], query: list[tuple[str, str]], skip: set[str]) -> bool:
    """Neutron-style filtering: every known attribute in the query must match (a key
    given several times matches any of its values); tags/tags-any/not-tags too."""
    by_key: dict[str, list[str]] = {}
    for key, value in query:
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        if key in skip or key in {"fields", "limit", "marker", "sort_key", "sort_dir"}:
            continue
        if key in {"tags", "tags-any", "not-tags", "not-tags-any"}:
            wanted = {t for v in values for t in v.split(",") if t}
            have = set(item.get("tags") or [])
            if key == "tags" and not wanted <= have:
                return False
            if key == "tags-any" and not wanted & have:
                return False
            if key == "not-tags" and wanted and wanted <= have:
                return False
            if key == "not-tags-any" and wanted & have:
                return False
            continue
        if key not in item:
            continue  # unknown filters are ignored, as most services do
        actual = item[key]
        if isinstance(actual, bool):
            if not any(_truthy(v) == actual for v in values):
                return False
        elif actual is None:
            if not any(v in ("", "None", "null") for v in values):
                return False
        elif str(actual) not in values:
            return False
    return True


# -- the emulator ------------------------------------------------------------------------


class OpenStackEmulator:
    """The emulated cloud: ASGI app (`app`), its state, fault injection and test views.

    In-process use: `with OpenStackEmulator(backend=...) as cloud: cloud.auth_url`.
    Out-of-process: `python -m tests.emulators.openstack --port P` and the HTTP control
    API under `/__emulator__/` (inject, faults, quotas, fail-servers, listing, servers,
    requests, reset).
    """

    def __init__(
        self,
        *,
        regions: Iterable[RegionSpec] = DEFAULT_REGIONS,
        backend: Backend | None = None,
        credentials: Credentials | None = None,
        compute_max_microversion: str = "2.79",
        public_address: str = "127.0.0.1",
        public_address6: str = "::1",
        compute_quota: dict[str, int] | None = None,
        network_quota: dict[str, int] | None = None,
        token_ttl_s: int = 3600,
    ) -> None:
        self.region_specs = tuple(regions)
        self.backend: Backend = backend or NullBackend()
        self.creds = credentials or Credentials()
        self.compute_max = _parse_version(compute_max_microversion)
        self.public_address = public_address
        self.public_address6 = public_address6
        self.token_ttl_s = token_ttl_s
        self._compute_quota = {**DEFAULT_COMPUTE_QUOTA, **(compute_quota or {})}
        self._network_quota = {**DEFAULT_NETWORK_QUOTA, **(network_quota or {})}
        self.regions: dict[str, RegionState] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.errors: list[str] = []  # tracebacks of emulator bugs (500s); tests assert none
        self.server_failures: list[str] = []
        self.lock = threading.RLock()
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.reset()
        self._routes = self._build_routes()

    # -- public test API -----------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        """Keystone v3, what clouds.yaml's `auth_url` names."""
        return f"{self.url}/identity/v3"

    @property
    def region_names(self) -> list[str]:
        return [spec.name for spec in self.region_specs]

    def reset(self) -> None:
        """Forget every resource, token, fault and call (seeded resources come back)."""
        with self.lock:
            for region in getattr(self, "regions", {}).values():
                for server_id in list(region.servers):
                    self.backend.delete(server_id)
            self.regions = {
                spec.slug: RegionState(
                    spec,
                    self.creds,
                    self.public_address,
                    self._compute_quota,
                    self._network_quota,
                    self.public_address6,
                )
                for spec in self.region_specs
            }
            self.tokens.clear()
            self.faults.clear()
            self.calls.clear()
            self.server_failures.clear()

    def region(self, name: str | None = None) -> RegionState:
        """A region's state by name or slug (the first region when None)."""
        if name is None:
            return next(iter(self.regions.values()))
        slug = RegionSpec(name).slug
        return self.regions[slug]

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Make the next `times` calls matching `method` and `path_regex` fail."""
        fault = Fault(method.upper(), path_regex, status, body, times, dict(headers or {}))
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def fail_next_servers(self, message: str = DEFAULT_SERVER_FAULT, times: int = 1) -> None:
        """The next `times` servers are accepted (202) but go to ERROR with `message`."""
        with self.lock:
            self.server_failures.extend([message] * times)

    def set_compute_quota(self, region: str | None = None, **limits: int) -> None:
        """Change Nova quotas (instances, cores, ram, key_pairs, ...) of one or all regions."""
        with self.lock:
            for state in self._regions_named(region):
                state.compute_quota.update(limits)

    def set_network_quota(self, region: str | None = None, **limits: int) -> None:
        """Change Neutron quotas (floatingip, security_group, ...) of one or all regions."""
        with self.lock:
            for state in self._regions_named(region):
                state.network_quota.update(limits)

    def _regions_named(self, region: str | None) -> list[RegionState]:
        return list(self.regions.values()) if region is None else [self.region(region)]

    def listing(self, region: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """What a deployment could have left behind, per kind (each item has `region`).

        Seeded resources (networks, subnets, router, default security group and its
        rules) are not listed: after a clean teardown every list is empty.
        """
        out: dict[str, list[dict[str, Any]]] = {
            "servers": [],
            "keypairs": [],
            "security_groups": [],
            "security_group_rules": [],
            "floating_ips": [],
            "ports": [],
        }
        with self.lock:
            for state in self._regions_named(region):
                name = state.spec.name
                for s in state.servers.values():
                    out["servers"].append(
                        {
                            "region": name,
                            "id": s.id,
                            "name": s.name,
                            "status": s.status(),
                            "tags": list(s.tags),
                            "metadata": dict(s.metadata),
                        }
                    )
                for k in state.keypairs.values():
                    out["keypairs"].append({"region": name, "name": k["name"]})
                for sg in state.security_groups.values():
                    if sg["id"] != state.default_sg_id:
                        out["security_groups"].append(
                            {"region": name, **state.security_group_view(sg)}
                        )
                for rule in state.rules.values():
                    if rule["security_group_id"] != state.default_sg_id:
                        out["security_group_rules"].append({"region": name, **copy.deepcopy(rule)})
                for fip in state.floatingips.values():
                    out["floating_ips"].append({"region": name, **copy.deepcopy(fip)})
                for port in state.ports.values():
                    out["ports"].append({"region": name, **copy.deepcopy(port)})
        return out

    def leftovers(self, region: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """The non-empty part of `listing()`: `{}` means nothing is left."""
        return {kind: items for kind, items in self.listing(region).items() if items}

    def find_server(self, name_or_id: str, region: str | None = None) -> ServerRecord:
        with self.lock:
            for state in self._regions_named(region):
                for server in state.servers.values():
                    if name_or_id in (server.id, server.name):
                        return server
        raise KeyError(name_or_id)

    def user_data(self, name_or_id: str, region: str | None = None) -> bytes | None:
        """The user-data the target sent with the server (decoded from base64)."""
        return self.find_server(name_or_id, region).user_data

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[Call]:
        """Calls answered so far, optionally filtered."""
        with self.lock:
            return [
                c
                for c in self.calls
                if (method is None or c.method == method.upper())
                and (path_regex is None or re.search(path_regex, c.path))
            ]

    # -- running it ---------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> OpenStackEmulator:
        """Serve on `host:port` (0: a free port) from a background thread."""
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        self.url = f"http://{host}:{bound_port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"openstack-emulator-{bound_port}",
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OpenStack emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; delete every server's machine."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                raise RuntimeError("the OpenStack emulator thread did not stop")
        self._server = None
        self._thread = None
        with self.lock:
            for state in self.regions.values():
                for server_id in list(state.servers):
                    self.backend.delete(server_id)
        self.backend.close()

    def __enter__(self) -> OpenStackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clouds.yaml ---------------------------------------------------------------------
    def cloud_config(
        self, auth: str = "password", region: str | None = None, interface: str = "public"
    ) -> dict[str, Any]:
        """One clouds.yaml entry as bwCloud's dashboard would hand it out."""
        c = self.creds
        entry: dict[str, Any] = {
            "region_name": region or self.region_specs[0].name,
            "regions": [spec.name for spec in self.region_specs],
            "interface": interface,
            "identity_api_version": 3,
        }
        if auth == "password":
            entry["auth"] = {
                "auth_url": self.auth_url,
                "username": c.username,
                "password": c.password,
                "project_id": c.project_id,
                "project_name": c.project_name,
                "user_domain_name": c.user_domain_name,
                "project_domain_name": c.project_domain_name,
            }
        elif auth == "application_credential":
            entry["auth_type"] = "v3applicationcredential"
            entry["auth"] = {
                "auth_url": self.auth_url,
                "application_credential_id": c.application_credential_id,
                "application_credential_secret": c.application_credential_secret,
            }
        else:
            raise ValueError(f"unknown auth kind {auth!r}")
        return entry

    # -- ASGI ------------------------------------------------------------------------------
    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        host = request.headers.get("host") or self.url.removeprefix("http://")
        ctx = Ctx(
            method=request.method.upper(),
            path=request.url.path,
            query=parse_qsl(request.url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in request.headers.items()},
            raw_body=body,
            base=f"http://{host}",
        )
        response = self.handle(ctx)
        await response(scope, receive, send)

    def handle(self, ctx: Ctx) -> Response:
        """Answer one request: injected fault, else the service's handler."""
        with self.lock:
            injected = False
            try:
                fault = next((f for f in self.faults if f.matches(ctx.method, ctx.path)), None)
                if fault is not None and not ctx.path.startswith("/__emulator__"):
                    fault.hits += 1
                    injected = True
                    body = fault.body
                    if body is None:
                        body = default_error_body(
                            self._service_of(ctx.path), fault.status, "Injected fault"
                        )
                    response = (
                        Response(body, status_code=fault.status, headers=fault.headers)
                        if isinstance(body, str)
                        else _json(fault.status, body, fault.headers)
                    )
                else:
                    response = self._dispatch(ctx)
            except ApiError as error:
                response = _error_response(error)
            except Exception:  # a bug in the emulator: answer 500 and keep it for the test
                self.errors.append(traceback.format_exc())
                response = _json(500, {"computeFault": {"code": 500, "message": "emulator bug"}})
            if not ctx.path.startswith("/__emulator__"):
                self.calls.append(
                    Call(
                        ctx.method,
                        ctx.path,
                        "&".join(f"{k}={v}" for k, v in ctx.query),
                        response.status_code,
                        injected,
                    )
                )
            return response

    @staticmethod
    def _service_of(path: str) -> str:
        parts = path.strip("/").split("/")
        if parts and parts[0] == "identity":
            return "identity"
        return parts[1] if len(parts) > 1 else "identity"

    def _build_routes(self) -> dict[str, list[tuple[str, re.Pattern[str], Handler]]]:
        def table(
            rows: list[tuple[str, str, Handler]],
        ) -> list[tuple[str, re.Pattern[str], Handler]]:
            return [(m, re.compile(f"^{p}/?$"), h) for m, p, h in rows]

        from . import handlers as h

        return {
            "identity": table(h.identity_routes(self)),
            "compute": table(h.compute_routes(self)),
            "network": table(h.network_routes(self)),
            "image": table(h.image_routes(self)),
            "control": table(h.control_routes(self)),
        }

    def _dispatch(self, ctx: Ctx) -> Response:
        from . import handlers as h

        path = ctx.path
        if path.startswith("/__emulator__"):
            return self._route("control", ctx, path.removeprefix("/__emulator__") or "/")
        if path.rstrip("/") == "/identity":
            return h.identity_versions(self, ctx)
        if path.startswith("/identity/v3"):
            rest = path.removeprefix("/identity/v3")
            if rest in ("", "/"):
                return h.identity_version(self, ctx)
            if not (ctx.method == "POST" and rest.rstrip("/") == "/auth/tokens"):
                self._authenticate(ctx, "identity")
            return self._route("identity", ctx, rest)
        match = re.match(r"^/([a-z0-9-]+)/(compute|network|image)(/.*)?$", path)
        if not match or match.group(1) not in self.regions:
            raise ApiError(404, "404 Not Found: no such service")
        region_slug, service, rest = match.group(1), match.group(2), match.group(3) or ""
        ctx.region = self.regions[region_slug]
        root = f"{ctx.base}/{region_slug}/{service}"
        if rest in ("", "/"):
            return h.service_versions(self, ctx, service, root)
        version_prefix = {"compute": "/v2.1", "network": "/v2.0", "image": "/v2"}[service]
        if not rest.startswith(version_prefix):
            raise ApiError(404, "404 Not Found")
        ctx.service_root = root + version_prefix
        rest = rest.removeprefix(version_prefix)
        if service == "compute" and rest in ("", "/"):
            return h.compute_version(self, ctx)
        self._authenticate(ctx, service)
        if service == "compute":
            ctx.microversion = self._microversion(ctx)
            response = self._route(service, ctx, rest)
            text = f"{ctx.microversion[0]}.{ctx.microversion[1]}"
            response.headers["OpenStack-API-Version"] = f"compute {text}"
            response.headers["X-OpenStack-Nova-API-Version"] = text
            response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
            return response
        return self._route(service, ctx, rest)

    def _route(self, service: str, ctx: Ctx, rest: str) -> Response:
        allowed = False
        for method, pattern, handler in self._routes[service]:
            match = pattern.match(rest or "/")
            if not match:
                continue
            allowed = True
            if method == ctx.method:
                return handler(ctx, **match.groupdict())
        if allowed:
            raise ApiError(405, {"error": f"{ctx.method} not allowed on {ctx.path}"})
        if service == "compute":
            raise nova_error(404, "The resource could not be found.")
        if service == "network":
            raise neutron_error(404, "HTTPNotFound", "The resource could not be found.")
        if service == "image":
            raise glance_error(404, "The resource could not be found.")
        raise keystone_error(404, "The resource could not be found.")

    def _authenticate(self, ctx: Ctx, service: str) -> None:
        token_id = ctx.headers.get("x-auth-token", "")
        token = self.tokens.get(token_id)
        if token is None or token["expires"] < time.time():
            if service == "compute":
                raise nova_error(401, "The request you have made requires authentication.")
            if service == "network":
                raise neutron_error(
                    401, "HTTPUnauthorized", "The request you have made requires authentication."
                )
            if service == "image":
                raise ApiError(
                    401, "401 Unauthorized\n\nThis server could not verify that you are authorized."
                )
            raise keystone_error(401, "The request you have made requires authentication.")
        ctx.token = token

    def _microversion(self, ctx: Ctx) -> tuple[int, int]:
        raw = ctx.headers.get("openstack-api-version", "")
        wanted = ""
        if raw:
            parts = raw.split()
            if len(parts) == 2 and parts[0].lower() == "compute":
                wanted = parts[1]
        wanted = wanted or ctx.headers.get("x-openstack-nova-api-version", "")
        if not wanted:
            return (2, 1)
        if wanted == "latest":
            return self.compute_max
        try:
            version = _parse_version(wanted)
        except ValueError:
            raise nova_error(400, f"Invalid API version request string {wanted}") from None
        if not (2, 1) <= version <= self.compute_max:
            raise nova_error(
                406,
                f"Version {wanted} is not supported by the API. Minimum is 2.1 and maximum "
                f"is {self.compute_max[0]}.{self.compute_max[1]}.",
            )
        return version

    # -- tokens -----------------------------------------------------------------------
    def issue_token(self, methods: list[str], app_cred: bool) -> tuple[str, dict[str, Any]]:
        c = self.creds
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.token_ttl_s)
        token = V3Token(
            expires=expires,
            user_id=c.user_id,
            user_name=c.username,
            user_domain_id=c.user_domain_id,
            user_domain_name=c.user_domain_name,
            methods=methods,
            project_id=c.project_id,
            project_name=c.project_name,
            project_domain_id=c.project_domain_id,
            project_domain_name=c.project_domain_name,
            application_credential_id=c.application_credential_id if app_cred else None,
            audit_id=uuid.uuid4().hex[:22],
        )
        token.add_role(name="member")
        token.add_role(name="reader")
        base = self.url or "http://127.0.0.1"
        identity = token.add_service("identity", name="keystone")
        compute = token.add_service("compute", name="nova")
        network = token.add_service("network", name="neutron")
        image = token.add_service("image", name="glance")
        for spec in self.region_specs:
            identity.add_standard_endpoints(public=f"{base}/identity/v3", region=spec.name)
            compute.add_standard_endpoints(
                public=f"{base}/{spec.slug}/compute/v2.1", region=spec.name
            )
            network.add_standard_endpoints(public=f"{base}/{spec.slug}/network", region=spec.name)
            image.add_standard_endpoints(public=f"{base}/{spec.slug}/image", region=spec.name)
        token_id = "gAAAAA" + uuid.uuid4().hex + uuid.uuid4().hex
        self.tokens[token_id] = {
            "expires": time.time() + self.token_ttl_s,
            "user_id": c.user_id,
            "project_id": c.project_id,
            "methods": methods,
            "body": dict(token),
        }
        return token_id, dict(token)

    # -- servers (used by the handlers) ---------------------------------------------------
    def create_backend_server(
        self, region: RegionState, record: ServerRecord, public_key: str | None
    ) -> None:
        if self.server_failures:
            record.fault = self.server_failures.pop(0)
            return
        request = ServerRequest(
            server_id=record.id,
            name=record.name,
            user_data=record.user_data,
            public_key=public_key,
            image_name=record.image.get("name", ""),
            flavor=dict(record.flavor),
            metadata=dict(record.metadata),
        )
        try:
            record.backend = self.backend.create(request)
        except BackendError as error:
            record.fault = str(error) or DEFAULT_SERVER_FAULT


def fingerprint_md5(public_key: str) -> str:
    """Nova's keypair fingerprint: MD5 of the key blob, colon-separated hex."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
