"""The remote targets' panels, clicked for real (issue 14, item 3 follow-ups).

- The AWS card's "Set one up…" opens the key dialog (window-modal through ``open()``,
  so the test clicks in it as a person would); the key saved, the card turns healthy.
- The SageMaker form's "Set one up…" the same way; the page checks again by itself.
- Heroku: with a key found, "Use a different key…" brings back the paste field; the
  pasted key goes to the keyring and is the one used from then on.
- Building the SageMaker form does not import boto3 on the GUI thread (the regions
  come from a worker).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.helpers import assert_no_command_line_words, wait_idle

pytestmark = [pytest.mark.gui]


def _no_aws_keys(monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def _fill_and_save(qtbot, dialog) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    qtbot.waitUntil(dialog.isVisible, timeout=5_000)
    assert dialog.isModal()
    assert_no_command_line_words(dialog)
    dialog.key_id.setText("AKIAEXAMPLE0000")
    dialog.secret.setText("wizard-secret-key")
    box = dialog.findChild(QDialogButtonBox)
    box.button(QDialogButtonBox.StandardButton.Save).click()


def test_aws_card_set_one_up_turns_healthy(window, qtbot, moto_server, monkeypatch) -> None:
    from app.store.secrets import get_secret

    _no_aws_keys(monkeypatch)
    window.go("target")
    page = window.pages["target"]
    card = page.cards["sagemaker"]
    qtbot.waitUntil(lambda: "No AWS profile found" in card.health.text(), timeout=30_000)
    assert card.fix_button.isVisible()
    qtbot.mouseClick(card.fix_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    dialog = page.fix_dialog
    assert dialog is not None
    _fill_and_save(qtbot, dialog)
    assert get_secret("aws/default/secret_access_key") == "wizard-secret-key"
    qtbot.waitUntil(lambda: "✔" in card.health.text(), timeout=30_000)
    assert "kept in your system keyring" in card.health.text()
    assert not card.fix_button.isVisible()
    assert_no_command_line_words(page)


def test_sagemaker_form_set_one_up_checks_again(
    window, qtbot, tmp_path, moto_server, monkeypatch
) -> None:
    _no_aws_keys(monkeypatch)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    window.state.model_path = model
    window.state.target_name = "sagemaker"
    window.state.settings = {"region": "us-east-1"}
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    form = page.target_form
    assert form.setup_button.isVisible() and not page.checked_ok
    form.setup_button.click()
    dialog = form.setup_dialog
    assert dialog.region.currentData() == "us-east-1"
    _fill_and_save(qtbot, dialog)
    qtbot.waitUntil(lambda: page.checked_ok, timeout=60_000)  # checked again by itself
    assert "kept in your system keyring" in form.account.text()
    assert not form.setup_button.isVisible()


def test_heroku_use_a_different_key(window, qtbot, tmp_path, heroku_emulator, monkeypatch) -> None:
    from app.store.secrets import get_secret

    emu = heroku_emulator
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\n  login me@example.org\n  password stale-key-0000\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    window.state.model_path = tmp_path / "m.onnx"
    window.state.model_path.write_bytes(b"x")
    window.state.target_name = "heroku"
    window.state.settings = {
        "api_url": emu.api_url,
        "registry": emu.registry,
        "require_api_key": False,
    }
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    form = page.target_form
    editor = page.editors["account_key"]
    assert f"found in {netrc}" in form.key_state.text()
    assert not editor.secret_value.isVisibleTo(page)
    assert form.other_key_button.isVisibleTo(page)
    form.other_key_button.click()
    assert editor.secret_value.isVisibleTo(page)
    assert not form.other_key_button.isVisibleTo(page)
    assert "Paste the other key" in form.key_state.text()
    assert_no_command_line_words(page)
    editor.secret_value.setText(emu.api_key)
    page.editors["app"].widget.setText("other-key-app")
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert get_secret("heroku-api-key") == emu.api_key
    qtbot.waitUntil(lambda: "found in your system keyring" in form.key_state.text(), timeout=10_000)
    assert not editor.secret_value.isVisibleTo(page)
    assert form.other_key_button.isVisibleTo(page)
    # the new key is the one used: the emulator answers the name check with it
    # (requests would send ~/.netrc's stale key instead, were the key not its auth)
    qtbot.waitUntil(lambda: "Free:" in form.app_state.text(), timeout=30_000)


BUILD_FORM = r"""
import sys, os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
app = QApplication([])
from wizards.pages.settings import SettingsPage
from wizards.state import WizardState
state = WizardState()
state.target_name = "sagemaker"
page = SettingsPage(state)
started = []
page.start_worker = lambda fn, name="", **kw: started.append(name)
page.enter()
form = page.target_form
assert form is not None and form.editors["region"].widget.count() > 0
print("boto3" in sys.modules, "choices-regions" in started, form.editors["region"].get())
"""


def test_sagemaker_form_builds_without_boto3_on_the_gui_thread(tmp_path) -> None:
    """A fresh process builds the form (workers not run): boto3 is not imported, and
    the full list of regions is asked from a worker."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["MODELSHIP_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", BUILD_FORM],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported, asked, region = done.stdout.split()[-3:]
    assert imported == "False", "boto3 imported while building the form"
    assert asked == "True"
    assert region  # the known list is there until the worker answers


def test_regions_from_boto3_are_offered_once_read(moto_server) -> None:
    from targets.sagemaker import choices

    full = choices.regions()
    assert ("eu-central-1", "eu-central-1 (Frankfurt)") in full
    assert choices.known_regions() == full


def test_heroku_key_errors_in_the_wizards_words() -> None:
    """A refused or missing Heroku key is said with what to click, not what to type."""
    from targets.heroku.client import _ERROR_HINTS, find_api_key
    from tests.gui.helpers import COMMAND_LINE
    from wizards.nextstep import for_wizard

    refused = for_wizard(_ERROR_HINTS["unauthorized"])
    assert "Use a different key" in refused and not COMMAND_LINE.search(refused)
    import os

    saved = {k: os.environ.pop(k, None) for k in ("HEROKU_API_KEY", "NETRC")}
    os.environ["NETRC"] = "/nonexistent/netrc"
    try:
        find_api_key("no-such-entry", "http://127.0.0.1:9")
    except Exception as exc:  # CredentialError
        missing = for_wizard(exc.hint)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    assert "into its field on the settings page" in missing
    assert not COMMAND_LINE.search(missing) and "heroku login" not in missing


def test_no_clouds_yaml_means_no_clouds(tmp_path, monkeypatch) -> None:
    """Without clouds.yaml openstacksdk makes up a cloud "defaults": the card must say
    that no clouds.yaml was found, not "Clouds found: defaults"."""
    from targets.openstack.choices import cloud_names
    from wizards.health import card_health

    for key in [k for k in __import__("os").environ if k.startswith("OS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.chdir(tmp_path)
    assert cloud_names() == []
    health = card_health(["openstack"])["openstack"]  # the kind's own card check
    assert not health.ok and health.text == "No clouds.yaml found"
