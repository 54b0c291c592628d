"""Where ModelShip's pickle allow-list (app/model/safety_allowlist.json) comes from.

Real fitted models of every kind ModelShip converts are pickled here, the way their
owners save them (pickle protocols 2 to 5, joblib plain and zlib-compressed, torch.save,
skops), and loaded back with an unpickler that records every global the load imports
(``find_class``: the ground truth, not a scan). The result is grouped by the library
that defines each global.

    python -m tests.security.allowlist_gen            # what the libraries pickle now
    python -m tests.security.allowlist_gen --missing  # ... and is not on the list
    python -m tests.security.allowlist_gen --write    # rewrite app/model/safety_allowlist.json

The list itself is kept by hand from this output: every entry was read and judged
inert when pickle builds it (called by REDUCE or NEWOBJ, then BUILD/``__setstate__``).
``tests/security/test_allowlist.py`` proves each entry resolves to exactly that
object, that its construction methods evaluate nothing, and (with :func:`samples`)
that the models below still need no trust.
"""

from __future__ import annotations

import io
import pickle
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOLS = (2, 3, 4, 5)


# ---------------------------------------------------------------------------
# recording loaders
# ---------------------------------------------------------------------------
class _Recorder(pickle.Unpickler):
    found: set[tuple[str, str]]

    def find_class(self, module: str, name: str) -> Any:
        from app.model.picklescan import py3_name

        self.found.add(py3_name(module, name))
        return super().find_class(module, name)


def _pickle_globals(data: bytes) -> set[tuple[str, str]]:
    u = _Recorder(io.BytesIO(data))
    u.found = set()
    u.load()
    return u.found


def _joblib_globals(obj: object, tmp: Path, compress: int) -> set[tuple[str, str]]:
    import joblib
    from joblib import numpy_pickle

    from app.model.picklescan import py3_name

    path = tmp / f"m-{compress}.joblib"
    joblib.dump(obj, path, compress=compress)
    found: set[tuple[str, str]] = set()
    base = numpy_pickle.NumpyUnpickler

    class Rec(base):  # type: ignore[misc, valid-type]
        def find_class(self, module: str, name: str) -> Any:
            found.add(py3_name(module, name))
            return super().find_class(module, name)

    numpy_pickle.NumpyUnpickler = Rec
    try:
        joblib.load(path)
    finally:
        numpy_pickle.NumpyUnpickler = base
    return found


def _torch_globals(obj: object, tmp: Path) -> set[tuple[str, str]]:
    import torch

    path = tmp / "m.pt"
    torch.save(obj, path)
    found: set[tuple[str, str]] = set()

    class Rec(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.add((module, name))
            return super().find_class(module, name)

    class Mod:
        Unpickler = Rec
        __name__ = "pickle"

        def __getattr__(self, attr: str) -> Any:
            return getattr(pickle, attr)

    torch.load(path, weights_only=False, pickle_module=Mod())
    # torch's own unpickler answers storage types (torch.FloatStorage) without find_class;
    # ModelShip's scan sees them in data.pkl, so they are collected from there too
    import zipfile

    from app.model.picklescan import scan_stream, split_ref

    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if member.endswith("/data.pkl"):
                found |= {split_ref(r) for r in scan_stream(zf.read(member)).imports}
    return found


def _skops_untrusted(obj: object) -> set[tuple[str, str]]:
    import skops.io as sio

    out = set()
    for ref in sio.get_untrusted_types(data=sio.dumps(obj)):
        module, _, name = ref.rpartition(".")
        out.add((module, name))
    return out


def globals_of(obj: object, tmp: Path, *, torch_save: bool = False, skops: bool = False) -> set:
    """Every (module, qualname) loading ``obj`` back imports, over every way it is saved."""
    found: set[tuple[str, str]] = set()
    for proto in PROTOCOLS:
        found |= _pickle_globals(pickle.dumps(obj, protocol=proto))
    for compress in (0, 3):
        found |= _joblib_globals(obj, tmp, compress)
    if torch_save:
        found |= _torch_globals(obj, tmp)
    if skops:
        try:
            found |= _skops_untrusted(obj)
        except Exception as exc:  # a type skops cannot save (e.g. Birch): pickled only
            if type(exc).__name__ != "UnsupportedTypeException":
                raise
    return found


# ---------------------------------------------------------------------------
# the models
# ---------------------------------------------------------------------------
def _data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(size=(n, 4))) + 0.1
    return x, (x[:, 0] > x[:, 1]).astype(int), x[:, 2] * 2.0 + x[:, 3]


