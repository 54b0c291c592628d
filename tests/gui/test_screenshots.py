"""The README's screenshots: every picture it shows exists, and none shows a temporary
path or a test-only name (issue 20, item 8).

``tests/gui/screenshots.py`` writes, beside the pictures, ``texts.json``: what each one
shows in words (every visible label, field, table cell, list entry and text box). The
pictures are made in a clean home (``/home/analyst``) with the bundled sample model and
the default base image name; these checks fail when a picture was made otherwise, or
when one was added or regenerated without its words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SHOTS = REPO / "docs" / "screenshots"
SETS = [SHOTS, SHOTS / "800x600", SHOTS / "2560x1440"]

# what a screenshot must never show: temporary folders, the test run's own names, the
# test base image, the test emulators' fixed addresses, the screenshot run's secrets
NOT_SHOWN = (
    "/tmp/",
    "/var/tmp/",
    "pytest-",
    "modelship-shots-",
    "modelship-test-base",
    "127.0.0.1:5055",
    "screenshot-key",
    "key-shot-",
    "/work/",
)
# inside the image the generated Dockerfile builds, not on this computer
IN_THE_IMAGE = ("/tmp/wheels",)
MAX_TOTAL_BYTES = 6 * 1024**2  # all three sets together


def leaks(texts: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(picture, the text, what it shows that it must not) for every offending text."""
    found = []
    for picture, shown in texts.items():
        for text in shown:
            seen = text
            for fine in IN_THE_IMAGE:
                seen = seen.replace(fine, "")
            found += [(picture, text, bad) for bad in NOT_SHOWN if bad in seen]
    return found


def test_every_screenshot_the_readme_shows_exists() -> None:
    readme = README.read_text(encoding="utf-8")
    shown = re.findall(r"\]\((docs/screenshots/[^)\s]+\.png)\)", readme)
    assert len(shown) >= 20, "the README's screenshot table went missing"
    missing = [p for p in shown if not (REPO / p).is_file()]
    assert not missing, f"the README shows pictures that do not exist: {missing}"
    names = {Path(p).name for p in shown}
    for folder in SETS[1:]:
        assert folder.name in readme  # the other sizes are named in the README
        # the same walk at another size: the same pictures (a small screen may lack
        # the last ones only if the walk stopped early; it does not)
        assert names <= {p.name for p in folder.glob("*.png")}, folder


@pytest.mark.parametrize("folder", SETS, ids=lambda f: f.name)
def test_screenshots_show_no_temporary_path_or_test_name(folder: Path) -> None:
    words = folder / "texts.json"
    assert words.is_file(), f"{words} is missing: regenerate with tests/gui/screenshots.py"
    texts = json.loads(words.read_text(encoding="utf-8"))
    pictures = sorted(p.name for p in folder.glob("*.png"))
    assert sorted(texts) == pictures, "pictures without their words (or words of none)"
    assert all(texts[p] for p in pictures), "a picture that shows no words at all"
    found = leaks(texts)
    assert not found, "screenshots show what they must not:\n" + "\n".join(
        f"{picture}: {bad!r} in {text[:200]!r}" for picture, text, bad in found
    )
    # the sample model, the default base image
    everything = "\n".join(t for shown in texts.values() for t in shown)
    assert "churn.joblib" in everything
    docker = [t for p, shown in texts.items() if "docker" in p for t in shown]
    assert any("python:3.11-slim" in t for t in docker), "not the default base image"


def test_the_check_finds_a_temporary_path() -> None:
    """The check itself fails on what it is there to catch."""
    texts = {
        "02-model.png": ["/tmp/modelship-shots-fuddp9yz/home/cache/churn.joblib", "Model:"],
        "13-review-docker.png": ["FROM modelship-test-base:bookworm AS deps"],
        "09-result.png": ["Profile saved as /home/analyst/.config/modelship/profiles/churn.toml"],
        "12-review-docker.png": ["COPY wheels/ /tmp/wheels/"],  # in the image: fine
        "14-error.png": ["/tmp/pytest-of-root/pytest-7/not-a-model.pkl"],
    }
    found = {(p, bad) for p, _t, bad in leaks(texts)}
    assert found == {
        ("02-model.png", "/tmp/"),
        ("02-model.png", "modelship-shots-"),
        ("13-review-docker.png", "modelship-test-base"),
        ("14-error.png", "/tmp/"),
        ("14-error.png", "pytest-"),
    }


def test_screenshots_stay_small() -> None:
    total = sum(p.stat().st_size for folder in SETS for p in folder.glob("*.png"))
    assert total < MAX_TOTAL_BYTES, f"{total / 1024**2:.1f} MiB of screenshots"
