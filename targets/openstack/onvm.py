"""On the VM, over SSH: the deployment's folder, certificate and network, one container
per version behind the *front* relay, the switch between versions, and their removal."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from app.domain import Resource
from app.errors import CredentialError, TargetError
from app.nextstep import say, see_details
from app.progress import Progress, long_wait
from app.waiting import wait_until
from targets.base import DeployContext
from targets.common import (
    API_KEY_FILE_ENV,
    CAPTURE_DIR_IN_CONTAINER,
    capture_env,
    endpoint_key_value,
)
from targets.openstack.kind import SEND_IMAGE
from targets.openstack.names import (
    CONTAINER_PORT,
    FRONT_PORT,
    FRONT_PY,
    HEALTH_PY,
    MANAGED,
    SECRET_DIR_IN_CONTAINER,
    VM_ROOT,
    base_name,
    container_name,
    vm_tag,
)
from targets.openstack.settings import OpenStackSettings
from targets.openstack.ssh import Vm, vm_data_of
from targets.openstack.tls import make_certificate

if TYPE_CHECKING:
    from targets.openstack.vm import Ssh


def setup_vm(ctx: DeployContext, ssh: Ssh, address: str) -> tuple[Resource, str]:
    """The deployment's folder (secrets, front), its Docker network; the certificate."""
    name = ctx.name
    root = f"{VM_ROOT}/{name}"
    setup = Resource(
        "vm_setup",
        name,
        f"setup of {base_name(name)} on the VM",
        {"root": root, "network": base_name(name), "front": f"{base_name(name)}-front"},
    )
    vm_data = vm_data_of(ctx, ssh)
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
    write(ssh, f"{root}/secrets/tls.crt", cert)
    write(ssh, f"{root}/secrets/tls.key", key)
    write(ssh, f"{root}/front/proxy.py", FRONT_PY.encode(), mode="644")
    ssh.run(f"{ssh.sudo}chmod 755 {VM_ROOT} {root} {root}/front")
    ssh.docker(
        f"network create --label {MANAGED} --label modelship.deployment={q(name)} "
        f"{q(base_name(name))}",
        check=False,
    )
    return setup, fp


def start_version(ctx: DeployContext, ssh: Ssh, vm: Vm, setup: Resource) -> Resource:
    """Ship the image, start this version's container, switch the front to it."""
    from app.image.image import connect as engine_connect
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
    long_wait(ctx.progress, SEND_IMAGE, "Sending the image to the VM (only the layers it lacks)")
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
    key = endpoint_key_value(s)
    if key is not None:
        write(ssh, f"{secrets_dir}/api_key", key.encode())
        env.append(f"-e {API_KEY_FILE_ENV}={SECRET_DIR_IN_CONTAINER}/api_key")
    ssh.run(
        f"{ssh.sudo}sh -c {q(f'chown -R {uid}:{gid} {secrets_dir} && chmod 500 {secrets_dir} && chmod 400 {secrets_dir}/*')}"  # noqa: E501
    )
    env += [
        f"-e MODELSHIP_TLS_CERT_FILE={SECRET_DIR_IN_CONTAINER}/tls.crt",
        f"-e MODELSHIP_TLS_KEY_FILE={SECRET_DIR_IN_CONTAINER}/tls.key",
        f"-e PORT={CONTAINER_PORT}",
    ]
    # captured requests: in the container's writable layer, removed with the container
    env += [f"-e {k}={q(v)}" for k, v in capture_env(s, CAPTURE_DIR_IN_CONTAINER).items()]
    cname = container_name(name, ctx.version)
    front = setup.data["front"]
    current = backend_now(ssh, root)
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
    wait_answering(ssh, cname, s, ctx)
    # the front: made once (with this image, tagged so pruning a version keeps it)
    exists = ssh.docker(f"inspect --format '{{{{.State.Running}}}}' {q(front)}", check=False)
    write(ssh, f"{root}/front/backend.new", f"{cname} {CONTAINER_PORT}\n".encode(), "644")
    switch(ssh, root)
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


def wait_answering(ssh: Ssh, cname: str, s: OpenStackSettings, ctx: DeployContext):
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
        lambda v: {"gone": "the container disappeared", "stopped": "the container stopped"}.get(v),
        timeout=s.start_timeout,
        cancel=ctx.cancel,
        progress=ctx.progress,
        what=f"container {cname} on the VM",
        describe=lambda v: f"Container {v}",
        fail_hint=say("Read its log in ", see_details(), "."),
        details=tail,
        interval=0.3,
        max_interval=1.0,  # it answers within seconds: poll closely
    )


def destroy_on_vm(resource: Resource, progress: Progress) -> bool:
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
                now = backend_now(ssh, root)
                if now and now[0] == cname and prev and prev != cname:
                    running = ssh.docker(
                        f"inspect --format '{{{{.State.Running}}}}' {q(prev)}", check=False
                    ).out.strip()
                    if running == "true":  # the replacement failed: switch back first
                        write(
                            ssh,
                            f"{root}/front/backend.new",
                            f"{prev} {CONTAINER_PORT}\n".encode(),
                            "644",
                        )
                        switch(ssh, root)
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


def sweep_vm(vm: Vm, deployment: str, progress: Progress) -> list[str]:
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
            f"ps -aq --filter label={MANAGED} --filter label=modelship.deployment={q(deployment)}",
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
            f"image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}' modelship-vm/{q(deployment)}",
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


def write(ssh: Ssh, path: str, data: bytes, mode: str = "600") -> None:
    q = shlex.quote
    ssh.run(f"{ssh.sudo}sh -c {q(f'umask 077; cat > {q(path)} && chmod {mode} {q(path)}')}",
            stdin=data)  # fmt: skip


def backend_now(ssh: Ssh, root: str) -> list[str]:
    """``[container, port]`` the front forwards to now ([] before the first version).
    Read with sudo: the deployment's folder is root's (a non-root login cannot list it)."""
    return ssh.run(f"{ssh.sudo}cat {root}/front/backend 2>/dev/null || true").out.split()


def switch(ssh: Ssh, root: str) -> None:
    """Point the front at the backend in ``backend.new`` (rename: atomic for readers)."""
    ssh.run(f"{ssh.sudo}mv -f {root}/front/backend.new {root}/front/backend")
