"""The remote targets in the wizard (issue 14, item 3), against the real emulators.

OpenStack: the dropdowns are filled from the OpenStack emulator (the real openstacksdk
on the wire), a downloaded clouds.yaml is imported (its secret into the keyring).
SageMaker: AWS profiles from temporary ``~/.aws`` files, moto behind them; no profile
at all shows "No AWS profile found" with "Set one up". Heroku: the app name is checked
live against the Heroku emulator (free / yours / someone else's), the API key is found
in ``~/.netrc``. And a click-through deploy to Heroku, from the model file to the
result page, with the cost on Review.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.gui.helpers import (
    SLOW,
    assert_no_command_line_words,
    choose_model,
    next_page,
    wait_converted,
    wait_idle,
)
from wizards import notify

pytestmark = [pytest.mark.gui]


def _settings(window, qtbot, model: Path, kind: str, settings: dict):
    window.state.model_path = model
    window.state.target_name = kind
    window.state.settings = dict(settings)
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    return page


def _items(editor) -> list[str]:
    return [editor.widget.itemText(i) for i in range(editor.widget.count())]


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    return model


# ---- OpenStack ------------------------------------------------------------------------
def test_openstack_dropdowns_come_from_the_cloud(window, qtbot, tmp_path, clouds_yaml) -> None:
    from app.store.secrets import set_secret

    set_secret("gui-openstack-key", "k-0123456789")
    page = _settings(
        window,
        qtbot,
        _model(tmp_path),
        "openstack",
        {"cloud": "bwcloud-appcred", "region": "Karlsruhe", "api_key": "gui-openstack-key"},
    )
    form = page.target_form
    assert form is not None and form.title() == "Your cloud"
    assert "bwcloud, bwcloud-appcred" in form.found.text()
    qtbot.waitUntil(lambda: page.editors["flavor"].widget.count() == 4, timeout=60_000)
    e = page.editors
    assert _items(e["cloud"]) == ["bwcloud", "bwcloud-appcred"]
    assert _items(e["region"]) == ["Freiburg", "Karlsruhe", "Mannheim"]
    assert _items(e["image"]) == ["Debian 11", "Debian 12", "Ubuntu 24.04"]
    assert _items(e["flavor"])[1] == "m1.small (1 CPU, 2 GB memory, 12 GB disk)"
    assert _items(e["network"]) == [
        "Automatic: the cloud's only network, or its public one",
        "public-belwue (public addresses)",
        "private (private)",
    ]
    assert e["network"].get() is None  # automatic, as the profile had it
    assert "0 of 10 servers, 0 of 20 CPUs" in form.quota.text()
    # a choice from the dropdown is the profile's plain value
    e["flavor"].widget.setCurrentIndex(2)
    e["network"].widget.setCurrentIndex(1)
    assert e["flavor"].get() == "m1.medium" and e["network"].get() == "public-belwue"
    # another region: asked again; Freiburg has only the public network
    e["region"].widget.setCurrentIndex(0)
    qtbot.waitUntil(lambda: e["network"].widget.count() == 2, timeout=60_000)
    assert e["region"].get() == "Freiburg"
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    qtbot.waitUntil(lambda: page.ready.isVisible() or page.problems.isVisible(), timeout=60_000)
    assert page.checked_ok, page.problems.label.text()
    assert page.values()["flavor"] == "m1.medium"
    assert_no_command_line_words(page)


def test_openstack_quota_marks_sizes_that_do_not_fit(
    window, qtbot, tmp_path, clouds_yaml, openstack_emulator
) -> None:
    openstack_emulator.set_compute_quota("Freiburg", instances=1, cores=1, ram=1024)
    page = _settings(
        window,
        qtbot,
        _model(tmp_path),
        "openstack",
        {"cloud": "bwcloud", "region": "Freiburg", "flavor": "m1.small", "api_key": "k"},
    )
    qtbot.waitUntil(lambda: page.editors["flavor"].widget.count() == 4, timeout=60_000)
    labels = _items(page.editors["flavor"])
    assert not labels[0].endswith("over your quota")  # m1.tiny: 1 CPU, 1 GB
    assert labels[1].endswith("over your quota")
    assert "m1.small does not fit" in page.target_form.quota.text()


def test_openstack_imports_a_downloaded_clouds_yaml_and_says_cloud_errors(
    window, qtbot, tmp_path, clouds_yaml, openstack_emulator, memory_keyring
) -> None:
    from app.store.secrets import get_secret

    page = _settings(
        window, qtbot, _model(tmp_path), "openstack", {"cloud": "nowhere", "api_key": "k"}
    )
    form = page.target_form
    # the cloud named is not in clouds.yaml: said in words, with Retry
    page.editors["cloud"].set("nowhere")
    form._ask_cloud()
    qtbot.waitUntil(form.retry_button.isVisible, timeout=60_000)
    assert "could not find the cloud" in form.asking.text()
    assert_no_command_line_words(page)
    # the dashboard's download: application credential with its secret
    download = tmp_path / "Downloads" / "clouds.yaml"
    download.parent.mkdir()
    entry = openstack_emulator.cloud_config("application_credential", "Karlsruhe")
    download.write_text(yaml.safe_dump({"clouds": {"openstack": entry}}))
    form.import_file(download)
    qtbot.waitUntil(lambda: "Imported openstack" in form.found.text(), timeout=60_000)
    assert "1 secret(s) moved into your system keyring" in form.found.text()
    assert page.editors["cloud"].get() == "openstack"
    assert page.editors["region"].get() == "Karlsruhe"
    secret = entry["auth"]["application_credential_secret"]
    assert get_secret("openstack/openstack/application_credential_secret") == secret
    written = yaml.safe_load(clouds_yaml.path.read_text())["clouds"]["openstack"]
    assert "application_credential_secret" not in written["auth"]  # the file keeps none
    # and the imported cloud answers: its dropdowns fill
    qtbot.waitUntil(lambda: page.editors["flavor"].widget.count() == 4, timeout=60_000)
    assert not form.retry_button.isVisible()


# ---- SageMaker ------------------------------------------------------------------------
def _aws_files(config: str, credentials: str = "") -> None:
    import os

    Path(os.environ["AWS_CONFIG_FILE"]).write_text(config)
    Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).write_text(credentials)


def test_sagemaker_profiles_prices_and_serverless(window, qtbot, tmp_path, moto_server) -> None:
    _aws_files(
        "[default]\nregion = us-east-1\n\n[profile lab]\nregion = eu-west-1\n",
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    page = _settings(window, qtbot, _model(tmp_path), "sagemaker", {"region": "us-east-1"})
    form = page.target_form
    e = page.editors
    assert "AWS profiles found on this computer: default, lab" in form.account.text()
    assert not form.setup_button.isVisible()
    assert _items(e["aws_profile"]) == ["", "default (us-east-1)", "lab (eu-west-1)"]
    e["aws_profile"].widget.setCurrentIndex(2)
    assert e["aws_profile"].get() == "lab"
    assert e["region"].get() == "eu-west-1"  # the profile's region comes along
    assert "ml.t2.medium: $0.06 per hour (2 CPU, 4 GB)" in _items(e["instance_type"])
    e["instance_type"].set("ml.m5.large")
    e["min_instances"].set(1)
    e["max_instances"].set(3)
    assert "$0.12 per hour, about $83 per month" in form.cost.text()
    assert "up to $0.35 per hour when it scales to 3" in form.cost.text()
    # the serverless switch: per-request billing, memory instead of instances
    assert not e["memory_mb"].widget.isVisibleTo(page)
    form.serverless.setChecked(True)
    assert e["mode"].get() == "serverless"
    assert e["memory_mb"].widget.isVisibleTo(page)
    assert not e["instance_type"].widget.isVisibleTo(page)
    assert "Billed per request" in form.cost.text()
    e["region"].set("us-east-1")
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    qtbot.waitUntil(lambda: page.ready.isVisible() or page.problems.isVisible(), timeout=60_000)
    assert page.checked_ok, page.problems.label.text()
    assert page.values()["aws_profile"] == "lab"
    assert_no_command_line_words(page)


def test_no_aws_profile_set_one_up(window, qtbot, tmp_path, moto_server, monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # the target page's AWS card: "No AWS profile found: Set one up"
    window.go("target")
    card = window.pages["target"].cards["sagemaker"]
    qtbot.waitUntil(lambda: card.health.isVisible(), timeout=30_000)
    assert "No AWS profile found" in card.health.text()
    assert card.fix_button.isVisible() and card.fix_button.text() == "Set one up…"
    assert_no_command_line_words(window.pages["target"])
    # the settings page says the same and does not let the deploy go on
    page = _settings(window, qtbot, _model(tmp_path), "sagemaker", {"region": "us-east-1"})
    qtbot.waitUntil(lambda: page.problems.isVisible() or page.ready.isVisible(), timeout=60_000)
    form = page.target_form
    assert "No AWS profile found" in form.account.text() and form.setup_button.isVisible()
    assert "Set one up" in page.problems.label.text()
    assert not page.checked_ok
    assert_no_command_line_words(page)
    # the dialog: an access key pasted once, into the keyring
    from app.store.secrets import get_secret
    from wizards.forms.sagemaker import AwsKeyDialog

    dialog = AwsKeyDialog(page, "us-east-1")
    assert_no_command_line_words(dialog)
    dialog.save()
    assert "Paste both" in dialog.problem.text()
    dialog.key_id.setText("AKIAEXAMPLE0000")
    dialog.secret.setText("wizard-secret-key")
    dialog.save()
    assert dialog.result() == AwsKeyDialog.DialogCode.Accepted
    assert get_secret("aws/default/secret_access_key") == "wizard-secret-key"
    form.refresh()
    assert "kept in your system keyring" in form.account.text()
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    qtbot.waitUntil(lambda: page.ready.isVisible() or page.problems.isVisible(), timeout=60_000)
    assert page.checked_ok, page.problems.label.text()  # moto took the keyring's key


# ---- Heroku ---------------------------------------------------------------------------
@pytest.fixture
def two_accounts():
    """A Heroku emulator with two accounts: ours (key 0) and someone else's (key 1)."""
    from tests.conftest import docker_available, require
    from tests.emulators.heroku.emulator import HerokuEmulator
    from tests.emulators.heroku.registry import registry_available

    require(docker_available(), "Docker Engine")
    require(registry_available(), "docker-registry and htpasswd")
    emulator = HerokuEmulator(api_keys=["key-ours-0123", "key-theirs-4567"], boot_timeout=10.0)
    emulator.start()
    try:
        from tests.emulators.confirm import confirm_hosts

        confirm_hosts(emulator.api_url, emulator.registry)
        yield emulator
    finally:
        emulator.stop()


