"""Facts about model files that intake and the conversion worker must agree on.

Intake (:mod:`app.model.intake`, and :mod:`app.model.picklescan`) reads a model file without
loading it; the conversion worker (:mod:`app.model.convert.worker`) loads it in another
process, often under another Python (``--python``). Both name columns, tell
classification from regression and map old pickle names the same way, from this one
module, so the two cannot drift apart.

Standard library only, and nothing newer than Python 3.8: the worker imports this
file from its folder under the user's interpreter, with ``app`` not importable there
(see ``app/model/convert/worker/__main__.py``, which maps this folder under a private name).
"""

from __future__ import annotations

# CatBoost loss functions that make a classifier (any other loss: a regressor)
CATBOOST_CLASSIFICATION = frozenset({"Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll"})
# LightGBM objectives that classify (XGBoost's say so by their prefix)
LIGHTGBM_CLASSIFICATION = ("binary", "multiclass", "multiclassova")
XGBOOST_CLASSIFICATION_PREFIXES = ("binary:", "multi:")
# and those that regress
LIGHTGBM_REGRESSION = (
    "regression",
    "regression_l1",
    "huber",
    "poisson",
    "quantile",
    "tweedie",
    "gamma",
    "fair",
    "mape",
)
XGBOOST_REGRESSION_PREFIXES = ("reg:", "count:", "survival:")


def objective_task(objective: str) -> str | None:
    """classification or regression by an XGBoost or LightGBM objective; None if unknown."""
    if (
        objective.startswith(XGBOOST_CLASSIFICATION_PREFIXES)
        or objective in LIGHTGBM_CLASSIFICATION
    ):
        return "classification"
    if objective.startswith(XGBOOST_REGRESSION_PREFIXES) or objective in LIGHTGBM_REGRESSION:
        return "regression"
    return None


def unnamed(i: int) -> str:
    """What ModelShip calls column ``i`` of a model fitted without column names."""
    return f"f{i}"


def column_names(given: list, n: int) -> list[str]:
    """The names of ``n`` columns: those the model gives, ``f<i>`` for the rest."""
    return [str(given[i]) if i < len(given) else unnamed(i) for i in range(n)]


def lightgbm_names(names: list[str]) -> list[str]:
    """LightGBM's feature names, with its defaults (Column_0, ...) as f0, f1, ...

    A model trained on a DataFrame keeps the DataFrame's column names; one trained on
    an array gets Column_0, Column_1, ... which ModelShip calls f0, f1, ... as for
    every model fitted without names.
    """
    if all(n == f"Column_{i}" for i, n in enumerate(names)):
        return [unnamed(i) for i in range(len(names))]
    return [str(n) for n in names]


def catboost_names(names: list) -> list[str]:
    """CatBoost's feature names; a missing or numeric name (its default) as ``f<i>``."""
    out = [str(n) for n in names]
    return [n if n and not n.isdigit() else unnamed(i) for i, n in enumerate(out)]


def catboost_loss(params: dict) -> str:
    """The loss function of a CatBoost model (``get_all_params()``), without options."""
    return str(params.get("loss_function", "")).split(":")[0]


def catboost_classifies(loss: str) -> bool:
    """Whether a CatBoost model with this loss function is a classifier."""
    return loss.split(":")[0] in CATBOOST_CLASSIFICATION


def py3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a protocol 0-2 reference (``copy_reg`` -> ``copyreg``), as
    :class:`pickle.Unpickler` maps it before importing."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name
