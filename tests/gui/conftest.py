"""Fixtures for the wizard's tests: a window, a real model file, a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def answers(monkeypatch):
    """Every question the wizard asks (wizards.ask) is answered from ``replies`` (yes when
    it runs out) and recorded, so that no test ever blocks on a modal box."""
    from types import SimpleNamespace

    from wizards import ask

    asked: list[str] = []
    told: list[str] = []
    replies: list[bool] = []

    def confirm(parent, title, text, yes="Yes", no="No"):
        asked.append(f"{title}\n{text}")
        return replies.pop(0) if replies else True

    monkeypatch.setattr(ask, "confirm", confirm)
    monkeypatch.setattr(ask, "inform", lambda parent, title, text: told.append(f"{title}\n{text}"))
    return SimpleNamespace(asked=asked, told=told, replies=replies)


@pytest.fixture
def window(qtbot) -> Iterator:
    """The wizard's main window, shown offscreen; closed (workers stopped) afterwards."""
    from wizards import notify
    from wizards.window import WizardWindow

    win = WizardWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    notify.close_all()
    win.close()


def _trained_model(path: Path) -> Path:
    """A small real scikit-learn pipeline saved with joblib (what analysts hand us)."""
    import joblib
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris(as_frame=True)
    frame: pd.DataFrame = iris.frame.drop(columns=["target"])
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    model.fit(frame, iris.target)
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def sample_model(tmp_path_factory) -> Path:
    """The bundled sample model when present, else a freshly trained one."""
    try:
        from app.model.samples import sample_model_path

        path = Path(sample_model_path())
        if path.is_file():
            return path
    except ImportError:
        pass
    return _trained_model(tmp_path_factory.mktemp("model") / "iris.joblib")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by another program for the whole test."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def pytest_collection_modifyitems(items) -> None:
    """The offscreen platform warns that it cannot propagate size hints whenever a
    dialog is shown; that says nothing about the wizard, every other warning fails."""
    for item in items:
        if "tests/gui/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_ignore("does not support propagateSizeHints"))
