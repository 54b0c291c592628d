"""Names, ports and folders the openstack target uses in the cloud and on the VM."""

from __future__ import annotations

from importlib import resources

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
FRONT_PY = (
    resources.files("resources.openstack")
    .joinpath("relay.py.txt")
    .read_text("utf-8")
    .replace("FRONT_PORT", str(FRONT_PORT))
)


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


def cloud_tag(deployment: str) -> str:
    return f"modelship-deployment={deployment}"[:60]
