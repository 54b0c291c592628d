"""Issue 20 end to end through the installed CLI, against a real local deployment.

* Scoring a labelled file (an ID and the true label next to the model's columns) works
  the same with and without ``-o``; the columns left out are named; a missing needed
  column is named before anything is sent, without HTTP codes or JSON.
* A new model with other inputs does not silently replace a running deployment: a
  non-interactive ``deploy`` refuses with the exact command to run, ``--replace``
  replaces it and says what changed; the running version keeps answering meanwhile.
* A stopped deployment says how to start it instead of "Connection refused".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.integration.test_deploy_cli import modelship
from tests.integration.test_local_target import (  # noqa: F401 - fixtures
    assert_nothing_left,
    free_port,
    iris_model,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def three_column_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same task with one column less: what an analyst retrains and redeploys."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    X = X.drop(columns=["petal width (cm)"])
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("models3") / "other.joblib"
    joblib.dump(model, path)
    return path


def _labelled_csv(path: Path, drop: str | None = None) -> Path:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.head(20)
    frame.insert(0, "id", range(1, 21))
    frame = frame.rename(columns={"target": "species"})
    if drop:
        frame = frame.drop(columns=[drop])
    frame.to_csv(path, index=False)
    return path


def test_scoring_a_labelled_file_and_replacing_a_model_with_other_inputs(
    iris_model: Path,  # noqa: F811
    three_column_model: Path,
    tmp_path: Path,
) -> None:
    port = free_port()
    res = modelship("deploy", str(iris_model), "--name", "flowers", "--port", str(port))
    assert res.returncode == 0, res.stderr
    try:
        _check_scoring(tmp_path)
        _check_no_silent_swap(three_column_model, port)
        _check_stopped()
    finally:
        modelship("teardown", "flowers")
    assert_nothing_left("flowers", port)


def _check_scoring(tmp_path: Path) -> None:
    labelled = _labelled_csv(tmp_path / "labelled.csv")
    plain = modelship("invoke", "flowers", "--csv", str(labelled))
    assert plain.returncode == 0, plain.stderr
    assert "Not sent (the model does not take them): 'id', 'species'" in plain.stderr
    table = list(csv.reader(io.StringIO(plain.stdout)))
    assert table[0][0] == "prediction" and len(table) == 21
    out = tmp_path / "scored.csv"
    scored = modelship("invoke", "flowers", "--csv", str(labelled), "-o", str(out))
    assert scored.returncode == 0, scored.stderr
    assert "'id', 'species'" in scored.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0][:2] == ["id", "sepal length (cm)"] and "prediction" in rows[0]
    # the same predictions either way
    at = rows[0].index("prediction")
    assert [r[at] for r in rows[1:]] == [r[0] for r in table[1:]]
    # a missing needed column: named before anything is sent, in plain words
    short = _labelled_csv(tmp_path / "short.csv", drop="petal length (cm)")
    for extra in ([], ["-o", str(tmp_path / "never.csv")]):
        missing = modelship("invoke", "flowers", "--csv", str(short), *extra)
        assert missing.returncode == 2, missing.stderr
        assert (
            "Your file has no column 'petal length (cm)', which the model needs." in missing.stderr
        )
        for noise in ("422", "{", "HTTP", "'id'"):
            assert noise not in missing.stderr.splitlines()[0], missing.stderr
    assert not (tmp_path / "never.csv").exists()


def _check_no_silent_swap(other: Path, port: int) -> None:
    refused = modelship("deploy", str(other), "--name", "flowers")  # no terminal: no question
    assert refused.returncode == 2, refused.stderr
    first = next(line for line in refused.stderr.splitlines() if line.startswith("error:"))
    assert "inputs change: 'petal width (cm)' removed; callers sending it will get errors" in (
        first
    )
    assert "still runs version 1" in first
    assert f"deploy {other} --name flowers --replace" in refused.stderr
    status = modelship("status", "flowers", "--json")
    assert '"version": 1' in status.stdout and '"answering": true' in status.stdout

    replaced = modelship("deploy", str(other), "--name", "flowers", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "Replacing 'flowers': inputs change: 'petal width (cm)' removed" in replaced.stderr
    # the new model answers where the old one did (its port kept, not 8080)
    assert f"http://127.0.0.1:{port}" in replaced.stdout and "(version 2)" in replaced.stdout
    # a same-input new version deploys as before, with no flag
    again = modelship("deploy", str(other), "--name", "flowers")
    assert again.returncode == 0, again.stderr


def _check_stopped() -> None:
    assert modelship("stop", "flowers").returncode == 0
    res = modelship("invoke", "flowers", "--json", "/dev/null")
    assert res.returncode == 7
    assert "'flowers' is stopped" in res.stderr and "modelship start flowers" in res.stderr
    assert "refused" not in res.stderr.lower()
