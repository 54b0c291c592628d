"""The wizard on a fresh Debian machine: only the README's packages, nothing else.

A container of the tests' Debian bookworm base image (python3 and nothing graphical)
runs ``python3 main.py`` against the tests' Xvfb, with ModelShip's Python packages
mounted read-only. Without the system packages the README names, ModelShip must say
which ones to install (not Qt's abort, exit 134); with exactly those packages (and
what apt pulls in for them) the wizard's first page must show.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from app.cli.gui_entry import debian_packages, install_line
from tests.conftest import IN_CI, REPO, require

pytestmark = pytest.mark.integration


def _display() -> str:
    display = os.environ.get("MODELSHIP_XVFB_DISPLAY", ":91")
    require(Path(f"/tmp/.X11-unix/X{display.lstrip(':')}").exists(), f"Xvfb on {display}")
    return display


def debs_for(base_image: str, packages: list[str], tmp: Path) -> Path:
    """The .deb files of ``packages`` and what they pull in, for the base image: apt
    resolves against the image's own package database. Cached per package list."""
    require(shutil.which("apt-get") is not None, "apt-get (a Debian host)")
    root = Path(os.environ.get("MODELSHIP_CI_CACHE", "/var/cache/modelship-ci"))
    key = " ".join(packages)
    cache = root / "debs" / hashlib.sha256(key.encode()).hexdigest()[:12]
    stamp = cache / "packages.txt"
    if stamp.exists() and stamp.read_text() == key and any(cache.glob("*.deb")):
        return cache
    shutil.rmtree(cache, ignore_errors=True)
    (cache / "partial").mkdir(parents=True)
    status = tmp / "status"
    status.write_bytes(
        subprocess.run(
            ["docker", "run", "--rm", "--network=none", base_image, "cat", "/var/lib/dpkg/status"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    )
    got = subprocess.run(
        [
            "apt-get", "install", "-y", "-qq", "--download-only", "--no-install-recommends",
            "-o", f"Dir::State::status={status}", "-o", f"Dir::Cache::archives={cache}",
            "-o", "Debug::NoLocking=1", *packages,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    if got.returncode != 0 or not any(cache.glob("*.deb")):
        message = f"downloading {key} failed: {got.stderr[-2000:]}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    stamp.write_text(key)
    return cache


def in_container(
    base_image: str, command: str, mounts: dict[str, str], debs: Path | None
) -> subprocess.CompletedProcess:
    """``command`` in a networkless container of the base image, on the tests' Xvfb,
    after installing ``debs`` (if any) with dpkg."""
    install = "dpkg -i /debs/*.deb >/tmp/dpkg.log 2>&1 || { tail -20 /tmp/dpkg.log; exit 99; }; "
    volumes = [f"{src}:{dst}:ro" for src, dst in mounts.items()]
    if debs:
        volumes.append(f"{debs}:/debs:ro")
    return subprocess.run(
        [
            "docker", "run", "--rm", "--network", "none",
            "-v", "/tmp/.X11-unix:/tmp/.X11-unix", "-e", f"DISPLAY={_display()}",
            "-e", "MODELSHIP_EXIT_AFTER_FIRST_PAGE=1", "-e", "PYTHONPATH=/repo:/site",
            "-e", "PYTHONDONTWRITEBYTECODE=1", "-e", "LANG=C.UTF-8",
            *[a for v in volumes for a in ("-v", v)], "-w", "/tmp", base_image,
            "sh", "-c", (install if debs else "") + "PATH=/usr/bin:/bin HOME=/tmp exec " + command,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def qt_debs(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return debs_for(base_image, debian_packages(), tmp_path_factory.mktemp("dpkg"))


def _run_wizard(base_image: str, debs: Path | None) -> subprocess.CompletedProcess:
    site = sysconfig.get_paths()["purelib"]
    mounts = {str(REPO): "/repo", site: "/site"}
    return in_container(base_image, "python3 /repo/main.py", mounts, debs)


def test_readme_names_the_packages_the_wizard_needs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert install_line() in readme


def test_without_the_packages_it_names_them_instead_of_aborting(base_image: str) -> None:
    got = _run_wizard(base_image, None)
    assert got.returncode == 2, got.stdout + got.stderr
    assert "Traceback" not in got.stderr and "Aborted" not in got.stderr
    assert "the wizard needs system libraries that are not installed here" in got.stderr
    install = re.search(r"sudo apt-get install ([a-z0-9.+\- ]+)", got.stderr)
    assert install, got.stderr
    named = install.group(1).split()
    assert "libxcb-cursor0" in named and set(named) <= set(debian_packages())


def test_with_the_readme_packages_the_first_page_shows(base_image: str, qt_debs: Path) -> None:
    got = _run_wizard(base_image, qt_debs)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "first page shown" in got.stdout + got.stderr
