"""Issue 20: the proof holds on real pipelines (a transform, then trees), in plain words.

A tree compares a value with a threshold. When the ONNX graph rounds a scaled value to
float32 where the original computed it in float64, a row can land on the other side of
a split: a different leaf, a different answer. These models are the ones analysts make
(scaler + one-hot in a ColumnTransformer, then a forest or a boosting model), on 600
rows of mixed data, proven on those very rows at the DEFAULT tolerance.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from app.errors import ParityError
from app.model.convert import ConversionReport, ConvertOptions, convert_model, parity_hint
from app.serving.model import ModelRuntime
from tests.unit import models

NUM = ["age", "income", "tenure", "score"]
CAT = ["region", "plan"]
DEFAULT = ConvertOptions()  # the default tolerance (1e-4), nothing loosened


def customers(n: int = 600, seed: int = 7) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Mixed customer data as an analyst has it: whole numbers, money, one decimal,
    text categories; a churn label and a spend value."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n).astype(float),
            "income": np.round(rng.lognormal(10, 1, n), 2),
            "tenure": np.round(rng.uniform(0, 20, n), 1),
            "score": np.round(rng.normal(600, 80, n)),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    noise = rng.normal(0, 0.3, n)
    churn = (df.age / 90 + np.log(df.income) / 12 + (df.region == "north") * 0.3 + noise) > 1.3
    spend = df.age * 3 + np.log(df.income) * 10 + df.tenure + rng.normal(0, 1, n)
    return df, churn.map({True: "yes", False: "no"}), spend


def _prep() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [("num", StandardScaler(), NUM), ("cat", OneHotEncoder(handle_unknown="ignore"), CAT)]
    )


def _make(kind: str) -> Any:
    """The fitted model of that kind."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier, XGBRegressor

    df, churn, spend = customers()
    y01 = (churn == "yes").astype(int)
    build = {
        "scaler+onehot+forest": lambda: Pipeline(
            [("prep", _prep()), ("rf", RandomForestClassifier(n_estimators=60, random_state=0))]
        ).fit(df, churn),
        "scaler+gradient-boosting": lambda: make_pipeline(
            StandardScaler(), GradientBoostingClassifier(n_estimators=60, random_state=0)
        ).fit(df[NUM], churn),
        "scaler+hist-gradient-boosting": lambda: make_pipeline(
            StandardScaler(), HistGradientBoostingClassifier(max_iter=60, random_state=0)
        ).fit(df[NUM], churn),
        "scaler+onehot+lightgbm": lambda: Pipeline(
            [("prep", _prep()), ("m", LGBMClassifier(n_estimators=60, verbose=-1))]
        ).fit(df, y01),
        "scaler+onehot+xgboost": lambda: Pipeline(
            [("prep", _prep()), ("m", XGBClassifier(n_estimators=60, max_depth=4))]
        ).fit(df, y01),
        "scaler+onehot+forest-regressor": lambda: Pipeline(
            [("prep", _prep()), ("rf", RandomForestRegressor(n_estimators=40, random_state=0))]
        ).fit(df, spend),
        "scaler+gradient-boosting-regressor": lambda: make_pipeline(
            StandardScaler(), GradientBoostingRegressor(n_estimators=60, random_state=0)
        ).fit(df[NUM], spend),
        "scaler+hist-gradient-boosting-regressor": lambda: make_pipeline(
            StandardScaler(), HistGradientBoostingRegressor(max_iter=60, random_state=0)
        ).fit(df[NUM], spend),
        "scaler+xgboost-regressor": lambda: make_pipeline(
            StandardScaler(), XGBRegressor(n_estimators=60, max_depth=4)
        ).fit(df[NUM], spend),
        "scaler+onehot+lightgbm-regressor": lambda: Pipeline(
            [("prep", _prep()), ("m", LGBMRegressor(n_estimators=60, verbose=-1))]
        ).fit(df, spend),
    }
    return build[kind]()


