"""Trust stays on this computer, and credentials go only to their own hosts (issue 19).

A profile can be shared, so nothing in it may decide for the person at this computer:
* a profile's ``trusted_sha256`` (older versions wrote it) is never honoured, and
  ``profiles import`` drops it; only ``modelship trust MODEL`` / ``--trust`` (kept in
  the local trust store) lets a pickle of unknown code load;
* a profile's ``python`` runs only once that program (its path and hash) is trusted here;
* every address a profile can set (Heroku ``api_url`` and ``registry``, SageMaker's
  ``registry``) is the platform's own or confirmed with ``modelship hosts allow``;
  anything else is refused before a single byte goes there, and plain HTTP to another
  computer is refused even when confirmed;
* ``~/.netrc`` credentials never ride along to another host.
"""

from __future__ import annotations

import http.server
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from app.errors import CredentialError, ModelError, TargetError, UsageError
from app.run import teardown
from app.store import trust
from app.store.profile import load_profile, profile_path
from app.store.records import find_record
from tests.security import hostile

# ---- a server that only records ------------------------------------------------------


class Recorder(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that answers 401 with a Bearer challenge (or 200 to
    a token request) and remembers every request line and header it got."""

    daemon_threads = True

    def __init__(self, realm: str | None = None) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.realm = realm
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                recorder.seen.append((f"{self.command} {self.path}", dict(self.headers)))
                if self.path.startswith("/token"):
                    body = b'{"token": "anonymous"}'
                    self.send_response(200)
                else:
                    body = b'{"id": "unauthorized", "message": "no"}'
                    self.send_response(401)
                    if recorder.realm:
                        self.send_header(
                            "WWW-Authenticate", f'Bearer realm="{recorder.realm}",service="x"'
                        )
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, name="recorder", daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)

    def text(self) -> str:
        return repr(self.seen)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.stop()


REAL_HEROKU_KEY = "REAL-HEROKU-KEY-from-netrc-0123"
LOCAL_NETRC_KEY = "NETRC-ENTRY-for-127-0-0-1"


@pytest.fixture
def netrc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose ~/.netrc holds a Heroku key (as `heroku login` writes it) and an
    entry for 127.0.0.1: neither may reach a host it was not written for."""
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(
        f"machine api.heroku.com\n  login me@example.com\n  password {REAL_HEROKU_KEY}\n"
        f"machine 127.0.0.1\n  login someone\n  password {LOCAL_NETRC_KEY}\n",
        encoding="utf-8",
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    return home


def _write_profile(path: Path, model: Path, *, target: str = "", extra_model: str = "") -> Path:
    path.write_text(
        f'schema = 2\nname = "{path.stem}"\n\n[model]\npath = "{model}"\n{extra_model}\n'
        + (target or f'[target]\nkind = "local"\n\n[target.settings]\nport = {_free_port()}\n'),
        encoding="utf-8",
    )
    return path


def _benign_unknown(path: Path) -> Path:
    import fractions

    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = hostile._data()
    model = LogisticRegression().fit(x, y)
    model.note_ = fractions.Fraction(1, 3)  # harmless, but not on the allow-list
    joblib.dump(model, path)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- the trust store itself ---------------------------------------------------------


def test_the_trust_store_is_private_and_local(tmp_path: Path) -> None:
    model = _benign_unknown(tmp_path / "m.joblib")
    assert not trust.file_trusted(model)
    assert main(["trust", str(model)]) == 0
    assert trust.file_trusted(model)
    store = trust.store_path()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert not list(store.parent.glob(".trust-*"))  # written atomically, nothing left over
    # a copy under another name is the same file; a changed file is not
    shutil.copy(model, tmp_path / "renamed.pkl")
    assert trust.file_trusted(tmp_path / "renamed.pkl")
    with open(model, "ab") as f:
        f.write(b"\0")
    assert not trust.file_trusted(model)
    assert main(["trust", "--remove", str(tmp_path / "renamed.pkl")]) == 0
    assert not trust.file_trusted(tmp_path / "renamed.pkl")


# ---- item 4 of the attack: a shared profile carries trust ---------------------------


def test_a_shared_profile_with_trust_does_not_load_a_hostile_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.hashing import sha256_file

    marker = tmp_path / "PAYLOAD-RAN"
    (tmp_path / "corpus").mkdir()
    files = hostile.build(tmp_path / "corpus", marker)
    for name in ("pipeline-p4.pkl", "pipeline-z3.joblib"):
        path = files[name]
        shared = _write_profile(
            tmp_path / "shared.toml",
            path,
            extra_model=f'trusted_sha256 = "{sha256_file(path)}"',
        )
        assert main(["deploy", str(shared)]) == ModelError.exit_code
        err = capsys.readouterr().err
        assert "trusted_sha256" in err and "modelship trust" in err  # the note
        assert "--trust" in err  # the refusal names the command that confirms
        assert not marker.exists()
        assert find_record("shared") is None


def test_profiles_import_drops_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.hashing import sha256_file

    model = _benign_unknown(tmp_path / "m.joblib")
    shared = _write_profile(
        tmp_path / "theirs.toml", model, extra_model=f'trusted_sha256 = "{sha256_file(model)}"'
    )
    assert main(["profiles", "import", str(shared)]) == 0
    err = capsys.readouterr().err
    assert "trusted_sha256 is ignored" in err and "modelship trust" in err
    saved = profile_path("theirs").read_text(encoding="utf-8")
    assert "trusted_sha256" not in saved
    assert not trust.file_trusted(model)  # importing trusted nothing
    assert load_profile("theirs").notes == []


@pytest.mark.slow
def test_after_modelship_trust_the_shared_profile_deploys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _benign_unknown(tmp_path / "m.joblib")
    port = _free_port()
    shared = _write_profile(
        tmp_path / "benign.toml",
        model,
        target=f'[target]\nkind = "local"\n\n[target.settings]\nport = {port}\n',
    )
    assert main(["deploy", str(shared)]) == ModelError.exit_code  # unknown code: refused
    assert "--trust" in capsys.readouterr().err
    assert main(["trust", str(model)]) == 0
    try:
        assert main(["deploy", str(shared)]) == 0
        assert find_record("benign") is not None
    finally:
        teardown("benign")


# ---- item 5 of the attack: a shared profile runs its own program --------------------


def _fake_python(path: Path, marker: Path) -> Path:
    path.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_a_shared_profile_with_a_python_is_refused_with_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "PROGRAM-RAN"
    shared_dir = tmp_path / "shared"
    shared_dir.mkdir()
    model = _benign_unknown(shared_dir / "m.joblib")
    _fake_python(shared_dir / "py", marker)
    shared = _write_profile(shared_dir / "p.toml", model, extra_model='python = "./py"')
    assert main(["deploy", str(shared)]) == UsageError.exit_code
    err = capsys.readouterr().err
    assert f"modelship trust --python {shared_dir / 'py'}" in err
    assert not marker.exists()
    # `modelship build` and the pipeline's own convert step refuse it the same way
    assert main(["build", str(shared)]) == UsageError.exit_code
    assert not marker.exists()
    # importing it keeps the request but trusts nothing, and says so
    assert main(["profiles", "import", str(shared)]) == 0
    assert "modelship trust --python" in capsys.readouterr().err
    assert main(["deploy", "p"]) == UsageError.exit_code
    assert not marker.exists()


def test_a_trusted_python_stops_being_trusted_when_the_program_changes(tmp_path: Path) -> None:
    marker = tmp_path / "PROGRAM-RAN"
    py = tmp_path / "py"
    shutil.copy(sys.executable, py)
    assert main(["trust", "--python", str(py)]) == 0
    assert trust.python_trusted(str(py))
    trust.require_python(str(py))  # no error
    _fake_python(py, marker)  # another program at the same path
    assert not trust.python_trusted(str(py))
    with pytest.raises(UsageError, match="modelship trust --python"):
        trust.require_python(str(py))
    assert not marker.exists()


@pytest.mark.slow
def test_after_trusting_the_python_the_profile_converts(tmp_path: Path) -> None:
    # another name of this environment's interpreter (a virtual environment's python3)
    py = Path(sys.prefix) / "bin" / "python3"
    if not py.exists() or str(py) == sys.executable:
        py = Path(sys.prefix) / "bin" / "python"
    assert str(py) != sys.executable
    model = _benign_unknown(tmp_path / "m.joblib")
    profile = _write_profile(tmp_path / "withpy.toml", model, extra_model=f'python = "{py}"')
    from app.progress import CancelToken, NullProgress
    from app.run.steps import convert_for_profile

    with pytest.raises(UsageError, match=f"modelship trust --python {py}"):
        convert_for_profile(
            load_profile(profile), tmp_path / "model.onnx", NullProgress(), CancelToken()
        )
    assert main(["trust", "--python", str(py), str(model)]) == 0
    converted = convert_for_profile(
        load_profile(profile), tmp_path / "model.onnx", NullProgress(), CancelToken()
    )
    assert Path(converted.onnx_path).is_file()


# ---- item 6 of the attack: credentials go to any host a profile names --------------


def _heroku_profile(tmp_path: Path, model: Path, **settings: str) -> Path:
    lines = "".join(f'{k} = "{v}"\n' for k, v in settings.items())
    return _write_profile(
        tmp_path / "heroku-p.toml",
        model,
        target=f'[target]\nkind = "heroku"\n\n[target.settings]\napp = "my-app"\n'
        f"require_api_key = false\n{lines}",
    )


def _sagemaker_profile(tmp_path: Path, model: Path, registry: str) -> Path:
    return _write_profile(
        tmp_path / "sagemaker-p.toml",
        model,
        target=f'[target]\nkind = "sagemaker"\n\n[target.settings]\nregistry = "{registry}"\n',
    )


@pytest.mark.parametrize("setting", ["heroku api_url", "heroku registry", "sagemaker registry"])
def test_a_foreign_address_is_refused_before_any_traffic(
    setting: str,
    tmp_path: Path,
    recorder: Recorder,
    netrc_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.store.secrets import set_secret

    set_secret("heroku-api-key", "KEYRING-HEROKU-KEY")
    model = _benign_unknown(tmp_path / "m.joblib")
    trust.trust_model(model)  # the model is not what is refused here
    if setting == "heroku api_url":
        profile = _heroku_profile(tmp_path, model, api_url=recorder.url)
        origin = recorder.url
    elif setting == "heroku registry":
        profile = _heroku_profile(tmp_path, model, registry=recorder.address)
        origin = recorder.url
    else:
        profile = _sagemaker_profile(tmp_path, model, recorder.address)
        origin = recorder.url
    assert main(["deploy", str(profile)]) == TargetError.exit_code
    err = capsys.readouterr().err
    key = setting.split()[1]
    assert f"The {key} setting" in err
    assert f"modelship hosts allow {origin}" in err
    assert recorder.seen == []  # not a single request
    # once confirmed here, that one check passes (and says nothing of the address)
    assert main(["hosts", "allow", origin]) == 0
    assert origin in trust.allowed_hosts()
    if setting.startswith("heroku"):
        from targets.heroku.settings import HerokuSettings

        s = load_profile(profile).target.settings
        assert isinstance(s, HerokuSettings)
        assert s.address_errors() == []
    else:
        assert load_profile(profile).target.settings.address_errors() == []
    assert main(["hosts", "remove", origin]) == 0
    assert origin not in trust.allowed_hosts()


def test_clients_refuse_a_foreign_address_without_sending_anything(
    tmp_path: Path, recorder: Recorder, netrc_home: Path
) -> None:
    """Below the preflight: the Heroku client, Heroku's registry login and SageMaker's
    ECR login each refuse the address before the key or token is read or sent."""
    from app.domain import BuiltImage
    from app.progress import CancelToken, NullProgress
    from app.store.profile import new_profile
    from app.store.secrets import set_secret
    from app.store.trust import UntrustedHostError
    from targets.heroku.client import HerokuClient
    from targets.heroku.target import HerokuTarget
    from targets.sagemaker.target import SageMakerTarget

    set_secret("heroku-api-key", "KEYRING-HEROKU-KEY")
    with pytest.raises(UntrustedHostError, match="hosts allow"):
        HerokuClient(recorder.url, "KEYRING-HEROKU-KEY")
    model = _benign_unknown(tmp_path / "m.joblib")
    heroku = new_profile(
        model,
        target="heroku",
        settings={"app": "my-app", "registry": recorder.address, "require_api_key": False},
    )
    registry = HerokuTarget().registry(heroku)
    with pytest.raises(UntrustedHostError):
        registry.credentials()
    with pytest.raises(UntrustedHostError):
        registry.push(BuiltImage("x:1", "sha256:0", "linux/amd64"), "v1", NullProgress(),
                      CancelToken())  # fmt: skip
    sm = new_profile(model, target="sagemaker", settings={"registry": recorder.address})
    ecr = SageMakerTarget().registry(sm)
    with pytest.raises(UntrustedHostError):
        ecr.credentials()  # before any token is asked for
    assert recorder.seen == []


def test_plain_http_to_another_computer_is_refused_even_if_confirmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    assert main(["hosts", "allow", "http://192.0.2.10:8080"]) == UsageError.exit_code
    assert "plain HTTP" in capsys.readouterr().err
    assert trust.allowed_hosts() == []
    # an entry put into the store by other means still does not count
    store = trust.store_path()
    store.write_text(
        json.dumps({"version": 1, "hosts": {"http://192.0.2.10:8080": {}}}), encoding="utf-8"
    )
    from targets.heroku.settings import HerokuSettings

    s = HerokuSettings(api_url="http://192.0.2.10:8080", require_api_key=False)
    errors = s.address_errors()
    assert len(errors) == 1 and not errors[0].confirmable
    assert "plain HTTP" in errors[0].message
    # plain HTTP to this computer is fine once confirmed; HTTPS elsewhere too
    assert main(["hosts", "allow", "http://127.0.0.1:9"]) == 0
    assert main(["hosts", "allow", "https://heroku.example.com"]) == 0
    assert (
        HerokuSettings(api_url="http://127.0.0.1:9", require_api_key=False).address_errors() == []
    )
    assert (
        HerokuSettings(
            api_url="https://heroku.example.com/", require_api_key=False
        ).address_errors()
        == []
    )
    # the platform's own addresses need no confirmation, look-alikes do
    assert HerokuSettings(require_api_key=False).address_errors() == []
    assert HerokuSettings(
        api_url="https://api.heroku.com.evil.example", require_api_key=False
    ).address_errors()
    assert HerokuSettings(api_url="http://api.heroku.com", require_api_key=False).address_errors()
    from targets.sagemaker.settings import SageMakerSettings

    ecr = "123456789012.dkr.ecr.eu-central-1.amazonaws.com"
    assert SageMakerSettings(registry=ecr).address_errors() == []
    assert SageMakerSettings(registry=ecr.replace("eu-central-1", "us-east-1")).address_errors()
    assert SageMakerSettings(registry=ecr + ".evil.example").address_errors()
    cn = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    assert SageMakerSettings(registry=cn, region="cn-north-1").address_errors() == []


def test_netrc_credentials_never_reach_another_host(
    tmp_path: Path, recorder: Recorder, netrc_home: Path
) -> None:
    """A confirmed stand-in for Heroku's API gets only the key chosen for it: never
    the key ~/.netrc holds for api.heroku.com. A log stream or a registry on another
    address gets no credentials at all, though ~/.netrc has an entry for its host."""
    from targets.heroku.client import HerokuClient, api_key
    from targets.registry import V2Registry

    trust.allow_host(recorder.url)
    # no key in the keyring, none in the environment: the stand-in's own netrc entry
    # is used, not api.heroku.com's
    key = api_key("heroku-api-key", recorder.url)
    assert key == LOCAL_NETRC_KEY
    with HerokuClient(recorder.url, key) as client, pytest.raises(CredentialError):
        client.account()  # the stand-in answers 401 to everything
    assert recorder.seen and all(
        h.get("Authorization") == f"Bearer {LOCAL_NETRC_KEY}" for _, h in recorder.seen
    )
    assert REAL_HEROKU_KEY not in recorder.text()
    # a stream on another address (port) gets nothing, netrc's entry for 127.0.0.1 neither
    other = Recorder()
    try:
        with HerokuClient(recorder.url, key) as client:
            assert list(client.stream_lines(other.url + "/stream")) == []
        # a registry login-less call, and a token service elsewhere
        with pytest.raises(TargetError, match="refused"):
            V2Registry(f"{other.address}/repo")._request("GET", "tags/list")
        registry = V2Registry(f"{other.address}/repo", username="_", password=lambda: "REGPASS")
        third = Recorder()
        try:
            other.realm = f"{third.url}/token"
            with pytest.raises(TargetError, match="refused"):
                registry._request("GET", "tags/list")
            assert third.seen, "the token service was asked"
            assert "REGPASS" not in third.text() and "Authorization" not in third.text()
        finally:
            third.stop()
        assert other.seen
        for _, headers in other.seen:
            auth = headers.get("Authorization", "")
            assert LOCAL_NETRC_KEY not in auth and REAL_HEROKU_KEY not in auth
        assert "Bearer anonymous" in other.text() or "Basic" in other.text()
    finally:
        other.stop()
    assert REAL_HEROKU_KEY not in recorder.text()


def test_the_store_is_per_user_config_not_the_profile(tmp_path: Path) -> None:
    """MODELSHIP_HOME (tests, portable installs) keeps the store under its config."""
    assert Path(os.environ["MODELSHIP_HOME"]) in trust.store_path().parents
