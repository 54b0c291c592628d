"""Loading the model: the guarded unpickler (the second lock after app.model.picklescan) and
each format's own loader."""

from __future__ import annotations

import sys
import traceback
import warnings

from ...modelfacts import catboost_classifies, catboost_loss, py3_name
from .common import WorkerError, act, first_line, need

# next steps as data (app.nextstep): the parent says them in each front end's words
_THROUGH_MODELSHIP = [
    "Convert it through ModelShip (",
    act("run_command", command="convert"),
    "), which checks it first.",
]
_INSPECT_AGAIN = [
    "Inspect the file again (",
    act("run_command", command="inspect", arg="MODEL"),
    "); do not use it if it changed.",
]


def guard(allowed: list[str]) -> object:
    """A ``find_class`` that admits only the globals the parent scanned and approved.

    The parent refuses dangerous or unknown files before starting this process (unless
    the user trusts them); this is the second lock: whatever the file says now, it
    can import nothing that was not on the list the decision was made on.
    """
    # exact (module, name) pairs, as app.model.picklescan.ref_of writes them ("mod.name", or
    # "mod:a.b" for a dotted name): ("sklearn.base", "np.f2py.subprocess.Popen") is not
    # ("sklearn.base.np.f2py.subprocess", "Popen"), and a listed prefix admits nothing
    ok: set[tuple[str, str]] = set()
    for ref in allowed:
        if ":" in ref:
            mod, _, nm = ref.partition(":")
        else:
            mod, _, nm = ref.rpartition(".")
        ok.add((mod, nm))
        ok.add(py3_name(mod, nm))

    def check(module: str, name: str) -> None:
        if (module, name) in ok or py3_name(module, name) in ok:
            return
        raise WorkerError(
            "refused_global",
            f"The model file wants to import {module}.{name}, which was not in it when it "
            "was checked; nothing was loaded.",
            _INSPECT_AGAIN,
        )

    return check


def _guarded_pickle(check: object) -> object:
    """A stand-in for the pickle module whose Unpickler and load are guarded."""
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            check(module, name)
            return super().find_class(module, name)

    class Module:
        def __getattr__(self, attr: str) -> object:
            return getattr(pickle, attr)

    mod = Module()
    mod.Unpickler = Unpickler  # type: ignore[attr-defined]
    mod.load = lambda fh, **kw: Unpickler(fh, **kw).load()  # type: ignore[attr-defined]
    mod.loads = lambda data, **kw: Unpickler(__import__("io").BytesIO(data), **kw).load()  # type: ignore[attr-defined]
    return mod


def _guarded_joblib_load(path: str, check: object) -> object:
    """joblib.load, with every global (also inside object arrays) through ``check``."""
    import joblib
    from joblib import numpy_pickle

    base = numpy_pickle.NumpyUnpickler

    class Guarded(base):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> object:
            check(module, name)
            return super().find_class(module, name)

    numpy_pickle.NumpyUnpickler = Guarded
    # joblib before 1.5 reads object arrays with a bare pickle.load: guard that too
    numpy_pickle.pickle = _guarded_pickle(check)
    try:
        return joblib.load(path)
    finally:
        numpy_pickle.NumpyUnpickler = base


def load_model(job: dict) -> object:
    # nothing is added to sys.path: code beside the model (a planted xgboost.py) never runs
    path, fmt = job["model_path"], job["format"]
    allowed = job.get("allowed_globals")
    check = guard(allowed) if allowed is not None else None
    try:
        if fmt in ("pickle", "joblib"):
            if check is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    _THROUGH_MODELSHIP,
                )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if fmt == "joblib":
                    model = _guarded_joblib_load(path, check)
                else:
                    with open(path, "rb") as fh:
                        model = _guarded_pickle(check).Unpickler(fh).load()
            for w in caught:
                if type(w.message).__name__ == "InconsistentVersionWarning":
                    m = w.message
                    raise WorkerError(
                        "version_mismatch",
                        f"The model was saved with scikit-learn {m.original_sklearn_version}, "
                        f"but {sys.executable} has scikit-learn {m.current_sklearn_version}.",
                        [
                            act(
                                "use_python",
                                verb="Convert with",
                                link="pointing at",
                                who=f"a Python that has scikit-learn {m.original_sklearn_version}",
                            ),
                            ".",
                        ],
                    )
            return model
        if fmt == "skops":
            sio = need("skops.io", "skops")
            if allowed is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    _THROUGH_MODELSHIP,
                )
            try:
                # skops' own defaults plus the approved types: without --trust only those
                # on ModelShip's exact list (app.model.picklescan.approved_globals); skops
                # refuses any other type it finds
                return sio.load(path, trusted=[r for r in allowed if ":" not in r])
            except Exception as exc:
                if type(exc).__name__ == "UntrustedTypesFoundException":
                    raise WorkerError(
                        "refused_global",
                        f"The skops file names types that were not in it when it was checked "
                        f"({first_line(exc)}); nothing was loaded.",
                        _INSPECT_AGAIN,
                    ) from None
                raise
        if fmt == "catboost-cbm":
            return load_catboost(path)
        if fmt == "torch-export":
            torch = need("torch", "torch")
            return torch.export.load(path)
        if fmt in ("xgboost-json", "xgboost-ubj"):
            xgb = need("xgboost", "xgboost")
            booster = xgb.Booster()
            booster.load_model(path)
            return booster
        if fmt == "lightgbm-txt":
            lgb = need("lightgbm", "lightgbm")
            return lgb.Booster(model_file=path)
        if fmt in ("torchscript", "torch-module"):
            torch = need("torch", "torch")
            if fmt == "torchscript":
                return torch.jit.load(path, map_location="cpu").eval()
            if check is None:
                raise WorkerError(
                    "refused_global",
                    "The model was not checked before loading; nothing was loaded.",
                    _THROUGH_MODELSHIP,
                )
            model = torch.load(
                path, map_location="cpu", weights_only=False, pickle_module=_guarded_pickle(check)
            )
            if not isinstance(model, torch.nn.Module):
                raise WorkerError(
                    "unsupported",
                    f"The file holds a {type(model).__name__}, not a torch.nn.Module.",
                    "Save the whole module with torch.save(model, path).",
                )
            return model.eval()
    except WorkerError:
        raise
    except (ModuleNotFoundError, AttributeError) as exc:
        raise WorkerError(
            "missing_class",
            f"The model refers to code that {sys.executable} cannot import ({exc}).",
            [
                act(
                    "use_python",
                    verb="Use",
                    link="with",
                    who="the Python of the environment the model was trained in",
                ),
                ", where the module that defines its class is installed (pip install it there).",
            ],
            details=traceback.format_exc(),
        ) from None
    except Exception as exc:
        raise WorkerError(
            "load_failed",
            f"The model could not be loaded ({type(exc).__name__}: {exc}).",
            [
                "Check that the file is complete, or ",
                act(
                    "use_python",
                    verb="use",
                    link="with",
                    who="the environment the model was made in",
                ),
                ".",
            ],
            details=traceback.format_exc(),
        ) from None
    raise WorkerError("unsupported", f"Unknown model format {fmt}.", "")


def load_catboost(path: str) -> object:
    """A .cbm file as CatBoostClassifier or CatBoostRegressor (by its loss function)."""
    cb = need("catboost", "catboost")
    model = cb.CatBoost()
    model.load_model(path, format="cbm")
    loss = catboost_loss(model.get_all_params())
    cls = cb.CatBoostClassifier if catboost_classifies(loss) else cb.CatBoostRegressor
    typed = cls()
    typed.load_model(path, format="cbm")
    return typed
