"""Live health of the target cards, before the analyst commits to one (after Docker
Desktop and Anaconda Navigator): "Docker is not running", with what to do.

Only quick local checks run here (the Docker Engine answers a ping, or not; the cloud
targets' credentials are on this computer, or not: no cloud is asked); the cloud
targets are checked fully on their settings page. Worker thread only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Health:
    ok: bool
    text: str  # one line, plain words
    fix: str = ""  # what to do, plain words
    action: str = ""  # a one-click fix the card offers ("aws_setup"), if any
    action_text: str = ""  # its button's words


def card_health(kinds: list[str]) -> dict[str, Health]:
    """The health of each kind's card that has a check (its kind's
    ``wizard.card_health`` hook, a function here or elsewhere under ``wizards/``)."""
    from targets import get_kind
    from targets.kind import load_object

    out: dict[str, Health] = {}
    for name in kinds:
        hook = get_kind(name).wizard.card_health
        if hook:
            out[name] = load_object(hook)()
    return out


def docker_engine() -> Health:
    """The Docker Engine answers a ping, or not (and what to do)."""
    from app.errors import ModelShipError
    from app.image.image import connect
    from wizards.nextstep import for_wizard

    try:
        client = connect(timeout=5)
    except ModelShipError as exc:
        return Health(False, for_wizard(exc.message), for_wizard(exc.hint or ""))
    client.close()
    return Health(True, "Docker is running.")


def aws_profile() -> Health:
    from targets.sagemaker.choices import credentials_state

    ok, words = credentials_state()
    if ok:
        return Health(True, words)
    return Health(
        False,
        "No AWS profile found",
        "ModelShip needs an AWS access key to create SageMaker endpoints.",
        action="aws_setup",
        action_text="Set one up",
    )


def heroku_key() -> Health:
    from targets.heroku.choices import key_source
    from targets.heroku.settings import HerokuSettings

    fields = HerokuSettings.model_fields
    source, where = key_source(str(fields["account_key"].default), str(fields["api_url"].default))
    if source == "none":
        return Health(
            False,
            "No Heroku API key found",
            "Paste it once on the settings page (Heroku → Account settings → API key).",
        )
    return Health(True, f"Heroku API key found in {where}.")


def openstack_clouds() -> Health:
    from targets.openstack.choices import cloud_names

    names = cloud_names()
    if not names:
        return Health(
            False,
            "No clouds.yaml found",
            "Pick or drop the file from your cloud's dashboard on the settings page.",
        )
    return Health(True, f"Clouds found: {', '.join(names)}.")


def kubernetes_config() -> Health:
    """A kubeconfig is where kubectl would look, and names a cluster (no cluster is asked)."""
    import yaml

    from targets.kubernetes.settings import KubernetesSettings

    found = [p for p in KubernetesSettings.model_construct().kubeconfig_paths() if p.is_file()]
    if not found:
        return Health(
            False,
            "No kubeconfig found",
            "Your cluster's admins hand out a kubeconfig file (Rancher: “Download "
            "KubeConfig”): save it as ~/.kube/config, or choose it on the settings page.",
        )
    contexts: list[str] = []
    current = ""
    for path in found:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            doc = None
        if not isinstance(doc, dict):
            return Health(
                False,
                f"{path.name} is not a kubeconfig ModelShip can read",
                "Download it again from your cluster's dashboard, or choose another file "
                "on the settings page.",
            )
        contexts += [
            str(c["name"]) for c in doc.get("contexts") or [] if isinstance(c, dict) and "name" in c
        ]
        current = current or str(doc.get("current-context") or "")
    if not contexts:
        return Health(
            False,
            "The kubeconfig names no cluster",
            "Download it again from your cluster's dashboard (it lists a context).",
        )
    more = f" (and {len(contexts) - 1} more)" if len(contexts) > 1 else ""
    return Health(True, f"Cluster found: {current or contexts[0]}{more}.")
