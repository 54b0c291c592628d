"""`modelship convert MODEL`: convert to ONNX and prove the conversion."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.commands._console import ConsoleProgress, print_json
from app.errors import ParityError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="the model file to convert")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.onnx",
        help="where to write the ONNX model (default: next to the model, with .onnx)",
    )
    add_conversion_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the converter's output")


def add_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by `convert` and `demo`."""
    add_model_arguments(parser, tolerance_default=1e-4)
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="also write a dynamic int8 quantized model, with its own proof",
    )
    parser.add_argument(
        "--quantize-tolerance",
        type=float,
        default=0.05,
        help="the same for the quantized model (default: 0.05)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=200,
        help="how many rows to generate for the proof (default: 200)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="stop a conversion that takes longer (seconds, default: 600)",
    )
    add_trust_argument(parser)


def add_model_arguments(
    parser: argparse.ArgumentParser, *, tolerance_default: float | None
) -> None:
    """How a model is converted and proven: shared by `convert`, `demo` and `deploy`
    (where a default of None means "as the profile says")."""
    parser.add_argument(
        "--sample",
        metavar="CSV",
        type=Path,
        help="rows to prove the conversion on: a CSV with a header row, or for PyTorch a "
        ".npy array (batch first); default: generated rows",
    )
    parser.add_argument(
        "--input-shape",
        metavar="DIMS",
        type=parse_shape,
        help="input shape for PyTorch models, batch first, e.g. 1,3,32,32",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="Python interpreter to load and convert the model with (use the "
        "environment the model was trained in); default: ModelShip's own",
    )
    parser.add_argument(
        "--match-env",
        action=argparse.BooleanOptionalAction,
        default=None if tolerance_default is None else False,
        help="if the model was saved with other library versions than ModelShip's own, "
        "convert it in an environment with exactly those versions, made from the package "
        "index once and then reused",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=tolerance_default,
        help="largest accepted difference between original and ONNX "
        "(default: 1e-4; relative for values above 1)",
    )
    parser.add_argument(
        "--accept-mismatch",
        action=argparse.BooleanOptionalAction,
        default=None if tolerance_default is None else False,
        help="keep (and deploy) the ONNX model even if its proof fails: it differs from the "
        "original by more than the tolerance",
    )


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """--trust: the command-line twin of the wizard's "I trust this file"."""
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load a pickle even if it refers to dangerous or unknown code (only for files "
        "you made yourself or got from someone you trust: loading a pickle runs its code); "
        "deploy also keeps this on this computer (as `modelship trust MODEL` does)",
    )


def parse_shape(text: str) -> list[int]:
    try:
        dims = [int(x) for x in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; give whole numbers separated by commas, e.g. 1,3,32,32"
        ) from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; give positive whole numbers, e.g. 1,3,32,32"
        )
    return dims


def options_from(args: argparse.Namespace):
    """The flags read into a profile's model section, made options as a profile's are
    (app.model.convert.options), with the flags a profile does not hold."""
    from app.model.convert.options import options_for
    from app.store.profile import ModelSection

    if args.tolerance <= 0 or args.quantize_tolerance <= 0:
        raise UsageError("Tolerances must be positive numbers.", "E.g. --tolerance 1e-4.")
    if args.rows < 1:
        raise UsageError("--rows must be at least 1.", "E.g. --rows 200.")
    model = ModelSection(
        path=Path(args.model),  # only for the section's shape: the model is given as typed
        python=args.python,
        sample_csv=args.sample,
        input_shape=args.input_shape,
        tolerance=args.tolerance,
        accept_mismatch=bool(args.accept_mismatch),
        quantize=args.quantize,
        match_env=bool(getattr(args, "match_env", False)),
    )
    return options_for(
        model,
        trust=bool(getattr(args, "trust", False)),
        generated_rows=args.rows,
        quantize_tolerance=args.quantize_tolerance,
        timeout_s=args.timeout,
    )


def print_result(result, *, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    print(f"ONNX model: {result.onnx_path}")
    print(f"Signature:  {result.signature_path}")
    print(f"Proof:      {result.proof_path}")
    sig = result.signature
    if sig.columns:
        print(
            f"Input: {len(sig.columns)} columns ({', '.join(c.name for c in sig.columns[:12])}"
            f"{' ...' if len(sig.columns) > 12 else ''})."
        )
    else:
        print("Input: " + "; ".join(f"{t.name} {t.dtype} {t.shape}" for t in sig.inputs) + ".")
    print(result.report.summary())
    if result.report.isolation:
        print(result.report.isolation)
    for w in result.report.warnings:
        print(f"Note: {w}")
    if result.quantized:
        q = result.quantized
        print(f"Quantized model: {q.onnx_path}")
        print(q.report.summary())


def run(args: argparse.Namespace) -> int:
    from app.model.convert import convert_model

    options = options_from(args)
    if not options.trust:  # trusted on this computer before (`modelship trust MODEL`)
        from app.store.trust import file_trusted

        options.trust = file_trusted(args.model)
    progress = ConsoleProgress(verbose=args.verbose)
    try:
        result = convert_model(args.model, args.output, options, progress)
    except ParityError as exc:
        if args.json and getattr(exc, "report", None) is not None:
            print_json({"error": exc.message, "report": exc.report.to_dict()})
        raise
    print_result(result, as_json=args.json)
    return 0
