"""Take a screenshot of every wizard page, walking a real deployment to the local target.

Usage (from the repository root)::

    .venv/bin/python tests/gui/screenshots.py [OUT_DIR] [WxH]  # docs/screenshots 1280x800

Runs under Xvfb: the display comes from ``$MODELSHIP_XVFB_DISPLAY`` (started by
``.ci/services.sh``), else ``$DISPLAY``, else the script re-runs itself under
``xvfb-run -a``. Everything happens in a clean home, as a new user's: a fresh
``$HOME`` (``/home/analyst``, or ``$MODELSHIP_SHOTS_HOME``; made for the run and removed
after it, no ``XDG_*`` or ``MODELSHIP_HOME``), with an in-memory keyring, the bundled
sample model and the default base image name (the local test base image is tagged
``python:3.11-slim`` for the run when no such image is here, as no image can be pulled);
the deployment is torn down at the end. Pages are saved as ``NN-page.png`` at the size
given (1280x800 by default; 800x600 is a small lab screen, 2560x1440 a large one).

Beside the pictures, ``texts.json`` keeps what each one shows in words (every visible
label, field, table cell, list entry, text box, button and title), so that
``tests/gui/test_screenshots.py`` can check that no screenshot shows a temporary path
or a test-only name.

To regenerate only some shots, name them (without number and ``.png``) in
``MODELSHIP_SHOTS``, e.g. ``MODELSHIP_SHOTS=target,target-clouds``: the walk is the
same (the numbers stay), only those files are written, and it stops after the last one.
The target page is shot once the cards' health has arrived.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SIZE = (1280, 800)
if len(sys.argv) > 2:
    SIZE = tuple(int(v) for v in sys.argv[2].lower().split("x"))  # type: ignore[assignment]
ONLY = {n.strip() for n in os.environ.get("MODELSHIP_SHOTS", "").split(",") if n.strip()}


class AllTaken(Exception):
    """The last shot named in MODELSHIP_SHOTS is taken: the walk may stop."""


def health_arrived(page) -> Callable[[], bool]:
    """The target page's health check is done and its cards show the results (the
    worker finished and its result was delivered to the cards)."""

    def done() -> bool:
        if any(w.name.startswith("modelship-health") for w in page.busy_workers()):
            return False
        return all(card.health.isVisible() for name, card in page.cards.items() if name != "local")

    return done


def _ensure_display() -> None:
    display = os.environ.get("MODELSHIP_XVFB_DISPLAY")
    if display and Path(f"/tmp/.X11-unix/X{display.lstrip(':')}").exists():
        os.environ["DISPLAY"] = display
    if os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        return
    if os.environ.get("_MODELSHIP_SCREENSHOT_CHILD"):
        sys.exit("error: no display even under xvfb-run")
    xvfb_run = shutil.which("xvfb-run")
    if not xvfb_run:
        sys.exit("error: no display; start Xvfb (.ci/services.sh) or install xvfb-run")
    env = {**os.environ, "_MODELSHIP_SCREENSHOT_CHILD": "1"}
    screen = f"-screen 0 {max(SIZE[0], 1280)}x{max(SIZE[1], 800)}x24"
    cmd = [xvfb_run, "-a", "-s", screen, sys.executable, *sys.argv]
    sys.exit(subprocess.call(cmd, env=env))


HOME_MARK = ".modelship-screenshots"


def _clean_home() -> Path:
    """A fresh home, as a new user's (what the pictures show lives there)."""
    home = Path(os.environ.get("MODELSHIP_SHOTS_HOME", "/home/analyst"))
    if home.exists():
        if not (home / HOME_MARK).exists():
            sys.exit(f"error: {home} exists and is no screenshot home; set MODELSHIP_SHOTS_HOME")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / HOME_MARK).touch()
    os.environ["HOME"] = str(home)
    for name in list(os.environ):
        if name.startswith(("XDG_CONFIG", "XDG_DATA", "XDG_CACHE", "XDG_STATE", "MODELSHIP_HOME")):
            del os.environ[name]
    for name in ("OS_CLIENT_CONFIG_FILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    return home


def _default_base_image() -> Callable[[], None]:
    """Make the default base image name resolve here (no image can be pulled): tag the
    local test base image with it for the run. Returns how to undo that."""
    from app.store.profile import DEFAULT_BASE_IMAGE

    test_base = os.environ.get("MODELSHIP_TEST_BASE_IMAGE", "modelship-test-base:bookworm")
    try:
        import docker

        client = docker.from_env()
        try:
            client.images.get(DEFAULT_BASE_IMAGE)
            return lambda: None  # really here: nothing to undo
        except docker.errors.ImageNotFound:
            pass
        repo, tag = DEFAULT_BASE_IMAGE.rsplit(":", 1)
        client.images.get(test_base).tag(repo, tag)
    except Exception as exc:  # no Docker: the Docker shots say so
        print(f"no {DEFAULT_BASE_IMAGE} for the Docker shots: {exc}", file=sys.stderr)
        return lambda: None

    def undo() -> None:
        with contextlib.suppress(Exception):
            client.images.remove(DEFAULT_BASE_IMAGE, noprune=True)

    return undo


def visible_texts(widgets: list[Any]) -> list[str]:
    """Every text a person sees on ``widgets`` and their children: labels, buttons,
    group box titles, line edits (text and placeholder), combo boxes, table and list
    cells, tab titles, text boxes, window titles."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QComboBox,
        QGroupBox,
        QLabel,
        QLineEdit,
        QListWidget,
        QPlainTextEdit,
        QTableWidget,
        QTabWidget,
        QTextEdit,
        QWidget,
    )

    out: list[str] = []
    for top in widgets:
        if top.isWindow() and top.windowTitle():
            out.append(top.windowTitle())
        for w in [top, *top.findChildren(QWidget)]:
            if not w.isVisible():
                continue
            if isinstance(w, QLabel | QAbstractButton):
                out.append(w.text())
            elif isinstance(w, QGroupBox):
                out.append(w.title())
            elif isinstance(w, QLineEdit):
                out += [w.text(), w.placeholderText()]
            elif isinstance(w, QComboBox):
                out += [w.itemText(i) for i in range(w.count())]
            elif isinstance(w, QPlainTextEdit | QTextEdit):
                out.append(w.toPlainText())
            elif isinstance(w, QTableWidget):
                for r in range(w.rowCount()):
                    for c in range(w.columnCount()):
                        item = w.item(r, c)
                        if item is not None:
                            out.append(item.text())
                for c in range(w.columnCount()):
                    head = w.horizontalHeaderItem(c)
                    if head is not None and not w.horizontalHeader().isHidden():
                        out.append(head.text())
            elif isinstance(w, QListWidget):
                out += [w.item(i).text() for i in range(w.count())]
            elif isinstance(w, QTabWidget):
                out += [w.tabText(i) for i in range(w.count())]
    return [t for t in out if t and t.strip()]


def save_png(image: Any, path: Path) -> None:
    """A screenshot as a small PNG: at most 256 colours (a page of text and flat
    colours loses nothing visible), compressed as far as PNG goes."""
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.toImage().save(buffer, "PNG")
    try:
        import io

        from PIL import Image

        picture = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
        picture.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            path, optimize=True
        )
    except ImportError:  # no Pillow: Qt's own PNG, full colour
        path.write_bytes(bytes(buffer.data()))


def _sample_model(tmp: Path) -> Path:
    try:
        from app.model.samples import sample_model_path

        path = Path(sample_model_path())
        if path.is_file():
            return path
    except ImportError:
        pass
    from tests.gui.conftest import _trained_model

    return _trained_model(tmp / "iris.joblib")


def main(out_dir: Path) -> int:
    _ensure_display()
    sys.path.insert(0, str(REPO))
    tmp = _clean_home()  # what the walk writes lives where a person's files would
    import keyring

    from wizards.session_keyring import SessionKeyring

    keyring.set_keyring(SessionKeyring())  # never touch a real keyring

    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from wizards import ask, notify
    from wizards.app import create_app
    from wizards.window import WizardWindow

    app = create_app([sys.argv[0]])
    app.setStyle("Fusion")
    window = WizardWindow()
    window.setGeometry(0, 0, *SIZE)
    window.show()
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[str] = []

    def pump(seconds: float = 0.3) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    def wait(cond: Callable[[], bool], what: str, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if notify.shown:
                raise SystemExit(f"error while {what}: {notify.last().diagnostics_text()}")
            if time.monotonic() > end:
                raise SystemExit(f"timed out: {what}")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        pump(0.4)

    taken: set[str] = set()
    texts_path = out_dir / "texts.json"
    texts: dict[str, list[str]] = {}
    if ONLY and texts_path.exists():  # the others keep what they showed
        texts = json.loads(texts_path.read_text(encoding="utf-8"))

    def shot(name: str, widget=None, screen: bool = False) -> None:
        n = len(shots) + 1
        path = out_dir / f"{n:02d}-{name}.png"
        shots.append(path.name)
        if ONLY and name not in ONLY:
            return
        pump(0.3)
        if screen:  # the window with a dialog on top, as the person sees it
            image = app.primaryScreen().grabWindow(0, 0, 0, *SIZE)
            shown = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
        else:
            image = (widget or window).grab()
            shown = [widget or window]
        save_png(image, path)
        texts[path.name] = visible_texts(shown)
        texts_path.write_text(
            json.dumps(dict(sorted(texts.items())), indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        taken.add(name)
        print(path)
        if ONLY and taken >= ONLY:
            raise AllTaken

    def idle(page_id: str) -> Callable[[], bool]:
        return lambda: not window.pages[page_id].is_busy()

    model = _sample_model(tmp)
    stack = contextlib.ExitStack()  # the cloud emulators of the remote targets' pages
    stack.callback(_default_base_image())
    try:
        shot("start")
        window.next_button.click()
        model_page = window.pages["model"]
        model_page.set_model_path(model)
        wait(lambda: window.state.artifact is not None, "reading the model")
        if window.state.artifact.runs_code_on_load:
            model_page.trust.setChecked(True)
        from app.model.samples import sample_csv_path

        rows = tmp / "churn.csv"  # the analyst's own table, in their home
        shutil.copy(sample_csv_path(), rows)
        model_page.csv_edit.setText(str(rows))
        shot("model")
        window.next_button.click()
        wait(lambda: window.state.conversion is not None and idle("convert")(), "converting")
        shot("convert")
        window.next_button.click()
        window.pages["target"].choose("local")
        wait(health_arrived(window.pages["target"]), "checking the cards", 60)
        shot("target")
        window.next_button.click()
        settings = window.pages["settings"]
        # the default port (or, when it is taken here, the free one the page chose)
        wait(lambda: idle("settings")() and settings.checked_ok, "checking the port")
        shot("settings")
        chosen = settings.editors["port"].get()
        # a port in use: the problem above the form, the fix, and why Next is grey
        import socket as _socket

        blocker = _socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        settings.editors["port"].set(blocker.getsockname()[1])
        settings.check_button.click()
        wait(idle("settings"), "checking a busy port")
        shot("settings-port-in-use")
        settings.fix_buttons["port"].click()
        wait(lambda: idle("settings")() and settings.checked_ok, "using the free port")
        blocker.close()
        settings.editors["port"].set(chosen)  # back to the port the page chose first
        # keep every request, so that the dashboard's Data drift tab has something to show
        settings.editors["capture_rate"].set(1.0)
        settings.check_button.click()
        wait(lambda: idle("settings")() and settings.checked_ok, "checking the port again")
        window.next_button.click()
        wait(lambda: window.pages["review"].plan_ok, "planning")
        shot("review")
        window.next_button.click()
        wait(lambda: window.state.record is not None and idle("deploy")(), "deploying", 600)
        shot("deploy")
        window.next_button.click()
        result = window.pages["result"]
        result.send_button.click()
        wait(lambda: result.last_answer is not None and idle("result")(), "trying it")
        shot("result")
        # the home page with the saved profile and the running deployment
        window.go("start")
        wait(idle("start"), "checking deployments")
        window.pages["start"].deployments.setCurrentRow(0)
        shot("start-with-deployment")
        # teardown asks first, naming what goes (the real box, shown and closed again)
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QMessageBox

        real_confirm = ask.confirm

        def confirm_and_shoot(*args, **kwargs):
            def grab() -> None:
                box = next(
                    w
                    for w in QApplication.topLevelWidgets()
                    if isinstance(w, QMessageBox) and w.isVisible()
                )
                shot("confirm-teardown", screen=True)
                box.reject()

            QTimer.singleShot(600, grab)
            return real_confirm(*args, **kwargs)

        ask.confirm = confirm_and_shoot
        window.pages["start"].teardown()  # "Keep it": nothing happens
        ask.confirm = real_confirm
        # an image target: its settings form and the generated Dockerfile on Review
        from targets import CATALOG

        if "docker" in CATALOG:
            window.state.name = "churn-docker"
            window.go("target")
            window.pages["target"].choose("docker")
            window.go("settings")
            wait(idle("settings"), "checking docker")  # the default base image
            shot("settings-docker")
            window.go("review")
            wait(lambda: window.pages["review"].plan_ok, "planning for docker")
            shot("review-docker")
            # an error as the analyst sees it: a file that is not a model
        bad = tmp / "Downloads" / "not-a-model.pkl"
        bad.parent.mkdir(exist_ok=True)
        bad.write_bytes(b"just some text, not a model")
        window.go("model")
        model_page.set_model_path(bad)
        wait(lambda: idle("model")() and model_page.problem.isVisible(), "reading a bad file")
        shot("error")  # said on the page, and why Next is grey
        from app.errors import ModelError

        dialog = notify.show_error(window, ModelError("An example error.", "What to do next."))
        dialog.details_button.click()
        shot("error-details", dialog)
        notify.close_all()
        _remote_targets(window, tmp, model, shot, wait, idle, stack)
        _dashboard_and_batch(window, tmp, shot, wait)
    except AllTaken:
        pass
    finally:
        from app.store.records import list_records
        from wizards import actions

        # Everything deployed in this run's private home, whatever page the run ended on.
        for record in list_records():
            try:
                actions.teardown(record.name)
            except Exception as exc:  # report, but still close cleanly
                print(f"teardown of {record.name} failed: {exc}", file=sys.stderr)
        # a run stopped early (MODELSHIP_SHOTS) holds answers: no one is there to
        # answer "Discard this deployment?"
        ask.confirm = lambda *args, **kwargs: True
        window.close()
        QApplication.processEvents()
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(taken)} of {len(shots)} screenshots written in {out_dir}")
    return 0


def _remote_targets(window, tmp: Path, model: Path, shot, wait, idle, stack) -> None:
    """The cloud targets' settings pages against the test emulators (OpenStack, moto for
    AWS, Heroku when Docker and the registry are here), and Review with the cost."""
    import yaml

    from tests.emulators.openstack.emulator import OpenStackEmulator

    emulator = OpenStackEmulator().start()
    stack.callback(emulator.stop)
    clouds = {
        "bwcloud": emulator.cloud_config("application_credential", "Freiburg"),
    }
    (tmp / ".config" / "openstack").mkdir(parents=True, exist_ok=True)
    (tmp / ".config" / "openstack" / "clouds.yaml").write_text(yaml.safe_dump({"clouds": clouds}))
    from app.store.secrets import set_secret

    set_secret("iris-key", "screenshot-key-0123456789")
    settings = window.pages["settings"]
    window.state.name = "churn-cloud"
    window.state.model_path = model  # the error shots above left a bad file chosen
    # the cards' health: no AWS profile yet ("Set one up"), no Heroku key yet
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "HEROKU_API_KEY"):
        os.environ.pop(name, None)
    os.environ.pop("NETRC", None)  # ~/.netrc: none yet
    window.go("target")
    cards = window.pages["target"].cards
    window.pages["target"].choose("openstack")
    for card in cards.values():
        card.health.setVisible(False)  # the first check's results are no answer here
    wait(health_arrived(window.pages["target"]), "checking the cards", 60)
    from PySide6.QtWidgets import QScrollArea

    # on a small screen the AWS card's "Set one up" is below the fold: scroll to it
    window.pages["target"].findChild(QScrollArea).ensureWidgetVisible(cards["sagemaker"])
    shot("target-clouds")
    window.go("target")
    window.pages["target"].choose("openstack")
    window.state.settings = {"cloud": "bwcloud", "region": "Freiburg", "api_key": "iris-key"}
    window.go("settings")
    wait(lambda: settings.editors["flavor"].widget.count() > 0, "asking the OpenStack cloud")
    settings.editors["flavor"].set("m1.small")
    settings.check_button.click()
    wait(idle("settings"), "checking the cloud")
    shot("settings-openstack")
    # SageMaker: profiles from ~/.aws, prices, autoscaling; moto stands in for AWS
    from tests.emulators.sagemaker_runtime.server import MotoServer

    moto = MotoServer().start()
    stack.callback(moto.stop)
    (tmp / ".aws").mkdir(exist_ok=True)
    (tmp / ".aws" / "config").write_text(
        "[default]\nregion = eu-central-1\n\n[profile lab]\nregion = eu-central-1\n"
    )
    (tmp / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    os.environ.update(
        AWS_ENDPOINT_URL=moto.url,
        AWS_MAX_ATTEMPTS="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    window.go("target")
    window.pages["target"].choose("sagemaker")
    window.state.settings = {
        "aws_profile": "lab",
        "region": "eu-central-1",
        "instance_type": "ml.m5.large",
        "max_instances": 3,
    }
    window.go("settings")
    wait(idle("settings"), "checking AWS")
    shot("settings-sagemaker")
    window.go("review")
    wait(lambda: idle("review")() and window.pages["review"].plan_ok, "planning for SageMaker")
    shot("review-cost")
    # Heroku: the key found in ~/.netrc, the app name checked live
    from tests.conftest import docker_available
    from tests.emulators.heroku.registry import registry_available

    if not (docker_available() and registry_available()):
        print("no Docker or registry: no Heroku screenshot", file=sys.stderr)
        return
    from tests.emulators.heroku.emulator import HerokuEmulator

    heroku = HerokuEmulator(api_keys=["key-shot-0123"])
    heroku.start()
    stack.callback(heroku.stop)
    try:  # the emulator's addresses, confirmed on this computer as a person would
        from app.store import trust

        for address in (heroku.api_url, heroku.registry):
            trust.allow_host(address if "://" in address else f"http://{address}")
    except (ImportError, AttributeError):  # a ModelShip that asks no such question
        pass
    netrc = tmp / ".netrc"
    netrc.write_text("machine 127.0.0.1\n  login analyst@uni.example\n  password key-shot-0123\n")
    netrc.chmod(0o600)
    os.environ.pop("HEROKU_API_KEY", None)
    window.go("target")
    window.pages["target"].choose("heroku")
    window.state.settings = {
        "app": "churn-model",
        "api_url": heroku.api_url,
        "registry": heroku.registry,
        "api_key": "iris-key",
    }
    window.go("settings")
    form = settings.target_form
    wait(lambda: "Free:" in form.app_state.text() and idle("settings")(), "checking the app")
    shot("settings-heroku")


def _dashboard_and_batch(window, tmp: Path, shot, wait) -> None:
    """The dashboard of the running deployment (after a batch scoring, so that its
    figures move), and its Score a file tab with a finished run."""
    from app.model.samples import sample_csv_path
    from app.store.records import list_records
    from wizards.dashboard import DashboardDialog

    record = next(r for r in list_records() if r.target == "local")
    dialog = DashboardDialog(record.name, window)
    dialog.resize(min(SIZE[0], 1000), min(SIZE[1], 720))
    dialog.show()
    try:
        wait(lambda: dialog.snap is not None, "the dashboard's first look")
        rows = tmp / "customers.csv"
        shutil.copy(sample_csv_path(), rows)
        dialog.tabs.setCurrentWidget(dialog.batch)
        dialog.batch.pick(rows)
        dialog.batch.score()
        wait(lambda: dialog.batch.result is not None and not dialog.batch.is_busy(), "scoring")
        shot("batch-scoring", dialog)
        dialog.tabs.setCurrentIndex(0)  # the log
        dialog.refresh()
        wait(
            lambda: (
                dialog.snap.metrics is not None
                and dialog.snap.metrics.requests > 1
                and not dialog.busy_workers()
            ),
            "the dashboard's figures",
        )
        shot("dashboard", dialog)
        # next month's customers: everyone 30 years older (the sample's own rows otherwise)
        import csv

        older = tmp / "customers-next-month.csv"
        with rows.open(newline="", encoding="utf-8") as f_in:
            table = list(csv.DictReader(f_in))
        for row in table:
            row["age"] = str(int(float(row["age"])) + 30)
        with older.open("w", newline="", encoding="utf-8") as f_out:
            writer = csv.DictWriter(f_out, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        dialog.tabs.setCurrentWidget(dialog.batch)
        dialog.batch.pick(older)
        dialog.batch.score()
        wait(lambda: not dialog.batch.is_busy(), "scoring next month's customers")
        time.sleep(1)  # the server writes what it captured a moment after it answers
        dialog.resize(*SIZE)  # the charts as large as the screen lets them be
        tabs = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
        dialog.tabs.setCurrentIndex(tabs.index("Last hour"))
        dialog.refresh()
        wait(lambda: not dialog.busy_workers(), "the charts")
        shot("dashboard-last-hour", dialog)
        dialog.tabs.setCurrentWidget(dialog.drift)
        wait(
            lambda: dialog.drift.report is not None and not dialog.drift.busy_workers(),
            "the drift report",
        )
        shot("dashboard-drift", dialog)
    finally:
        dialog.close()
    # torn down, it stays on the Start page under "Removed", with Deploy again
    from wizards import actions

    actions.teardown(record.name)
    window.go("start")
    start = window.pages["start"]
    wait(lambda: not start.is_busy(), "listing deployments")
    start.select_deployment(record.name, removed=True)
    shot("start-removed")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    sys.exit(main(target.resolve()))
