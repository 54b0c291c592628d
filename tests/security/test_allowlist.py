"""The pickle allow-list (app/model/safety_allowlist.json): where each entry came from, that
each is exactly the object it names, and that building it evaluates nothing.

The list is data, kept by hand from what tests/security/allowlist_gen.py collects out of
real pickles of every supported model kind. These tests hold it to that:

* every entry resolves, with the library installed, to an object whose ``__module__``
  and ``__qualname__`` are exactly that name (no re-export, no route through another
  module), of the kind its group says (class, reconstructor function, or an instance
  pickled by name); legacy paths are the very same object as their listed target;
* the list is what the libraries pickle today: everything collected is listed (or left
  out on purpose, with a reason), and nothing is listed that no real pickle uses;
* the methods pickle calls while building a listed object (``__new__``, ``__init__``,
  ``__setstate__``, ``__setattr__``, ``__call__``; the function itself for functions)
  contain, where they have Python source, no eval/exec/compile/imports/open/os/
  subprocess/pandas eval or query, and no getattr with a computed name.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
import types
from importlib import resources

import pytest

from app.model.picklescan import SAFE, allowlist, classify, py3_name
from tests.security import allowlist_gen as gen

DOC = json.loads(resources.files("app.model").joinpath("safety_allowlist.json").read_text())
GROUPS = DOC["groups"]
ENTRIES = [(g["kind"], e) for g in GROUPS for e in g["names"]]
ALIASES = {a: c for g in GROUPS if g["kind"] == "alias" for a, c in g["names"].items()}


def _split(entry: str) -> tuple[str, str]:
    module, sep, qualname = entry.partition(":")
    assert sep and module and qualname, f"{entry} is not module:qualname"
    return module, qualname


def test_the_document_says_where_each_group_came_from() -> None:
    assert "allowlist_gen" in DOC["about"]
    seen: set[str] = set()
    for group in GROUPS:
        assert group["kind"] in {"class", "function", "instance", "alias"}, group["source"]
        assert group["source"] and len(group["reason"]) > 20, group
        for entry in group["names"]:
            assert entry not in seen, f"{entry} is listed twice"
            seen.add(entry)
    assert len(allowlist()) == len(seen)


@pytest.mark.parametrize(("kind", "entry"), ENTRIES, ids=[e for _, e in ENTRIES])
def test_each_entry_is_exactly_the_object_it_names(kind: str, entry: str) -> None:
    module, qualname = _split(entry)
    obj = gen.resolve(module, qualname)
    assert not isinstance(obj, types.ModuleType), f"{entry} is a module"
    ref = f"{module}.{qualname}" if "." not in qualname else f"{module}:{qualname}"
    assert classify(ref)[0] == SAFE, (entry, classify(ref))
    assert py3_name(module, qualname) == (module, qualname), "list Python 3 names only"
    if kind == "alias":
        target = ALIASES[entry]
        assert target in {e for k, e in ENTRIES if k != "alias"}, f"{target} is not listed"
        assert obj is gen.resolve(*_split(target)), f"{entry} is not {target}"
        return
    assert gen.kind_of(obj) == kind, f"{entry} is a {gen.kind_of(obj)}, listed as {kind}"
    if kind == "instance":
        # pickled by name: its __reduce__ gives that very name in its own module
        assert obj.__reduce__() == qualname, entry
        return
    assert obj.__module__ == module, f"{entry} is defined in {obj.__module__}"
    assert obj.__qualname__ == qualname, f"{entry} is really {obj.__qualname__}"


def test_the_list_is_what_the_libraries_pickle(tmp_path) -> None:
    """Every global the real models' pickles import is listed or left out on purpose,
    and every listed entry (legacy paths aside) is imported by at least one of them."""
    found, failed = gen.collect(tmp=tmp_path)
    assert len(failed) <= 2, failed  # all_estimators() grows; a couple may need new data
    collected = {f"{m}:{n}" for m, n in {py3_name(*ref) for ref in found}}
    listed = {e for k, e in ENTRIES if k != "alias"}
    missing = collected - listed - set(gen.EXCLUDED)
    assert not missing, f"pickled by the supported libraries but not listed: {sorted(missing)}"
    stale = listed - collected
    assert not stale, f"listed but no real model pickles it: {sorted(stale)}"
    assert not set(gen.EXCLUDED) & listed


# ---------------------------------------------------------------------------
# nothing a listed name builds evaluates code
# ---------------------------------------------------------------------------
_CALLED_BY_PICKLE = ("__new__", "__init__", "__setstate__", "__setattr__", "__call__")
_BAD_NAMES = {
    "eval", "exec", "compile", "__import__", "open", "breakpoint", "input", "globals",
    "locals", "vars", "import_module", "exec_module", "system", "popen", "Popen",
    "query", "execfile", "run_path", "run_module", "load_module",
}  # fmt: skip
_BAD_ROOTS = {"os", "subprocess", "importlib", "ctypes", "shutil", "socket", "pickle", "runpy",
              "builtins", "pd", "pandas", "sys"}  # fmt: skip


def _findings(func: object) -> set[str]:
    """What in ``func``'s source could import or execute something (empty: nothing)."""
    func = inspect.unwrap(func)  # type: ignore[arg-type]
    try:
        source = textwrap.dedent(inspect.getsource(func))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return set()  # C/Cython: no Python source to read
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.add("import " + ", ".join(a.name for a in node.names))
        if isinstance(node, ast.ImportFrom):
            out.add(f"from {node.module} import " + ", ".join(a.name for a in node.names))
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        if name in _BAD_NAMES:
            out.add(f"{name}()")
        if name == "getattr" and (len(node.args) < 2 or not isinstance(node.args[1], ast.Constant)):
            out.add(f"{ast.unparse(node)}")
        if isinstance(f, ast.Call):  # something(...)(...): e.g. getattr(obj, name)(...)
            out.add(f"{ast.unparse(f)}(...)")
        root = f
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(f, ast.Attribute) and isinstance(root, ast.Name) and root.id in _BAD_ROOTS:
            out.add(f"{ast.unparse(f)}()")
    return out


