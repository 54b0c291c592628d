"""Hostile files that only name things from the supported libraries: none is "safe",
and converting one without trust leaves no marker.

(a) Classes that evaluate while they are built: ``pandas.core.computation.expr.Expr``
    parses and evaluates its expression in its constructor, with the caller's names. It
    is hidden in a fitted estimator and saved as a pickle, as joblib (plain and zlib) and
    as a .skops file (skops builds it with its constructor: ConstructorFromReduceNode).
(b) Dotted routes out of an allowed module: protocol 4 resolves ``STACK_GLOBAL``
    (``sklearn.base``, ``np.f2py.subprocess.Popen``) attribute by attribute. The routes
    are found here by walking the modules of the allow-list (module attributes that are
    modules) to subprocess.Popen, os.system, eval, ctypes.CDLL, pickle.Unpickler,
    tempfile.NamedTemporaryFile, ...; each is fed as a STACK_GLOBAL inside a fitted model.

Each file is first shown to be live (the ordinary loader runs the payload, in a child).
"""

from __future__ import annotations

import builtins
import ctypes
import importlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.model.convert import ConvertOptions, convert_model
from app.model.intake import inspect_model
from app.model.picklescan import DANGEROUS, SAFE, UntrustedModelError, allowlist, classify, ref_of

REPO = Path(__file__).resolve().parents[2]


def _fitted() -> object:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    return LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))


# ---------------------------------------------------------------------------
# (a) constructor-evaluating classes
# ---------------------------------------------------------------------------
class _Build:
    """Pickles as cls(*args): the shape a hostile file gives any class it names."""

    def __init__(self, cls: type, *args: object) -> None:
        self.cls, self.args = cls, args

    def __reduce__(self) -> tuple:
        return (self.cls, self.args)


def _expr(marker: Path) -> str:
    # the names of whoever called the unpickler: sys is there in pickle's, joblib's,
    # skops' and ModelShip's own frames
    return f"@sys.modules['os'].mkdir({str(marker)!r})"


# skops builds the Expr seven frames below a module-level sio.load (skops 0.16)
_SKOPS_LEVEL = 7


def _skops_with_expr(marker: Path, path: Path) -> None:
    """A real .skops file of a fitted model, with an Expr in an attribute."""
    import skops.io as sio

    class Holder:  # saved by skops as a constructor call; renamed to Expr below
        def __init__(self, *args: object) -> None:
            self.args = args

        def __reduce__(self) -> tuple:
            return (Holder, self.args)

    model = _fitted()
    model.note_ = Holder(_expr(marker), "numexpr", "pandas", None, _SKOPS_LEVEL)
    data = sio.dumps(model)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.namelist():
            raw = zin.read(item)
            if item == "schema.json":
                raw = raw.replace(
                    b'"__module__": "' + Holder.__module__.encode() + b'"',
                    b'"__module__": "pandas.core.computation.expr"',
                ).replace(b'"__class__": "Holder"', b'"__class__": "Expr"')
                assert b"pandas.core.computation.expr" in raw
            zout.writestr(item, raw)
    path.write_bytes(out.getvalue())


def _build_expr_corpus(d: Path, marker: Path) -> dict[str, Path]:
    import joblib
    from pandas.core.computation.expr import Expr

    out: dict[str, Path] = {}
    model = _fitted()
    model.note_ = _Build(Expr, _expr(marker))
    for proto in (2, 4, 5):
        out[f"expr-p{proto}.pkl"] = d / f"expr-p{proto}.pkl"
        out[f"expr-p{proto}.pkl"].write_bytes(pickle.dumps(model, protocol=proto))
    for name, compress in (("expr.joblib", 0), ("expr-zlib.joblib", ("zlib", 3))):
        out[name] = d / name
        joblib.dump(model, out[name], compress=compress)
    out["expr.skops"] = d / "expr.skops"
    _skops_with_expr(marker, out["expr.skops"])
    return out


