"""Intake and the conversion worker read model files by the same facts (app/model/modelfacts.py).

The worker runs under another Python with ``app`` not importable; it reaches the facts
module by a relative import through its package. These tests hold that both sides use
that one module, and that no copy of a fact is left on either side.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import app.model.modelfacts as facts
from app.model.convert import WORKER

ROOT = Path(facts.__file__).parents[2]
# a fact's name, or a string only a copy of a fact would hold
COPIES = (
    "Column_",
    "MultiClassOneVsAll",
    "multiclassova",
    "_compat_pickle",
    "regression_l1",
    '"binary:"',
    "isdigit() else",
)


def test_intake_and_the_worker_import_the_same_facts() -> None:
    from app.model import picklescan
    from app.model.convert.worker import describing, loading, tabular
    from app.model.intake import boosters, describe, mlflowdir, unpickler

    assert describing.lightgbm_names is boosters.lightgbm_names is facts.lightgbm_names
    assert describing.column_names is boosters.column_names is describe.column_names
    assert describing.catboost_names is boosters.catboost_names is facts.catboost_names
    assert describing.catboost_classifies is boosters.catboost_classifies
    assert loading.catboost_classifies is facts.catboost_classifies
    assert describe.objective_task is boosters.objective_task is facts.objective_task
    assert loading.py3_name is unpickler.py3_name is facts.py3_name
    assert tabular.unnamed is mlflowdir.unnamed is describe.unnamed is facts.unnamed
    assert picklescan.py3_name is facts.py3_name


def test_no_copy_of_a_fact_is_left() -> None:
    """Neither side defines a fact again or spells one out."""
    names = {n for n in vars(facts) if not n.startswith("_") and n != "annotations"}
    sources = [*(ROOT / "app" / "model" / "intake").glob("*.py"), *WORKER.parent.glob("*.py")]
    sources += [
        ROOT / "app" / "model" / "picklescan.py",
        ROOT / "app" / "model" / "convert" / "__init__.py",
    ]
    for source in sources:
        text = source.read_text(encoding="utf-8")
        tree = ast.parse(text)
        defined = {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        }
        defined |= {
            t.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        assert not defined & names, f"{source.name} defines {defined & names} again"
        assert not [c for c in COPIES if c in text], f"{source.name} spells out a fact"
        assert 'f"f{i}"' not in text, f"{source.name} names unnamed columns itself"


def test_the_worker_finds_the_facts_with_app_unimportable(tmp_path: Path) -> None:
    """Under a foreign interpreter, sys.path stripped and ``app`` blocked, the worker's
    modules load the facts module from app/model/modelfacts.py (the very file intake uses)."""
    probe = (
        "import runpy, sys\n"
        "sys.modules['app'] = None\n"
        f"sys.argv = [{str(WORKER)!r}, 'no-job']\n"
        "try:\n"
        f"    runpy.run_path({str(WORKER)!r}, run_name='__main__')\n"
        "except (OSError, SystemExit):\n"
        "    pass\n"
        "import _modelship.convert.worker.describing as d\n"
        "print(__import__('json').dumps([d.lightgbm_names.__module__, "
        "sys.modules[d.lightgbm_names.__module__].__file__, "
        "[m for m in sys.modules if m == 'app' or m.startswith('app.')]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    module, file, app_modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert module == "_modelship.modelfacts"
    assert Path(file).resolve() == Path(facts.__file__).resolve()
    assert app_modules == ["app"]  # only the blocked entry itself
