"""The ``openstack`` kind, as the catalog lists it, and the long waits its deploy
announces (no target code: see targets.kind)."""

from __future__ import annotations

from targets.kind import CostModel, Kind, LongWait, WizardHooks
from targets.openstack.settings import OpenStackSettings

VM_BOOT = LongWait("Starting the virtual machine", "this usually takes 1–3 minutes")
CLOUD_INIT = LongWait(
    "The virtual machine is setting itself up and installing Docker",
    "this usually takes 2–5 minutes",
)
SEND_IMAGE = LongWait(
    "Sending the image to the virtual machine", "a few minutes, depending on your connection"
)

KIND = Kind(
    name="openstack",
    title="A cloud VM (OpenStack, e.g. bwCloud)",
    summary="Start a small virtual machine in your OpenStack cloud (bwCloud and other "
    "university clouds) and serve the model there over HTTPS.",
    Settings=OpenStackSettings,
    implementation="targets.openstack.target:OpenStackTarget",
    ships="image",
    remote=True,
    capabilities=frozenset({"logs", "stop_start"}),
    cost=CostModel(
        running="Free on bwCloud (its members use it at no charge); other OpenStack clouds "
        "bill the VM by their own rates."
    ),
    waits=(VM_BOOT, CLOUD_INIT, SEND_IMAGE),
    wizard=WizardHooks(
        card_health="wizards.health:openstack_clouds",
        form="wizards.forms.openstack:OpenStackForm",
    ),
)
