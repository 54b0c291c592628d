"""The SageMaker form: AWS profile and region from ``~/.aws``, instance type with its
price per hour, a serverless switch, the autoscaling range, and the cost as you type.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from targets.sagemaker.choices import credentials_state as aws_state
from wizards.forms.base import GREEN, GREY, RED, TargetForm, esc, wrapped

REALTIME_ONLY = (
    "instance_type",
    "instance_count",
    "min_instances",
    "max_instances",
    "target_invocations_per_instance",
)
SERVERLESS_ONLY = ("memory_mb", "max_concurrency")


class AwsKeyDialog(QDialog):
    """ "Set one up": an access key pasted once, kept in the keyring (never in a file)."""

    def __init__(self, parent: QWidget | None = None, region: str = "eu-central-1") -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up AWS access")
        lay = QVBoxLayout(self)
        lay.addWidget(
            wrapped(
                "ModelShip needs an AWS access key to create the endpoint. Get one in the "
                "AWS web console: open your name (top right) → Security credentials → "
                "Access keys → Create access key. If your organisation signs you in "
                "through a portal (single sign-on), ask whoever looks after your AWS "
                "account for a key instead.<br><br>The key is kept in your system's "
                "keyring, never in a file."
            )
        )
        form = QFormLayout()
        self.key_id = QLineEdit()
        self.key_id.setObjectName("awsKeyId")
        self.key_id.setPlaceholderText("AKIA…")
        self.secret = QLineEdit()
        self.secret.setObjectName("awsSecret")
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.region = QComboBox()
        self.region.setObjectName("awsRegion")
        from targets.sagemaker.choices import known_regions

        for value, label in known_regions():
            self.region.addItem(label, userData=value)
        i = self.region.findData(region)
        self.region.setCurrentIndex(max(i, 0))
        form.addRow("Access key ID:", self.key_id)
        form.addRow("Secret access key:", self.secret)
        form.addRow("Region:", self.region)
        lay.addLayout(form)
        self.problem = wrapped("", RED)
        lay.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def save(self) -> None:
        from app.errors import ModelShipError
        from app.store.secrets import set_secret
        from targets.sagemaker.choices import keyring_key_names
        from wizards import notify

        key_id, secret = self.key_id.text().strip(), self.secret.text().strip()
        if not key_id or not secret:
            self.problem.setText("Paste both the access key ID and the secret access key.")
            return
        notify.register_secret(secret)
        names = keyring_key_names(None)
        try:
            set_secret(names[0], key_id)
            set_secret(names[1], secret)
        except ModelShipError as exc:
            self.problem.setText(esc(exc.message))
            return
        self.accept()


class SageMakerForm(TargetForm):
    panel_title = "Your AWS account"
    choice_fields = ("aws_profile", "region", "instance_type")
    advanced_fields = (
        "target_invocations_per_instance",
        "role_arn",
        "ecr_repository",
        "registry",
        "start_timeout",
    )

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        row = QHBoxLayout()
        self.account = wrapped("", GREY)
        self.account.setObjectName("awsAccount")
        self.setup_button = QPushButton("&Set one up…")
        self.setup_button.setObjectName("awsSetUp")
        self.setup_button.clicked.connect(self.set_up)
        self.setup_button.setVisible(False)
        self.setup_dialog: AwsKeyDialog | None = None  # the last one opened
        row.addWidget(self.account, 1)
        row.addWidget(self.setup_button)
        self.lay.addLayout(row)
        self.serverless = QCheckBox("Serverless: billed per request")
        self.serverless.setObjectName("serverlessSwitch")
        serverless_hint = wrapped(
            "Nothing is billed while idle, but the first call after a pause is slow. Off: "
            "instances that run (and bill) all the time, with an autoscaling range.",
            GREY,
        )
        self.serverless.toggled.connect(self._mode_toggled)
        self.lay.addWidget(self.serverless)
        self.lay.addWidget(serverless_hint)
        self.cost = wrapped("")
        self.cost.setObjectName("sagemakerCost")
        self.lay.addWidget(self.cost)
        self.lay.addWidget(self.status_row)
        page.set_row_visible("mode", False)  # the switch above says it in words
        self._fill_static()
        for name in ("instance_type", "instance_count", "min_instances", "max_instances",
                     "memory_mb", "mode", "region"):  # fmt: skip
            w = self.editors[name].widget
            signal = getattr(w, "valueChanged", None) or w.currentIndexChanged
            signal.connect(lambda *_: self._show_cost())
            if isinstance(w, QComboBox) and w.isEditable():
                w.editTextChanged.connect(lambda *_: self._show_cost())
        self.editors["aws_profile"].widget.currentTextChanged.connect(self._profile_chosen)

    def _fill_static(self) -> None:
        """Instance types from the price table; regions first from the list ModelShip
        knows, then botocore's full list from a worker (importing boto3 on the GUI
        thread would freeze the form for a moment)."""
        from targets.sagemaker import choices

        self.editors["region"].offer(choices.known_regions())
        self.editors["instance_type"].offer(choices.instance_types())

    def _ask_regions(self) -> None:
        def work() -> Any:
            from targets.sagemaker.choices import regions

            return regions()

        self.ask(work, self.editors["region"].offer, "Listing the AWS regions", name="regions")

    def entered(self) -> None:
        self.serverless.setChecked(self.value("mode") == "serverless")
        self._mode_toggled(self.serverless.isChecked())
        self.refresh()
        self._ask_regions()

    def refresh(self) -> None:
        from targets.sagemaker import choices

        profiles = choices.aws_profiles()
        items: list[tuple[Any, str]] = [(None, "")]  # empty: the default profile
        items += [(p.name, p.name + (f" ({p.region})" if p.region else "")) for p in profiles]
        self.editors["aws_profile"].offer(items)
        ok, words = aws_state()
        if ok:
            self.account.setText(f"<span style='{GREEN}'>✔ {esc(words)}</span>")
        else:
            self.account.setText(
                f"<span style='{RED}'><b>{esc(words)}</b></span> ModelShip needs an AWS "
                "access key to create the endpoint."
            )
        self.setup_button.setVisible(not ok)
        self._show_cost()

    def set_up(self) -> None:
        """ "Set one up…": the key dialog, window-modal through ``open()`` (the page's
        workers go on); once saved, its region is taken and the page checks again."""
        dialog = AwsKeyDialog(self, self.value("region") or "eu-central-1")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._set_up_done(dialog.region.currentData()))
        self.setup_dialog = dialog
        dialog.open()

    def _set_up_done(self, region: str | None) -> None:
        if not self.alive():
            return
        if region:
            self.editors["region"].set(region)
        self.refresh()
        self.page.run_check()

    def _profile_chosen(self, _text: str) -> None:
        """A profile with a region in ~/.aws/config brings its region along."""
        from targets.sagemaker import choices

        name = self.value("aws_profile")
        for p in choices.aws_profiles():
            if p.name == name and p.region:
                self.editors["region"].set(p.region)

    def _mode_toggled(self, on: bool) -> None:
        self.editors["mode"].set("serverless" if on else "realtime")
        for name in REALTIME_ONLY:
            self.page.set_row_visible(name, not on)
        for name in SERVERLESS_ONLY:
            self.page.set_row_visible(name, on)
        self._show_cost()

    def _show_cost(self) -> None:
        from targets.sagemaker.choices import estimate
        from targets.sagemaker.settings import SageMakerSettings

        try:
            settings = SageMakerSettings.model_validate(
                {k: v for k, v in self.page.values().items() if v is not None}
            )
        except Exception:  # a half-typed value: the check says what is wrong
            self.cost.setText("")
            return
        cost = estimate(settings)
        self.cost.setText(f"<b>Cost:</b> {esc(cost.words)}")
