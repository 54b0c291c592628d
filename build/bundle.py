"""What goes into the PyInstaller bundle, in one place.

The spec, the build script and the frozen-app tests all read this, so the list of
hidden imports cannot drift from the app: targets come from the same CATALOG the
app uses, and CLI commands from the same COMMANDS table (both are imported lazily,
which PyInstaller cannot see by itself).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BundlePlan:
    hiddenimports: list[str] = field(default_factory=list)
    datas: list[tuple[str, str]] = field(default_factory=list)
    collect_all: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)


def _submodules(package: str) -> list[str]:
    mod = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(mod.__path__, prefix=package + "."):
        names.append(info.name)
    return names


def bundle_plan(root: Path) -> BundlePlan:
    from app.cli import COMMANDS
    from targets import CATALOG

    hidden: list[str] = []
    hidden += [module for module, _ in COMMANDS.values() if importlib.util.find_spec(module)]
    hidden += sorted({kind.module for kind in CATALOG.values()})
    hidden += _submodules("app") + _submodules("targets") + _submodules("wizards")

    datas: list[tuple[str, str]] = []
    # Resources are read with importlib.resources; keep the package layout.
    for path in (root / "resources").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.parent.relative_to(root)
            datas.append((str(path), str(rel)))
    # Files that are run or copied as files, not imported: the serving runtime (copied
    # into every image's build context), the conversion worker (run as a script,
    # possibly by another Python), and the runtime's requirements.
    for pattern in ("app/__init__.py", "app/serving/*", "app/convert/*.py"):
        for path in root.glob(pattern):
            if path.is_file():
                datas.append((str(path), str(path.parent.relative_to(root))))

    return BundlePlan(
        hiddenimports=sorted(set(hidden)),
        datas=datas,
        collect_all=[
            # converters and runtimes load data files and plugins PyInstaller misses
            "onnxruntime",
            "onnx",
            "skl2onnx",
            "onnxmltools",
            "sklearn",
            "xgboost",
            "lightgbm",
            "uvicorn",
            # the wheelhouse is downloaded with the bundle's own pip (no Python needed)
            "pip",
        ],
        excludes=[
            # PyTorch conversion runs in an external Python chosen with --python.
            "torch",
            "torchvision",
            "onnxscript",
            "tensorboard",
            "matplotlib",
            "IPython",
            "tkinter",
            # Test-only packages that share the build's virtualenv; PyInstaller would
            # follow optional imports into them (botocore alone is 28 MB).
            "pytest",
            "_pytest",
            "hypothesis",
            "schemathesis",
            "tritonclient",
            "gevent",
            "geventhttpclient",
            "moto",
            "boto3",
            "botocore",
            "aiohttp",
            "fastapi",
            "flask",
            "werkzeug",
            "importlinter",
            "grimp",
            "PyInstaller",
        ],
    )
