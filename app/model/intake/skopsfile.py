"""skops files: a zip of a JSON schema and arrays, read without loading any class."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from app.errors import ModelError
from app.model.intake.artifact import ModelArtifact
from app.model.intake.pickles import _describe_pickled, _refuse_non_model
from app.model.intake.unpickler import _make_stub
from app.model.picklescan import SAFE, judge


def _inspect_skops(p: Path, zf: zipfile.ZipFile) -> ModelArtifact:
    """A skops file: skops' own check of the types it would build, then a stand-in tree.

    skops builds only types it trusts by default (scikit-learn's and numpy's own);
    everything else it names is listed by ``get_untrusted_types`` and judged here by the
    same rules as a pickle's imports: safe (on the exact allow-list), unknown (needs
    --trust), dangerous. The worker loads it with ``skops.io.load(trusted=...)`` given
    only the approved types (without --trust: those on the list), beside skops' defaults.
    """
    try:
        from skops.io import get_untrusted_types
    except ImportError:
        raise ModelError(
            f"{p.name} is a skops file, and reading one needs skops, which is not installed.",
            "Install it (pip install skops) and try again.",
        ) from None
    try:
        untrusted = list(get_untrusted_types(file=p))
        schema = json.loads(zf.read("schema.json").decode("utf-8"))
        root = _skops_tree(schema, zf, 0)
    except Exception as exc:
        raise ModelError(
            f"{p.name} is a skops file that is truncated or corrupt ({type(exc).__name__}).",
            "Copy or save the model again; the file did not arrive whole.",
        ) from None
    verdict = judge(untrusted)
    imports = sorted({*untrusted, *_skops_classes(schema)})
    try:
        art = _describe_pickled(p, "skops", root, imports)
    except ModelError:
        if verdict.verdict != SAFE:
            _refuse_non_model(p, verdict)
        raise
    art.safety = verdict
    art.runs_code_on_load = verdict.verdict != SAFE
    art.libraries.setdefault("skops", str(schema.get("_skops_version") or ""))
    art.warnings = [w for w in art.warnings if "it is a pickle" not in w]
    if verdict.verdict != SAFE:
        art.warnings.insert(0, verdict.summary())
    return art


def _skops_classes(node: Any) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if n.get("__loader__") == "ObjectNode":
                out.add(f"{n.get('__module__')}.{n.get('__class__')}")
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return out


def _skops_tree(node: Any, zf: zipfile.ZipFile, depth: int) -> Any:
    """skops' schema as plain data, with a stand-in (never the real class) for objects."""
    if depth > 60 or not isinstance(node, dict):
        return None
    loader = node.get("__loader__")
    content = node.get("content")
    if loader == "JsonNode":
        return json.loads(content) if isinstance(content, str) else content
    if loader == "NdArrayNode":
        import numpy as np

        if node.get("type") == "numpy" and node.get("file"):
            return np.load(io.BytesIO(zf.read(node["file"])), allow_pickle=False)
        if isinstance(content, list):
            return np.array([_skops_tree(x, zf, depth + 1) for x in content], dtype=object)
        return None
    if loader in ("ListNode", "TupleNode", "SetNode"):
        items = [_skops_tree(x, zf, depth + 1) for x in (content or [])]
        return tuple(items) if loader == "TupleNode" else items
    if loader in ("DictNode", "DefaultDictNode", "OrderedDictNode"):
        if isinstance(content, dict) and "__loader__" not in content:
            return {k: _skops_tree(v, zf, depth + 1) for k, v in content.items()}
        return _skops_tree(content, zf, depth + 1) if isinstance(content, dict) else {}
    if loader in ("ObjectNode", "ReduceNode"):
        stub = _make_stub(f"{node.get('__module__')}.{node.get('__class__')}")()
        state = _skops_tree(content, zf, depth + 1) if isinstance(content, dict) else None
        if isinstance(state, dict) and "attrs" in state and loader == "ReduceNode":
            state = state["attrs"]
        stub.__setstate__(state if isinstance(state, dict) else {})
        return stub
    return None