_TEXT = np.array(["red apple", "green pear", "red pear", "blue plum"] * 20)
_SPECIAL_FIT: dict[str, Callable[..., object]] = {
    "ClassifierChain": lambda e, x, yc, yr: e.fit(x, np.c_[yc, 1 - yc]),
    "MultiOutputClassifier": lambda e, x, yc, yr: e.fit(x, np.c_[yc, 1 - yc]),
    "RegressorChain": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "MultiOutputRegressor": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "MultiTaskElasticNet": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "MultiTaskElasticNetCV": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "MultiTaskLasso": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "MultiTaskLassoCV": lambda e, x, yc, yr: e.fit(x, np.c_[yr, -yr]),
    "CountVectorizer": lambda e, x, yc, yr: e.fit(_TEXT),
    "TfidfVectorizer": lambda e, x, yc, yr: e.fit(_TEXT),
    "HashingVectorizer": lambda e, x, yc, yr: e.fit(_TEXT),
    "DictVectorizer": lambda e, x, yc, yr: e.fit([{"a": 1.0, "b": 2.0}, {"a": 3.0}]),
    "FeatureHasher": lambda e, x, yc, yr: e.fit([{"a": 1.0}]),
    "IsotonicRegression": lambda e, x, yc, yr: e.fit(x[:, 0], yr),
    "KernelCenterer": lambda e, x, yc, yr: e.fit(x @ x.T),
    "LabelBinarizer": lambda e, x, yc, yr: e.fit(yc),
    "LabelEncoder": lambda e, x, yc, yr: e.fit(np.array(["a", "b", "a"])),
    "MultiLabelBinarizer": lambda e, x, yc, yr: e.fit([["a", "b"], ["c"]]),
}


def _sklearn_estimators(quick: bool) -> Iterator[tuple[str, Callable[[], object]]]:
    """Every estimator sklearn.utils.all_estimators() lists, with sklearn's own test
    parameters where it has them (meta-estimators get a small inner estimator)."""
    from sklearn.base import RegressorMixin
    from sklearn.utils import all_estimators

    try:
        from sklearn.utils._test_common.instance_generator import _construct_instances
    except ImportError:  # older scikit-learn
        _construct_instances = None

    x, yc, yr = _data()
    chosen = all_estimators()
    if quick:
        keep = {
            "LogisticRegression", "RandomForestClassifier", "HistGradientBoostingClassifier",
            "StandardScaler", "OneHotEncoder", "SimpleImputer", "KMeans", "SVC",
            "DecisionTreeRegressor", "GradientBoostingRegressor", "KNeighborsClassifier",
        }  # fmt: skip
        chosen = [(n, c) for n, c in chosen if n in keep]
    for name, cls in chosen:
        if name in {"SparseCoder", "FrozenEstimator"}:  # need a dictionary / a fitted model
            continue

        def make(name: str = name, cls: type = cls) -> object:
            if _construct_instances is not None:
                est = next(iter(_construct_instances(cls)))
            else:
                est = cls()
            # a fixed seed: the same run collects the same names (OutputCodeClassifier's
            # random code book holds a _ConstantPredictor only for some seeds)
            params = est.get_params(deep=False)
            if "random_state" in params and params["random_state"] is None:
                est.set_params(random_state=0)
            special = _SPECIAL_FIT.get(name)
            if special is not None:
                return special(est, x, yc, yr)
            if isinstance(est, RegressorMixin):
                return est.fit(x, yr)
            try:
                return est.fit(x, yc)
            except TypeError:
                return est.fit(x)

        yield f"sklearn {name}", make


