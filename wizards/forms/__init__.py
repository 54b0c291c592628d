"""Richer settings forms for the cloud targets, on top of the generated one.

Each module here adds a panel to the settings page for one kind of target (dropdowns
filled from the cloud, credentials found or imported, live checks). A kind names its
panel in its own description (``Kind.wizard.form``, ``"wizards.forms.<kind>:Class"``);
kinds without one keep the generated form alone.
"""

from __future__ import annotations

from typing import Any


def form_for(kind: str) -> Any:
    """The panel class for ``kind``, or None (the generated form is enough)."""
    from targets import get_kind
    from targets.kind import load_object

    form = get_kind(kind).wizard.form
    return None if form is None else load_object(form)
