"""How the heroku target tells which release its formation update made (issue 22).

Shapes from Heroku's schema (release ``artifacts``, ``description``, ``version``) and
its Dev Center's Cedar container releases ("Deployed web (142013fe2b5c)").
"""

from __future__ import annotations

from targets.heroku.release import find_release, names_image, release_image

IMAGE = "sha256:142013fe2b5c" + "0" * 52
OTHER = "sha256:99aa0000bbbb" + "1" * 52


def _r(version: int, description: str, artifacts: list | None = None) -> dict:
    return {"version": version, "description": description, "artifacts": artifacts or []}


def test_artifacts_win_then_the_description_then_the_first_newer_release() -> None:
    art = _r(5, "Deployed web", [{"type": "oci-image", "id": IMAGE}])
    assert find_release([_r(4, "Set FOO config vars"), art], 3, IMAGE) == (art, "artifacts")
    desc = _r(5, "Deployed web (142013fe2b5c)")
    assert find_release([desc], 4, IMAGE) == (desc, "description")
    generic = _r(5, "Deployed")
    assert find_release([generic, _r(6, "Deployed")], 4, IMAGE) == (generic, "none")


def test_releases_up_to_the_one_before_the_update_and_other_images_never_match() -> None:
    # a rollback releases an image an older release already named: only newer ones count
    old = _r(3, "Deployed web (142013fe2b5c)")
    assert find_release([old], 3, IMAGE) is None
    # a release naming another image is not ours, whichever way it names it
    assert find_release([_r(4, "Deployed web (99aa0000bbbb)")], 3, IMAGE) is None
    assert find_release([_r(4, "x", [{"id": OTHER}])], 3, IMAGE) is None
    # a description naming ours beats an earlier generic one
    ours = _r(5, "Deployed web (142013fe2b5c), worker (99aa0000bbbb)")
    assert find_release([_r(4, "Deployed"), ours], 3, IMAGE) == (ours, "description")


def test_what_a_release_names() -> None:
    assert release_image(_r(1, "Deployed web (142013fe2b5c)")) == "142013fe2b5c"
    assert release_image(_r(1, "Initial release")) is None
    assert names_image(_r(1, "Enable Logplex"), IMAGE) == (None, "none")
    # "(…)" in a description that is not a deploy names no image
    assert names_image(_r(1, "Rollback to v2 (142013fe2b5c)"), IMAGE) == (None, "none")
