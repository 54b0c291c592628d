"""Model: which file, what it is, whether it is safe to open, and who converts it.

Over 600 lines: one page; its safety and input words are kept beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wizards.model_words import NOTEBOOK_CLASS, NOTEBOOK_FIX, class_words, notebook_class
from wizards.nextstep import for_wizard
from wizards.pages.base import Page, busy_bar, note
from wizards.state import WizardState

MODEL_FILTER = (
    "Model files (*.onnx *.pkl *.pickle *.joblib *.skops *.json *.ubj *.txt *.cbm *.pt *.pth "
    "*.pt2 MLmodel);;All files (*)"
)
KIND_NAMES = {
    "sklearn": "scikit-learn",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "catboost": "CatBoost",
    "pytorch": "PyTorch",
    "onnx": "ONNX",
}


class DropArea(QFrame):
    """A dashed box that takes a dropped file (the Choose button does the same)."""

    def __init__(self, on_file: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.on_file = on_file
        self.setAcceptDrops(True)
        self.setObjectName("dropArea")
        self.setMinimumHeight(70)
        self.setStyleSheet(
            "QFrame#dropArea { border: 2px dashed #8c959f; border-radius: 8px; }"
            'QFrame#dropArea[hover="true"] { border-color: #0969da; background: #ddf4ff; }'
        )
        lay = QVBoxLayout(self)
        label = QLabel("Drop your model file (or MLflow model folder) here")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(label)

    def _set_hover(self, on: bool) -> None:
        self.setProperty("hover", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self._set_hover(True)

    def dragLeaveEvent(self, event: Any) -> None:
        self._set_hover(False)

    def dropEvent(self, event: Any) -> None:
        self._set_hover(False)
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.on_file(Path(urls[0].toLocalFile()))


class ModelPage(Page):
    page_id = "model"
    title = "Which model do you want to put online?"
    subtitle = (
        "Choose the file you saved your trained model in, or the MLflow model folder "
        "(the one with the MLmodel file). ModelShip looks inside without running it and "
        "tells you what it found."
    )
    icon_name = "model"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        # (file, its sha256, trusted on this computer) of the pickle inspected last
        self._digest: tuple[Path, str, bool] | None = None
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("modelPath")
        self.path_edit.setPlaceholderText(
            "Path to a model file (.joblib, .pkl, .skops, .cbm, .onnx, ...) or MLflow folder"
        )
        self.path_edit.editingFinished.connect(self._path_typed)
        self.browse_button = QPushButton("Choose model &file…")
        self.browse_button.clicked.connect(self._browse)
        self.folder_button = QPushButton("Choose f&older…")
        self.folder_button.setObjectName("chooseFolder")
        self.folder_button.setToolTip("An MLflow model folder: the one with the MLmodel file")
        self.folder_button.clicked.connect(self._browse_folder)
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        row.addWidget(self.folder_button)
        self.body.addLayout(row)
        self.drop = DropArea(self.set_model_path)
        self.body.addWidget(self.drop)
        self.bar = busy_bar()
        self.body.addWidget(self.bar)

        self.found = QGroupBox("What ModelShip found")
        found_form = QFormLayout(self.found)
        self.kind_label = QLabel("—")
        self.libs_label = QLabel("—")
        self.libs_label.setWordWrap(True)
        self.inputs_label = QLabel("—")
        self.inputs_label.setWordWrap(True)
        self.inputs_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        found_form.addRow("Model:", self.kind_label)
        found_form.addRow("Made with:", self.libs_label)
        found_form.addRow("Input:", self.inputs_label)
        self.found.setVisible(False)
        self.body.addWidget(self.found)

        self.problem = note("", "fail")
        self.problem.setVisible(False)
        self.body.addWidget(self.problem)
        self.warnings = note("", "warning")
        self.warnings.setVisible(False)
        self.body.addWidget(self.warnings)

        # pickle warning: the safety verdict first, in words; what the file names only
        # under Details; then the explicit "I trust this file"
        self.pickle_box = QGroupBox("Opening this file runs code")
        pickle_lay = QVBoxLayout(self.pickle_box)
        self.pickle_verdict = QLabel()
        self.pickle_verdict.setObjectName("safetyVerdict")
        self.pickle_verdict.setWordWrap(True)
        self.pickle_verdict.setStyleSheet("font-weight: normal; color: palette(text);")
        pickle_lay.addWidget(self.pickle_verdict)
        self.pickle_text = QLabel()
        self.pickle_text.setWordWrap(True)
        self.pickle_text.setStyleSheet("font-weight: normal; color: palette(text);")
        pickle_lay.addWidget(self.pickle_text)
        self.pickle_more = QPushButton("Details: what the file refers to")
        self.pickle_more.setObjectName("safetyDetails")
        self.pickle_more.setCheckable(True)
        self.pickle_more.setFlat(True)
        self.pickle_more.setStyleSheet("text-align: left; color: #0969da; font-weight: normal;")
        self.pickle_more.toggled.connect(self._show_pickle_details)
        pickle_lay.addWidget(self.pickle_more, 0, Qt.AlignmentFlag.AlignLeft)
        self.pickle_details = QLabel()
        self.pickle_details.setObjectName("safetyModules")
        self.pickle_details.setWordWrap(True)
        self.pickle_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pickle_details.setStyleSheet("font-weight: normal; color: #57606a;")
        self.pickle_details.setVisible(False)
        pickle_lay.addWidget(self.pickle_details)
        self.trust = QCheckBox("I trust this file: I made it, or it comes from someone I trust")
        self.trust.setObjectName("trustCheck")
        self.trust.toggled.connect(self._trust_changed)
        pickle_lay.addWidget(self.trust)
        self.pickle_box.setStyleSheet("QGroupBox { font-weight: bold; color: #9a6700; }")
        self.pickle_box.setVisible(False)
        self.body.addWidget(self.pickle_box)

        # PyTorch models need the shape of their input (or sample inputs) to convert
        self.torch_box = QGroupBox("One more thing for a PyTorch model")
        self.torch_box.setObjectName("torchBox")
        torch_form = QFormLayout(self.torch_box)
        self.shape_edit = QLineEdit()
        self.shape_edit.setObjectName("inputShape")
        self.shape_edit.setPlaceholderText("e.g. 1,3,32,32")
        self.shape_edit.setValidator(
            QRegularExpressionValidator(QRegularExpression(r"^\s*\d+(\s*,\s*\d+)*\s*$"), self)
        )
        self.shape_edit.textChanged.connect(lambda _t: self.completeChanged.emit())
        torch_form.addRow("Input shape:", self.shape_edit)
        shape_help = QLabel(
            "The size of one input, batch first: 1,3,32,32 is one colour image of 32×32 "
            "pixels; 1,10 is one row of 10 numbers. Or leave it empty and choose sample "
            "inputs saved with numpy.save (a .npy file) below."
        )
        shape_help.setWordWrap(True)
        shape_help.setStyleSheet("color: #57606a;")
        torch_form.addRow("", shape_help)
        self.torch_box.setVisible(False)
        self.body.addWidget(self.torch_box)

        extra = QGroupBox("Optional")
        extra_form = QFormLayout(extra)
        csv_row = QHBoxLayout()
        self.csv_edit = QLineEdit()
        self.csv_edit.setObjectName("sampleCsv")
        self.csv_edit.setPlaceholderText("None: ModelShip makes up sample rows")
        self.csv_button = QPushButton("Choose CS&V…")
        self.csv_button.clicked.connect(self._browse_csv)
        csv_row.addWidget(self.csv_edit, 1)
        csv_row.addWidget(self.csv_button)
        self.csv_label = QLabel("Sample rows (CSV):")
        extra_form.addRow(self.csv_label, csv_row)
        self.csv_edit.textChanged.connect(lambda _t: self.completeChanged.emit())
        self.python_combo = QComboBox()
        self.python_combo.setObjectName("pythonChoice")
        self.python_combo.addItem("ModelShip's built-in Python", userData=None)
        self.python_combo.addItem("Another Python environment…", userData="__choose__")
        self.python_combo.activated.connect(self._python_chosen)
        python_help = QLabel(
            "A pickled model loads reliably only with the library versions it was saved "
            "with. If yours came from another environment, pick that environment's Python."
        )
        python_help.setWordWrap(True)
        python_help.setStyleSheet("color: #57606a;")
        extra_form.addRow("Convert with:", self.python_combo)
        extra_form.addRow("", python_help)
        self.body.addWidget(extra)
        self.body.addStretch(1)
        self.setTabOrder(self.path_edit, self.browse_button)
        self.setTabOrder(self.browse_button, self.folder_button)
        self.setTabOrder(self.folder_button, self.trust)
        self.setTabOrder(self.trust, self.csv_edit)
        self.setTabOrder(self.csv_edit, self.csv_button)
        self.setTabOrder(self.csv_button, self.python_combo)

    # ---- choosing ----------------------------------------------------------------
    def enter(self) -> None:
        if self.state.model_path is None:  # a new deployment: start from a clean page
            self.path_edit.clear()
            for box in (self.found, self.problem, self.warnings, self.pickle_box, self.torch_box):
                box.setVisible(False)
            self.trust.setChecked(False)
        elif self.path_edit.text() != str(self.state.model_path) or self.state.artifact is None:
            self.set_model_path(self.state.model_path)
        self.csv_edit.setText(str(self.state.sample_csv) if self.state.sample_csv else "")
        self.shape_edit.setText(",".join(map(str, self.state.input_shape or [])))
        self.set_python(self.state.python)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose your model file", "", MODEL_FILTER)
        if path:
            self.set_model_path(Path(path))

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the MLflow model folder")
        if path:
            self.set_model_path(Path(path))

    def _browse_csv(self) -> None:
        if self._is_torch():
            title, kinds = "Choose sample inputs", "NumPy arrays (*.npy);;All files (*)"
        else:
            title, kinds = "Choose sample rows", "CSV files (*.csv);;All files (*)"
        path, _ = QFileDialog.getOpenFileName(self, title, "", kinds)
        if path:
            self.csv_edit.setText(path)

    def _python_chosen(self, index: int) -> None:
        if self.python_combo.itemData(index) != "__choose__":
            return
        path, _ = QFileDialog.getOpenFileName(self, "Choose the Python of your environment")
        if path:
            from app.store.trust import trust_python

            try:  # chosen here by the person: trusted on this computer (path and hash)
                trust_python(path)
            except Exception as exc:
                self.error(exc, "choosing the Python")
                self.python_combo.setCurrentIndex(0)
                return
            self.set_python(path)
        else:
            self.python_combo.setCurrentIndex(0)

    def set_python(self, path: str | None) -> None:
        if path is None:
            self.python_combo.setCurrentIndex(0)
            return
        i = self.python_combo.findData(path)
        if i < 0:
            self.python_combo.insertItem(1, path, userData=path)
            i = 1
        self.python_combo.setCurrentIndex(i)

    def _path_typed(self) -> None:
        text = self.path_edit.text().strip()
        if text and (self.state.model_path is None or Path(text) != self.state.model_path):
            self.set_model_path(Path(text).expanduser())

    def set_model_path(self, path: Path) -> None:
        """Inspect a model file (off the GUI thread); the page fills in when done."""
        if path.name == "MLmodel":  # chosen in the file dialog: the model is its folder
            path = path.parent
        self.stop_workers()
        self.path_edit.setText(str(path))
        if self.state.model_path != path:
            self.state.conversion = None
            self.state.trusted = False
            if not self.state.loaded_from_profile:
                self.state.name = ""  # named after the new file
        self.state.model_path = path
        self.state.artifact = None
        self.found.setVisible(False)
        self.problem.setVisible(False)
        self.warnings.setVisible(False)
        self.pickle_box.setVisible(False)
        self.torch_box.setVisible(False)
        self.bar.setVisible(True)
        self.completeChanged.emit()

        def work(progress: Any, cancel: Any) -> Any:
            from app.model.intake import inspect_model

            artifact = inspect_model(path)
            if artifact.runs_code_on_load:  # trusted on this computer before? (its hash)
                from app.hashing import sha256_file
                from app.store.trust import model_trusted

                digest = sha256_file(path)
                self._digest = (path, digest, model_trusted(digest))
            return artifact

        self.start_worker(
            work,
            name="inspect",
            on_result=self._inspected,
            on_error=self._failed,
            on_finished=self._done,
        )
        self.busyChanged.emit(True)

    def _done(self) -> None:
        self.bar.setVisible(False)
        self.busyChanged.emit(False)
        self.completeChanged.emit()

    def _failed(self, exc: BaseException) -> None:
        from app.errors import ModelShipError
        from wizards import notify

        cause, hint, _details = notify.describe(exc)
        self.problem.label.setText(
            f"<b>This file cannot be used.</b> {_esc(cause)}<br><b>Next step:</b> {_esc(hint)}"
        )
        self.problem.setVisible(True)
        if not isinstance(exc, ModelShipError):  # a bug: the dialog has the diagnostics
            self.error(exc, "reading the model file")

    def _inspected(self, artifact: Any) -> None:
        self.state.artifact = artifact
        kind = KIND_NAMES.get(artifact.kind, artifact.kind)
        what = estimator_words(artifact.estimator) or kind
        where = "MLflow model folder, " if getattr(artifact, "mlflow", None) else ""
        self.kind_label.setText(f"<b>{what}</b> ({kind}, {where}saved as {artifact.format})")
        self.kind_label.setToolTip(artifact.estimator or "")
        libs = artifact.libraries or {}
        self.libs_label.setText(
            ", ".join(f"{lib} {ver}" for lib, ver in libs.items()) or "not recorded in the file"
        )
        self.inputs_label.setText(describe_inputs(artifact.inputs))
        self.found.setVisible(True)
        torch = artifact.kind == "pytorch"
        self.torch_box.setVisible(torch)
        self.csv_label.setText("Sample inputs (.npy):" if torch else "Sample rows (CSV):")
        logged = getattr(artifact, "mlflow", None)
        if logged is not None and logged.example:
            self.csv_edit.setPlaceholderText("None: the model's input example, plus made-up rows")
        else:
            self.csv_edit.setPlaceholderText(
                "None: ModelShip makes up inputs of the shape above"
                if torch
                else "None: ModelShip makes up sample rows"
            )
        if torch and not self.shape_edit.text().strip() and logged is not None:
            shape = logged_shape(artifact)
            if shape:  # the shape the model was logged with
                self.shape_edit.setText(",".join(map(str, shape)))
        notebook = notebook_class(artifact.estimator or "")
        if notebook:
            self.problem.label.setText(
                f"<b>{_esc(NOTEBOOK_CLASS.format(cls=notebook))}</b><br><b>What to do:</b> "
                + _esc(NOTEBOOK_FIX)
            )
            self.problem.setVisible(True)
        warnings = [
            for_wizard(w)
            for w in artifact.warnings
            # the pickle box below says this, with the "I trust this file" choice
            if not (artifact.runs_code_on_load and "runs code" in w)
            and not (artifact.safety is not None and w == artifact.safety.summary())
            # said by the boxes above, in the wizard's words
            and not (torch and "input shape" in w)
            and not (notebook and "must be importable" in w)
        ]
        if warnings:
            self.warnings.label.setText("<br>".join(_esc(w) for w in warnings))
            self.warnings.setVisible(True)
        if artifact.runs_code_on_load:
            title, verdict, why, names = safety_words(artifact)
            self.pickle_box.setTitle(title)
            self.pickle_verdict.setText(verdict)
            self.pickle_text.setText(why)
            self.pickle_details.setText(names)
            self.pickle_more.setVisible(bool(names))
            self.pickle_more.setChecked(False)
            self._show_pickle_details(False)
            known = self._digest
            if known is not None and known[0] == self.state.model_path and known[2]:
                self.state.trusted = True  # "I trust this file" given before, on this computer
            self.trust.setChecked(self.state.trusted)
            self.pickle_box.setVisible(True)
        self.completeChanged.emit()

    def _show_pickle_details(self, on: bool) -> None:
        self.pickle_details.setVisible(on and bool(self.pickle_details.text()))
        self.pickle_more.setText("Hide details" if on else "Details: what the file refers to")

    def _trust_changed(self, on: bool) -> None:
        self.state.trusted = on
        known = self._digest
        if known is not None and known[0] == self.state.model_path and known[2] != on:
            # kept on this computer by the file's hash (app.store.trust), never in the profile
            from app.store import trust

            if on:
                trust.trust_model(known[0], known[1])
            else:
                trust.forget_model(known[1])
            self._digest = (known[0], known[1], on)
        self.completeChanged.emit()

    # ---- leaving ----------------------------------------------------------------
    def _is_torch(self) -> bool:
        return getattr(self.state.artifact, "kind", None) == "pytorch"

    def _shape(self) -> list[int] | None:
        text = self.shape_edit.text().strip()
        if not text or not self.shape_edit.hasAcceptableInput():
            return None
        shape = [int(p) for p in text.split(",")]
        return shape if all(d > 0 for d in shape) else None

    def _torch_ready(self) -> bool:
        """A PyTorch model converts with an input shape or sample inputs (.npy)."""
        if not self._is_torch():
            return True
        return self._shape() is not None or self.csv_edit.text().strip().endswith(".npy")

    def is_complete(self) -> bool:
        artifact = self.state.artifact
        if artifact is None or notebook_class(artifact.estimator or ""):
            return False
        if not self._torch_ready():
            return False
        return not artifact.runs_code_on_load or self.state.trusted

    def blocked_reason(self) -> str:
        if self.is_busy():
            return "Looking inside the file…"
        if self.state.model_path is None:
            return "Choose your model file first."
        if self.state.artifact is None:
            return "This file cannot be used (see above)."
        if notebook_class(self.state.artifact.estimator or ""):
            return "This model cannot be loaded as saved (see above)."
        if not self._torch_ready():
            return "Type the input shape (e.g. 1,3,32,32) or choose sample inputs (.npy)."
        if self.state.artifact.runs_code_on_load and not self.state.trusted:
            return "Tick “I trust this file” to go on."
        return ""

    def accept(self) -> bool:
        csv = self.csv_edit.text().strip()
        new_csv = Path(csv).expanduser() if csv else None
        if new_csv is not None and not new_csv.is_file():
            from app.errors import UsageError

            self.error(
                UsageError(
                    f"The sample file {new_csv} does not exist.",
                    "Choose an existing file, or clear the field to let ModelShip "
                    "make up sample rows.",
                )
            )
            return False
        python = self.python_combo.currentData()
        shape = self._shape() if self._is_torch() else None
        if (
            new_csv != self.state.sample_csv
            or python != self.state.python
            or shape != self.state.input_shape
        ):
            self.state.conversion = None
        self.state.sample_csv = new_csv
        self.state.input_shape = shape
        self.state.python = python
        return True


def logged_shape(artifact: Any) -> list[int] | None:
    """The input shape an MLflow PyTorch model was logged with (batch 1), if known."""
    tensor = artifact.mlflow.tensor if artifact.mlflow is not None else None
    if tensor and len(tensor["shape"]) >= 2 and all(d > 0 for d in tensor["shape"][1:]):
        return [1, *tensor["shape"][1:]]
    example = (artifact.mlflow.example or {}).get("array") if artifact.mlflow else None
    if example and isinstance(example[0], list):
        shape = [1]
        row = example[0]
        while isinstance(row, list):
            shape.append(len(row))
            row = row[0] if row else None
        return shape
    return None


def safety_words(artifact: Any) -> tuple[str, str, str, str]:
    """(box title, the verdict in plain words, what it means, the names the file refers
    to): the verdict first, the module paths only for whoever opens Details."""
    from app.model.picklescan import DANGEROUS, UNKNOWN

    safety = getattr(artifact, "safety", None)
    verdict = getattr(safety, "verdict", None)
    imports = list(getattr(artifact, "pickle_imports", None) or [])
    if safety is not None and getattr(safety, "imports", None):
        imports = list(safety.imports)
    names = ""
    if imports:
        names = "It refers to: " + _esc(", ".join(imports[:40]))
        if len(imports) > 40:
            names += f" and {len(imports) - 40} more"
    trust = "Only continue if you made this file yourself or got it from someone you trust."
    if verdict == DANGEROUS:
        what = ", ".join(list(safety.dangerous)[:3])
        return (
            "This file could harm your computer",
            "<b>Not safe: opening this file would run commands on your computer.</b>",
            "A trained model never needs that. Do not use it unless you made it yourself "
            f"and know why it does this. (It would call {_esc(what)}.)",
            names,
        )
    if verdict == UNKNOWN:
        count = len(safety.unknown)
        return (
            "Opening this file runs code",
            "<b>Not known to be safe: this file names code ModelShip does not know"
            f" ({count} name{'s' if count != 1 else ''}).</b>",
            "Converting it means opening it, and that runs this code. " + trust,
            names,
        )
    kind = "skops file" if getattr(artifact, "format", "") == "skops" else "pickle"
    return (
        "Opening this file runs code",
        "<b>Looks safe: ModelShip looked inside without opening it and found only "
        "model classes and data it knows.</b>",
        f"Still, this file is a Python {kind}: converting it means opening it, and a "
        f"{kind} can run any code that was put into it. " + trust,
        names,
    )


def estimator_words(path: str | None) -> str | None:
    """The class an analyst knows (RandomForestClassifier), not its private module path."""
    return class_words(path)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_inputs(inputs: list[dict]) -> str:
    """Inputs in words: "4 columns: sepal_length (number), ..." or tensor shapes."""
    if not inputs:
        return "found out during conversion"
    parts = []
    for spec in inputs[:12]:
        name = spec.get("name", "?")
        dtype = str(spec.get("dtype", "") or "")
        shape = spec.get("shape")
        word = (
            "text"
            if dtype in {"str", "object", "string"}
            else "number"
            if dtype.startswith(("float", "int", "uint"))
            else dtype or "value"
        )
        if shape and len(shape) > 1:
            dims = " × ".join("any" if d in (None, -1) else str(d) for d in shape)
            parts.append(f"{name} ({word}, {dims})")
        else:
            parts.append(f"{name} ({word})")
    more = len(inputs) - 12
    text = ", ".join(parts) + (f" and {more} more" if more > 0 else "")
    return f"{len(inputs)} input{'s' if len(inputs) != 1 else ''}: {text}"


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(ModelPage))