def test_heroku_app_name_checked_live_and_key_from_netrc(
    window, qtbot, tmp_path, two_accounts, monkeypatch
) -> None:
    from targets.heroku.client import HerokuClient

    emu = two_accounts
    with HerokuClient(emu.api_url, "key-theirs-4567") as theirs:
        theirs.create_app("their-app", "eu")
    with HerokuClient(emu.api_url, "key-ours-0123") as ours:
        ours.create_app("our-app", "eu")
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\n  login me@example.org\n  password key-ours-0123\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    page = _settings(
        window,
        qtbot,
        _model(tmp_path),
        "heroku",
        {"api_url": emu.api_url, "registry": emu.registry, "require_api_key": False},
    )
    form = page.target_form
    assert f"Heroku API key found in {netrc}" in form.key_state.text()
    assert not page.editors["account_key"].widget.isVisibleTo(page)  # nothing to paste
    assert "basic: $7 per month (512 MB)" in _items(page.editors["dyno_size"])
    for name, words in [
        ("their-app", "Taken by someone else"),
        ("our-app", "Yours: ModelShip will deploy into this app and replace"),
        ("a-free-name", "Free: ModelShip will create this app"),
        ("Bad_Name", "lower-case letters"),
    ]:
        page.editors["app"].widget.setText(name)
        qtbot.waitUntil(lambda w=words: w in form.app_state.text(), timeout=30_000)
    assert_no_command_line_words(page)


