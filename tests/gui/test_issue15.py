"""Issue 15 on the Model page: an MLflow model folder (chosen as a folder, or by its
MLmodel file), a CatBoost file, and a skops file that names code ModelShip does not
know (it asks for trust, naming that code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gui.helpers import wait_idle
from tests.unit import mlflow_models as mm
from wizards.pages.model import MODEL_FILTER

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("issue15-gui")
    return {
        "mlflow": mm.mlflow_sklearn(d / "churn-model"),
        "catboost": mm.catboost_files(d / "cb")["cbm"],
        **{f"skops_{k}": v for k, v in mm.skops_files(d / "skops").items()},
    }


def test_mlflow_folder_is_read_and_next_is_open(window, qtbot, files) -> None:
    window.go("model")
    page = window.pages["model"]
    assert page.folder_button.isVisible()
    assert "*.skops" in MODEL_FILTER and "*.cbm" in MODEL_FILTER
    page.set_model_path(files["mlflow"] / "MLmodel")  # picked in the file dialog
    wait_idle(qtbot, page)
    assert window.state.model_path == files["mlflow"]
    assert "MLflow model folder" in page.kind_label.text()
    assert "age (number)" in page.inputs_label.text()
    assert "input example" in page.csv_edit.placeholderText()
    assert not page.pickle_box.isVisible()
    assert window.next_button.isEnabled()


def test_catboost_file_is_described(window, qtbot, files) -> None:
    window.go("model")
    page = window.pages["model"]
    page.set_model_path(files["catboost"])
    wait_idle(qtbot, page)
    assert "CatBoost" in page.kind_label.text()
    assert "3 inputs: age (number)" in page.inputs_label.text()
    assert window.next_button.isEnabled()


def test_skops_with_unknown_code_asks_for_trust(window, qtbot, files) -> None:
    window.go("model")
    page = window.pages["model"]
    page.set_model_path(files["skops_custom"])
    wait_idle(qtbot, page)
    assert page.pickle_box.isVisible()
    # the verdict first, in words; the names only under Details
    assert "names code ModelShip does not know" in page.pickle_verdict.text()
    assert "tests.unit" not in page.pickle_verdict.text() + page.pickle_text.text()
    assert not page.pickle_details.isVisible()
    page.pickle_more.click()
    assert page.pickle_details.isVisible()
    assert "tests.unit.mlflow_models.double" in page.pickle_details.text()
    assert not window.next_button.isEnabled()
    page.trust.setChecked(True)
    assert window.next_button.isEnabled()
    page.set_model_path(files["skops_plain"])
    wait_idle(qtbot, page)
    assert not page.pickle_box.isVisible() and window.next_button.isEnabled()
