"""Before a deploy: what is wrong (``check``), what to warn about and what the deploy
will make (``plan``), and whether the previous version's VM can be reused."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from app.domain import DeploymentRecord, Resource
from app.errors import CredentialError, TargetError
from targets.base import PlanItem, Problem
from targets.common import key_problems
from targets.openstack import client as osc
from targets.openstack.cloud import choose, facts, find_network, plan_reach, reach_problems
from targets.openstack.names import DOCKER_MB, base_name
from targets.openstack.settings import OpenStackSettings

if TYPE_CHECKING:
    from app.store.profile import Profile


def check(profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
    s: OpenStackSettings = profile.target.settings
    problems: list[Problem] = key_problems(s.api_key)
    try:
        conn = osc.connect(s.cloud, s.region)
    except CredentialError as exc:
        return [*problems, Problem(exc.message, exc.hint or "", "credential", "cloud")]
    except TargetError as exc:
        return [*problems, Problem(exc.message, exc.hint or "", "environment", "cloud")]
    try:
        problems += cloud_problems(conn, profile, previous)
    except TargetError as exc:
        problems.append(Problem(exc.message, exc.hint or "", "environment"))
    except Exception as exc:  # an SDK error we did not expect: say it in words
        err = osc.translate(exc, "checking the cloud", s.cloud)
        problems.append(Problem(str(err), "", "environment"))
    finally:
        conn.close()
    return problems


def cloud_problems(conn: Any, profile: Profile, previous: DeploymentRecord | None) -> list[Problem]:
    s: OpenStackSettings = profile.target.settings
    problems: list[Problem] = []
    reuse = reusable(previous, s) is not None
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
        network = find_network(conn, s.network)
    except TargetError as exc:
        problems.append(Problem(exc.message, exc.hint or "", "setting", "network"))
        network = None
    if flavor is not None:
        need = DOCKER_MB + 3 * model_mb(profile)
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
        reach = choose(s, facts(conn, network))
        problems += reach_problems(s, reach)
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


def warnings(profile: Profile) -> list[str]:
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


def plan(profile: Profile, previous: DeploymentRecord | None) -> list[PlanItem]:
    s: OpenStackSettings = profile.target.settings
    n = base_name(profile.name)
    vm = f"{s.cloud}{'/' + s.region if s.region else ''}"
    items = []
    if reusable(previous, s) is None:
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
        reach = plan_reach(s)
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
        items.append(PlanItem("create", "TLS certificate", n, "made for this deployment, pinned"))
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


def reusable(previous: DeploymentRecord | None, s: OpenStackSettings) -> list[Resource] | None:
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


def model_mb(profile: Profile) -> int:
    from pathlib import Path

    with contextlib.suppress(OSError):  # a URI (a str) is no file: 1
        return max(1, int(Path(profile.model.path).stat().st_size / 1e6))
    return 1