def test_heroku_key_pasted_once_goes_to_the_keyring(
    window, qtbot, tmp_path, heroku_emulator, monkeypatch
) -> None:
    from app.store.secrets import get_secret

    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    emu = heroku_emulator
    page = _settings(
        window,
        qtbot,
        _model(tmp_path),
        "heroku",
        {"api_url": emu.api_url, "registry": emu.registry, "require_api_key": False},
    )
    form = page.target_form
    assert "No Heroku API key found" in form.key_state.text()
    editor = page.editors["account_key"]
    assert editor.secret_value.isVisibleTo(page)
    editor.secret_value.setText(emu.api_key)
    page.editors["app"].widget.setText("pasted-key-app")
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert get_secret("heroku-api-key") == emu.api_key
    qtbot.waitUntil(lambda: "found in your system keyring" in form.key_state.text(), timeout=10_000)
    qtbot.waitUntil(lambda: "Free:" in form.app_state.text(), timeout=30_000)
    assert_no_command_line_words(page)


@pytest.mark.slow
@pytest.mark.integration
def test_click_through_deploy_to_heroku(
    window, qtbot, sample_model, heroku_emulator, base_image, monkeypatch
) -> None:
    """Model file -> convert -> Heroku card -> form -> review with the cost -> deploy
    (with the "usually takes" line) -> result page, then teardown."""
    from app.store.secrets import set_secret

    emu = heroku_emulator
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    set_secret("heroku-api-key", emu.api_key)
    window.state.name = "wizard-heroku"
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, sample_model)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    next_page(qtbot, window, "target")
    target = window.pages["target"]
    target.choose("heroku")
    assert_no_command_line_words(target)
    next_page(qtbot, window, "settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    page.more_button.click()
    page.editors["api_url"].set(emu.api_url)
    page.editors["registry"].set(emu.registry)
    page.editors["start_timeout"].set(120)
    page.editors["app"].widget.setText("wizard-heroku")
    page.editors["api_key"].secret_value.setText("wizard-endpoint-key-0123")
    page.base_image.setText(base_image)
    qtbot.waitUntil(lambda: "Free:" in page.target_form.app_state.text(), timeout=30_000)
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert page.checked_ok, page.problems.label.text()
    assert_no_command_line_words(page)
    next_page(qtbot, window, "review")
    review = window.pages["review"]
    qtbot.waitUntil(lambda: review.plan_ok or bool(notify.shown), timeout=60_000)
    assert not notify.shown, notify.last().diagnostics_text()
    assert review.cost.isVisible()
    assert "Cost: $0.01 per hour — about $7 per month" in review.cost.label.text()
    assert_no_command_line_words(review)
    next_page(qtbot, window, "deploy")
    deploy = window.pages["deploy"]
    seen: list[str] = []
    deploy.wait_line.setText = lambda t, f=deploy.wait_line.setText: (seen.append(t), f(t))
    qtbot.waitUntil(lambda: window.state.record is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, deploy)
    assert "online" in deploy.outcome.label.text()
    assert any("Heroku is starting the new release" in s for s in seen), seen
    assert_no_command_line_words(deploy)
    next_page(qtbot, window, "result")
    result = window.pages["result"]
    assert result.url.text().startswith("http://")
    # tear it down again: nothing left on the emulated platform
    result.teardown_button.click()
    qtbot.waitUntil(lambda: result.torn_down is not None or bool(notify.shown), timeout=SLOW)
    assert not notify.shown, notify.last().diagnostics_text()
    wait_idle(qtbot, result, 60_000)
    assert "wizard-heroku" not in emu.app_names()


def test_remote_settings_pages_fit_800_pixels(window, qtbot, tmp_path) -> None:
    """The cloud panels and their forms fit the page's width on an 800×600 screen."""
    room = 800 - window.sidebar.width() - 20
    for kind, settings in [
        ("openstack", {"cloud": "nowhere", "api_key": "k"}),
        ("sagemaker", {}),
        ("heroku", {"require_api_key": False, "api_url": "http://127.0.0.1:9"}),
    ]:
        page = _settings(window, qtbot, _model(tmp_path), kind, settings)
        page.more_button.setChecked(True)
        for box in (page.target_form, page.form_box, page.more_box):
            assert box.minimumSizeHint().width() <= room - 30, (kind, box.title())
        wait_idle(qtbot, page, 60_000)


def test_long_waits_say_how_long_they_usually_take() -> None:
    """The long waits the targets announce when one starts: typed events their kinds
    declare (targets/*/kind.py; tests/unit/test_kinds.py checks that each is sent)."""
    from targets.heroku.kind import RELEASE
    from targets.openstack.kind import CLOUD_INIT, VM_BOOT
    from targets.sagemaker.kind import ENDPOINT_START
    from wizards.pages.deploy import PUSH_WAIT, wait_words

    assert "1–3 minutes" in wait_words("deploy", VM_BOOT)  # "Creating server ms-x ..."
    assert "installing Docker" in wait_words("deploy", CLOUD_INIT)  # "Waiting for cloud-init"
    assert "InService" in wait_words("deploy", ENDPOINT_START)  # "Creating/Updating the endpoint"
    assert "Heroku" in wait_words("deploy", RELEASE)  # "Releasing sha256:0688 to app ..."
    assert wait_words("push", None, remote=True) == PUSH_WAIT
    assert wait_words("push", None, remote=False) is None
    assert wait_words("deploy", None) is None  # "Setting config vars A on app": no wait
