"""The Heroku form: the API key found (``~/.netrc``, the environment, the keyring) or
pasted once into the keyring, and the app name checked live as you type."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSizePolicy

from wizards.forms.base import GREEN, GREY, RED, TargetForm, esc, wrapped

APP_COLORS = {"free": GREEN, "yours": "color: #9a6700;", "taken": RED, "invalid": RED}


class HerokuForm(TargetForm):
    panel_title = "Your Heroku account"
    choice_fields = ("dyno_size", "region")
    advanced_fields = ("team", "api_url", "registry", "start_timeout")

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        self.key_state = wrapped("", GREY)
        self.key_state.setObjectName("herokuKey")
        # a key found hides the paste field; this brings it back to replace that key
        self.other_key_button = QPushButton("Use a different key…")
        self.other_key_button.setObjectName("herokuOtherKey")
        self.other_key_button.setVisible(False)
        self.other_key_button.clicked.connect(self.use_other_key)
        self.replacing = False  # the paste field shown although a key was found
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_state, 1)
        key_row.addWidget(self.other_key_button)
        self.lay.addLayout(key_row)
        self.lay.addWidget(self.status_row)
        self.app_state = wrapped("", GREY)
        self.app_state.setObjectName("appNameState")
        self.app_state.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        # the app name's verdict sits right under the app name
        app_row = page.form.getWidgetPosition(self.editors["app"].widget)[0]
        page.form.insertRow(app_row + 1, "", self.app_state)
        self.short_checkbox("require_api_key", "Callers must send the API key")
        self.key_source = "none"
        self._check_timer = self.debounce(600, self._check_app)
        self.editors["app"].widget.textChanged.connect(lambda _t: self._app_typed())
        self.editors["dyno_size"].offer(_dyno_choices())
        self.editors["region"].offer([("eu", "eu (Europe)"), ("us", "us (United States)")])
        secret = self.editors["account_key"].secret_value
        if secret is not None:
            secret.setPlaceholderText(
                "paste your Heroku API key once (Heroku → Account settings → API key)"
            )

    def entered(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        from targets.heroku.choices import key_source

        entry = self.value("account_key") or "heroku-api-key"
        source, where = key_source(entry, self.value("api_url") or "https://api.heroku.com")
        self.key_source = source
        if source == "none":
            self.key_state.setText(
                f"<span style='{RED}'><b>No Heroku API key found.</b></span> Paste it once "
                "into “Heroku API key” below (Heroku → Account settings → API key → "
                "Reveal): it is kept in your system keyring."
            )
        elif self.replacing:
            self.key_state.setText(
                f"<span style='{GREEN}'>✔ Heroku API key found in {esc(where)}.</span> "
                "Paste the other key into “Heroku API key” below and click “Check "
                "again”: it is kept in your system keyring and used from then on."
            )
        else:
            self.key_state.setText(
                f"<span style='{GREEN}'>✔ Heroku API key found in {esc(where)}.</span>"
            )
        # a key found needs no field (unless it is being replaced); none: the field
        self.page.set_row_visible("account_key", source == "none" or self.replacing)
        self.other_key_button.setVisible(source != "none" and not self.replacing)
        self._check_app()

    def use_other_key(self) -> None:
        """ "Use a different key…": the paste field, for a key that replaces the one
        found (stored in the keyring on "Check again", where it is found first)."""
        self.replacing = True
        editor = self.editors["account_key"]
        if not editor.get():
            editor.set("heroku-api-key")
        self.refresh()
        if editor.secret_value is not None:
            editor.secret_value.setFocus()

    def after_check(self) -> None:
        typed = self.editors["account_key"].secret_value
        if self.replacing and not (typed is not None and typed.text()):
            self.replacing = False  # the pasted key is in the keyring now
            self.refresh()
        elif self.key_source == "none":
            self.refresh()

    def _app_typed(self) -> None:
        self.app_state.setText("")
        self._check_timer.start()

    def _check_app(self) -> None:
        name = self.value("app")
        if not name:
            self.app_state.setText("Empty: ModelShip suggests a free name.")
            self.app_state.setStyleSheet(GREY)
            return
        typed = self.editors["account_key"].secret_value
        if self.key_source == "none":
            words = "click “Check again”" if typed and typed.text() else "paste your API key"
            self.app_state.setText(f"The name is checked with Heroku once you {words}.")
            self.app_state.setStyleSheet(GREY)
            return
        entry = self.value("account_key") or "heroku-api-key"
        api_url = self.value("api_url") or "https://api.heroku.com"

        def work() -> Any:
            from targets.heroku.choices import check_app_name

            return check_app_name(name, entry, api_url)

        self.app_state.setText(f"Checking whether “{esc(name)}” is free…")
        self.app_state.setStyleSheet(GREY)
        self.ask(work, self._checked, f"Asking Heroku about “{name}”", name="app")
        self.status_row.setVisible(False)  # the line under the app name says it

    def _checked(self, check: Any) -> None:
        if check.name != self.value("app"):
            return
        self.app_state.setText(esc(check.words))
        self.app_state.setStyleSheet(APP_COLORS.get(check.state, GREY))

    def failed(self, exc: BaseException) -> None:
        self.app_state.setText("")


def _dyno_choices() -> list[tuple[Any, str]]:
    from targets.heroku.choices import dyno_choices

    return dyno_choices()
