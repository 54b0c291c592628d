"""MLflow model directories: read ``MLmodel`` as YAML, never import MLflow for a folder.

An MLflow model is a folder with an ``MLmodel`` file that names its flavors (how each
library saved it), the model's signature (column names and types), an input example
and the recorded requirements. ModelShip picks the flavor it can convert, finds the
model file inside, and hands those to :mod:`app.model.intake`, which reads the file itself as
it reads any other (pickles are scanned, skops files checked, nothing runs).

``runs:/`` and ``models:/`` URIs need an MLflow tracking server: they are downloaded
with MLflow (imported only then) when ``MLFLOW_TRACKING_URI`` is set.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import ModelError, UnsupportedModelError
from app.model.files import check_regular, read_small

MLMODEL = "MLmodel"
URI_SCHEMES = ("runs:/", "models:/")
# the flavors ModelShip converts, in the order it prefers them when a folder has several
FLAVORS = ("sklearn", "xgboost", "lightgbm", "catboost", "pytorch", "onnx")
SUPPORTED_FLAVORS_TEXT = "sklearn, xgboost, lightgbm, catboost, pytorch and onnx"
# MLflow column types -> the dtypes ModelArtifact.inputs uses
_COLUMN_TYPES = {
    "double": "float",
    "float": "float",
    "long": "float",
    "integer": "float",
    "boolean": "float",
    "string": "str",
}


@dataclass
class MlflowModel:
    """What an MLflow model folder says about the model in it."""

    folder: Path
    flavor: str
    model_file: Path
    uri: str | None = None
    mlflow_version: str = ""
    python_version: str = ""
    model_class: str | None = None
    serialization_format: str | None = None
    # the signature's inputs: [{"name", "dtype", "mlflow_type"}] for columns, or a
    # single tensor {"name", "dtype", "shape"} (shape with -1 for any size)
    columns: list[dict[str, Any]] = field(default_factory=list)
    tensor: dict[str, Any] | None = None
    # the input example: {"columns": [...], "rows": [[...]]} for tables, or
    # {"array": nested list} for tensors
    example: dict[str, Any] | None = None
    requirements: dict[str, str] = field(default_factory=dict)
    flavors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "flavor": self.flavor,
            "model_file": str(self.model_file),
            "uri": self.uri,
            "mlflow_version": self.mlflow_version,
            "python_version": self.python_version,
            "model_class": self.model_class,
            "serialization_format": self.serialization_format,
            "columns": self.columns,
            "tensor": self.tensor,
            "example": self.example,
            "requirements": dict(self.requirements),
            "flavors": list(self.flavors),
        }


def is_uri(value: str | Path) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(URI_SCHEMES)


def is_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / MLMODEL).is_file()


_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


def check_uri(uri: str) -> str:
    """A ``runs:/RUN_ID/PATH`` or ``models:/NAME/VERSION|STAGE``, ``models:/NAME@ALIAS``
    or ``models:/MODEL_ID`` URI as given; ``ValueError`` says what is wrong with it."""
    scheme, _, rest = uri.partition(":/")
    scheme = scheme.lower()
    if rest.startswith("/"):
        raise ValueError(
            f"{uri!r}: a URI with a host ({scheme}://...) is not supported; "
            f"give {scheme}:/... with the tracking server in MLFLOW_TRACKING_URI"
        )
    parts = rest.split("/")
    if any(c.isspace() for c in uri) or not all(parts) or any(p in (".", "..") for p in parts):
        raise ValueError(f"{uri!r} is not an MLflow URI (empty, '..' or spaced parts)")
    if not all(_SEGMENT.match(p) for p in parts):
        raise ValueError(f"{uri!r} is not an MLflow URI (odd characters in a part)")
    if scheme == "runs" and len(parts) < 2:
        raise ValueError(f"{uri!r} names no logged model: give runs:/RUN_ID/ARTIFACT_PATH")
    if scheme == "models" and len(parts) > 2:
        raise ValueError(f"{uri!r} is not models:/NAME/VERSION, models:/NAME@ALIAS or models:/ID")
    return f"{scheme}:/{rest}"


def resolve_uri(uri: str) -> str:
    """The URI pinned to what it points to now: a registered model's stage, alias or
    'latest' becomes its version number (``models:/churn/Production`` ->
    ``models:/churn/3``), so the same download is found again and a re-run is of the
    same model. ``runs:/`` URIs and version numbers are already fixed."""
    scheme, _, rest = uri.partition(":/")
    if scheme != "models":
        return uri
    parts = rest.split("/")
    if len(parts) == 2 and parts[1].isdigit():
        return uri
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if len(parts) == 1 and "@" in parts[0]:
        name, alias = parts[0].split("@", 1)
        return f"models:/{name}/{client.get_model_version_by_alias(name, alias).version}"
    if len(parts) == 1:  # models:/m-... (an MLflow 3 logged model id): fixed
        return uri
    name, which = parts
    if which.lower() == "latest":
        versions = client.search_model_versions(f"name='{name}'")
        if not versions:
            raise LookupError(f"registered model {name!r} has no versions")
        return f"models:/{name}/{max(int(v.version) for v in versions)}"
    latest = client.get_latest_versions(name, stages=[which])
    if not latest:
        raise LookupError(f"registered model {name!r} has no version in stage {which!r}")
    return f"models:/{name}/{latest[0].version}"


# the URIs pinned so far in this deploy: (tracking server, URI as given) -> pinned URI
_pins: contextvars.ContextVar[dict[tuple[str, str], str] | None] = contextvars.ContextVar(
    "modelship_mlflow_pins", default=None
)


@contextlib.contextmanager
def pinned_uris() -> Iterator[None]:
    """Within it (one deploy), a URI is resolved against the tracking server once: every
    later download of it is of the version it was pinned to then, found in the cache,
    without asking the server again (nor reading another version when a stage or alias
    moves on meanwhile). Nested uses share the outer one's pins."""
    if _pins.get() is not None:
        yield
        return
    token = _pins.set({})
    try:
        yield
    finally:
        _pins.reset(token)


