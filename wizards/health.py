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
    from wizards.words import plain

    out: dict[str, Health] = {}
    if "docker" in kinds:
        from app.errors import ModelShipError
        from app.image import connect

        try:
            client = connect(timeout=5)
        except ModelShipError as exc:
            out["docker"] = Health(False, plain(exc.message), plain(exc.hint or ""))
        else:
            client.close()
            out["docker"] = Health(True, "Docker is running.")
    if "sagemaker" in kinds:
        out["sagemaker"] = _aws()
    if "heroku" in kinds:
        out["heroku"] = _heroku()
    if "openstack" in kinds:
        out["openstack"] = _openstack()
    return out


def _aws() -> Health:
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


def _heroku() -> Health:
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


def _openstack() -> Health:
    from targets.openstack.choices import cloud_names

    names = cloud_names()
    if not names:
        return Health(
            False,
            "No clouds.yaml found",
            "Pick or drop the file from your cloud's dashboard on the settings page.",
        )
    return Health(True, f"Clouds found: {', '.join(names)}.")
