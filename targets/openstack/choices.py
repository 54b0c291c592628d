"""What the wizard offers in the OpenStack form, asked from the cloud itself.

Plain functions (no Qt, openstacksdk imported lazily through ``client.connect``): the
clouds in the user's clouds.yaml, and for one cloud its regions (from the service
catalog of the token, as every user may read it), images, flavors, networks and the
project's compute quota. The cloud's address is only ever the ``auth_url`` of the
clouds.yaml entry; a downloaded clouds.yaml or openrc file comes in through
``client.import_credentials`` (its secret goes to the keyring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from targets.openstack import client as osc


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int

    @property
    def label(self) -> str:
        ram = f"{self.ram_mb / 1024:g} GB" if self.ram_mb >= 1024 else f"{self.ram_mb} MB"
        return f"{self.name} ({self.vcpus} CPU, {ram} memory, {self.disk_gb} GB disk)"


@dataclass(frozen=True)
class Network:
    name: str
    public: bool  # a provider network with public addresses (router:external)

    @property
    def label(self) -> str:
        return f"{self.name} (public addresses)" if self.public else f"{self.name} (private)"


@dataclass(frozen=True)
class Quota:
    """Compute quota of the project: limits and what is in use (None: unlimited)."""

    instances: int | None
    instances_used: int
    cores: int | None
    cores_used: int
    ram_mb: int | None
    ram_used_mb: int

    def words(self) -> str:
        def part(used: int, limit: int | None, what: str) -> str:
            return f"{used} of {limit if limit is not None and limit >= 0 else 'unlimited'} {what}"

        return "Your project uses " + ", ".join(
            [
                part(self.instances_used, self.instances, "servers"),
                part(self.cores_used, self.cores, "CPUs"),
                part(self.ram_used_mb, self.ram_mb, "MB of memory"),
            ]
        )

    def fits(self, flavor: Flavor) -> bool:
        """True when one more server of ``flavor`` stays within the quota."""
        checks = [
            (self.instances, self.instances_used, 1),
            (self.cores, self.cores_used, flavor.vcpus),
            (self.ram_mb, self.ram_used_mb, flavor.ram_mb),
        ]
        return all(lim is None or lim < 0 or used + need <= lim for lim, used, need in checks)


@dataclass
class CloudChoices:
    cloud: str
    region: str | None
    regions: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    flavors: list[Flavor] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    quota: Quota | None = None


def cloud_names() -> list[str]:
    """The clouds the user's clouds.yaml (and ``OS_*`` variables) define, as the
    ``openstack`` command line finds them; [] when there is none."""
    try:
        from openstack.config.loader import OpenStackConfig
    except ImportError:  # pragma: no cover - a broken install
        return []
    try:
        config = OpenStackConfig(load_envvars=True)
        names = config.get_cloud_names()
    except Exception:  # an unreadable file: the form offers to pick one
        return []
    if config.config_filename is None:
        # no clouds.yaml: openstacksdk makes up a cloud "defaults" with no auth at all
        names = [n for n in names if n != "defaults"]
    return [n for n in dict.fromkeys(names) if n != "envvars"] + (
        ["envvars"] if "envvars" in names else []
    )


def clouds_in_file(path: Path) -> list[str]:
    """The cloud entries of a downloaded clouds.yaml (an openrc file holds one: [])."""
    import re

    import yaml

    text = Path(path).read_text(encoding="utf-8")
    if re.search(r"^\s*(export\s+)?OS_[A-Z_]+=", text, re.M):
        return []
    data = yaml.safe_load(text) or {}
    return list((data.get("clouds") or {}) if isinstance(data, dict) else {})


def import_file(path: Path, secret: str | None = None) -> list[osc.Imported]:
    """Import every cloud of a downloaded clouds.yaml (or the one of an openrc file):
    secrets move to the keyring, the entries into the user's clouds.yaml."""
    names = clouds_in_file(path)
    if not names:
        return [osc.import_credentials(Path(path), secret=secret)]
    return [osc.import_credentials(Path(path), cloud=name, secret=secret) for name in names]


def _catalog_regions(conn: Any) -> list[str]:
    access = conn.session.auth.get_access(conn.session)
    regions: list[str] = []
    for service in access.service_catalog.catalog or []:
        for endpoint in service.get("endpoints") or []:
            region = endpoint.get("region_id") or endpoint.get("region")
            if region and region not in regions:
                regions.append(str(region))
    return regions


def cloud_choices(cloud: str, region: str | None = None) -> CloudChoices:
    """Regions, images, flavors, networks and quota of ``cloud`` (in ``region``).

    Raises CredentialError/TargetError (with a next step) when the cloud cannot be
    asked. Worker thread only: this talks to the cloud.
    """
    conn = osc.connect(cloud, region)
    try:
        out = CloudChoices(cloud, region or getattr(conn.config, "region_name", None))
        with osc.calls("listing the regions", cloud):
            out.regions = _catalog_regions(conn)
        with osc.calls("listing the images", cloud):
            out.images = sorted(
                {i.name for i in conn.image.images() if i.name and i.status in (None, "active")}
            )
        with osc.calls("listing the flavors", cloud):
            out.flavors = sorted(
                (
                    Flavor(f.name, int(f.vcpus or 0), int(f.ram or 0), int(f.disk or 0))
                    for f in conn.compute.flavors(details=True)
                ),
                key=lambda f: (f.ram_mb, f.vcpus, f.name),
            )
        with osc.calls("listing the networks", cloud):
            out.networks = sorted(
                (Network(n.name, bool(n.is_router_external)) for n in conn.network.networks()),
                key=lambda n: (not n.public, n.name),
            )
        with osc.calls("reading the quota", cloud):
            limits = conn.compute.get_limits().absolute
            out.quota = Quota(
                limits.instances,
                int(limits.instances_used or 0),
                limits.total_cores,
                int(limits.total_cores_used or 0),
                limits.total_ram,
                int(limits.total_ram_used or 0),
            )
        return out
    finally:
        conn.close()


__all__ = [
    "CloudChoices",
    "Flavor",
    "Network",
    "Quota",
    "cloud_choices",
    "cloud_names",
    "clouds_in_file",
    "import_file",
]