@pytest.fixture(scope="module")
def rows_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The very rows the models were trained on (the hard case: every value sits where
    the trees' thresholds were placed), plus 100 fresh ones."""
    df, churn, _ = customers()
    fresh, _, _ = customers(100, seed=99)
    path = tmp_path_factory.mktemp("rows") / "customers.csv"
    pd.concat([df, fresh]).assign(churn=list(churn) + ["no"] * 100).to_csv(path, index=False)
    return path


CASES = [
    "scaler+onehot+forest",
    "scaler+gradient-boosting",
    "scaler+hist-gradient-boosting",
    "scaler+onehot+lightgbm",
    "scaler+onehot+xgboost",
    "scaler+onehot+forest-regressor",
    "scaler+gradient-boosting-regressor",
    "scaler+hist-gradient-boosting-regressor",
    "scaler+xgboost-regressor",
    "scaler+onehot+lightgbm-regressor",
]


@pytest.mark.parametrize("kind", CASES)
def test_transform_then_trees_passes_the_default_proof(kind: str, rows_csv: Path, tmp_path) -> None:
    model = _make(kind)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    options = ConvertOptions(sample_csv=rows_csv)
    result = convert_model(path, tmp_path / "model.onnx", options)
    r = result.report
    assert r.passed, r.summary()
    assert r.rows == 700 and r.tolerance == 1e-4 and r.rows_over_tolerance == 0
    if r.labels_agreeing is not None:
        assert r.labels_agreeing == 700 and r.rows_probabilities_over == 0
    # the proof says which precision it used, and the signature serves it
    assert r.precision == "float64"
    assert "double precision (float64)" in r.summary()
    numeric = [c for c in result.signature.columns if c.dtype != "str"]
    assert numeric and {c.dtype for c in numeric} == {"float64"}
    assert {t.dtype for t in result.signature.inputs} <= {"float64", "str"}


def test_float32_would_have_failed_on_these_rows(rows_csv: Path) -> None:
    """The data above is the issue's case: converted the old way (float32 throughout)
    the forest gives other probabilities on some of these rows. (Without this, the
    test above could pass on data that never reaches a threshold.)"""
    import onnxruntime as ort

    from app.model.convert.worker import converting, describing

    model = _make("scaler+onehot+forest")
    df = pd.read_csv(rows_csv)[NUM + CAT]
    desc = describing.describe(model, "sklearn")
    converting.fix_tree_missing_flags()
    old = converting.convert_sklearn_as(model, desc, "float32")
    sess = ort.InferenceSession(old.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {c: df[[c]].to_numpy(dtype=object if c in CAT else np.float32) for c in NUM + CAT}
    _, probs = sess.run(None, feeds)
    over = (np.abs(probs - model.predict_proba(df)) > 1e-4).any(axis=1).sum()
    assert over > 0  # float32 puts some rows on the other side of a split


def test_float32_is_kept_where_it_is_exact(tmp_path: Path) -> None:
    """A linear model after a scaler, and trees on the raw input: float32, proven."""
    linear = convert_model(
        models.sklearn_pipeline_frame(tmp_path / "lin.joblib"), tmp_path / "lin.onnx", DEFAULT
    )
    forest = convert_model(
        models.sklearn_forest_regressor(tmp_path / "rf.pkl"), tmp_path / "rf.onnx", DEFAULT
    )
    for result in (linear, forest):
        assert result.report.passed and result.report.precision == "float32"
        assert "single precision (float32)" in result.report.summary()
        assert {c.dtype for c in result.signature.columns} <= {"float32", "str"}


def test_the_served_double_model_answers_as_the_original(rows_csv: Path, tmp_path) -> None:
    """The serving runtime reads float64 from the signature: rows, records and CSV all
    get the original's labels and probabilities."""
    model = _make("scaler+onehot+forest")
    joblib.dump(model, tmp_path / "m.joblib")
    result = convert_model(tmp_path / "m.joblib", tmp_path / "m.onnx", DEFAULT)
    runtime = ModelRuntime(result.onnx_path)
    runtime.warm_up()  # the proof's first row through the signature
    df = pd.read_csv(rows_csv)
    cols = NUM + CAT
    want_labels = list(model.predict(df[cols]))
    want_probs = model.predict_proba(df[cols])
    records = json.loads(df[cols].to_json(orient="records"))
    feeds, n = runtime.feeds_from_json(records, 10_000)
    assert n == len(df) and feeds["age"].dtype == np.float64
    body = runtime.answer_json(runtime.run(feeds))
    got = np.array([[p["no"], p["yes"]] for p in body["probabilities"]])
    assert np.abs(got - want_probs).max() < 1e-4
    # a row whose original probabilities tie (30 of 60 trees each way) is answered
    # either way; every other row gets the original's label
    decided = np.abs(want_probs[:, 0] - want_probs[:, 1]) > 1e-4
    assert decided.sum() >= len(df) - 5

    def same(labels: list[Any]) -> bool:
        return all(a == b for a, b, d in zip(labels, want_labels, decided, strict=True) if d)

    assert same(body["predictions"])
    rows = [[r[c] for c in cols] for r in records]
    feeds, _ = runtime.feeds_from_json({"rows": rows}, 10_000)
    assert same(runtime.answer_json(runtime.run(feeds))["predictions"])
    feeds, n, header = runtime.feeds_from_csv(df[cols].to_csv(index=False).encode(), 10_000)
    out = list(csv.DictReader(io.StringIO(runtime.answer_csv(runtime.run(feeds), header).decode())))
    assert same([r["prediction"] for r in out])


def test_a_tie_in_the_original_is_no_mismatch() -> None:
    """The original breaks a tie (0.5 / 0.5) by class order; the converted model by the
    last bits of its float sums. The proof and the smoke test take either label there,
    and nothing else."""
    from app.endpoint.smoke import SmokeReport, _compare_rows
    from app.model.convert.proof import _ties
    from app.serving.signature import Signature

    sig = Signature(inputs=[], outputs=[], class_labels=["no", "yes"])
    want_p = np.array([[0.5, 0.5], [0.6, 0.4], [0.5, 0.5]])
    tied = _ties(np.array(["no", "no", "no"]), np.array(["yes", "yes", "no"]), want_p, sig, 1e-4)
    assert tied.tolist() == [True, False, True]
    proof = {
        "predictions": ["no", "no"],
        "probabilities": [[0.5, 0.5], [0.6, 0.4]],
        "class_labels": ["no", "yes"],
        "tolerance": 1e-4,
    }
    answer = {
        "predictions": ["yes", "yes"],
        "probabilities": [{"no": 0.49999982, "yes": 0.5000002}, {"no": 0.6, "yes": 0.4}],
    }
    report = SmokeReport(url="http://127.0.0.1:1", rows=2)
    _compare_rows(proof, answer, report)
    assert report.matching == 1 and report.mismatches[0]["row"] == 1
    words = _report(passed=True, labels_agreeing=499, labels_tied=1, rows_over_tolerance=0,
                    rows_probabilities_over=0, max_abs_diff_probabilities=2e-7)  # fmt: skip
    assert words.labels_differing == 0 and words.suggested_tolerance() is None
    assert "the same label on 499 of 500 rows (your sample CSV), and on 1 more the original's " \
        "probabilities tie between two labels" in words.summary()  # fmt: skip


# ---- the words of the proof ------------------------------------------------------------------
def _report(**changes: Any) -> ConversionReport:
    base = dict(
        rows=500,
        labels_agreeing=500,
        label_agreement=1.0,
        max_abs_diff=0.02,
        max_abs_diff_probabilities=0.02,
        tolerance=1e-4,
        passed=False,
        original_ms=12.0,
        onnx_ms=1.0,
        onnx_size_bytes=4096,
        rows_from="csv",
        rows_over_tolerance=12,
        task="classification",
        rows_probabilities_over=12,
    )
    return ConversionReport(**{**base, **changes})


def test_labels_and_probabilities_are_reported_apart() -> None:
    r = _report()
    text = r.summary()
    assert "the same label on 500 of 500 rows (your sample CSV)" in text
    assert "probabilities differ by up to 0.02, more than the tolerance of 0.0001 on 12 rows" in (
        text
    )
    assert "same labels as your model but different probabilities" in r.meaning()
    assert r.suggested_tolerance() == 0.02
    assert parity_hint(r) == (
        "If differences of up to 0.02 are fine for how you use the model, run again with "
        "--tolerance 0.02."
    )
    # labels that differ are no rounding matter: no looser tolerance is offered
    worse = _report(labels_agreeing=497, label_agreement=0.994, rows_over_tolerance=14)
    assert "a different label on 3" in worse.summary()
    assert "different answer" in worse.meaning() and worse.suggested_tolerance() is None
    assert "--accept-mismatch" in parity_hint(worse)
    fine = _report(passed=True, max_abs_diff_probabilities=4e-7, rows_over_tolerance=0,
                   rows_probabilities_over=0)  # fmt: skip
    assert "probabilities differ by less than 0.000001, within the tolerance" in fine.summary()
    fine.max_abs_diff_probabilities = 0.0213
    assert "probabilities differ by at most 0.0213, within the tolerance" in fine.summary()
    assert fine.meaning() == "" and parity_hint(_report(quantized=True)).endswith(
        "--quantize-tolerance 0.02."
    )


def test_suggested_tolerance_rounds_up_to_one_digit() -> None:
    for diff, want in [(0.0213, 0.03), (0.02, 0.02), (8.78e-8, 9e-8), (0.5, 0.5)]:
        assert _report(max_abs_diff_probabilities=diff).suggested_tolerance() == want
    assert _report(max_abs_diff_probabilities=0.0213).suggested_tolerance() >= 0.0213


def _options(command: str) -> set[str]:
    from app import cli

    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


@pytest.mark.parametrize("command", ["convert", "deploy", "build"])
def test_a_failed_proofs_next_step_exists_on_every_command_that_converts(command: str) -> None:
    flags = set()
    for r in (_report(), _report(labels_agreeing=1), _report(quantized=True)):
        flags |= set(re.findall(r"--[a-z][a-z0-9-]+", parity_hint(r)))
    if command != "convert":  # only convert makes the int8 version on its own
        flags.discard("--quantize-tolerance")
    assert flags and flags <= _options(command), flags - _options(command)


def test_deploy_and_build_take_accept_mismatch_into_the_profile(tmp_path: Path) -> None:
    from app import cli
    from app.cli.commands.deploy import _model_flags

    args = cli.build_parser("deploy").parse_args(["deploy", "m.joblib", "--accept-mismatch"])
    assert _model_flags(args)["accept_mismatch"] is True
    args = cli.build_parser("deploy").parse_args(["deploy", "m.joblib"])
    assert "accept_mismatch" not in _model_flags(args)  # as the profile says
    args = cli.build_parser("build").parse_args(["build", "m.joblib", "--tolerance", "0.02"])
    assert _model_flags(args) == {"tolerance": 0.02}


def test_a_failed_proof_through_convert_model_says_both(tmp_path: Path) -> None:
    """End to end: a tolerance below the float32 differences of an XGBoost booster."""
    path = models.xgboost_native(tmp_path / "x.json")
    with pytest.raises(ParityError) as err:
        convert_model(path, tmp_path / "x.onnx", ConvertOptions(tolerance=1e-12))
    message, hint = err.value.message, err.value.hint or ""
    assert message.startswith("The proof failed. The converted model was compared")
    assert "more than the tolerance of 1e-12 on" in message
    assert "predict different values than your model" in message
    tol = float(hint.split("--tolerance ")[1].rstrip("."))
    again = convert_model(path, tmp_path / "x.onnx", ConvertOptions(tolerance=tol))
    assert again.report.passed  # the suggested tolerance is one the proof passes
