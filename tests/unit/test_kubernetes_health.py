"""The Kubernetes card's health (issue 23): a kubeconfig where kubectl looks, naming a
cluster, or what to do; no cluster is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizards.health import kubernetes_config

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: uni, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: me, user: {token: not-a-real-token}}]
contexts:
- {name: uni-cluster, context: {cluster: uni, user: me, namespace: ag-smith}}
- {name: lab, context: {cluster: uni, user: me}}
current-context: uni-cluster
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp_path


def test_no_kubeconfig_says_where_one_comes_from(home: Path) -> None:
    health = kubernetes_config()
    assert not health.ok and health.text == "No kubeconfig found"
    assert "~/.kube/config" in health.fix and "settings page" in health.fix


def test_the_current_context_is_named(home: Path) -> None:
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text(KUBECONFIG, encoding="utf-8")
    health = kubernetes_config()
    assert health.ok and health.text == "Cluster found: uni-cluster (and 1 more)."
    assert "not-a-real-token" not in health.text + health.fix


def test_kubeconfig_variable_and_bad_files(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = home / "elsewhere.yaml"
    other.write_text("contexts: []\n", encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(other))
    assert kubernetes_config().text == "The kubeconfig names no cluster"
    other.write_text("[not, a, mapping", encoding="utf-8")
    broken = kubernetes_config()
    assert not broken.ok and broken.text == "elsewhere.yaml is not a kubeconfig ModelShip can read"
