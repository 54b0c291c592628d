"""The kubernetes target's words for what a cluster reports (issue 23): why an image
cannot be pulled, from the kubelet's own messages, and the HorizontalPodAutoscaler's
current figure. The emulator's integration tests cover the cases it produces (a digest
the registry lacks, a refused login, an HPA with and without CPU figures); these are
the shapes only a real cluster gives (a registry the nodes cannot reach), taken from
containerd's and the HPA controller's messages."""

from __future__ import annotations

from targets.kubernetes.settings import KubernetesSettings
from targets.kubernetes.target import _pull_trouble, autoscaler_figures

IMAGE = "registry.example.edu/ml/iris@sha256:" + "a" * 64
SETTINGS = KubernetesSettings(registry="registry.example.edu/ml", pull_secret="uni-registry")


def test_a_registry_the_nodes_cannot_reach_says_so_and_what_address_to_use() -> None:
    error = (
        f'failed to pull and unpack image "{IMAGE}": failed to resolve reference '
        f'"{IMAGE}": failed to do request: Head "https://registry.example.edu/v2/ml/iris/'
        'manifests/sha256:aaaa": dial tcp 10.0.0.5:443: connect: connection refused'
    )
    err = _pull_trouble(SETTINGS, IMAGE, "ImagePullBackOff", error)
    assert err.message.startswith(f"The cluster cannot pull the image {IMAGE}: ")
    assert "the cluster's nodes cannot reach the registry registry.example.edu" in err.message
    assert "connection refused" in err.message
    assert f'"{IMAGE}": ' not in err.message  # the reference is named once, not three times
    assert err.hint and "localhost there is the node itself" in err.hint


def test_an_unknown_pull_failure_names_all_three_things_to_check() -> None:
    err = _pull_trouble(SETTINGS, IMAGE, "ImagePullBackOff", "")
    assert "(ImagePullBackOff)" in err.message
    assert err.hint and "uni-registry" in err.hint and "reach it" in err.hint


def _hpa(status: dict) -> dict:
    return {
        "spec": {
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
        "status": status,
    }


def test_the_autoscalers_figure_with_cpu_use() -> None:
    figures, words = autoscaler_figures(
        _hpa(
            {
                "currentReplicas": 2,
                "desiredReplicas": 3,
                "currentMetrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "current": {"averageUtilization": 95, "averageValue": "237m"},
                        },
                    }
                ],
            }
        )
    )
    assert words == (
        "autoscaler: 2 pods now, 3 wanted (between 1 and 4); CPU 95% of the request "
        "against a 70% target"
    )
    assert figures == {
        "current": 2,
        "desired": 3,
        "min": 1,
        "max": 4,
        "cpu_percent": 95,
        "target_cpu_percent": 70,
    }


def test_the_autoscalers_figure_without_a_metrics_server_says_why() -> None:
    _, words = autoscaler_figures(
        _hpa(
            {
                "currentReplicas": 1,
                "desiredReplicas": 1,
                "conditions": [
                    {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                    {
                        "type": "ScalingActive",
                        "status": "False",
                        "reason": "FailedGetResourceMetric",
                    },
                ],
            }
        )
    )
    assert words.startswith("autoscaler: 1 pod now, 1 wanted (between 1 and 4); ")
    assert "CPU use not measured (FailedGetResourceMetric)" in words


def test_an_autoscaler_the_controller_has_not_reached_yet() -> None:
    figures, words = autoscaler_figures(_hpa({}))
    assert words == "autoscaler (between 1 and 4 pods): no figure yet"
    assert figures["current"] is None and figures["cpu_percent"] is None
