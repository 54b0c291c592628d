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

# The AWS services the sagemaker target calls (plus SSO, for `aws sso login` profiles).
# botocore ships the API models of every AWS service (~25 MB); PyInstaller's hook
# collects all of them, and the spec keeps only these (see BundlePlan.keeps_data).
AWS_SERVICES = (
    "sts",
    "iam",
    "ecr",
    "sagemaker",
    "sagemaker-runtime",
    "application-autoscaling",
    "logs",
    "sso",
    "sso-oidc",
)


@dataclass
class BundlePlan:
    hiddenimports: list[str] = field(default_factory=list)
    datas: list[tuple[str, str]] = field(default_factory=list)
    collect_all: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    aws_services: tuple[str, ...] = AWS_SERVICES

    def keeps_data(self, dest: str) -> bool:
        """Whether a data file (its path inside the bundle) goes in: botocore's and
        boto3's per-service folders only for :data:`AWS_SERVICES`; their top-level files
        (endpoints.json, partitions.json, the retry and default configs) always."""
        parts = dest.replace("\\", "/").split("/")
        if len(parts) >= 4 and parts[0] in {"botocore", "boto3"} and parts[1] == "data":
            return parts[2] in self.aws_services
        return True


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
    # imported inside functions (PyInstaller cannot see those): MLmodel is YAML
    hidden += ["yaml"]
    # the kubernetes target's client layer imports the official client lazily
    # (targets/kubernetes/client.py); its own imports PyInstaller follows from these
    hidden += ["kubernetes.client", "kubernetes.config", "kubernetes.watch"]

    datas: list[tuple[str, str]] = []
    # Resources are read with importlib.resources; keep the package layout.
    for path in (root / "resources").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.parent.relative_to(root)
            datas.append((str(path), str(rel)))
    # Files that are run or copied as files, not imported: the serving runtime (copied
    # into every image's build context), the conversion worker (run as a script,
    # possibly by another Python), and the runtime's requirements.
    # The worker's package finds app/model/modelfacts.py and app/model/convert/isolation.py by
    # relative imports from its folder (app/model/convert/worker/__main__.py): keep the layout.
    for pattern in (
        "app/__init__.py",
        "app/serving/*",
        "app/model/convert/*.py",
        "app/model/convert/worker/*.py",
        "app/model/modelfacts.py",
    ):
        for path in root.glob(pattern):
            if path.is_file():
                datas.append((str(path), str(path.parent.relative_to(root))))
    # Data files inside the app package, read with importlib.resources (the pickle
    # allow-list app/model/safety_allowlist.json): every file under app/ that is not Python.
    for path in sorted((root / "app").rglob("*")):
        if (
            path.is_file()
            and path.suffix not in (".py", ".pyc")
            and "__pycache__" not in path.parts
            and (str(path), str(path.parent.relative_to(root))) not in datas
        ):
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
            # skops files are read (intake) and loaded (the worker) with skops
            "skops",
            "uvicorn",
            # the wheelhouse is downloaded with the bundle's own pip (no Python needed)
            "pip",
            # openstack target: no PyInstaller hooks exist for these. collect_all also
            # copies each distribution's metadata, which they read at run time: pbr
            # versions (openstacksdk, keystoneauth1) and keystoneauth1's entry points
            # (auth plugins such as v3applicationcredential, found through stevedore);
            # openstacksdk's data (config/defaults.json, vendor profiles, schema.json)
            # and os-service-types' service-types.json.
            "openstack",
            "keystoneauth1",
            "os_service_types",
            "stevedore",
            "paramiko",
        ],
        excludes=[
            # PyTorch conversion runs in an external Python chosen with --python.
            "torch",
            "torchvision",
            "onnxscript",
            # CatBoost conversion too (catboost is 270 MB with plotly and matplotlib);
            # MLflow is only for runs:/ and models:/ URIs, from a Python that has it.
            "catboost",
            "plotly",
            "graphviz",
            "mlflow",
            # skops' model cards and tests (only skops.io is used) and Pillow, which
            # sklearn.datasets and onnx's reference image ops import optionally and the
            # test extra now installs (catboost, mlflow): about 30 MB with its libraries
            "skops.card",
            "skops.hub_utils",
            "skops.io.tests",
            "skops.card.tests",
            "prettytable",
            "wcwidth",
            "PIL",
            "tensorboard",
            "matplotlib",
            "IPython",
            "tkinter",
            # Test-only packages that share the build's virtualenv; PyInstaller would
            # follow optional imports into them. (boto3/botocore are bundled for the
            # sagemaker target, with only its services' data: keeps_data.)
            "pytest",
            "_pytest",
            "hypothesis",
            "schemathesis",
            "tritonclient",
            "gevent",
            "geventhttpclient",
            "moto",
            "aiohttp",
            "fastapi",
            "flask",
            "werkzeug",
            "importlinter",
            "grimp",
            "PyInstaller",
            # openstacksdk's own test suite (needs testtools/fixtures; never imported)
            "openstack.tests",
            # the offline manifest validator the tests use (with its bundled schemas of
            # every Kubernetes release)
            "kubernetes_validate",
            # the dashboard's charts use pyqtgraph's 2-D plots only (its contrib hook
            # brings the rest): no 3-D (PyOpenGL), notebooks, examples or GPU arrays
            "pyqtgraph.opengl",
            "pyqtgraph.jupyter",
            "pyqtgraph.examples",
            "cupy",
            "numba",
        ],
    )
