"""Opening the wizard from the core without importing Qt at module level.

The core must not import Qt (see the import-linter contract); this function imports
the wizard only when a person runs ``modelship`` with no command. Before it does, it
checks what Qt would otherwise abort on (exit 134, in Qt's words): a display to show
the window on, and on Linux the system libraries Qt's X11 and OpenGL code loads. What
is missing is said plainly, with the one command that installs it.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from pathlib import Path

# What Qt's widgets need from a Linux system, by library file, with the Debian/Ubuntu
# package that brings it (the same names on Debian 12, Ubuntu 22.04 and 24.04). The
# README's install line is built from this table (a test keeps the two equal). Qt's
# own X11 plugin (libqxcb.so) loads the xcb ones; QtGui loads GL, EGL, fontconfig,
# xkbcommon and D-Bus whatever the display.
QT_GUI_LIBRARIES: dict[str, str] = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}
QT_XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
}


def debian_packages() -> list[str]:
    """Every package the wizard needs on Debian/Ubuntu, in a stable order."""
    return list(dict.fromkeys([*QT_XCB_LIBRARIES.values(), *QT_GUI_LIBRARIES.values()]))


def install_line() -> str:
    return "sudo apt-get install " + " ".join(debian_packages())


def _loads(soname: str) -> bool:
    """Can ``soname`` be had: the packaged app's own copy, or the system's?

    The packaged app carries Qt's xcb libraries but, as PyInstaller does for libraries
    tied to the machine's drivers and X server, not libGL, libEGL, libxcb and libX11:
    those (checked here too) are what its own copies load.
    """
    bundled = getattr(sys, "_MEIPASS", None)
    if bundled and (Path(bundled) / soname).exists():
        return True
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def missing_libraries(platform: str | None = None) -> dict[str, str]:
    """The libraries (file -> package) the wizard would fail on here; {} off Linux or
    on a platform plugin that needs none of them (offscreen, minimal, vnc)."""
    if not sys.platform.startswith("linux"):
        return {}
    platform = (platform if platform is not None else os.environ.get("QT_QPA_PLATFORM", "")) or ""
    plugin = platform.split(":", 1)[0].split(";", 1)[0].strip().lower()
    wanted = dict(QT_GUI_LIBRARIES)
    uses_x11 = plugin == "xcb" or (
        not plugin and os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    )
    if uses_x11:
        wanted.update(QT_XCB_LIBRARIES)
    return {so: pkg for so, pkg in wanted.items() if not _loads(so)}


def no_display() -> bool:
    return sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def _say(message: str, next_step: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    print(f"  next step: {next_step}", file=sys.stderr)
    return 2


def open_wizard() -> int:
    if no_display():
        return _say(
            "there is no display to show the wizard on (no desktop session here).",
            "run `modelship` on a desktop, or use a command instead (see `modelship --help`).",
        )
    missing = missing_libraries()
    if missing:
        files = list(missing)
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        packages = " ".join(dict.fromkeys(missing.values()))
        return _say(
            f"the wizard needs system libraries that are not installed here ({shown}).",
            f"install them (Debian/Ubuntu): sudo apt-get install {packages} — the commands "
            "work without them (see `modelship --help`).",
        )
    try:
        wizard_app = importlib.import_module("wizards.app")
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError):
            return _say(
                f"the wizard is not available ({exc}).",
                "use a command instead, see `modelship --help`.",
            )
        return _say(
            f"the wizard could not start: {exc}.",
            f"install Qt's system libraries (Debian/Ubuntu): {install_line()}",
        )
    return int(wizard_app.run())
