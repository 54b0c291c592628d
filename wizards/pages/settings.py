"""Target settings: a form drawn from the target's typed Settings, and its preflight.

Over 600 lines: one page whose generated form, preflight and one-click fixes share
the editors' state.

The form is generated from the pydantic ``Settings`` model of the chosen target
(``str``, ``int``, ``float``, ``bool``, enums/``Literal`` and ``SecretRef``), using each
field's title and description, so a new target needs no wizard code. Secret values go
into the operating system's keyring; the profile only keeps the entry's name.

The cloud targets add a panel of their own on top (``wizards.forms``): dropdowns filled
from the cloud, credentials found or imported, live checks. Their values still go into
the same generated editors, so the profile's keys are the Settings fields' names.
"""

from __future__ import annotations

import enum
import re
import sys
import typing
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from wizards import ask, notify
from wizards.nextstep import for_wizard
from wizards.pages.base import Page, busy_bar, note
from wizards.state import WizardState


def is_secret_field(info: Any) -> bool:
    """True for ``SecretRef`` fields (marked with ``json_schema_extra={"secret_ref": True}``)."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("secret_ref"):
        return True
    for arg in typing.get_args(info.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            meta_extra = getattr(meta, "json_schema_extra", None)
            if isinstance(meta_extra, dict) and meta_extra.get("secret_ref"):
                return True
    return False


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``Annotated[str, ...]`` -> str."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _base_type(args[0])
    return annotation


def secure_keyring() -> tuple[bool, str]:
    """(available, backend name): ``app.store.secrets`` decides what counts as secure."""
    from app.store.secrets import backend_name, secure_backend_available

    return secure_backend_available(), backend_name()


def store_secret(ref: str, value: str) -> None:
    """Put a secret into the keyring under the entry name ``ref`` (via app.store.secrets)."""
    from app.store.secrets import set_secret

    set_secret(ref, value)


class FieldEditor:
    """One generated form row: the widget and how to read/write its value."""

    def __init__(self, name: str, info: Any, page: SettingsPage, choice: bool = False) -> None:
        self.name = name
        self.info = info
        self.secret = is_secret_field(info)
        self.kind = "str"
        base = _base_type(info.annotation)
        default = None if info.is_required() else info.default
        # ``int | None``: a spin box cannot be empty, so its lowest step means "none"
        self.optional = _allows_none(info.annotation)
        self.none_words = _none_words(info.description or "")
        self.secret_value: QLineEdit | None = None
        self.advanced = False  # shown under “Show more settings”
        self.hint: QLabel | None = None
        if self.secret:
            self.kind = "secret"
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            self.widget = QLineEdit()
            self.widget.setPlaceholderText("name of the keyring entry")
            self.secret_value = QLineEdit()
            self.secret_value.setEchoMode(QLineEdit.EchoMode.Password)
            self.secret_value.setPlaceholderText(
                "the secret itself: stored in your system keyring, never in the profile"
            )
            self.secret_value.setObjectName(f"secret-{name}")
            lay.addWidget(self.secret_value)
            lay.addWidget(self.widget)
            self.row_widget = box
        elif choice:
            # a dropdown filled later (from the cloud); typing a value still works
            self.kind = "choice"
            self.widget = QComboBox()
            self.widget.setEditable(True)
            self.widget.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
            self.widget.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            self.widget.setMinimumContentsLength(12)
            self.widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.row_widget = self.widget
        elif base is bool:
            self.kind = "bool"
            self.widget = QCheckBox(info.description or "")
            self.row_widget = self.widget
        elif base is int:
            self.kind = "int"
            self.widget = QSpinBox()
            lo, hi = _bounds(info, -(2**31), 2**31 - 1)
            if self.optional:
                lo -= 1
                self.widget.setSpecialValueText(self.none_words)
            self.widget.setRange(int(lo), int(hi))
            self.row_widget = self.widget
        elif base is float:
            self.kind = "float"
            self.widget = QDoubleSpinBox()
            lo, hi = _bounds(info, -1e9, 1e9)
            if self.optional:
                lo = max(-1e9, lo - 1)
                self.widget.setSpecialValueText(self.none_words)
            if is_seconds(name, info):  # "60 s", not "60.00"
                self.widget.setDecimals(0)
                self.widget.setSuffix(" s")
                lo = max(lo, 1.0) if not self.optional else lo
            else:
                self.widget.setDecimals(2)
            self.widget.setRange(float(lo), float(hi))
            self.row_widget = self.widget
        elif isinstance(base, type) and issubclass(base, enum.Enum):
            self.kind = "enum"
            self.widget = QComboBox()
            for member in base:
                self.widget.addItem(str(member.value), userData=member.value)
            self.row_widget = self.widget
        elif typing.get_origin(base) is typing.Literal:
            self.kind = "enum"
            self.widget = QComboBox()
            for value in typing.get_args(base):
                self.widget.addItem(str(value), userData=value)
            self.row_widget = self.widget
        else:
            self.widget = QLineEdit()
            self.row_widget = self.widget
        self.widget.setObjectName(f"setting-{name}")
        if info.description and self.kind != "bool":
            self.widget.setToolTip(info.description)
        if default is not None or self.optional:
            self.set(default)
        self._connect(page)

    def _connect(self, page: SettingsPage) -> None:
        w = self.widget
        if isinstance(w, QLineEdit):
            w.textChanged.connect(page.changed)
        elif isinstance(w, QCheckBox):
            w.toggled.connect(page.changed)
        elif isinstance(w, QSpinBox | QDoubleSpinBox):
            w.valueChanged.connect(page.changed)
        elif isinstance(w, QComboBox):
            w.currentIndexChanged.connect(page.changed)
            if w.isEditable():
                w.editTextChanged.connect(page.changed)
        if self.secret_value is not None:
            self.secret_value.textChanged.connect(page.changed)

    @property
    def label(self) -> str:
        return self.info.title or self.name.replace("_", " ").capitalize()

    def get(self) -> Any:
        w = self.widget
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox | QDoubleSpinBox):
            if self.optional and w.value() == w.minimum():
                return None
            return w.value()
        if isinstance(w, QComboBox) and self.kind == "choice":
            text = w.currentText().strip()
            i = w.findText(text)
            if i >= 0:  # an entry of the list: its value (None: "automatic")
                return w.itemData(i)
            return text or None
        if isinstance(w, QComboBox):
            return w.currentData()
        text = w.text().strip()
        return text or None

    def set(self, value: Any) -> None:
        w = self.widget
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox | QDoubleSpinBox) and value is None:
            w.setValue(w.minimum())
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QComboBox) and self.kind == "choice":
            i = next((j for j in range(w.count()) if w.itemData(j) == value), -1)
            if i >= 0:
                w.setCurrentIndex(i)
            else:
                w.setEditText("" if value is None else str(value))
        elif isinstance(w, QComboBox):
            i = w.findData(value)
            if i >= 0:
                w.setCurrentIndex(i)
        else:
            w.setText("" if value is None else str(value))

    def offer(self, items: list[tuple[Any, str]]) -> None:
        """Fill a dropdown with (value, label) pairs, keeping the value it holds."""
        w = self.widget
        if not isinstance(w, QComboBox):
            return
        current = self.get()
        w.blockSignals(True)
        w.clear()
        for value, label in items:
            w.addItem(label, userData=value)
        w.blockSignals(False)
        self.set(current)


def is_seconds(name: str, info: Any) -> bool:
    """A duration in seconds (a timeout): shown as whole seconds with "s"."""
    words = (info.description or "").lower()
    return name.endswith(("timeout", "_seconds")) or words.startswith("seconds ")


def is_advanced(info: Any) -> bool:
    """A setting few people change (``json_schema_extra={"advanced": True}`` on the
    target's Settings field): shown under "Show more settings"."""
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("advanced"))


