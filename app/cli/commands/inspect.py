"""`modelship inspect MODEL`: what a model file is, read without running it.

Exit codes: 0 when the file is safe to load (or not a pickle), or is only unknown, or
the user passed --trust; 3 (the README's "unreadable model") when loading it would call
dangerous code, so that scripts stop there.
"""

from __future__ import annotations

import argparse

from app.cli.commands._console import print_json
from app.errors import ModelError
from app.model.intake import ModelArtifact, inspect_model
from app.model.picklescan import DANGEROUS, UNKNOWN, UntrustedModelError

EXIT_DANGEROUS = ModelError.exit_code  # 3

_KIND = {
    "sklearn": "a scikit-learn model",
    "xgboost": "an XGBoost model",
    "lightgbm": "a LightGBM model",
    "catboost": "a CatBoost model",
    "pytorch": "a PyTorch model",
    "onnx": "an ONNX model",
}
_FORMAT = {
    "pickle": "saved with pickle",
    "joblib": "saved with joblib",
    "skops": "saved with skops",
    "catboost-cbm": "CatBoost's binary format",
    "torch-export": "a torch.export archive",
    "onnx": "ONNX protobuf",
    "xgboost-json": "XGBoost's JSON format",
    "xgboost-ubj": "XGBoost's binary (UBJSON) format",
    "lightgbm-txt": "LightGBM's text format",
    "torchscript": "TorchScript",
    "torch-module": "a whole module saved with torch.save",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="the model file (pickle, joblib, .skops, .json/.ubj, .txt, .cbm, .pt, .pt2, "
        ".onnx) or an MLflow model folder (or runs:/ / models:/ URI)",
    )
    parser.add_argument("--json", action="store_true", help="print everything found as JSON")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="exit 0 even when the file refers to dangerous code (you trust it)",
    )


def describe(art: ModelArtifact) -> list[str]:
    """The artifact in plain words, one statement per line."""
    lines = [
        f"{art.path.name}: {_KIND.get(art.kind, art.kind)} ({_FORMAT.get(art.format, art.format)})"
        + (f", {art.estimator}" if art.estimator else "")
    ]
    if art.mlflow is not None:
        mm = art.mlflow
        lines[0] = f"{mm.uri or mm.folder.name}: an MLflow model ({mm.flavor} flavor), " + lines[0]
    if art.task:
        text = f"Task: {art.task}"
        if art.classes is not None:
            text += f" with classes {', '.join(map(str, art.classes[:10]))}"
            text += " ..." if len(art.classes) > 10 else ""
        lines.append(text + ".")
    libs = {k: v for k, v in art.libraries.items()}
    if libs:
        lines.append("Needs: " + ", ".join(f"{k} {v}".strip() for k, v in libs.items()) + ".")
    if art.inputs:
        cols = []
        for c in art.inputs[:30]:
            if "shape" in c:
                cols.append(f"{c['name']} ({c['dtype']}, shape {c['shape']})")
            elif c.get("categories"):
                cats = ", ".join(map(str, c["categories"][:6]))
                cols.append(
                    f"{c['name']} (text: {cats}{' ...' if len(c['categories']) > 6 else ''})"
                )
            else:
                cols.append(f"{c['name']} (number)")
        more = f" and {len(art.inputs) - 30} more" if len(art.inputs) > 30 else ""
        lines.append(
            f"Input: {len(art.inputs)} {'columns' if 'shape' not in art.inputs[0] else 'tensors'}: "
            + "; ".join(cols)
            + more
            + "."
        )
    elif art.kind == "pytorch":
        lines.append(
            "Input: not recorded in the file; give it when converting "
            "(`convert MODEL --input-shape 1,3,32,32`, batch first)."
        )
    if art.pickle_imports:
        shown = ", ".join(art.pickle_imports[:12])
        more = f" (+{len(art.pickle_imports) - 12} more)" if len(art.pickle_imports) > 12 else ""
        lines.append(f"Code it refers to: {shown}{more}.")
    if art.safety is not None:
        lines.append(f"Safety: {art.safety.summary()}")
        for ref, why in art.safety.dangerous.items():
            lines.append(f"  dangerous: {ref} ({why})")
        if art.safety.verdict == DANGEROUS:
            lines.append(
                "convert and deploy refuse this file; only if you made it yourself and trust it, "
                "pass --trust."
            )
        elif art.safety.verdict == UNKNOWN:
            lines.append(
                "convert and deploy load it only with --trust: do so if you made this file or "
                "trust where it came from."
            )
    summary = art.safety.summary() if art.safety else ""
    lines.extend(f"Note: {w}" for w in art.warnings if w != summary)
    return lines


def _isolation(art: ModelArtifact) -> dict:
    """How the process that would load this model for conversion is isolated here."""
    if art.kind == "onnx":
        return {
            "summary": "An ONNX model is read as data: converting it runs no code of its own.",
            "needed": False,
        }
    from app.model.convert import isolation_here

    return {**isolation_here(), "needed": True}


def run(args: argparse.Namespace) -> int:
    try:
        art = inspect_model(args.model)
    except UntrustedModelError as exc:  # not a usable model, and dangerous or unknown
        if args.json:
            print_json({"error": exc.message, "safety": exc.verdict.to_dict()})
            return exc.exit_code
        raise
    iso = _isolation(art)
    if args.json:
        print_json({**art.to_dict(), "conversion_isolation": iso})
    else:
        print("\n".join([*describe(art), iso["summary"]]))
    if art.safety is not None and art.safety.verdict == DANGEROUS and not args.trust:
        return EXIT_DANGEROUS
    return 0
