"""No path loads a hostile model file without trust: inspect, convert, the worker.

Every file in the corpus (tests/security/hostile.py) makes a directory when loaded.
First the corpus is shown to be live (the real unpickler runs each payload, in a
child process); then each ModelShip path is run on a fresh copy and the marker must
never appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.model.convert import WORKER, ConvertOptions, convert_model
from app.model.intake import inspect_model
from app.model.picklescan import DANGEROUS, UNKNOWN, UntrustedModelError, classify, judge
from tests.security import hostile

REPO = Path(__file__).resolve().parents[2]
CASES = [
    "top-level.pkl",
    *[f"pipeline-p{p}.pkl" for p in range(6)],
    "column-transformer.pkl",
    *[
        f"{n}-z{c}.joblib"
        for n in ("pipeline", "column-transformer", "object-array")
        for c in (0, 3)
    ],
    "getattr-chain.pkl",
    "memo-stack-global.pkl",
    "computed-stack-global.pkl",
    "attrgetter-chain.pkl",
    "partial.pkl",
    "torch-module.pt",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    d = tmp_path_factory.mktemp("hostile")
    marker = d / "PAYLOAD-RAN"
    return hostile.build(d, marker), marker


def _load_for_real(path: Path) -> None:
    """What a naive tool does: joblib.load / torch.load / pickle.load, in a child."""
    code = (
        "import sys, pickle\n"
        "p = sys.argv[1]\n"
        "try:\n"
        "    if p.endswith('.joblib'):\n"
        "        import joblib; joblib.load(p)\n"
        "    elif p.endswith('.pt'):\n"
        "        import torch; torch.load(p, weights_only=False)\n"
        "    else:\n"
        "        pickle.load(open(p, 'rb'))\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, check=True, timeout=120)


@pytest.mark.parametrize("case", CASES)
def test_the_corpus_is_live(corpus, case: str) -> None:
    """Each file really runs its payload when loaded the ordinary way."""
    files, marker = corpus
    assert not marker.exists()
    _load_for_real(files[case])
    try:
        assert marker.is_dir(), f"{case} did not run its payload"
    finally:
        if marker.exists():
            marker.rmdir()


@pytest.mark.parametrize("case", CASES)
def test_inspect_names_the_danger_and_runs_nothing(corpus, case: str, capsys) -> None:
    files, marker = corpus
    try:
        art = inspect_model(files[case])
    except UntrustedModelError as exc:  # not even a model: refused outright, naming it
        assert exc.verdict.verdict == DANGEROUS
        assert exc.exit_code == 3
    else:
        assert art.safety is not None and art.safety.verdict == DANGEROUS, art.safety
        named = " ".join(art.safety.dangerous)
        assert any(w in named for w in ("mkdir", "getattr", "__import__", "?.", "partial"))
    assert main(["inspect", str(files[case])]) == 3
    out = capsys.readouterr()
    assert "mkdir" in out.out + out.err or "would call" in out.out + out.err
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_convert_refuses_without_trust(corpus, case: str, tmp_path: Path, capsys) -> None:
    files, marker = corpus
    opts = ConvertOptions(input_shape=[1, 3] if case.endswith(".pt") else None, timeout_s=60)
    with pytest.raises(UntrustedModelError) as err:
        convert_model(files[case], tmp_path / "out.onnx", opts)
    assert (err.value.exit_code == 3 and "--trust" in (err.value.hint or "")) or "Do not" in (
        err.value.hint or ""
    )
    assert main(["convert", str(files[case]), "-o", str(tmp_path / "cli.onnx")]) == 3
    assert "not" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists() and not (tmp_path / "cli.onnx").exists()
    assert not marker.exists()


@pytest.mark.parametrize(
    "case", ["pipeline-p4.pkl", "pipeline-z3.joblib", "object-array-z0.joblib", "torch-module.pt"]
)
def test_worker_admits_only_the_scanned_globals(corpus, case: str, tmp_path: Path) -> None:
    """The second lock: run the worker as if the scan had missed the payload's import."""
    files, marker = corpus
    art = inspect_model(files[case])
    assert art.safety is not None
    missed = [g for g in art.safety.imports if g not in art.safety.dangerous]
    for allowed in (missed, None):
        job_dir = tmp_path / f"job-{allowed is None}"
        job_dir.mkdir()
        job = {
            "model_path": str(files[case]),
            "kind": art.kind,
            "format": art.format,
            "onnx_path": str(job_dir / "model.onnx"),
            "input_shape": [1, 3],
            "sample_csv": None,
            "rows": 5,
            "seed": 0,
            "expected_versions": {},
            "extra_paths": [],
            "allowed_globals": allowed,
        }
        (job_dir / "job.json").write_text(json.dumps(job))
        subprocess.run([sys.executable, str(WORKER), str(job_dir)], timeout=300, cwd=job_dir)
        res = json.loads((job_dir / "result.json").read_text())
        assert res["ok"] is False and res["error"] == "refused_global", res
        assert not marker.exists()


