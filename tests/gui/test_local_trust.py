"""The wizard's side of "trust stays on this computer" (issue 19): "I trust this file"
is kept in the local trust store (by the file's hash), a profile's own Python is asked
about before it runs, and a service address that is not the platform's own is asked
about before the settings check sends it a key."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from tests.gui.helpers import assert_no_command_line_words, choose_model, wait_idle


def _pickle(path: Path) -> Path:
    from sklearn.linear_model import LinearRegression

    path.write_bytes(pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])))
    return path


def test_i_trust_this_file_is_kept_on_this_computer(window, qtbot, tmp_path) -> None:
    from app.store import trust

    path = _pickle(tmp_path / "reg.pkl")
    window.go("model")
    page = window.pages["model"]
    choose_model(qtbot, window, path, trust=False)
    assert not page.trust.isChecked() and not trust.file_trusted(path)
    page.trust.setChecked(True)
    assert trust.file_trusted(path)  # in the store, by its hash
    # the same file chosen again (a new deployment): already ticked
    window.state.reset()
    window.go("model")
    choose_model(qtbot, window, path, trust=False)
    assert page.trust.isChecked() and window.state.trusted
    page.trust.setChecked(False)  # taken back
    assert not trust.file_trusted(path)
    # the profile saved from the wizard carries no trust
    assert "trusted_sha256" not in window.state.build_profile().to_toml()


def _profile_with_python(tmp_path: Path, python: str) -> Path:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    path = tmp_path / "shared.toml"
    path.write_text(
        f'schema = 2\nname = "shared"\n\n[model]\npath = "{model}"\npython = "{python}"\n',
        encoding="utf-8",
    )
    return path


def test_a_profile_with_its_own_python_is_asked_about(window, qtbot, tmp_path, answers) -> None:
    from app.store import trust

    py = Path(sys.prefix) / "bin" / "python3"
    profile = _profile_with_python(tmp_path, str(py))
    start = window.pages["start"]
    answers.replies.append(False)  # "Use ModelShip's own"
    start.open_profile(profile)
    assert any("Run this profile's Python?" in q and str(py) in q for q in answers.asked)
    assert window.state.python is None and not trust.python_trusted(str(py))
    answers.replies.append(True)  # "Use this Python"
    start.open_profile(profile)
    assert window.state.python == str(py) and trust.python_trusted(str(py))
    asked = len(answers.asked)
    start.open_profile(profile)  # trusted now: not asked again
    assert len(answers.asked) == asked


def test_a_foreign_address_is_asked_about_before_the_check(
    window, qtbot, tmp_path, answers, monkeypatch
) -> None:
    from app.store import trust

    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    window.state.model_path = model
    window.state.target_name = "heroku"
    window.state.settings = {
        "app": "my-app",
        "api_url": "http://127.0.0.1:9",
        "require_api_key": False,
    }
    # "Not now" (the page checks on entering, and again on "Check again"): the check
    # then says what is wrong, in words
    answers.replies.extend([False, False])
    window.go("settings")
    page = window.pages["settings"]
    wait_idle(qtbot, page, 60_000)
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert any("Trust this address?" in q and "http://127.0.0.1:9" in q for q in answers.asked)
    assert "http://127.0.0.1:9" not in trust.allowed_hosts()
    text = page.problems.label.text()
    assert "not confirmed it on this computer" in text and "Trust this address" in text
    assert_no_command_line_words(page)
    answers.replies.append(True)  # "Trust this address"
    page.check_button.click()
    wait_idle(qtbot, page, 60_000)
    assert "http://127.0.0.1:9" in trust.allowed_hosts()
    assert "not confirmed it on this computer" not in page.problems.label.text()