def _sklearn_composites() -> Iterator[tuple[str, Callable[[], object]]]:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.feature_selection import SelectKBest
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, yc, yr = _data()
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 80).astype(float),
            "income": rng.normal(50.0, 12.0, 80),
            "city": rng.choice(["a", "b", "c"], 80),
            "kind": pd.Categorical(rng.choice(["x", "y"], 80)),
        }
    )
    frame.loc[3, "age"] = np.nan

    def column_pipeline() -> object:
        ct = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "kind"]),
            ]
        )
        return Pipeline([("prep", ct), ("lr", LogisticRegression())]).fit(frame, yc)

    yield "sklearn Pipeline(ColumnTransformer) on a DataFrame", column_pipeline
    yield (
        "sklearn Pipeline(SelectKBest)",
        lambda: make_pipeline(StandardScaler(), SelectKBest(k=2), LogisticRegression()).fit(x, yc),
    )
    yield (
        "sklearn LogisticRegression on a DataFrame",
        lambda: LogisticRegression().fit(frame[["age", "income"]].fillna(0), yc),
    )
    yield (
        "sklearn HistGradientBoostingClassifier",
        lambda: HistGradientBoostingClassifier(
            max_iter=10, random_state=np.random.RandomState(1), early_stopping=True
        ).fit(x, yc),
    )
    yield (
        "sklearn HistGradientBoostingRegressor",
        lambda: HistGradientBoostingRegressor(max_iter=10, categorical_features=[0]).fit(
            np.c_[rng.integers(0, 3, 80), x], yr
        ),
    )
    yield (
        "sklearn RandomForest with a RandomState",
        lambda: RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0)).fit(
            x, yc
        ),
    )
    yield (
        "sklearn RandomForest with a Generator in an attribute",
        lambda: _with(
            RandomForestClassifier(n_estimators=3).fit(x, yc), rng_=np.random.default_rng(0)
        ),
    )


def _with(obj: object, **attrs: object) -> object:
    for k, v in attrs.items():
        setattr(obj, k, v)
    return obj


def _boosters() -> Iterator[tuple[str, Callable[[], object]]]:
    x, yc, yr = _data()

    def xgb_models() -> list:
        import xgboost as xgb

        c = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, yc)
        r = xgb.XGBRegressor(n_estimators=3, max_depth=2).fit(x, yr)
        return [c, r, c.get_booster()]

    def lgb_models() -> list:
        import lightgbm as lgb

        c = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, yc)
        r = lgb.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, yr)
        return [c, r, c.booster_]

    def cb_models() -> list:
        import catboost as cb

        c = cb.CatBoostClassifier(iterations=3, verbose=False, allow_writing_files=False)
        r = cb.CatBoostRegressor(iterations=3, verbose=False, allow_writing_files=False)
        return [c.fit(x, yc), r.fit(x, yr)]

    yield "xgboost wrappers and Booster", xgb_models
    yield "lightgbm wrappers and Booster", lgb_models
    yield "catboost models", cb_models


def _data_types() -> Iterator[tuple[str, Callable[[], object]]]:
    import pandas as pd
    import scipy.sparse as sp

    def numpy_values() -> list:
        scalars = [t(1) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                  np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
                                  np.float32, np.float64, np.longdouble, np.complex64,
                                  np.complex128)]  # fmt: skip
        arrays = [np.zeros(3, dtype=d) for d in ("f4", "f8", "i8", "u1", "?", "U3", "S3", "O",
                                                 "M8[s]", "m8[s]", "c16")]  # fmt: skip
        arrays.append(np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]))
        arrays.append(np.array(["a", None], dtype=object))
        rngs = [np.random.RandomState(0), np.random.default_rng(0)]
        rngs += [np.random.Generator(b(0)) for b in (np.random.PCG64, np.random.PCG64DXSM,
                                                     np.random.MT19937, np.random.Philox,
                                                     np.random.SFC64)]  # fmt: skip
        types = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                 np.uint32, np.uint64, np.float16, np.float32, np.float64, np.complex64,
                 np.complex128, np.str_, np.object_]  # fmt: skip
        return [*scalars, *arrays, *types, np.ma.masked_array([1, 2], mask=[0, 1]), *rngs,
                np.dtype("f8"), np.str_("a"), np.datetime64("2024-01-01"),
                np.timedelta64(1, "s")]  # fmt: skip

    def pandas_values() -> list:
        frame = pd.DataFrame(
            {
                "i": [1, 2], "f": [0.5, None], "s": ["a", "b"], "b": [True, False],
                "c": pd.Categorical(["x", "y"]), "t": pd.to_datetime(["2024-01-01", None]),
                "d": pd.to_timedelta([1, 2], unit="s"), "n": pd.array([1, None], dtype="Int64"),
            }
        )  # fmt: skip
        return [
            frame, frame["f"], frame["c"].cat.categories, pd.Categorical(["a", "b"]),
            pd.Index(["a", "b"]), pd.RangeIndex(3), pd.Index([1.5, 2.5]),
            pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]), pd.CategoricalIndex(["a", "b"]),
            pd.DatetimeIndex(["2024-01-01"]), pd.Timestamp("2024-01-01"), pd.Timedelta(1, "s"),
            pd.CategoricalDtype(["a", "b"]),
        ]  # fmt: skip

    def sparse_values() -> list:
        m = sp.random(4, 4, density=0.5, random_state=0, format="csr")
        out = []
        for fmt in ("csr", "csc", "coo", "dia", "lil", "dok", "bsr"):
            out.append(m.asformat(fmt))
            out.append(sp.csr_array(m).asformat(fmt))
        return out

    yield "numpy scalars, dtypes, arrays and random generators", numpy_values
    yield "pandas frames, series, categoricals and indexes", pandas_values
    yield "scipy.sparse matrices and arrays", sparse_values


