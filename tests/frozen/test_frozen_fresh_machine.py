"""The packaged executable on a fresh Debian machine (issue 20): it carries Qt and its
xcb libraries, so a bookworm container with nothing graphical but the system's OpenGL
libraries (libgl1, libegl1: on every Linux desktop) shows the wizard's first page; a
container without even those gets ModelShip's words naming them, not Qt's abort."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.frozen.test_frozen_app import exe  # noqa: F401 - the fixture
from tests.integration.test_fresh_machine import debs_for, in_container

pytestmark = [pytest.mark.integration, pytest.mark.frozen]

SYSTEM = ["libgl1", "libegl1"]  # what the README says the packaged app needs


def test_the_bundle_names_the_system_libraries_it_lacks(exe: Path, base_image: str) -> None:  # noqa: F811
    got = in_container(base_image, "/app/modelship", {str(exe.parent): "/app"}, None)
    assert got.returncode == 2, got.stdout + got.stderr
    assert "Traceback" not in got.stderr and "Aborted" not in got.stderr
    install = re.search(r"sudo apt-get install ([a-z0-9.+\- ]+)", got.stderr)
    assert install, got.stderr
    # what the bundle carries is never asked for
    assert set(install.group(1).split()) <= {*SYSTEM, "libxcb1", "libx11-6"}, got.stderr


def test_the_bundle_shows_the_wizard_with_only_opengl_installed(
    exe: Path,  # noqa: F811
    base_image: str,
    tmp_path: Path,
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "sudo apt-get install " + " ".join(SYSTEM) in readme
    debs = debs_for(base_image, SYSTEM, tmp_path)
    got = in_container(base_image, "/app/modelship", {str(exe.parent): "/app"}, debs)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "first page shown" in got.stdout + got.stderr
