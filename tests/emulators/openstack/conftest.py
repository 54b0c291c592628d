"""Make the emulator's fixtures available to the tests in this folder."""

from tests.emulators.openstack.fixtures import (  # noqa: F401
    clouds_yaml,
    openstack_emulator,
    openstack_vm_emulator,
    sshd_backend,
    sshd_host,
)
