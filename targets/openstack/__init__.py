"""The ``openstack``  target."""
