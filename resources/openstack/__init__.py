"""The relay program the openstack target runs on the VM (loaded with importlib.resources)."""
