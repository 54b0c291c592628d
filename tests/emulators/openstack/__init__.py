"""An OpenStack (Keystone v3, Nova, Neutron, Glance) emulator for openstacksdk tests.

See `emulator.OpenStackEmulator`, `backends` (what a server is) and `fixtures`
(pytest fixtures); `python -m tests.emulators.openstack --help` runs it as a process.
"""

from .backends import (
    Backend,
    BackendError,
    BackendServer,
    NullBackend,
    ServerRequest,
    SshdBackend,
    cloud_init_console,
)
from .emulator import (
    BWCLOUD_BASIC_COMPUTE_QUOTA,
    DEFAULT_REGIONS,
    Credentials,
    Fault,
    OpenStackEmulator,
    RegionSpec,
)
from .sshd import SshdServer, sshd_available

__all__ = [
    "BWCLOUD_BASIC_COMPUTE_QUOTA",
    "DEFAULT_REGIONS",
    "Backend",
    "BackendError",
    "BackendServer",
    "Credentials",
    "Fault",
    "NullBackend",
    "OpenStackEmulator",
    "RegionSpec",
    "ServerRequest",
    "SshdBackend",
    "SshdServer",
    "cloud_init_console",
    "sshd_available",
]
