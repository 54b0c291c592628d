"""The wizard offers the openstack target with its settings form (issue 11).

The form is generated from OpenStackSettings like every target's; its preflight runs
against the OpenStack emulator (the real openstacksdk on the wire): a ready cloud shows
ready, a misspelt image shows the close name as the fix.
"""

from __future__ import annotations

from pathlib import Path

from tests.gui.test_pages import wait_idle


def _openstack_page(window, qtbot, model: Path, **settings):
    window.state.model_path = model
    window.state.target_name = "openstack"
    window.state.settings = {
        "cloud": "bwcloud-appcred",
        "region": "Freiburg",
        "api_key": "gui-openstack-key",
        **settings,
    }
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    qtbot.waitUntil(lambda: page.problems.isVisible() or page.ready.isVisible(), timeout=60_000)
    return page


def test_openstack_card_and_settings_form(window, qtbot, tmp_path, clouds_yaml) -> None:
    from app.store.secrets import set_secret
    from targets import CATALOG
    from targets.openstack.settings import OpenStackSettings

    set_secret("gui-openstack-key", "k-0123456789")
    assert "openstack" in window.pages["target"].cards
    assert "OpenStack" in CATALOG["openstack"].title
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _openstack_page(window, qtbot, model)
    assert list(page.editors) == list(OpenStackSettings.model_fields)
    assert page.editors["floating_ip"].get() == "auto"
    assert page.editors["image"].get() == "Debian 12"
    assert page.ready.isVisible() and not page.problems.isVisible()


def test_openstack_form_suggests_the_close_image_name(window, qtbot, tmp_path, clouds_yaml) -> None:
    from app.store.secrets import set_secret

    set_secret("gui-openstack-key", "k-0123456789")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _openstack_page(window, qtbot, model, image="Debian12")
    assert page.problems.isVisible()
    assert "'Debian 12'" in page.problems.label.text()
    assert not window.next_button.isEnabled()


def test_bwcloud_regions_offer_the_instance_name_as_endpoint_host(
    window, qtbot, tmp_path, clouds_yaml
) -> None:
    """bwCloud names each instance <uuid>.<region code>.bw-cloud-instance.org; the form
    offers that template for the Endpoint name (issue 22)."""
    import os

    from app.store.secrets import set_secret

    set_secret("gui-openstack-key", "k-0123456789")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    page = _openstack_page(window, qtbot, model, region="Mannheim", network="public-belwue")
    widget = page.editors["endpoint_host"].widget
    qtbot.waitUntil(lambda: "bw-cloud-instance.org" in widget.placeholderText(), timeout=10_000)
    assert widget.placeholderText() == "e.g. {server_id}.ma.bw-cloud-instance.org"
    if os.environ.get("MODELSHIP_SHOT_DIR"):
        widget.setFocus()
        page.grab().save(os.path.join(os.environ["MODELSHIP_SHOT_DIR"], "openstack-host.png"))
