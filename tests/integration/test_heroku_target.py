"""The heroku target, beyond the conformance suite, against the Heroku emulator.

`modelship deploy PROFILE` (the CLI's own code, in this process so the in-memory
keyring holds the keys) reaching a smoke-tested endpoint; the API key imported from
~/.netrc on first use; a missing key (exit code 6); an R10 explained in plain words;
the plan stating the cost; an app the user already had is left in place by teardown,
with only what ModelShip set removed; status and logs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.run import plan, run_deploy, teardown
from app.store.profile import save_profile
from tests.conformance.harnesses.heroku import (
    ENDPOINT_KEY,
    heroku_leftovers,
    heroku_profile,
    store_keys,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    path = tmp_path_factory.mktemp("heroku-model") / "clf.joblib"
    joblib.dump(LogisticRegression().fit(X, y), path)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with no ~/.netrc and no HEROKU_API_KEY unless a test puts them there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    return tmp_path


def test_cli_deploy_imports_the_netrc_key_reaches_a_smoke_tested_app_and_tears_down(
    heroku_emulator, docker_client, base_image, model, home, capsys
) -> None:
    from app.store.secrets import get_secret, has_secret, set_secret

    name = "hk-cli"
    set_secret(ENDPOINT_KEY, "endpoint-secret-abc")
    host = heroku_emulator.api_url.split("//")[1].split(":")[0]
    (home / ".netrc").write_text(
        f"machine {host}\n  login user@modelship.example\n  password {heroku_emulator.api_key}\n"
    )
    (home / ".netrc").chmod(0o600)
    assert not has_secret("heroku-api-key")
    save_profile(heroku_profile(heroku_emulator, model, name, base_image))
    try:
        code = main(["deploy", name])
        out, err = capsys.readouterr()
        assert code == 0, err
        # the cost is said before anything is created, and the key import is said
        assert "Heroku bills the basic dyno while it runs: $0.01 per hour" in err
        assert "up to $7.00 a month" in err
        assert err.index("Heroku bills") < err.index("Creating Heroku app")
        assert "Imported your Heroku API key from" in err and ".netrc" in err
        assert heroku_emulator.api_key not in out + err  # never shown
        assert get_secret("heroku-api-key") == heroku_emulator.api_key
        web_url = heroku_emulator.state()["apps"][name]["app"]["web_url"].rstrip("/")
        assert web_url in out and "Smoke test" in out
        # the Try it line sends the endpoint's key, never the account's (issue 19)
        [line] = [x for x in out.splitlines() if x.startswith("Try it:")]
        assert f"{web_url}/predict" in line
        assert f'"Authorization: Bearer $(keyring get modelship {ENDPOINT_KEY})"' in line
        assert "heroku-api-key" not in out
        app = heroku_emulator.state()["apps"][name]
        assert app["app"]["stack"]["name"] == "container"
        assert app["config_vars"]["MODELSHIP_API_KEY"] == "endpoint-secret-abc"
        assert [d["state"] for d in app["dynos"]] == ["up"]
        assert list(heroku_emulator.registry_contents()) == [f"{name}/web"]
        # status says the release, the dyno and the cost so far
        assert main(["status", name, "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        text = json.dumps(status)
        assert "web.1 up" in text and "so far" in text
        # the endpoint needs the key
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(web_url + "/predict", data=b"{}", timeout=10)
        assert refused.value.code == 401
    finally:
        assert main(["teardown", name]) == 0
    assert heroku_leftovers(heroku_emulator, docker_client, name) == []
    assert heroku_emulator.is_empty()


def test_a_missing_key_exits_6_and_creates_nothing(
    heroku_emulator, base_image, model, home, capsys
) -> None:
    from app.store.secrets import set_secret

    set_secret(ENDPOINT_KEY, "endpoint-secret-abc")
    save_profile(heroku_profile(heroku_emulator, model, "hk-nokey", base_image))
    assert main(["deploy", "hk-nokey"]) == 6
    err = capsys.readouterr().err
    assert "No Heroku API key" in err and "heroku login" in err
    assert heroku_emulator.is_empty()


def test_a_wrong_key_exits_6(heroku_emulator, base_image, model, home, capsys) -> None:
    from app.store.secrets import set_secret

    set_secret(ENDPOINT_KEY, "endpoint-secret-abc")
    set_secret("heroku-api-key", "not-the-key")
    save_profile(heroku_profile(heroku_emulator, model, "hk-badkey", base_image))
    assert main(["deploy", "hk-badkey"]) == 6
    assert "Heroku refused the API key" in capsys.readouterr().err
    assert heroku_emulator.is_empty()


def test_the_plan_states_the_cost_and_an_unnamed_app_gets_a_suggestion(
    heroku_emulator, base_image, model, home
) -> None:
    from app.run import preflight

    store_keys(heroku_emulator)
    profile = heroku_profile(heroku_emulator, model, "hk-plan", base_image, dyno_size="standard-2x")
    items = [str(i) for i in plan(profile)]
    dyno = next(i for i in items if "web dyno" in i)
    assert "up to $50.00 a month" in dyno and "per hour" in dyno and "prices of" in dyno
    assert any(i.startswith("create Heroku app hk-plan") for i in items)
    assert preflight(profile) == []

    unnamed = heroku_profile(heroku_emulator, model, "hk-plan", base_image, app=None)
    [problem] = preflight(unnamed)
    assert problem.setting == "app" and 'app = "modelship-hk-plan"' in problem.fix
    assert heroku_emulator.is_empty()


def test_preflight_finds_a_slug_app_and_a_spent_rate_limit(
    heroku_emulator, base_image, model, home
) -> None:
    import requests

    from app.run import preflight

    store_keys(heroku_emulator)
    made = requests.post(
        f"{heroku_emulator.api_url}/apps",
        json={"name": "slug-app", "stack": "heroku-24"},
        headers={
            "Authorization": f"Bearer {heroku_emulator.api_key}",
            "Accept": "application/vnd.heroku+json; version=3",
        },
        timeout=10,
    )
    assert made.status_code == 201
    heroku_emulator.set_rate_limit(40)
    problems = preflight(
        heroku_profile(heroku_emulator, model, "hk-pre", base_image, app="slug-app")
    )
    words = [p.message for p in problems]
    assert any("heroku-24 stack" in w for w in words), words
    assert any(p.kind == "quota" and "Heroku API calls are left" in p.message for p in problems), (
        words
    )


def test_r10_is_explained_and_nothing_is_left(
    heroku_emulator, docker_client, base_image, model, home
) -> None:
    from app.errors import TargetError

    store_keys(heroku_emulator)
    heroku_emulator.fail_next_release("R10")
    name = "hk-r10"
    with pytest.raises(TargetError) as failed:
        run_deploy(heroku_profile(heroku_emulator, model, name, base_image))
    message = failed.value.message
    assert "R10" in message and "did not listen on $PORT within 60 seconds" in message
    assert "quantize" in (failed.value.hint or "")
    assert "Error R10 (Boot timeout)" in (failed.value.details or "")
    assert heroku_leftovers(heroku_emulator, docker_client, name) == []


def test_an_app_of_the_user_stays_with_only_what_modelship_set_removed(
    heroku_emulator, docker_client, base_image, model, home
) -> None:
    import requests

    from app.store.profile import Profile
    from targets import get_target

    store_keys(heroku_emulator)
    api = requests.Session()
    api.headers.update(
        {
            "Authorization": f"Bearer {heroku_emulator.api_key}",
            "Accept": "application/vnd.heroku+json; version=3",
        }
    )
    app = "users-own-app"
    made = api.post(f"{heroku_emulator.api_url}/apps", json={"name": app, "stack": "container"})
    assert made.status_code == 201
    api.patch(f"{heroku_emulator.api_url}/apps/{app}/config-vars", json={"THEIRS": "1"})
    name = "hk-own"
    record = run_deploy(heroku_profile(heroku_emulator, model, name, base_image, app=app))
    assert record.endpoint_obj().data["app_created_by_modelship"] is False
    target = get_target("heroku")
    status = target.status(record)
    assert status.running and "basic" in status.detail
    assert status.cost is not None and "so far" in status.cost.line()
    assert "Starting process" in target.logs(record)
    client = target.client(record.endpoint_obj(), Profile.model_validate(record.profile))
    assert client.ping()

    teardown(name)
    state = heroku_emulator.state()["apps"][app]
    assert state["config_vars"] == {"THEIRS": "1"}
    assert [f["quantity"] for f in state["formation"]] == [0]
    assert heroku_emulator.containers() == []
    assert heroku_emulator.registry_contents() == {}
    assert heroku_leftovers(heroku_emulator, docker_client, name, app="nothing") == []


def test_a_failed_redeploy_leaves_the_previous_release_answering(
    heroku_emulator, docker_client, base_image, model, home, tmp_path
) -> None:
    """Heroku swaps only once the new dyno is up; a redeploy that fails later (here: right
    after the release succeeded) releases the previous image again."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from app.errors import ModelShipError
    from app.store.profile import Profile
    from app.store.records import load_record
    from targets import get_target

    store_keys(heroku_emulator)
    name = "hk-redeploy"
    first = heroku_profile(heroku_emulator, model, name, base_image)
    v1 = run_deploy(first)
    image_v1 = v1.endpoint_obj().data["image"]
    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 4))
    other = tmp_path / "other.joblib"
    joblib.dump(LogisticRegression().fit(X, (X[:, 1] > 0).astype(int)), other)
    second = first.model_copy(deep=True)
    second.model.path = other

    def current_image() -> str:
        releases = heroku_emulator.state()["apps"][name]["releases"]
        return next(r for r in releases if r["current"])["artifacts"][0]["id"]

    try:
        # 1. the new release never starts (R10): the old dyno keeps serving
        heroku_emulator.fail_next_release("R10")
        with pytest.raises(ModelShipError, match="R10"):
            run_deploy(second)
        assert current_image() == image_v1

        # 2. the new release started, then the deploy failed: v1 is released again
        def fail_after_deploy(event) -> None:
            if event.kind == "step_finished" and event.step == "deploy":
                raise RuntimeError("injected after the release")

        with pytest.raises(RuntimeError):
            run_deploy(second, on_event=fail_after_deploy)
        assert current_image() == image_v1
        record = load_record(name)
        assert record.current_version == 1
        target = get_target("heroku")
        client = target.client(record.endpoint_obj(), Profile.model_validate(record.profile))
        assert client.ping()
        assert [d["state"] for d in heroku_emulator.state()["apps"][name]["dynos"]] == ["up"]
        tags = heroku_emulator.registry_contents()[f"{name}/web"]
        assert tags == ["v1"]
    finally:
        teardown(name)
    assert heroku_leftovers(heroku_emulator, docker_client, name) == []