_NAIVE = (
    "import sys, pickle\n"
    "p = sys.argv[1]\n"
    "try:\n"
    "    if p.endswith('.joblib'):\n"
    "        import joblib; joblib.load(p)\n"
    "    elif p.endswith('.skops'):\n"
    "        import skops.io as sio; sio.load(p, trusted=sio.get_untrusted_types(file=p))\n"
    "    else:\n"
    "        pickle.load(open(p, 'rb'))\n"
    "except Exception:\n"
    "    pass\n"
)


def _load_naively(path: Path) -> None:
    subprocess.run([sys.executable, "-c", _NAIVE, str(path)], cwd=REPO, check=True, timeout=120)


@pytest.fixture(scope="module")
def expr_corpus(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    d = tmp_path_factory.mktemp("expr")
    marker = d / "EXPR-RAN"
    return _build_expr_corpus(d, marker), marker


EXPR_CASES = ["expr-p2.pkl", "expr-p4.pkl", "expr-p5.pkl", "expr.joblib", "expr-zlib.joblib",
              "expr.skops"]  # fmt: skip


@pytest.mark.parametrize("case", EXPR_CASES)
def test_an_evaluating_constructor_is_not_safe_and_does_not_run(
    expr_corpus, case: str, tmp_path: Path, capsys
) -> None:
    files, marker = expr_corpus
    _load_naively(files[case])  # live: the ordinary loader runs it
    assert marker.is_dir(), f"{case} did not run its payload when loaded the ordinary way"
    marker.rmdir()

    art = inspect_model(files[case])
    assert art.safety is not None and art.safety.verdict != SAFE, art.safety
    assert "pandas.core.computation.expr.Expr" in [
        *art.safety.unknown,
        *art.safety.dangerous,
    ]
    with pytest.raises(UntrustedModelError):
        convert_model(files[case], tmp_path / "out.onnx", ConvertOptions(timeout_s=120))
    assert main(["convert", str(files[case]), "-o", str(tmp_path / "cli.onnx")]) == 3
    capsys.readouterr()
    assert not marker.exists()
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "cli.onnx").exists()


def test_skops_gets_nothing_beyond_its_defaults_and_the_list(expr_corpus, tmp_path) -> None:
    """The worker's second lock for skops, run as if the parent had approved the file:
    the approved list (app.model.picklescan.approved_globals without trust) holds no Expr,
    so skops refuses it and nothing runs."""
    import json

    from app.model.convert import WORKER
    from app.model.picklescan import approved_globals

    files, marker = expr_corpus
    art = inspect_model(files["expr.skops"])
    approved = approved_globals(art.safety, trust=False)
    assert approved is not None and "pandas.core.computation.expr.Expr" not in approved
    job = {
        "model_path": str(files["expr.skops"]),
        "kind": art.kind,
        "format": "skops",
        "onnx_path": str(tmp_path / "m.onnx"),
        "input_shape": None,
        "sample_csv": None,
        "rows": 5,
        "seed": 0,
        "expected_versions": {},
        "extra_paths": [],
        "allowed_globals": approved,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, str(WORKER), str(tmp_path)], timeout=300, cwd=tmp_path)
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["ok"] is False and res["error"] == "refused_global", res
    assert not marker.exists()


# ---------------------------------------------------------------------------
# (b) dotted routes out of the allowed modules
# ---------------------------------------------------------------------------
_TARGETS: dict[str, object] = {
    "subprocess.Popen": subprocess.Popen,
    "os.system": os.system,
    "os.mkdir": os.mkdir,
    "builtins.eval": builtins.eval,
    "builtins.exec": builtins.exec,
    "ctypes.CDLL": ctypes.CDLL,
    "pickle.Unpickler": pickle.Unpickler,
    "pickle.loads": pickle.loads,
    "tempfile.NamedTemporaryFile": tempfile.NamedTemporaryFile,
    "importlib.import_module": importlib.import_module,
    "shutil.rmtree": shutil.rmtree,
}