_TORCH_MODULES = (
    "Linear(4, 2)", "Bilinear(2, 2, 1)", "Conv1d(1, 2, 3)", "Conv2d(1, 2, 3)", "Conv3d(1, 2, 3)",
    "ConvTranspose1d(1, 2, 3)", "ConvTranspose2d(1, 2, 3)", "BatchNorm1d(4)", "BatchNorm2d(4)",
    "LayerNorm(4)", "GroupNorm(2, 4)", "InstanceNorm1d(4)", "Dropout()", "Dropout2d()",
    "ReLU()", "ReLU6()", "LeakyReLU()", "PReLU()", "ELU()", "SELU()", "GELU()", "SiLU()",
    "Mish()", "Sigmoid()", "Tanh()", "Softmax(dim=1)", "LogSoftmax(dim=1)", "Softplus()",
    "Hardtanh()", "Identity()", "Flatten()", "Unflatten(1, (2, 2))", "Embedding(10, 4)",
    "EmbeddingBag(10, 4)", "LSTM(4, 3)", "GRU(4, 3)", "RNN(4, 3)", "MaxPool1d(2)",
    "MaxPool2d(2)", "AvgPool1d(2)", "AvgPool2d(2)", "AdaptiveAvgPool1d(1)",
    "AdaptiveAvgPool2d(1)", "AdaptiveMaxPool2d(1)", "MultiheadAttention(4, 2)",
    "TransformerEncoderLayer(4, 2, 8)", "Sequential(nn.Linear(4, 3), nn.ReLU())",
    "ModuleList([nn.Linear(2, 2)])", "ModuleDict({'a': nn.Linear(2, 2)})",
    "Upsample(scale_factor=2)", "ZeroPad2d(1)", "ConstantPad1d(1, 0.0)",
)  # fmt: skip


def _torch_modules() -> Iterator[tuple[str, Callable[[], object]]]:
    def make(expr: str) -> Callable[[], object]:
        def build() -> object:
            import torch
            from torch import nn

            m = eval("nn." + expr, {"nn": nn})  # our own constant list above
            m.eval()
            dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                      torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)  # fmt: skip
            tensors = [torch.zeros(2, dtype=d) for d in dtypes]
            return [m, m.state_dict(), tensors, dtypes, torch.device("cpu"), torch.Size([2])]

        return build

    for expr in _TORCH_MODULES:
        yield f"torch.nn.{expr}", make(expr)


def samples(quick: bool = False) -> Iterator[tuple[str, str, Callable[[], object]]]:
    """(kind, label, make): kind says how its owners save it ("sklearn" also skops,
    "torch" also torch.save)."""
    for label, make in _sklearn_estimators(quick):
        yield "sklearn", label, make
    for label, make in _sklearn_composites():
        yield "sklearn", label, make
    for label, make in _boosters():
        yield "plain", label, make
    for label, make in _data_types():
        yield "plain", label, make
    for label, make in _torch_modules() if not quick else list(_torch_modules())[:3]:
        yield "torch", label, make


