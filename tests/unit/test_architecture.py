"""House rules that keep the product's structure honest."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_import_linter_contracts_hold() -> None:
    """app/ and targets/ never import Qt or the wizard (pyproject's contracts)."""
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_runtime_imports_only_itself_and_its_dependencies() -> None:
    """The runtime ships alone in every image: it may not reach into the rest of app."""
    allowed_third_party = {"numpy", "onnxruntime", "uvicorn", "orjson", "httptools", "uvloop"}
    bad = []
    for path in (REPO / "app" / "serving").rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("app.serving") or top in sys.stdlib_module_names:
                continue
            if top in allowed_third_party:
                continue
            bad.append(f"{path.relative_to(REPO)}: {name}")
    assert not bad, "serving runtime imports outside itself:\n" + "\n".join(bad)


def test_core_has_no_qt_imports() -> None:
    """A plain scan too, so the rule holds even where import-linter is not installed."""
    bad = []
    for pkg in ("app", "targets"):
        for path in (REPO / pkg).rglob("*.py"):
            for name in _imports(path):
                if name.split(".")[0] in {"PySide6", "superqt", "wizards", "shiboken6"}:
                    bad.append(f"{path.relative_to(REPO)}: {name}")
    assert not bad, bad


def test_no_import_cycles_in_the_core() -> None:
    """app/ and targets/ form a graph without cycles (module to module, run-time imports):
    each module can be read, tested and loaded on its own."""
    import grimp

    graph = grimp.build_graph("app", "targets", exclude_type_checking_imports=True)
    modules = sorted(m for m in graph.modules if m.split(".")[0] in {"app", "targets"})
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # a package's __init__ re-exporting its own submodules is not a cycle in use
            if imported.startswith(module + "."):
                continue
            if graph.chain_exists(imported=module, importer=imported):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                cycles.append(f"{module} -> {imported} -> ... -> {module}: {chain}")
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:10])
