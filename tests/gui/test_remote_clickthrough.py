"""Click-through deploys from the wizard to SageMaker and OpenStack (issue 14, item 3).

Model file → convert → the target's card → its form → Review with the cost → Deploy
with the "usually takes" line → Result with the smoke test passed → Tear down, after
which the emulated platform holds nothing of the deployment. No command-line word on
any page. SageMaker: moto and the SageMaker emulator (images from the local registry);
OpenStack: the emulated cloud whose servers are the local sshd (this machine's Docker
is the VM's), as in tests/conformance/harnesses.
"""

from __future__ import annotations

import socket

import pytest

from tests.gui.helpers import (
    assert_no_command_line_words,
    choose_model,
    next_page,
    review_deploy_result_teardown,
    wait_converted,
    wait_idle,
)

pytestmark = [pytest.mark.gui, pytest.mark.slow, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _to_settings(qtbot, window, model, kind: str, name: str):
    window.state.name = name
    next_page(qtbot, window, "model")
    choose_model(qtbot, window, model)
    next_page(qtbot, window, "convert")
    wait_converted(qtbot, window)
    next_page(qtbot, window, "target")
    target = window.pages["target"]
    target.choose(kind)
    qtbot.waitUntil(lambda: target.cards[kind].health.isVisible(), timeout=30_000)
    assert_no_command_line_words(target)
    next_page(qtbot, window, "settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    page.more_button.setChecked(True)
    return page


def _check(qtbot, page) -> None:
    page.check_button.click()
    wait_idle(qtbot, page, 120_000)
    qtbot.waitUntil(lambda: page.ready.isVisible() or page.problems.isVisible(), timeout=60_000)
    assert page.checked_ok, page.problems.label.text()
    assert_no_command_line_words(page)


def test_click_through_deploy_to_sagemaker(
    window, qtbot, sample_model, sagemaker_emulator, docker_client, base_image
) -> None:
    from tests.conformance.harnesses.sagemaker import sagemaker_leftovers
    from tests.conftest import require
    from tests.emulators.sagemaker_runtime.fixtures import registry_address, registry_available

    require(registry_available(registry_address()), "the local registry")
    name = "wizard-sagemaker"
    page = _to_settings(qtbot, window, sample_model, "sagemaker", name)
    card = window.pages["target"].cards["sagemaker"]
    assert "environment" in card.health.text()  # moto's keys in the environment
    e = page.editors
    e["region"].set("us-east-1")
    e["instance_type"].set("ml.t2.medium")
    e["min_instances"].set(1)
    e["max_instances"].set(2)
    e["registry"].set(registry_address())
    e["start_timeout"].set(300)
    page.base_image.setText(base_image)
    assert "$0.06 per hour" in page.target_form.cost.text()
    _check(qtbot, page)

    def leftovers() -> list[str]:
        return sagemaker_leftovers(name, sagemaker_emulator, docker_client)

    review_deploy_result_teardown(
        qtbot, window, cost="Cost: $0.06 per hour", usually="InService", leftovers=leftovers
    )


def test_click_through_deploy_to_openstack(
    window,
    qtbot,
    sample_model,
    openstack_vm_emulator,
    sshd_host,
    docker_client,
    base_image,
    tmp_path,
    monkeypatch,
) -> None:
    from tests.conformance.harnesses.openstack import (
        cloud_leftovers,
        use_clouds_yaml,
        vm_leftovers,
    )

    emulator = openstack_vm_emulator
    use_clouds_yaml(emulator, tmp_path, monkeypatch)
    name = "wizard-openstack"
    page = _to_settings(qtbot, window, sample_model, "openstack", name)
    assert "bwcloud, bwcloud-appcred" in window.pages["target"].cards["openstack"].health.text()
    e = page.editors
    e["cloud"].set("bwcloud-appcred")
    e["region"].set("Karlsruhe")
    qtbot.waitUntil(lambda: e["flavor"].widget.count() == 4, timeout=60_000)
    qtbot.waitUntil(lambda: e["network"].widget.count() == 3, timeout=60_000)
    e["image"].set("Debian 12")
    e["flavor"].set("m1.small")
    e["network"].set("private")  # the floating-IP path
    e["ssh_user"].set("root")
    e["ssh_port"].set(sshd_host.port)
    e["port"].set(_free_port())
    e["allowed_cidr"].set("127.0.0.0/8")
    e["start_timeout"].set(120)
    e["api_key"].secret_value.setText("wizard-openstack-key-0123")
    page.base_image.setText(base_image)
    _check(qtbot, page)
    assert page.values()["flavor"] == "m1.small"

    def leftovers() -> list[str]:
        return cloud_leftovers(emulator) + vm_leftovers(docker_client, name)

    review_deploy_result_teardown(
        qtbot, window, cost=None, usually="1–3 minutes", leftovers=leftovers, timeout=600_000
    )


def test_click_through_deploy_to_kubernetes(
    window, qtbot, sample_model, kubernetes_emulator, docker_client, base_image, monkeypatch
) -> None:
    """The emulated cluster through the kubeconfig where kubectl looks ($KUBECONFIG); the
    endpoint through the API server's services proxy."""
    from tests.conformance.harnesses.kubernetes import (
        PULL_KEY,
        kubernetes_leftovers,
        store_keys,
    )

    cluster = kubernetes_emulator
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    store_keys(cluster)
    name = "wizard-kubernetes"
    page = _to_settings(qtbot, window, sample_model, "kubernetes", name)
    health = window.pages["target"].cards["kubernetes"].health.text()
    assert f"Cluster found: {cluster.context}" in health, health
    e = page.editors
    e["namespace"].set(cluster.namespace)
    e["mode"].set("deployment")
    e["registry"].set(f"{cluster.registry}/modelship")
    e["pull_secret"].set(PULL_KEY)
    e["start_timeout"].set(180)
    page.base_image.setText(base_image)
    _check(qtbot, page)

    def leftovers() -> list[str]:
        return kubernetes_leftovers(cluster, docker_client, name)

    review_deploy_result_teardown(
        qtbot, window, cost=None, usually="usually under a minute", leftovers=leftovers
    )