_CTYPES_VALUES = {"ctypes.c_void_p()", "ctypes.c_int()", "ctypes.byref()"}
# Reviewed by hand: what the check above flags in these methods, and why it is inert.
# A finding not listed here for its method fails the test.
_REVIEWED: dict[str, tuple[set[str], str]] = {
    "catboost.core:CatBoostClassifier.__init__": (
        {"locals()"},
        "collects its own keyword arguments into the params dict",
    ),
    "catboost.core:CatBoostRegressor.__init__": (
        {"locals()"},
        "collects its own keyword arguments into the params dict",
    ),
    "lightgbm.basic:Booster.__init__": (
        _CTYPES_VALUES,
        "C ints and pointers for LightGBM's C API (no library is loaded)",
    ),
    "lightgbm.basic:Booster.__setstate__": (
        _CTYPES_VALUES,
        "C ints and pointers: parses the model string LightGBM wrote",
    ),
    "xgboost.core:Booster.__init__": (
        {"ctypes.c_void_p()", "ctypes.byref()"},
        "a C handle for XGBoost's C API",
    ),
    "xgboost.core:Booster.__setstate__": (
        {"ctypes.c_void_p()", "ctypes.byref()"},
        "a C handle: loads XGBoost's raw model bytes",
    ),
    "pandas:Categorical.__init__": (
        {"from pandas import Index", "from pandas.core.indexes.range import RangeIndex"},
        "fixed imports of pandas' own index classes",
    ),
    "pandas:DataFrame.__init__": ({"from numpy.ma import mrecords"}, "a fixed numpy import"),
    "pandas:Index.__new__": (
        {
            "from pandas.core.indexes.multi import MultiIndex",
            "from pandas.core.indexes.range import RangeIndex",
        },
        "fixed imports of pandas' own index classes",
    ),
    "pandas.core.indexes.base:_new_Index": (
        {"from pandas.core.indexes.period import _new_PeriodIndex"},
        "a fixed import of pandas' own period index reconstructor",
    ),
    "pandas.core.generic:NDFrame.__setattr__": (
        {"getattr(self, name)"},
        "reads its own attribute to decide where a value goes",
    ),
    "pandas.core.indexes.datetimes:_new_DatetimeIndex": (
        {"vars()"},
        "reads the array's own __dict__ (a legacy freq)",
    ),
    "sklearn.utils.validation:check_array": (
        {"from pandas import SparseDtype"},
        "a fixed import of pandas' own sparse dtype (to refuse sparse frames)",
    ),
    "torch.nn.modules.rnn:RNNBase.__setstate__": (
        {"getattr(self, wn)"},
        "reads its own weights by their stored names (not called)",
    ),
}


def _methods(entry: str, obj: object) -> list[tuple[str, object]]:
    if not isinstance(obj, type):
        return [(entry, obj)] if callable(obj) else []
    out = []
    for attr in _CALLED_BY_PICKLE:
        meth = getattr(obj, attr, None)
        owner = next((c for c in obj.__mro__ if attr in vars(c)), None)
        if meth is None or owner is None or owner.__module__ == "builtins":
            continue
        out.append((f"{owner.__module__}:{owner.__qualname__}.{attr}", meth))
    return out


def test_building_a_listed_object_evaluates_nothing() -> None:
    problems: dict[str, list[str]] = {}
    read = 0
    for kind, entry in ENTRIES:
        if kind == "alias":
            continue
        for where, meth in _methods(entry, gen.resolve(*_split(entry))):
            found = _findings(meth) - _REVIEWED.get(where, (set(), ""))[0]
            read += 1
            if found:
                problems[where] = sorted(found)
    assert read > 300
    assert not problems, json.dumps(problems, indent=1)
    assert all(len(why) > 10 for _, why in _REVIEWED.values())


def test_the_scan_sees_what_it_should() -> None:
    """The AST check above can fail: it flags the code the allow-list must never hold."""
    import pandas.core.computation.expr as expr

    assert any("eval" in f or "getattr" in f for f in _findings(expr.Expr.__init__)) or any(
        _findings(m) for m in (expr.BaseExprVisitor.visit, expr.BaseExprVisitor.visit_Call)
    )

    def bad(x: str) -> None:
        import os

        os.system(x)
        getattr(os, x)()

    assert _findings(bad) == {
        "import os",
        "system()",
        "os.system()",
        "getattr(os, x)",
        "getattr(os, x)(...)",
    }


def test_python2_names_cannot_land_on_a_listed_name_by_another_route() -> None:
    """A protocol 0-2 name is mapped (copy_reg -> copyreg) before it is judged; no py2
    name that Python 3 could import as something else maps onto a listed entry."""
    import _compat_pickle
    import importlib

    listed_modules = {m for m, _ in allowlist()}
    for old, new in _compat_pickle.IMPORT_MAPPING.items():
        if new not in listed_modules:
            continue
        with pytest.raises(ImportError):
            importlib.import_module(old)
    for (old_mod, old_name), (new_mod, new_name) in _compat_pickle.NAME_MAPPING.items():
        if (new_mod, new_name) not in allowlist():
            continue
        try:
            there = gen.resolve(old_mod, old_name)
        except (ImportError, AttributeError):
            continue
        assert there is gen.resolve(new_mod, new_name), (old_mod, old_name)
