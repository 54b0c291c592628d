"""The OpenStack form: pick or drop a clouds.yaml / openrc file, then region, image,
flavor and network as dropdowns filled from the cloud, with the project's quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton

from wizards.forms.base import GREEN, GREY, TargetForm, esc, wrapped


class OpenStackForm(TargetForm):
    panel_title = "Your cloud"
    choice_fields = ("cloud", "region", "image", "flavor", "network")
    advanced_fields = (
        "floating_ip",
        "endpoint_host",
        "ssh_user",
        "ssh_port",
        "port",
        "allowed_cidr",
        "accept_host_key",
        "start_timeout",
    )

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        self.setAcceptDrops(True)
        self.found = wrapped("", GREY)
        self.found.setObjectName("cloudsFound")
        self.lay.addWidget(self.found)
        row = QHBoxLayout()
        self.pick_button = QPushButton("&Pick a clouds.yaml or openrc file…")
        self.pick_button.setObjectName("pickCloudsFile")
        self.pick_button.clicked.connect(self._pick)
        row.addWidget(self.pick_button)
        self.password = QLineEdit()
        self.password.setObjectName("openrcPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password (only for an openrc file)")
        row.addWidget(self.password, 1)
        self.lay.addLayout(row)
        self.lay.addWidget(
            wrapped(
                "Or drop the file here. bwCloud: Identity → Application Credentials → "
                "Create, then “Download clouds.yaml”. Its secret moves into your system "
                "keyring; the file you keep has none.",
                GREY,
            )
        )
        self.lay.addWidget(self.status_row)
        self.quota = wrapped("", GREY)
        self.quota.setObjectName("cloudQuota")
        self.lay.addWidget(self.quota)
        self.short_checkbox("require_api_key", "Callers must send the API key")
        self.choices: Any = None
        self._ask_timer = self.debounce(500, self._ask_cloud)
        self.editors["cloud"].widget.currentTextChanged.connect(lambda _t: self._ask_timer.start())
        self.editors["region"].widget.currentTextChanged.connect(lambda _t: self._ask_timer.start())
        self.editors["flavor"].widget.currentTextChanged.connect(lambda _t: self._show_quota())
        self.editors["region"].widget.currentTextChanged.connect(lambda _t: self._host_hint())

    # ---- the clouds of clouds.yaml --------------------------------------------------
    def refresh(self) -> None:
        from targets.openstack.choices import cloud_names

        names = cloud_names()
        self.editors["cloud"].offer([(n, n) for n in names])
        if names:
            self.found.setText(
                f"Clouds in your clouds.yaml: {esc(', '.join(names))}. Pick one below, or "
                "import another file."
            )
        else:
            self.found.setText(
                "<b>No clouds.yaml found yet.</b> Pick or drop the file your cloud's "
                "dashboard gives you (clouds.yaml or an openrc file)."
            )
        if self.value("cloud") and names and self.value("cloud") not in names:
            self.editors["cloud"].set(names[0])
        self._ask_cloud()

    def dragEnterEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.import_file(Path(urls[0]))

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Pick your cloud's clouds.yaml or openrc file",
            str(Path.home() / "Downloads"),
            "Cloud credentials (*.yaml *.yml *.sh *openrc*);;All files (*)",
        )
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        """Import the file (its secret into the keyring), then ask the cloud."""
        secret = self.password.text() or None

        def work() -> Any:
            from targets.openstack.choices import import_file

            return import_file(path, secret=secret)

        self.ask(work, self._imported, "Importing the credentials", name="import")

    def _imported(self, done: list[Any]) -> None:
        self.password.clear()
        names = [d.cloud for d in done]
        moved = sum(len(d.secrets) for d in done)
        self.refresh()
        if names:
            self.editors["cloud"].set(names[0])
            if done[0].region:
                self.editors["region"].set(done[0].region)
        self.found.setText(
            f"<span style='{GREEN}'>✔ Imported {esc(', '.join(names))}</span>"
            + (f"; {moved} secret(s) moved into your system keyring." if moved else ".")
        )

    # ---- the cloud's choices ------------------------------------------------------
    def _ask_cloud(self) -> None:
        cloud = self.value("cloud")
        if not cloud:
            return
        region = self.value("region")

        def work() -> Any:
            from targets.openstack.choices import cloud_choices

            return cloud_choices(cloud, region)

        self.ask(work, self._got, "Asking the cloud for its regions, images and sizes")

    def failed(self, exc: BaseException) -> None:
        self.quota.setText("")

    def _got(self, c: Any) -> None:
        self.choices = c
        e = self.editors
        e["region"].offer([(r, r) for r in c.regions])
        if not self.value("region") and c.region:
            e["region"].set(c.region)
        e["image"].offer([(i, i) for i in c.images])
        e["flavor"].offer([(f.name, self._flavor_label(f)) for f in c.flavors])
        automatic = "Automatic: the cloud's only network, or its public one"
        e["network"].offer([(None, automatic)] + [(n.name, n.label) for n in c.networks])
        self._show_quota()

    def _host_hint(self) -> None:
        """bwCloud's regions name every instance: offer that name as the template."""
        from targets.openstack.settings import endpoint_host_hint

        widget = self.editors["endpoint_host"].widget
        if isinstance(widget, QLineEdit):
            hint = endpoint_host_hint(self.value("region"))
            widget.setPlaceholderText(f"e.g. {hint}" if hint else "")

    def _flavor_label(self, flavor: Any) -> str:
        quota = getattr(self.choices, "quota", None)
        if quota is not None and not quota.fits(flavor):
            return flavor.label + " — over your quota"
        return flavor.label

    def _show_quota(self) -> None:
        c = self.choices
        if c is None or c.quota is None:
            return
        text = esc(c.quota.words()) + "."
        name = self.value("flavor")
        flavor = next((f for f in c.flavors if f.name == name), None)
        if flavor is not None and not c.quota.fits(flavor):
            text += f" <b style='color:#cf222e'>{esc(name)} does not fit: pick a smaller size.</b>"
        self.quota.setText(text)
