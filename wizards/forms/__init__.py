"""Richer settings forms for the cloud targets, on top of the generated one.

Each module here adds a panel to the settings page for one kind of target (dropdowns
filled from the cloud, credentials found or imported, live checks). Kinds without one
keep the generated form alone.
"""

from __future__ import annotations

from typing import Any


def form_for(kind: str) -> Any:
    """The panel class for ``kind``, or None (the generated form is enough)."""
    if kind == "openstack":
        from wizards.forms.openstack import OpenStackForm

        return OpenStackForm
    if kind == "sagemaker":
        from wizards.forms.sagemaker import SageMakerForm

        return SageMakerForm
    if kind == "heroku":
        from wizards.forms.heroku import HerokuForm

        return HerokuForm
    return None