def find_routes(max_hops: int = 3) -> dict[str, list[tuple[str, str]]]:
    """target -> [(allowed module, dotted path)], by walking module attributes that are
    modules (breadth first, at most ``max_hops`` modules deep) from every module that
    the allow-list names."""
    found: dict[str, list[tuple[str, str]]] = {t: [] for t in _TARGETS}
    by_id = {id(obj): name for name, obj in _TARGETS.items()}
    for start in sorted({m for m, _ in allowlist()}):
        try:
            root = importlib.import_module(start)
        except ImportError:
            continue
        queue: list[tuple[types.ModuleType, str, int]] = [(root, "", 0)]
        seen = {id(root)}
        while queue:
            mod, path, hops = queue.pop(0)
            for attr, value in list(vars(mod).items()):
                if attr.startswith("__"):
                    continue
                dotted = f"{path}.{attr}" if path else attr
                if id(value) in by_id and path:  # a route through another module
                    found[by_id[id(value)]].append((start, dotted))
                if isinstance(value, types.ModuleType) and id(value) not in seen:
                    seen.add(id(value))
                    if hops < max_hops:
                        queue.append((value, dotted, hops + 1))
    return found


@pytest.fixture(scope="module")
def routes() -> dict[str, list[tuple[str, str]]]:
    import warnings

    with warnings.catch_warnings():  # deprecated aliases warn when looked at
        warnings.simplefilter("ignore", FutureWarning)
        return find_routes()


def test_the_walk_finds_routes_to_each_kind_of_target(routes) -> None:
    reached = {t for t, r in routes.items() if r}
    assert {"subprocess.Popen", "os.system", "builtins.eval", "pickle.Unpickler"} <= reached
    assert {"ctypes.CDLL", "tempfile.NamedTemporaryFile"} & reached
    assert sum(len(r) for r in routes.values()) > 100


def test_no_route_is_safe(routes) -> None:
    """Every route found is judged dangerous (the scan keeps the module/name split)."""
    judged = 0
    for target, found in routes.items():
        for module, dotted in found:
            ref = ref_of(module, dotted)
            verdict = classify(ref)[0]
            assert verdict == DANGEROUS, (target, ref, verdict)
            judged += 1
    assert judged > 100
    # the issue's own example, and a listed class's method as a route
    for ref in (
        "sklearn.base:np.f2py.subprocess.Popen",
        "pandas:DataFrame.eval",
        "pandas:DataFrame.query",
        "sklearn.linear_model._logistic:LogisticRegression.__init__",
    ):
        assert classify(ref)[0] == DANGEROUS, ref


class _Route:
    """Loading calls module's ``dotted`` attribute (resolved attribute by attribute)."""

    def __init__(self, module: str, dotted: str, args: tuple) -> None:
        self.module, self.dotted, self.args = module, dotted, args


class _RoutePickler(pickle._Pickler):  # type: ignore[name-defined, misc]
    """Python's pickler, writing each _Route as STACK_GLOBAL(module, dotted)(*args)."""

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _Route):
            self.save(obj.module)
            self.save(obj.dotted)
            self.write(pickle.STACK_GLOBAL)
            self.save(obj.args)
            self.write(pickle.REDUCE)
            return
        super().save(obj, save_persistent_id)


def _route_file(path: Path, module: str, dotted: str, args: tuple) -> Path:
    model = _fitted()
    model.note_ = _Route(module, dotted, args)
    buf = io.BytesIO()
    _RoutePickler(buf, protocol=4).dump(model)
    path.write_bytes(buf.getvalue())
    return path


def _payload_args(target: str, marker: Path) -> tuple:
    return {
        "subprocess.Popen": (["mkdir", str(marker)],),
        "os.system": (f"mkdir {marker}",),
        "os.mkdir": (str(marker),),
        "builtins.eval": (f"__import__('os').mkdir({str(marker)!r})",),
        "builtins.exec": (f"__import__('os').mkdir({str(marker)!r})",),
    }[target]


