"""`deploy` and profiles honour pickle safety: nothing is loaded without trust, and
trust is given to one exact file (its hash), kept on this computer (app.store.trust), so it
does not carry over to a file that changed, nor travel with a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.errors import ModelError
from app.hashing import sha256_file
from app.run import run_deploy, teardown
from app.store.profile import load_profile, new_profile, profile_path
from app.store.records import find_record
from app.store.trust import model_trusted
from tests.security import hostile


def _benign_unknown(path: Path) -> Path:
    import fractions

    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = hostile._data()
    model = LogisticRegression().fit(x, y)
    model.note_ = fractions.Fraction(1, 3)  # harmless, but not on the allowlist
    joblib.dump(model, path)
    return path


def test_deploy_refuses_a_hostile_pickle_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    (tmp_path / "corpus").mkdir()
    files = hostile.build(tmp_path / "corpus", marker)
    path = files["pipeline-p4.pkl"]
    assert main(["deploy", str(path), "--name", "hostile"]) == ModelError.exit_code
    assert not marker.exists()
    assert find_record("hostile") is None
    assert not profile_path("hostile").exists()  # a refused deploy saves nothing


@pytest.mark.slow
def test_deploy_trust_is_for_this_file_only(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    path = _benign_unknown(tmp_path / "benign.joblib")
    # without trust: refused before anything loads it
    assert main(["deploy", str(path), "--name", "benign", "--port", str(free_port)]) == 3
    # with --trust: deployed, and this computer remembers which file was trusted
    assert main(["deploy", str(path), "--name", "benign", "--port", str(free_port),
                 "--trust"]) == 0  # fmt: skip
    try:
        saved = load_profile("benign")
        assert model_trusted(sha256_file(path))
        assert "trusted_sha256" not in profile_path("benign").read_text(encoding="utf-8")
        # the same file again from the saved profile: still trusted, no flag needed
        record = run_deploy(saved)
        assert record.current_version == 2
        # the file changes under the same name: the old trust does not carry over
        import fractions

        import joblib

        model = joblib.load(path)
        model.note_ = fractions.Fraction(2, 3)
        joblib.dump(model, path)
        with pytest.raises(ModelError, match="does not know"):
            run_deploy(new_profile(path, name="benign", settings={"port": free_port}))
        changed = load_profile("benign")
        assert not model_trusted(sha256_file(path))
        with pytest.raises(ModelError, match="does not know"):
            run_deploy(changed)
    finally:
        teardown("benign")
