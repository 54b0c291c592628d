"""`modelship demo`: convert the bundled sample model and show the proof."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands._console import ConsoleProgress
from app.commands.convert import add_conversion_arguments, options_from, print_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.onnx",
        type=Path,
        help="where to write the ONNX model (default: in ModelShip's data folder)",
    )
    add_conversion_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")


def run(args: argparse.Namespace) -> int:
    from app.convert import convert_model
    from app.paths import data_dir
    from app.samples import sample_csv_path, sample_model_path

    progress = ConsoleProgress()
    progress.step("Preparing the sample model (a churn classifier trained on the bundled CSV)")
    model = sample_model_path()
    if args.sample is None:
        args.sample = sample_csv_path()
    out = args.output or data_dir() / "demo" / "churn.onnx"
    result = convert_model(model, out, options_from(args), progress)
    if not args.json:
        print(f"Sample model: {model}")
        print(f"Sample rows:  {args.sample}")
    print_result(result, as_json=args.json)
    if not args.json:
        print(f"Next: serve it with `modelship serve {result.onnx_path}`.")
    return 0