def _pinned(uri: str, tracking: str) -> str:
    pins = _pins.get()
    if pins is None:
        return resolve_uri(uri)
    key = (tracking, uri)
    if key not in pins:
        pins[key] = resolve_uri(uri)
    return pins[key]


def download(uri: str) -> Path:
    """A ``runs:/`` or ``models:/`` URI, downloaded once into ModelShip's cache.

    The cache folder is keyed by the tracking server and the URI pinned to its run or
    version (:func:`resolve_uri`): a run's artifacts and a version's files do not change,
    so a finished download is used again, and a stage or alias that moved on is a new
    download of the version it points to now.
    """
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not tracking:
        raise ModelError(
            f"{uri} is an MLflow URI, but no MLflow tracking server is configured.",
            "Set MLFLOW_TRACKING_URI to your tracking server (e.g. http://mlflow.example:5000), "
            "or download the model folder and give its path.",
        )
    try:
        uri = check_uri(uri.strip())
    except ValueError as exc:
        raise ModelError(
            str(exc), "Give runs:/RUN_ID/model or models:/NAME/VERSION (or /Production)."
        ) from None
    try:
        import mlflow.artifacts  # the optional SDK, only for URIs
    except ImportError:
        raise ModelError(
            f"{uri} is an MLflow URI, and downloading it needs MLflow, which is not installed.",
            "Install it (pip install mlflow-skinny), or download the model folder and give "
            "its path.",
        ) from None
    from app.paths import cache_dir

    try:
        pinned = _pinned(uri, tracking)
    except Exception as exc:
        raise _unreachable(uri, tracking, exc) from None
    key = hashlib.sha256(f"{tracking}\n{pinned}".encode()).hexdigest()[:16]
    root = cache_dir() / "mlflow"
    dest = root / key
    done = dest / ".modelship-downloaded"
    if done.is_file():
        local = dest / done.read_text(encoding="utf-8").strip()
        if is_model_dir(local):
            return local
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        try:
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=str(tmp)))
        except Exception as exc:
            raise _unreachable(uri, tracking, exc) from None
        if not is_model_dir(got):
            raise ModelError(
                f"{uri} is not an MLflow model (it has no MLmodel file).",
                "Give the URI of the logged model itself, e.g. runs:/RUN_ID/model.",
            )
        rel = got.resolve().relative_to(tmp.resolve()).as_posix()
        (tmp / done.name).write_text(rel + "\n", encoding="utf-8")
        shutil.rmtree(dest, ignore_errors=True)  # an unfinished older download
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / rel


def _unreachable(uri: str, tracking: str, exc: Exception) -> ModelError:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return ModelError(
        f"{uri} could not be downloaded from the MLflow tracking server {tracking} "
        f"({type(exc).__name__}: {text}).",
        "Check that MLFLOW_TRACKING_URI is right and the server answers, and the run id or "
        "the model name and version.",
    )


def read_model_dir(folder: Path, uri: str | None = None) -> MlflowModel:
    """Read ``MLmodel`` and what it points to; pick the flavor ModelShip converts."""
    doc = _read_yaml(folder / MLMODEL, folder)
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise ModelError(
            f"{folder.name}/MLmodel names no flavors; it is not a complete MLflow model.",
            "Log or save the model again with mlflow.<flavor>.save_model.",
        )
    usable = [f for f in FLAVORS if isinstance(flavors.get(f), dict)]
    if not usable:
        names = ", ".join(sorted(flavors))
        raise UnsupportedModelError(
            f"{folder.name} is an MLflow model with the flavor(s) {names}, which ModelShip "
            "cannot convert.",
            f"ModelShip converts MLflow models of the flavors {SUPPORTED_FLAVORS_TEXT}: "
            "log the model with one of those (e.g. mlflow.sklearn.log_model), not only as a "
            "python_function.",
        )
    flavor = usable[0]
    conf = flavors[flavor]
    model = MlflowModel(
        folder=folder,
        flavor=flavor,
        model_file=_model_file(folder, flavor, conf),
        uri=uri,
        mlflow_version=str(doc.get("mlflow_version") or ""),
        python_version=str((flavors.get("python_function") or {}).get("python_version") or ""),
        model_class=conf.get("model_class"),
        serialization_format=conf.get("serialization_format"),
        flavors=list(flavors),
    )
    _read_signature(model, doc.get("signature"))
    model.example = _read_example(folder, doc.get("saved_input_example_info"))
    model.requirements = _read_requirements(folder)
    return model