def test_trust_lets_a_benign_unknown_file_through(tmp_path: Path) -> None:
    """A model with an attribute of a class ModelShip does not know: asked, then loaded."""
    import fractions

    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = hostile._data()
    model = LogisticRegression().fit(x, y)
    model.note_ = fractions.Fraction(1, 3)  # harmless, but not on the allowlist
    path = tmp_path / "benign.joblib"
    joblib.dump(model, path)
    art = inspect_model(path)
    assert art.safety is not None and art.safety.verdict == UNKNOWN
    assert art.safety.unknown == ["fractions.Fraction"]
    assert main(["inspect", str(path)]) == 0  # unknown is reported, not an error
    with pytest.raises(UntrustedModelError, match="does not know"):
        convert_model(path, tmp_path / "b.onnx", ConvertOptions(generated_rows=20))
    result = convert_model(path, tmp_path / "b.onnx", ConvertOptions(generated_rows=20, trust=True))
    assert result.report.passed and result.onnx_path.is_file()
    assert main(["convert", str(path), "-o", str(tmp_path / "c.onnx"), "--trust"]) == 0


def test_a_plain_model_needs_no_trust(tmp_path: Path) -> None:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    x, y = hostile._data()
    path = tmp_path / "forest.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y), path)
    art = inspect_model(path)
    assert art.safety is not None and art.safety.verdict == "safe", art.safety
    assert convert_model(path, tmp_path / "f.onnx", ConvertOptions(generated_rows=20)).report.passed


@pytest.mark.parametrize(
    ("ref", "verdict"),
    [
        ("posix.system", DANGEROUS),
        ("nt.system", DANGEROUS),
        ("subprocess.Popen", DANGEROUS),
        ("builtins.eval", DANGEROUS),
        ("__builtin__.exec", DANGEROUS),
        ("builtins.getattr", DANGEROUS),
        ("operator.methodcaller", DANGEROUS),
        ("_codecs.decode", DANGEROUS),
        ("runpy._run_code", DANGEROUS),
        ("numpy.testing._private.utils.runstring", DANGEROUS),
        ("sklearn.datasets.dump_svmlight_file", DANGEROUS),
        ("torch.serialization.load", DANGEROUS),
        ("sklearn.ensemble._forest.RandomForestClassifier", "safe"),
        ("numpy._core.multiarray._reconstruct", "safe"),
        ("copy_reg._reconstructor", "safe"),
        ("sklearn.utils.shuffle", UNKNOWN),  # a function, not a class: not on the list
        # numpy.random's reconstructors (a Generator's SeedSequence, the bit generators)
        ("numpy.random.bit_generator.__pyx_unpickle_SeedSequence", "safe"),
        ("numpy.random.bit_generator.SeedSequence", "safe"),
        ("numpy.random._philox.Philox", "safe"),
        ("numpy.random._sfc64.SFC64", "safe"),
        ("numpy.random._pcg64.PCG64DXSM", "safe"),
        # ... but no other dunder of those modules, and no numpy.random function
        ("numpy.random.bit_generator.__builtins__", DANGEROUS),
        ("numpy.random.bit_generator.__pyx_unpickle_Enum", UNKNOWN),  # another reconstructor
        ("numpy.random._pickle.__getattr__", DANGEROUS),
        ("numpy.random.bit_generator.SeedSequence.__reduce__", DANGEROUS),
        ("numpy.random.seed", UNKNOWN),
        ("mylib.MyModel", UNKNOWN),
    ],
)
def test_classification(ref: str, verdict: str) -> None:
    assert classify(ref)[0] == verdict
    assert judge([ref, "numpy.ndarray"]).verdict == verdict


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_models_holding_a_numpy_generator_need_no_trust(tmp_path: Path, how: str) -> None:
    """HistGradientBoosting* keep a numpy Generator (its SeedSequence pickles through a
    Cython reconstructor); a forest given a RandomState or a Generator: all are safe,
    convert in the guarded worker and pass the proof."""
    import pickle

    import joblib
    import numpy as np
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )

    rng = np.random.RandomState(7)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
    models = {
        "hgb-c": HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(x, y),
        "hgb-r": HistGradientBoostingRegressor(max_iter=15).fit(x, x[:, 2] * 2.0),
        "rf-rs": forest.fit(x, y),
        "hgb-gen": HistGradientBoostingClassifier(
            max_iter=10, early_stopping=True, random_state=np.random.RandomState(1)
        ).fit(x, y),
    }
    for name, model in models.items():
        path = tmp_path / f"{name}.{how}"
        if how == "pickle":
            path.write_bytes(pickle.dumps(model, protocol=5))
        else:
            joblib.dump(model, path)
        art = inspect_model(path)
        assert art.safety is not None and art.safety.verdict == "safe", (name, art.safety)
        result = convert_model(path, tmp_path / f"{name}.onnx", ConvertOptions(generated_rows=50))
        assert result.report.passed, (name, result.report.summary())