def collect(quick: bool = False, tmp: Path | None = None) -> tuple[dict, list[str]]:
    """({(module, qualname): [labels]}, [labels that could not be built])."""
    import tempfile

    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        base = Path(tmp or d)
        for kind, label, make in samples(quick):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    obj = make()
                except Exception as exc:  # an estimator that needs data we do not make
                    failed.append(f"{label}: {type(exc).__name__}: {exc}"[:200])
                    continue
                try:
                    refs = globals_of(
                        obj, base, torch_save=kind == "torch", skops=kind == "sklearn"
                    )
                except Exception as exc:
                    failed.append(f"{label} (saving): {type(exc).__name__}: {exc}"[:200])
                    continue
            for ref in refs:
                found[ref].append(label)
    return dict(found), failed


# ---------------------------------------------------------------------------
# the review: what is left out, and why each kept group is inert
# ---------------------------------------------------------------------------
EXCLUDED = {
    "sklearn.metrics._scorer:_Scorer": "calling one calls a method whose name is in its state "
    "(getattr(estimator, response_method)) on any object: a gadget",
    "sklearn.metrics._scorer:_CurveScorer": "a _Scorer (above)",
    "sklearn.metrics._scorer:_PassthroughScorer": "calls a method of whatever object it holds",
    "sklearn.metrics._classification:balanced_accuracy_score": "only inside a scorer (above)",
    "sklearn.model_selection._classification_threshold:FixedThresholdClassifier": "predicts "
    "through a method named in its state (response_method), on any object it holds",
    "sklearn.model_selection._classification_threshold:TunedThresholdClassifierCV": "as "
    "FixedThresholdClassifier, and holds a scorer",
    "torch.storage:_load_from_bytes": "calls torch.load on bytes in the file (another pickle); "
    "only plain pickles of tensors use it, torch.save files do not",
}

# Legacy module paths that older library versions wrote and today's resolve to the very
# same object (numpy 1.x wrote numpy.core.*, which numpy 2 keeps as an alias package).
ALIASES = {
    "numpy.core.multiarray:_reconstruct": "numpy._core.multiarray:_reconstruct",
    "numpy.core.multiarray:scalar": "numpy._core.multiarray:scalar",
    "numpy.core.numeric:_frombuffer": "numpy._core.numeric:_frombuffer",
}

_LIBRARIES = {
    "sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
    "torch": "torch", "xgboost": "xgboost", "lightgbm": "lightgbm", "catboost": "catboost",
    "joblib": "joblib",
}  # fmt: skip

_REASONS = {
    ("sklearn", "class"): "scikit-learn's estimators, transformers, meta-estimators, trees, "
    "losses, links, splitters and the helper classes fitted models hold: __init__ only stores "
    "its parameters, __setstate__ (BaseEstimator's, or the Cython types' own) stores arrays "
    "and numbers.",
    ("sklearn", "function"): "functions kept as estimator parameters (a score function, the "
    "k-means step, check_array inside a partial: pure computation and validation on arrays) "
    "and Cython reconstructors (newObj(cls) is cls.__new__(cls)).",
    ("numpy", "class"): "ndarray, dtype, masked arrays, scalar types and the random bit "
    "generators: built from shapes, dtypes, bytes and generator state.",
    ("numpy", "function"): "numpy's array and scalar reconstructors (bytes to array), the "
    "random generators' constructors (they build only numpy's own bit generators) and "
    "numpy.mean (FeatureAgglomeration's pooling function: computation).",
    ("scipy", "class"): "sparse matrices and arrays (built from index and value arrays) and "
    "BSpline (SplineTransformer's splines: knots and coefficients).",
    ("scipy", "function"): "asarray (the array API shim a BSpline keeps): builds an array.",
    ("pandas", "class"): "frames, series, indexes, categoricals, extension arrays and block "
    "managers (the feature names and frames fitted models hold): built from arrays.",
    ("pandas", "function"): "pandas' own reconstructors (index, block, timestamp, timedelta, "
    "NDArrayBacked): they build those types from arrays and numbers.",
    ("torch", "class"): "torch.nn modules (__init__ makes parameters from sizes, __setstate__ "
    "updates the module's dict), typed storages, Size and device.",
    ("torch", "function"): "tensor and parameter reconstructors (from a storage torch.save "
    "keeps beside the pickle) and torch.nn.functional.relu (an activation kept as an "
    "attribute).",
    ("torch", "instance"): "dtypes: pickled by name (their __reduce__ returns the name).",
    ("xgboost", "class"): "XGBoost's scikit-learn wrappers and Booster: the model is XGBoost's "
    "own binary format, parsed by its C++ library.",
    ("lightgbm", "class"): "LightGBM's scikit-learn wrappers and Booster: the model is "
    "LightGBM's text format, parsed by its C++ library.",
    ("catboost", "class"): "CatBoost models: the model is CatBoost's own binary format.",
    ("joblib", "class"): "joblib's array wrapper: raw array bytes follow it in the file "
    "(object arrays go through the same checked unpickler).",
    ("python", "class"): "Python's own containers and data types, and functools.partial "
    "(HistGradientBoosting* with categorical features keeps partial(check_array, ...)): building "
    "one only stores a callable and arguments, and the callable can only be another listed "
    "name (or an object built from them), which REDUCE could call with any arguments already: "
    "a partial adds no capability beyond the list.",
    ("python", "function"): "copyreg._reconstructor (object.__new__ of a listed class) and "
    "_codecs.encode (protocol 2 writes bytes as a latin-1 string).",
}


