"""Take a screenshot of every wizard page, walking a real deployment to the local target.

Usage (from the repository root)::

    .venv/bin/python tests/gui/screenshots.py [OUT_DIR] [WxH]  # docs/screenshots 1280x800

Runs under Xvfb: the display comes from ``$MODELSHIP_XVFB_DISPLAY`` (started by
``.ci/services.sh``), else ``$DISPLAY``, else the script re-runs itself under
``xvfb-run -a``. Everything happens in a throw-away ``MODELSHIP_HOME`` with an in-memory
keyring; the deployment is torn down at the end. Pages are saved as
``NN-page.png`` at the size given (1280x800 by default; 800x600 is a small lab screen,
2560x1440 a large one).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SIZE = (1280, 800)
if len(sys.argv) > 2:
    SIZE = tuple(int(v) for v in sys.argv[2].lower().split("x"))  # type: ignore[assignment]


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sample_model(tmp: Path) -> Path:
    try:
        from app.samples import sample_model_path

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
    tmp = Path(tempfile.mkdtemp(prefix="modelship-shots-"))
    os.environ["MODELSHIP_HOME"] = str(tmp / "home")
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

    def shot(name: str, widget=None, screen: bool = False) -> None:
        pump(0.3)
        n = len(shots) + 1
        path = out_dir / f"{n:02d}-{name}.png"
        if screen:  # the window with a dialog on top, as the person sees it
            image = app.primaryScreen().grabWindow(0, 0, 0, *SIZE)
        else:
            image = (widget or window).grab()
        image.save(str(path))
        shots.append(path.name)
        print(path)

    def idle(page_id: str) -> Callable[[], bool]:
        return lambda: not window.pages[page_id].is_busy()

    model = _sample_model(tmp)
    port = _free_port()
    try:
        shot("start")
        window.next_button.click()
        model_page = window.pages["model"]
        model_page.set_model_path(model)
        wait(lambda: window.state.artifact is not None, "reading the model")
        if window.state.artifact.runs_code_on_load:
            model_page.trust.setChecked(True)
        from app.samples import sample_csv_path

        model_page.csv_edit.setText(str(sample_csv_path()))  # as an analyst picks their CSV
        shot("model")
        window.next_button.click()
        wait(lambda: window.state.conversion is not None and idle("convert")(), "converting")
        shot("convert")
        window.next_button.click()
        window.pages["target"].choose("local")
        shot("target")
        window.next_button.click()
        settings = window.pages["settings"]
        wait(idle("settings"), "checking")
        settings.editors["port"].set(port)
        settings.check_button.click()
        wait(lambda: idle("settings")() and settings.checked_ok, "checking the port")
        shot("settings")
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
            docker_settings = window.pages["settings"]
            wait(idle("settings"), "checking docker")
            base = os.environ.get("MODELSHIP_TEST_BASE_IMAGE", "modelship-test-base:bookworm")
            docker_settings.base_image.setText(base)  # no image can be pulled here
            docker_settings.check_button.click()
            wait(idle("settings"), "checking docker")
            shot("settings-docker")
            window.go("review")
            wait(lambda: window.pages["review"].plan_ok, "planning for docker")
            shot("review-docker")
            # an error as the analyst sees it: a file that is not a model
        bad = tmp / "not-a-model.pkl"
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
        _dashboard_and_batch(window, tmp, shot, wait)
    finally:
        from app.records import list_records
        from wizards import actions

        # Everything deployed in this run's private home, whatever page the run ended on.
        for record in list_records():
            try:
                actions.teardown(record.name)
            except Exception as exc:  # report, but still close cleanly
                print(f"teardown of {record.name} failed: {exc}", file=sys.stderr)
        window.close()
        QApplication.processEvents()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(shots)} screenshots in {out_dir}")
    return 0


def _dashboard_and_batch(window, tmp: Path, shot, wait) -> None:
    """The dashboard of the running deployment (after a batch scoring, so that its
    figures move), and its Score a file tab with a finished run."""
    from app.records import list_records
    from app.samples import sample_csv_path
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