def _wait_for(marker: Path, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if marker.exists():
            return True
        time.sleep(0.05)
    return marker.exists()


@pytest.mark.parametrize(
    "target", ["subprocess.Popen", "os.system", "os.mkdir", "builtins.eval", "builtins.exec"]
)
def test_a_route_inside_a_model_does_not_run(routes, target: str, tmp_path: Path, capsys) -> None:
    """Routes to the target from different allowed modules, each inside a fitted model:
    the first two that are live in a fresh Python (loaded the ordinary way, the payload
    runs; some routes exist only once another import has run) are refused by inspect
    and by convert, and leave no marker."""
    picked: dict[str, str] = {}
    for module, dotted in routes[target]:
        picked.setdefault(module, dotted)
    assert picked, f"no route to {target}"
    live = 0
    for i, (module, dotted) in enumerate(list(picked.items())[:8]):
        marker = tmp_path / f"ROUTE-RAN-{i}"
        args = _payload_args(target, marker)
        path = _route_file(tmp_path / f"route-{i}.pkl", module, dotted, args)
        _load_naively(path)
        if not _wait_for(marker, 1.0):
            continue
        live += 1
        marker.rmdir()
        art_or_err: object
        try:
            art_or_err = inspect_model(path)
        except UntrustedModelError as exc:
            art_or_err = exc
        verdict = getattr(art_or_err, "safety", None) or getattr(art_or_err, "verdict", None)
        assert verdict is not None and verdict.verdict == DANGEROUS, (module, dotted, verdict)
        with pytest.raises(UntrustedModelError):
            convert_model(path, tmp_path / "out.onnx", ConvertOptions(timeout_s=120))
        assert main(["convert", str(path), "-o", str(tmp_path / "cli.onnx")]) == 3
        capsys.readouterr()
        assert not _wait_for(marker, 0.5), f"{module}:{dotted} ran"
        assert not (tmp_path / "out.onnx").exists()
        if live == 2:
            break
    assert live, f"none of the routes to {target} ran when loaded the ordinary way"


def test_the_worker_admits_only_the_exact_pair(tmp_path: Path) -> None:
    """find_class with a dotted name is not admitted by a listed shorter or longer name
    that happens to spell the same string."""
    from app.model.convert.worker.common import WorkerError
    from app.model.convert.worker.loading import _guarded_pickle, guard

    check = guard(["sklearn.linear_model._logistic.LogisticRegression", "sklearn.base:np.f2py"])
    check("sklearn.linear_model._logistic", "LogisticRegression")  # admitted
    check("sklearn.base", "np.f2py")
    for module, name in (
        ("sklearn.linear_model", "_logistic.LogisticRegression"),
        ("sklearn", "linear_model._logistic.LogisticRegression"),
        ("sklearn.base.np", "f2py"),
        ("sklearn.base", "np.f2py.subprocess.Popen"),
        ("sklearn.base", "np"),
    ):
        with pytest.raises(WorkerError):
            check(module, name)
    # and through a real unpickler: the scan's string for this route is on the list,
    # spelled as one dotted name, but the pair the file asks for is not
    marker = tmp_path / "GUARD-RAN"
    buf = io.BytesIO()
    _RoutePickler(buf, protocol=4).dump(_Route("sklearn.base", "os.mkdir", (str(marker),)))
    for refs in (["sklearn.base.os.mkdir"], ["sklearn.base:os"], ["sklearn:base.os.mkdir"]):
        with pytest.raises(WorkerError):
            _guarded_pickle(guard(refs)).Unpickler(io.BytesIO(buf.getvalue())).load()
    assert not marker.exists()
    # the exact pair is what it admits (shown with a harmless target)
    buf = io.BytesIO()
    _RoutePickler(buf, protocol=4).dump(_Route("sklearn.base", "np.zeros", (2,)))
    buf.seek(0)
    loaded = _guarded_pickle(guard(["sklearn.base:np.zeros"])).Unpickler(buf).load()
    assert list(loaded) == [0.0, 0.0]