def _allows_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _allows_none(typing.get_args(annotation)[0])
    return type(None) in typing.get_args(annotation)


def _none_words(description: str) -> str:
    """What "empty" means, from the field's description: "(empty: one per CPU it may
    use)" -> "one per CPU it may use"; else "none"."""
    m = re.search(r"\(empty: ([^)]*)\)", description) or re.search(r"Empty: ([^.]*)", description)
    return m.group(1).strip() if m else "none"


def _bounds(info: Any, lo: float, hi: float) -> tuple[float, float]:
    for meta in info.metadata:
        for attr, is_low in (("ge", True), ("gt", True), ("le", False), ("lt", False)):
            v = getattr(meta, attr, None)
            if v is None:
                continue
            if is_low:
                lo = v + (1 if attr == "gt" and isinstance(v, int) else 0)
            else:
                hi = v - (1 if attr == "lt" and isinstance(v, int) else 0)
    return lo, hi


class SettingsPage(Page):
    page_id = "settings"
    title = "Target settings"
    subtitle = "A few settings for where the model will run. The defaults usually work."
    icon_name = "settings"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.form_box = QGroupBox("Settings")
        self.form = QFormLayout(self.form_box)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        # long forms (cloud targets) scroll instead of squeezing the page
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        holder = QWidget()
        holder_lay = QVBoxLayout(holder)
        holder_lay.setContentsMargins(0, 0, 0, 0)
        # a cloud target's own panel (wizards.forms) goes above the generated form
        self.extra_slot = QVBoxLayout()
        self.extra_slot.setContentsMargins(0, 0, 0, 0)
        holder_lay.addLayout(self.extra_slot)
        holder_lay.addWidget(self.form_box)
        # settings few people change, behind one click
        self.more_button = QPushButton("Show more settings")
        self.more_button.setObjectName("moreSettings")
        self.more_button.setCheckable(True)
        self.more_button.setFlat(True)
        self.more_button.setStyleSheet("text-align: left; color: #0969da;")
        self.more_button.toggled.connect(self._show_more)
        self.more_box = QGroupBox("More settings")
        self.more_form = QFormLayout(self.more_box)
        self.more_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.more_button.setVisible(False)
        self.more_box.setVisible(False)
        holder_lay.addWidget(self.more_button, 0, Qt.AlignmentFlag.AlignLeft)
        holder_lay.addWidget(self.more_box)
        self.target_form: Any = None
        self.scroll.setWidget(holder)
        # the check's verdict comes first, where it is seen without scrolling
        check_row = QHBoxLayout()
        self.check_button = QPushButton("Check &again")
        self.check_button.setObjectName("checkButton")
        self.check_button.clicked.connect(self.run_check)
        self.check_state = QLabel("")
        self.check_state.setWordWrap(True)
        check_row.addWidget(self.check_button)
        check_row.addWidget(self.check_state, 1)
        self.body.addLayout(check_row)
        self.bar = busy_bar()
        self.body.addWidget(self.bar)
        self.problems = note("", "fail")
        self.problems.setVisible(False)
        self.body.addWidget(self.problems)
        # one-click fixes for the problems found ("Use free port 8081")
        self.fix_row = QHBoxLayout()
        self.fix_row.addStretch(1)
        self.body.addLayout(self.fix_row)
        self.fix_buttons: dict[str, QPushButton] = {}
        self.ready = note("Everything needed is in place.", "ok")
        self.ready.setVisible(False)
        self.body.addWidget(self.ready)
        self.body.addWidget(self.scroll, 1)
        self.image_box = QGroupBox("Container image")
        image_form = QFormLayout(self.image_box)
        self.base_image = QLineEdit()
        self.base_image.setObjectName("baseImage")
        self.base_image.textChanged.connect(self.changed)
        image_form.addRow("Base image:", self.base_image)
        image_hint = QLabel(
            "The image the serving image is built on (it needs Python 3). "
            "Keep the default unless your organisation provides its own."
        )
        image_hint.setWordWrap(True)
        image_hint.setStyleSheet("color: #57606a;")
        image_form.addRow("", image_hint)
        self.image_box.setVisible(False)
        holder_lay.addWidget(self.image_box)
        self.secret_note = note(
            "Passwords and keys you type here are kept in your system's keyring "
            "(the secure password store of your computer), never in the profile file.",
            "info",
        )
        holder_lay.addWidget(self.secret_note)
        self.no_keyring = QGroupBox("No secure password store found")
        nk = QVBoxLayout(self.no_keyring)
        self.no_keyring_text = QLabel()
        self.no_keyring_text.setWordWrap(True)
        nk.addWidget(self.no_keyring_text)
        self.each_run = QRadioButton(
            "Ask me for the secret each time I deploy (kept in memory, never written down)"
        )
        self.each_run.setObjectName("secretEachRun")
        self.give_up = QRadioButton("Cancel: I will set up a keyring first")
        group = QButtonGroup(self)
        group.addButton(self.each_run)
        group.addButton(self.give_up)
        self.each_run.toggled.connect(lambda _on: self.changed())
        nk.addWidget(self.each_run)
        nk.addWidget(self.give_up)
        self.no_keyring.setVisible(False)
        holder_lay.addWidget(self.no_keyring)

        holder_lay.addStretch(1)
        self.editors: dict[str, FieldEditor] = {}
        self.built_for: str | None = None
        self.checked_ok = False
        self.last_problems: list[Any] = []

    # ---- the form ----------------------------------------------------------------
    def enter(self) -> None:
        name = self.state.target_name or "local"
        fresh = self.built_for != name or not self.state.settings
        if fresh:  # new: start from defaults
            self._build_form(name)
        for key, editor in self.editors.items():
            if key in self.state.settings:
                editor.set(self.state.settings[key])
        if fresh:
            self._free_default_port(name)
        if self.target_form is not None:
            self.target_form.entered()
        from app.store.profile import DEFAULT_BASE_IMAGE
        from targets import get_kind

        self.image_box.setVisible(get_kind(name).ships == "image")
        self.base_image.setText(self.state.base_image or DEFAULT_BASE_IMAGE)
        self.run_check()

    def _build_form(self, name: str) -> None:
        from targets import get_kind
        from wizards.forms import form_for

        while self.form.rowCount():
            self.form.removeRow(0)
        while self.more_form.rowCount():
            self.more_form.removeRow(0)
        if self.target_form is not None:
            self.target_form.close_form()
            self.extra_slot.removeWidget(self.target_form)
            self.target_form.hide()  # removed from the layout is not gone from the screen
            self.target_form.setParent(None)
            self.target_form.deleteLater()
            self.target_form = None
        self.editors.clear()
        cls = get_kind(name)
        form_cls = form_for(name)
        choices = set(getattr(form_cls, "choice_fields", ()))
        advanced = set(getattr(form_cls, "advanced_fields", ()))
        advanced |= {n for n, info in cls.Settings.model_fields.items() if is_advanced(info)}
        self.form_box.setTitle("Settings")
        self.title_label.setText(f"<h2 style='margin:0'>Settings for: {cls.title}</h2>")
        previous: QWidget | None = None
        for field_name, info in cls.Settings.model_fields.items():
            editor = FieldEditor(field_name, info, self, choice=field_name in choices)
            self.editors[field_name] = editor
            editor.advanced = field_name in advanced
            form = self.more_form if editor.advanced else self.form
            label = QLabel(f"{editor.label}:")
            label.setBuddy(editor.widget)
            form.addRow(label, editor.row_widget)
            if info.description and editor.kind != "bool":
                words = info.description
                if editor.optional and editor.kind in {"int", "float"}:
                    # the box shows what "empty" means at its lowest step
                    words = re.sub(r"\s*\(empty: [^)]*\)", "", words)
                hint = QLabel(words)
                hint.setWordWrap(True)
                hint.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
                hint.setStyleSheet("color: #57606a;")
                form.addRow("", hint)
                editor.hint = hint
            first = editor.secret_value or editor.widget
            if previous is not None:
                self.setTabOrder(previous, first)
            previous = editor.widget
        if not self.editors:
            self.form.addRow(QLabel("This target needs no settings."))
        self.more_button.setVisible(bool(advanced))
        self.more_button.setChecked(False)
        self._show_more(False)
        if form_cls is not None:
            self.target_form = form_cls(self)
            self.extra_slot.addWidget(self.target_form)
        has_secret = any(e.secret for e in self.editors.values())
        self.secret_note.setVisible(has_secret)
        ok, backend = secure_keyring()
        self.keyring_ok = ok
        self.no_keyring.setToolTip(f"Keyring backend: {backend}")
        self.no_keyring_text.setText(
            "Your computer has no secure password store that ModelShip can use, and "
            "ModelShip never writes secrets into files. Choose:"
        )
        self._update_keyring_choice()
        self.built_for = name

    def _free_default_port(self, name: str) -> None:
        """A new deployment on this computer starts on a free port: the default one is
        replaced when a deployment or another program holds it, and the form says so."""
        from app.store.records import deployment_on_port
        from targets import get_kind
        from targets.net import port_free

        editor = self.editors.get("port")
        if editor is None or "port" in self.state.settings or get_kind(name).remote:
            return
        port = editor.get()
        if not isinstance(port, int):
            return
        mine = self.state.name or None

        def taken(p: int) -> Any:
            holder = deployment_on_port(p, exclude=mine)
            return holder if holder is not None else (not port_free(p))

        holder = taken(port)
        if not holder:
            return
        free = next((p for p in range(port + 1, min(port + 200, 65536)) if not taken(p)), None)
        if free is None:
            return
        editor.set(free)
        by = f"your deployment “{holder.name}”" if holder is not True else "another program"
        if editor.hint is not None:
            editor.hint.setText(
                f"{editor.info.description} Port {port} is used by {by}, so ModelShip chose "
                f"{free}, which is free."
            )

    def _show_more(self, on: bool) -> None:
        self.more_box.setVisible(on)
        self.more_button.setText("Hide more settings" if on else "Show more settings")

    def set_row_visible(self, name: str, visible: bool) -> None:
        """Show or hide one field's row (and its hint), e.g. serverless-only settings."""
        editor = self.editors.get(name)
        if editor is None:
            return
        form = self.more_form if getattr(editor, "advanced", False) else self.form
        form.setRowVisible(editor.row_widget, visible)
        hint = getattr(editor, "hint", None)
        if hint is not None:
            form.setRowVisible(hint, visible)

    def is_busy(self) -> bool:
        """Only the check holds up Next; a form asking the cloud for choices does not."""
        return any(not w.name.startswith("modelship-choices") for w in self.busy_workers())

    def needs_keyring_choice(self) -> bool:
        """Only a secret typed now needs a place to go: no secret, no question."""
        if getattr(self, "keyring_ok", True):
            return False
        return any(
            e.secret_value is not None and e.secret_value.text() for e in self.editors.values()
        )

    def _update_keyring_choice(self) -> None:
        self.no_keyring.setVisible(self.needs_keyring_choice())

    def values(self) -> dict[str, Any]:
        return {k: e.get() for k, e in self.editors.items()}

    def changed(self, *_: Any) -> None:
        self._update_keyring_choice()
        self.checked_ok = False
        self.ready.setVisible(False)
        self.check_state.setText("Settings changed: check again before going on.")
        self.completeChanged.emit()

    # ---- preflight ---------------------------------------------------------------
    def run_check(self) -> None:
        """Run the target's own preflight check off the GUI thread."""
        if self.is_busy() or not self._store_typed_secrets():
            return
        self.state.settings = self.values()
        self._store_base_image()
        try:
            profile = self.state.build_profile()
        except Exception as exc:
            from app.errors import ProfileError

            if not isinstance(exc, ProfileError):
                self.error(exc, "checking the settings")
                return
            # a setting the form can fix: said above the form, in the form's words
            from wizards.fixes import Fix

            problem = self._form_problem(exc)
            fixes = []
            if problem.setting in self.editors:
                label = self.editors[problem.setting].label
                fixes.append(Fix(problem.setting, f"Go to “{label}”"))
            self._checked(([problem], fixes))
            return
        self._confirm_addresses(profile)
        self.problems.setVisible(False)
        self.ready.setVisible(False)
        self._show_fixes([])
        self.check_state.setText("Checking that everything needed is in place…")
        self.bar.setVisible(True)
        self.check_button.setEnabled(False)

        def work(progress: Any, cancel: Any) -> Any:
            from app.run import preflight
            from wizards.fixes import explain

            return explain(preflight(profile), profile)

        self.start_worker(
            work,
            name="preflight",
            on_result=self._checked,
            on_error=lambda exc: self.error(exc, "checking the target"),
            on_finished=self._check_done,
        )
        self.busyChanged.emit(True)

    def _confirm_addresses(self, profile: Any) -> None:
        """A service address that is not the platform's own (a Heroku-compatible API, a
        registry mirror) gets a key only once the person confirms it on this computer
        (app.store.trust): asked here, before the check talks to it. Declined: the check says
        what is wrong and where to change it."""
        settings = profile.target.settings
        errors = settings.address_errors() if hasattr(settings, "address_errors") else []
        for exc in errors:
            if not exc.confirmable:
                continue  # plain HTTP elsewhere: no answer makes it safe; the check says so
            if ask.confirm(
                self.window(),
                "Trust this address?",
                f"{for_wizard(exc.message)}\n\nSend it to {exc.address} only if you run that "
                "service or trust whoever does. ModelShip remembers your answer on this "
                "computer.",
                yes="Trust this address",
                no="Not now",
            ):
                from app.store.trust import allow_host

                allow_host(exc.address)

    def _check_done(self) -> None:
        self.bar.setVisible(False)
        self.check_button.setEnabled(True)
        self.busyChanged.emit(False)
        self.completeChanged.emit()

    def _checked(self, found: tuple[list[Any], list[Any]]) -> None:
        problems, fixes = found
        self.last_problems = list(problems)
        self._show_fixes(fixes)
        if problems:
            items = "".join(
                f"<li><b>{_esc(for_wizard(p.message))}</b><br>How to fix it: "
                f"{_esc(for_wizard(p.fix))}</li>"
                for p in problems
            )
            self.problems.label.setText(
                f"<b>Not ready yet: {len(problems)} thing"
                f"{'s' if len(problems) != 1 else ''} to fix.</b><ul>{items}</ul>"
            )
            self.problems.setVisible(True)
            self.check_state.setText("Fix the points below, then click “Check again”.")
            self.checked_ok = False
        else:
            self.check_state.setText("")
            self.ready.setVisible(True)
            self.checked_ok = True
        if self.target_form is not None:
            self.target_form.after_check()
        self.completeChanged.emit()

    def _form_problem(self, exc: Any) -> Any:
        """A settings validation error as a Problem naming the form's fields (their
        titles, "untick …"), not the profile's keys."""
        from targets.base import Problem

        text = str(getattr(exc, "message", exc))
        where = re.match(r"^The setting '([\w.]+)' is not valid: ", text)
        text = text[where.end() :] if where else text
        text = text.rstrip(".")
        field = where.group(1).rsplit(".", 1)[-1] if where else ""
        if field in self.editors:  # one field is wrong: name it, and say what it takes
            editor = self.editors[field]
            if text.startswith(("String should match pattern", "Input should be")):
                text = "is not in a form ModelShip understands"
            return Problem(
                f"“{editor.label}” {text}.",
                (editor.info.description or "Correct it in the form below.")
                + " Then click “Check again”.",
                kind="setting",
                setting=field,
            )
        first = None
        for name, editor in sorted(self.editors.items(), key=lambda kv: -len(kv[0])):
            title = f"“{editor.label}”"
            text, n = re.subn(rf"\bset {name} = false\b", f"untick {title}", text)
            text, m = re.subn(rf"\b{name}\b(?![”\w])", title, text)
            if (n or m) and first is None:
                first = name
        if text:
            text = text[0].upper() + text[1:]
        return Problem(
            text + ".",
            "Change it in the form below, then click “Check again”.",
            kind="setting",
            setting=first,
        )

    def _show_fixes(self, fixes: list[Any]) -> None:
        for button in self.fix_buttons.values():
            self.fix_row.removeWidget(button)
            button.deleteLater()
        self.fix_buttons.clear()
        for fix in fixes:
            if fix.setting in self.fix_buttons or fix.setting not in self.editors:
                continue
            button = QPushButton(fix.text)
            button.setObjectName(f"fix-{fix.setting}")
            button.clicked.connect(lambda _c=False, f=fix: self.apply_fix(f))
            self.fix_row.insertWidget(self.fix_row.count() - 1, button)
            button.setVisible(True)  # now, not at the next event loop turn
            self.fix_buttons[fix.setting] = button

    def apply_fix(self, fix: Any) -> None:
        editor = self.editors[fix.setting]
        if getattr(editor, "advanced", False):
            self.more_button.setChecked(True)
        if fix.value is not None:
            editor.set(fix.value)
            self.run_check()
        target = editor.secret_value or editor.widget
        self.scroll.ensureWidgetVisible(target)
        target.setFocus()

    # ---- leaving -------------------------------------------------------------------
    def is_complete(self) -> bool:
        if self.needs_keyring_choice() and not self.each_run.isChecked():
            return False
        return self.checked_ok

    def enter_pressed(self, focused: Any) -> bool:
        """Enter after changing a setting checks it (Next waits for a check)."""
        if not self.checked_ok and not self.is_busy():
            self.run_check()
            return True
        return False

    def blocked_reason(self) -> str:
        if self.is_busy():
            return "Checking the settings…"
        if self.last_problems and not self.checked_ok:
            first = for_wizard(self.last_problems[0].message)
            more = len(self.last_problems) - 1
            return f"Not ready: {first}" + (f" (and {more} more, above)" if more else "")
        if not self.checked_ok:
            return "Settings changed: click “Check again”."
        if self.needs_keyring_choice() and not self.each_run.isChecked():
            return "Choose how to keep the secret you typed (below)."
        return ""

    def _store_base_image(self) -> None:
        if self.image_box.isVisible() or self.image_box.isVisibleTo(self):
            self.state.base_image = self.base_image.text().strip() or None

    def accept(self) -> bool:
        if not self._store_typed_secrets():
            return False
        self.state.settings = self.values()
        self._store_base_image()
        return True

    def _store_typed_secrets(self) -> bool:
        """Put secrets typed into the form into the keyring and their entry names into
        the form (the profile keeps only the names). Done on "Check again" already, so
        that a target that requires a secret finds its entry named and filled. Without a
        secure keyring, only once the person chose "ask me each time"."""
        ok, _backend = secure_keyring()
        if not ok and not self.each_run.isChecked():
            return True
        for name, editor in self.editors.items():
            if not editor.secret or editor.secret_value is None:
                continue
            value = editor.secret_value.text()
            if not value:
                continue
            ref = editor.get() or f"{self.state.default_name()}-{name}"
            notify.register_secret(value)
            if not ok:
                from wizards.session_keyring import use_session_keyring

                use_session_keyring()  # chosen "each run": memory only, never on disk
                self.state.session_secrets[ref] = "(in memory)"
            try:
                store_secret(ref, value)
            except Exception as exc:
                self.error(exc, "saving the secret in the keyring")
                return False
            editor.set(ref)
            editor.secret_value.clear()
        return True


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    from wizards.pages.base import preview

    sys.exit(preview(SettingsPage))
