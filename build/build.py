"""Build the ModelShip executable with PyInstaller (onedir by default).

    python build/build.py            # dist/modelship/modelship (a folder to copy)
    python build/build.py --onefile  # dist/modelship(.exe), a single file

Works on Linux, Windows and macOS; each builds for its own platform. PyInstaller's
work folder is dist/.work, never build/ (which holds this script and the spec).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onefile", action="store_true", help="one self-unpacking file")
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="output folder")
    args = parser.parse_args(argv)

    dist = Path(args.dist)
    work = dist / ".work" / ("onefile" if args.onefile else "onedir")
    env = dict(os.environ, MODELSHIP_ONEFILE="1" if args.onefile else "0")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level=WARN",
        "--distpath",
        str(dist / ("onefile" if args.onefile else "")),
        "--workpath",
        str(work),
        str(ROOT / "build" / "modelship.spec"),
    ]
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        print("error: PyInstaller failed (see the output above).", file=sys.stderr)
        return result.returncode
    exe = "modelship.exe" if sys.platform == "win32" else "modelship"
    out = dist / "onefile" / exe if args.onefile else dist / "modelship" / exe
    print(f"built {out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