def _read_yaml(path: Path, folder: Path) -> Any:
    try:
        import yaml
    except ImportError:  # PyYAML is a dependency; this only guards a broken install
        raise ModelError(
            "Reading MLflow models needs PyYAML, which is missing.",
            "Reinstall ModelShip (pip install modelship) or run: pip install pyyaml",
        ) from None
    try:
        return yaml.safe_load(read_small(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(
            f"{folder.name}/MLmodel cannot be read ({type(exc).__name__}).",
            "Copy the MLflow model folder again; MLmodel did not arrive whole.",
        ) from None


def _model_file(folder: Path, flavor: str, conf: dict) -> Path:
    if flavor == "sklearn":
        name = conf.get("pickled_model") or "model.pkl"
    elif flavor == "pytorch":
        data = folder / str(conf.get("model_data") or "data")
        for candidate in ("model.pt2", "model.pth"):
            if (data / candidate).is_file():
                return data / candidate
        raise ModelError(
            f"{folder.name} is an MLflow PyTorch model without its model file "
            f"({data.name}/model.pt2 or {data.name}/model.pth).",
            "Copy the whole MLflow model folder again.",
        )
    else:
        name = conf.get("data") or ""
        if flavor == "xgboost" and conf.get("model_format") == "xgb":
            raise UnsupportedModelError(
                f"{folder.name} holds an XGBoost model in the old binary format (.xgb), which "
                "current XGBoost no longer reads.",
                "Log it again with mlflow.xgboost.log_model(..., model_format='json') or 'ubj'.",
            )
    path = folder / str(name)
    if name and path.exists() and not path.is_file():
        check_regular(path)  # a FIFO, device or socket: says which
    if not name or not path.is_file():
        raise ModelError(
            f"{folder.name} is an MLflow {flavor} model, but its model file "
            f"({name or 'not named in MLmodel'}) is missing.",
            "Copy the whole MLflow model folder again.",
        )
    return path


def _read_signature(model: MlflowModel, sig: Any) -> None:
    if not isinstance(sig, dict) or not sig.get("inputs"):
        return
    raw = sig["inputs"]
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return
    if not isinstance(specs, list):
        return
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        ts = specs[0].get("tensor-spec") or {}
        model.tensor = {
            "name": specs[0].get("name") or "input",
            "dtype": str(ts.get("dtype") or "float32"),
            "shape": [int(d) for d in ts.get("shape") or []],
        }
        return
    for i, s in enumerate(specs):
        if not isinstance(s, dict) or s.get("type") == "tensor":
            return
        mtype = str(s.get("type") or "")
        model.columns.append(
            {
                "name": str(s.get("name") or f"f{i}"),
                "dtype": _COLUMN_TYPES.get(mtype, "float"),
                "mlflow_type": mtype,
            }
        )


def _read_example(folder: Path, info: Any) -> dict[str, Any] | None:
    """The saved input example as rows (tables) or an array (tensors); None if unreadable."""
    if not isinstance(info, dict) or not info.get("artifact_path"):
        return None
    path = folder / str(info["artifact_path"])
    try:
        doc = json.loads(read_small(path).decode("utf-8"))
    except (OSError, ModelError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    kind = info.get("type")
    if kind == "dataframe":
        if isinstance(doc, dict) and "dataframe_split" in doc:
            doc = doc["dataframe_split"]
        if isinstance(doc, dict) and "columns" in doc and "data" in doc:
            return {"columns": [str(c) for c in doc["columns"]], "rows": list(doc["data"])}
        if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc):  # records
            columns = [str(c) for c in doc[0]]
            return {"columns": columns, "rows": [[r.get(c) for c in columns] for r in doc]}
        return None
    if kind == "ndarray":
        if isinstance(doc, dict) and len(doc) == 1:
            doc = next(iter(doc.values()))  # {"inputs": [...]} or one named tensor
        if isinstance(doc, list):
            return {"array": doc}
    return None


_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def _read_requirements(folder: Path) -> dict[str, str]:
    """``name==version`` pins from requirements.txt (local labels such as +cpu dropped)."""
    path = folder / "requirements.txt"
    out: dict[str, str] = {}
    try:
        lines = read_small(path).decode("utf-8").splitlines()
    except (OSError, ModelError, UnicodeDecodeError):
        return out
    for line in lines:
        m = _PIN.match(line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2).split("+", 1)[0]
    return out