def test_heroku_error_codes_and_prices_in_plain_words() -> None:
    from targets.heroku import pricing
    from targets.heroku.errors import explain
    from targets.heroku.preflight import suggest_name

    code, meaning, fix = explain(
        ['2026-01-01T00:00:00+00:00 heroku[router]: at=error code=H12 desc="Request timeout"']
    )
    assert code == "H12" and "30 seconds" in meaning and "fewer rows" in fix
    assert explain(["heroku[web.1]: Error R14 (Memory quota exceeded)"])[0] == "R14"
    assert explain(["nothing to see"]) is None
    standard = pricing.cost("Standard-1X")
    assert standard.per_month == 25.0 and "up to $25.00 a month" in standard.line()
    assert "not in ModelShip's price table" in pricing.cost("huge-9x").line()
    assert suggest_name("modelship-Iris_Model v2") == "modelship-iris-model-v2"
    assert len(suggest_name("modelship-" + "x" * 50)) <= 30


def test_captured_requests_are_pulled_from_every_dyno(
    heroku_emulator, docker_client, base_image, model, home, caplog
) -> None:
    """The user scales the web formation to 2 (Standard-1X; Basic runs one dyno): the
    router hands each request, and each GET /capture, to one dyno at random, and each
    dyno keeps its own files. A pull asks until both dynos (X-ModelShip-Instance, from
    $DYNO) have answered, so every request sent is there, in time order."""
    import time

    import requests

    from app.run.monitor import pull
    from app.store.records import load_record
    from targets import get_target
    from targets.heroku.target import pull_every_dyno

    name = "hk-capture"
    store_keys(heroku_emulator)
    profile = heroku_profile(
        heroku_emulator, model, name, base_image, dyno_size="standard-1x", capture_rate=1
    )
    save_profile(profile)
    api = {
        "Accept": "application/vnd.heroku+json; version=3",
        "Authorization": f"Bearer {heroku_emulator.api_key}",
    }
    try:
        assert main(["deploy", name]) == 0
        basic = requests.patch(
            f"{heroku_emulator.api_url}/apps/{name}/formation",
            json={"updates": [{"type": "web", "quantity": 2, "size": "Basic"}]},
            headers=api,
            timeout=10,
        )
        assert basic.status_code == 422 and "more than 1 Basic" in basic.text
        scaled = requests.patch(
            f"{heroku_emulator.api_url}/apps/{name}/formation",
            json={"updates": [{"type": "web", "quantity": 2}]},
            headers=api,
            timeout=10,
        )
        assert scaled.status_code == 200, scaled.text
        deadline = time.monotonic() + 90
        while [(d["name"], d["state"]) for d in heroku_emulator.state()["apps"][name]["dynos"]] != [
            ("web.1", "up"),
            ("web.2", "up"),
        ]:
            assert time.monotonic() < deadline, heroku_emulator.state()["apps"][name]["dynos"]
            time.sleep(0.5)
        record = load_record(name)
        target = get_target("heroku")
        client = target.client(record.endpoint_obj(), profile)
        sent = [[2000.0 + i, 0.5, -0.5, 2.0] for i in range(16)]
        for row in sent:
            client.predict([row])
        wanted = {row[0] for row in sent}
        log = "\n".join(heroku_emulator.state()["apps"][name]["log"])
        assert "dyno=web.1" in log and "dyno=web.2" in log  # the router used both

        def seen() -> set[float]:
            return {r.rows[0][0] for r in pull(record) if r.rows and r.rows[0][0] >= 2000}

        deadline = time.monotonic() + 20
        while (got := seen()) != wanted:  # the server writes a moment after it answers
            assert time.monotonic() < deadline, sorted(wanted - got)
            time.sleep(0.3)
        times = [r.t for r in pull(record)]
        assert times == sorted(times)
        # one pull reaches one dyno: a single try hears from one of the two
        caplog.clear()
        one = pull_every_dyno(record, None, client, quantity=2, tries=1)
        assert 0 < len([x for x in one.splitlines() if b'"rows":[[20' in x]) < len(sent)
        # said as a warning, not an error
        [said] = [r for r in caplog.records if r.name == "modelship.targets.heroku"]
        assert said.levelname == "WARNING"
        assert "only 1 of 2 dynos answered in 1 pulls" in said.getMessage(), said.getMessage()
    finally:
        assert main(["teardown", name]) == 0
    assert heroku_leftovers(heroku_emulator, docker_client, name) == []
