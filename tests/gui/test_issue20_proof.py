"""Issue 20, item 2 on the Convert page: a failed proof says labels and probabilities
apart, what it means, and one way on with this page's own controls; the table agrees
with the words (no bare "no" beside "100.0 %")."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtWidgets import QTableWidget

from app.errors import ParityError
from app.model.convert import ConversionReport


def _report(**changes: Any) -> ConversionReport:
    base = dict(
        rows=500,
        labels_agreeing=500,
        label_agreement=1.0,
        max_abs_diff=0.02,
        max_abs_diff_probabilities=0.0213,
        tolerance=1e-4,
        passed=False,
        original_ms=12.0,
        onnx_ms=1.0,
        onnx_size_bytes=831_000,
        rows_from="csv",
        rows_over_tolerance=12,
        task="classification",
        rows_probabilities_over=12,
        precision="float32",
    )
    return ConversionReport(**{**base, **changes})


def _fail(window: Any, report: ConversionReport) -> Any:
    page = window.pages["convert"]
    window.go("convert")
    err = ParityError("The proof failed.", "run again with --tolerance 0.03.")
    err.report = report  # type: ignore[attr-defined]
    page._failed(err)
    page.completeChanged.emit()  # as the worker's end does
    return page


def _table(page: Any) -> dict[str, str]:
    table = page.findChildren(QTableWidget, "proofTable")[-1]
    return {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}


def test_a_failed_proof_on_the_page_agrees_with_its_table(window, qtbot) -> None:
    page = _fail(window, _report())
    said = page.verdict.label.text()
    assert page.verdict.kind == "fail"
    assert "same label on 500 of 500 rows" in said
    assert "probabilities differ by up to 0.0213, more than the tolerance of 0.0001 on 12 rows" in (
        said
    )
    assert "same labels as your model but different probabilities" in said
    assert "What to do:</b> if differences of up to 0.03 are fine" in said
    assert "set the accepted difference to 0.03" in said and "Deploy anyway" in said
    assert "--" not in said  # no command-line words in the wizard
    rows = _table(page)
    assert rows["Rows with the same label"] == "500 of 500"
    assert rows["Proof passed"] == "no: probabilities differ on 12 rows"
    assert rows["Numbers taken in"] == "single precision (float32)"
    # the named control exists, and following the step is what the page offers
    assert page.override.isVisible() and page.tolerance.isVisible()
    shot = os.environ.get("MODELSHIP_SHOT_DIR")
    assert "Deploy anyway" in window.why.text()
    assert "Original:" not in said  # the timings are in the table, not in the failure
    if shot:
        qtbot.wait(100)  # laid out
        window.grab().save(os.path.join(shot, "convert-proof-failed.png"))


def test_a_different_label_offers_no_looser_tolerance(window, qtbot) -> None:
    page = _fail(window, _report(labels_agreeing=497, label_agreement=0.994))
    said = page.verdict.label.text()
    assert "a different label on 3" in said and "different answer than your model" in said
    assert "accepted difference to" not in said and "Deploy anyway" in said
    rows = _table(page)
    assert rows["Rows with the same label"] == "497 of 500"
    assert rows["Proof passed"] == "no: answers differ on 12 rows"


def test_a_passed_double_precision_proof_says_so(window, qtbot) -> None:
    from wizards.pages.convert import table_rows

    rows = dict(
        table_rows(
            _report(
                passed=True,
                rows_over_tolerance=0,
                rows_probabilities_over=0,
                max_abs_diff_probabilities=4e-7,
                precision="float64",
            ).to_dict()
        )
    )
    assert rows["Proof passed"] == "yes"
    assert rows["Numbers taken in"] == "double precision (float64)"


def test_the_table_says_how_the_model_was_opened() -> None:
    from wizards.pages.convert import table_rows

    said = "Conversion runs isolated: no network, read-only files except its output."
    rows = dict(table_rows({"rows": 3, "isolation": said}))
    assert rows["How the model was opened"].startswith("Isolated: no network")
    assert "How the model was opened" not in dict(table_rows({"rows": 3, "isolation": ""}))
