"""Benchmark: bundle size and time from start to the first wizard page.

    python bench/package.py [--skip-build]

Builds the onedir and onefile executables (unless --skip-build and they exist),
then starts each one five times offscreen with MODELSHIP_EXIT_AFTER_FIRST_PAGE=1 (the
wizard quits as soon as its first page is shown) and takes the median wall time
from process start to exit. Also lists what takes the space in the onedir bundle.
Writes bench/results/package.json and package.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
RESULTS = ROOT / "bench" / "results"
ONEDIR = DIST / "modelship" / "modelship"
ONEFILE = DIST / "onefile" / "modelship"


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def biggest(folder: Path, n: int = 12) -> list[tuple[str, int]]:
    internal = folder / "_internal"
    base = internal if internal.is_dir() else folder
    sizes = [(p.name, du(p)) for p in base.iterdir()]
    return sorted(sizes, key=lambda x: -x[1])[:n]


def time_first_page(exe: Path, runs: int = 5) -> list[float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MODELSHIP_EXIT_AFTER_FIRST_PAGE="1")
    env.pop("DISPLAY", None)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0 or "first page shown" not in proc.stderr:
            raise SystemExit(f"{exe} did not show its first page:\n{proc.stderr[-2000:]}")
        times.append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    for mode, exe, flags in (("onedir", ONEDIR, []), ("onefile", ONEFILE, ["--onefile"])):
        build_s = None
        if not (args.skip_build and exe.exists()):
            started = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "build" / "build.py"), *flags], check=True)
            build_s = time.perf_counter() - started
        times = time_first_page(exe)
        bundle = exe.parent if mode == "onedir" else exe
        results[mode] = {
            "build_s": build_s,
            "size_mb": du(bundle) / 1e6,
            "first_page_s_median": statistics.median(times),
            "first_page_s_all": times,
        }
    results["onedir"]["largest"] = [
        {"name": name, "mb": size / 1e6} for name, size in biggest(ONEDIR.parent)
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "package.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Packaging benchmark",
        "",
        "| bundle | size (MB) | start to first wizard page, median of 5 (s) | build (s) |",
        "|---|---|---|---|",
    ]
    for mode in ("onedir", "onefile"):
        r = results[mode]
        build = f"{r['build_s']:.0f}" if r["build_s"] else "(reused)"
        lines.append(f"| {mode} | {r['size_mb']:.0f} | {r['first_page_s_median']:.2f} | {build} |")
    lines += ["", "Largest parts of the onedir bundle:", "", "| part | MB |", "|---|---|"]
    lines += [f"| {x['name']} | {x['mb']:.1f} |" for x in results["onedir"]["largest"]]
    (RESULTS / "package.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