def resolve(module: str, qualname: str) -> object:
    """What pickle's find_class returns for (module, qualname) in protocol 4."""
    import importlib

    with warnings.catch_warnings():  # numpy.core.* (legacy paths) warns that it moved
        warnings.simplefilter("ignore", DeprecationWarning)
        obj: object = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    return obj


def kind_of(obj: object) -> str:
    if isinstance(obj, type):
        return "class"
    return "function" if callable(obj) else "instance"


def build_list(found: dict) -> dict:
    """The allow-list document for ``found`` (less EXCLUDED, plus ALIASES)."""
    from importlib import import_module

    from app.model.picklescan import py3_name

    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, name in {py3_name(m, n) for m, n in found}:
        entry = f"{module}:{name}"
        if entry in EXCLUDED:
            continue
        top = module.split(".")[0]
        lib = top if top in _LIBRARIES else "python"
        groups[(lib, kind_of(resolve(module, name)))].append(entry)
    out = []
    for (lib, kind), names in sorted(groups.items()):
        dist = _LIBRARIES.get(lib)
        version = str(getattr(import_module(lib), "__version__", "")) if dist else ""
        version = version.split("+")[0] or sys.version.split()[0]
        out.append(
            {
                "source": f"{dist or 'Python'} {version}: {kind}es" if kind == "class"
                else f"{dist or 'Python'} {version}: {kind}s",
                "kind": kind,
                "reason": _REASONS[(lib, kind)],
                "names": sorted(names),
            }
        )  # fmt: skip
    out.append(
        {
            "source": "legacy module paths (numpy 1.x pickles)",
            "kind": "alias",
            "reason": "the same object as the listed name on the right, reached by the path "
            "older versions wrote",
            "names": dict(sorted(ALIASES.items())),
        }
    )
    return {
        "about": "Names ModelShip loads without asking: exact module:qualname pairs, "
        "collected by tests/security/allowlist_gen.py from pickles of real fitted models "
        "(every scikit-learn estimator, pipelines, XGBoost, LightGBM, CatBoost, torch.nn "
        "modules, numpy/scipy/pandas data; pickle protocols 2-5, joblib, torch.save, skops) "
        "and reviewed by hand (EXCLUDED there says what was left out and why). "
        "tests/security/test_allowlist.py checks each entry.",
        "groups": out,
    }


def main(argv: list[str]) -> int:
    import json

    from app.model.picklescan import allowlist

    found, failed = collect(quick="--quick" in argv)
    if "--write" in argv:
        target = Path(__file__).resolve().parents[2] / "app" / "model" / "safety_allowlist.json"
        target.write_text(json.dumps(build_list(found), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {target}")
    listed = allowlist()
    by_top: dict[str, list[str]] = defaultdict(list)
    for (module, name), labels in sorted(found.items()):
        if "--missing" in argv and (module, name) in listed:
            continue
        by_top[module.split(".")[0]].append(f"{module}:{name}  # {labels[0]} (+{len(labels) - 1})")
    for top, names in sorted(by_top.items()):
        print(f"== {top} ({len(names)})")
        for n in names:
            print("  ", n)
    for f in failed:
        print("not built:", f, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
