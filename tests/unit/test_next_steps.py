"""Fixes as data (issue 21, item 2): a message's next steps are actions, said as flags and
commands by the command line and as buttons and fields by the wizard.

* every action has words in both front ends; the command line's name only flags its
  commands take, the wizard's none at all;
* the core's known messages keep the command line's exact text, and the wizard says them
  without a flag or command;
* no string in app/ or targets/ (outside the CLI's own commands) spells a flag or command
  that the wizard has words for: a new message uses an action instead.
"""

from __future__ import annotations

import json
import pickle
import re
import sys

import pytest

from app import nextstep as step
from app.nextstep import Action, Words, cli_words, say
from tests.unit.test_message_flags import (
    PARSERS,
    message_strings,
    owner,
)
from wizards.nextstep import WIZARD_WORDS, for_wizard, wizard_words

# what the wizard must never show (the GUI tests' COMMAND_LINE, tests/gui/helpers.py)
COMMAND_LINE = re.compile(
    r"(?:^|[\s(“\"'`])--[a-z]"
    r"|\bmodelship (?:deploy|teardown|status|convert|rollback|serve|trust|hosts|inspect)\b"
    r"|\baws (?:configure|sso)\b|\bheroku (?:login|authorizations)\b|\bkeyring set\b"
    r"|\bdocker pull\b|\bsudo\b|\[model\] path"
)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
OTHER_PROGRAMS = re.compile(r"`(?:aws|heroku|sudo)[^`]*`|\b(?:docker pull|keyring set)[^).]*")

# one of each action, with every form its constructor takes
EXAMPLES: list[Action] = [
    step.accept_mismatch(),
    step.accept_mismatch("Run again with"),
    step.match_env(),
    step.match_env("Run again with", "ModelShip makes an environment with torch"),
    step.match_env("Add"),
    step.use_python(),
    step.use_python("", "pointing at", "a Python that has scikit-learn 1.2"),
    step.use_python("Convert with", "pointing at", "a Python that has torch 2.3"),
    step.use_python("give", "with", "the environment the model was trained in"),
    step.use_python("with"),
    step.use_python("e.g.", who="~/envs/train/bin/python"),
    step.chosen_python(),
    step.trust_model("run again with", form="hint"),
    step.trust_model(form="paren"),
    step.trust_python("/home/a/envs/train/bin/python"),
    step.allow_host("http://127.0.0.1:9"),
    step.allow_host("https://example.com", form="https"),
    step.set_setting("port", "Port"),
    step.set_setting("base_image", "Base image"),
    step.use_port(8081),
    step.set_tolerance(0.03),
    step.set_tolerance(0.03, quantized=True),
    step.input_shape("e.g.", "1,3,32,32"),
    step.input_shape("Give one with", "1,3,32,32"),
    step.input_shape("Give the shape the model was trained on with"),
    step.input_shape("use"),
    step.set_secret("iris-key"),
    step.set_secret("iris-key", form="paren"),
    step.set_secret("iris-key", form="or_wizard"),
    step.run_command("teardown", "iris"),
    step.run_command("teardown", "NAME", verb="run"),
    step.run_command("status", flags="--all"),
    step.run_command("deploy", "iris", quote=""),
    step.run_command("convert", quote="", flags="or deploy"),
    step.run_command("inspect", "MODEL"),
    step.stop_billing("iris"),
    step.rename(),
    step.see_details(),
    step.model_file(),
    step.set_setting("sample_csv", "Sample rows", flag="--sample"),
    step.keep_on_failure(),
    step.no_quantize(),
    step.raise_timeout(),
    step.raise_size_limit(),
    step.run_command("logs", "NAME"),
    step.run_command("start", "iris", verb="Start it with"),
    step.run_command("serve", "MODEL", verb="run"),
    step.run_command("profiles", "list"),
    step.start_docker(),
    step.start_docker("access"),
    step.pull_image("python:3.12-slim"),
    step.pull_image(),
    step.aws_credentials("dev"),
    step.aws_credentials(),
    step.heroku_key("heroku-key"),
    step.heroku_key("", form="refused"),
]


def test_every_action_has_words_in_both_front_ends() -> None:
    assert {a.name for a in EXAMPLES} == set(step.CLI_WORDS) == set(WIZARD_WORDS)


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.name)
def test_the_wizard_says_no_flag_and_no_command(action: Action) -> None:
    said = wizard_words(action)
    assert not COMMAND_LINE.search(said), said
    assert not COMMAND_LINE.search(for_wizard(say("Then ", action, ".")))


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.name)
def test_the_command_line_names_only_flags_its_commands_take(action: Action) -> None:
    said = OTHER_PROGRAMS.sub("", cli_words(action))
    every = set().union(*PARSERS.values())
    for m in FLAG.finditer(said):
        command = owner("app/nextstep.py", said[: m.start()])
        assert m.group() in (PARSERS[command] if command else every), (said, m.group())


def test_words_are_the_command_lines_text_and_keep_their_actions() -> None:
    hint = say("Choose a free port (", step.set_setting("port", "Port"), ").")
    assert isinstance(hint, str)
    assert hint == "Choose a free port (the Port setting; --port on the command line)."
    assert for_wizard(hint) == "Choose a free port (the Port setting)."
    assert hint.actions == (step.set_setting("port", "Port"),)
    again = pickle.loads(pickle.dumps(hint))
    assert again == hint and again.parts == hint.parts
    assert Words.from_json(json.loads(json.dumps(hint.to_json()))).parts == hint.parts
    # words made of words keep every action; trimming keeps them too
    longer = say(step.strip_end(hint, "."), "; or ", step.run_command("teardown", "x"), ".")
    assert longer.actions == (step.set_setting("port", "Port"), step.run_command("teardown", "x"))
    assert str(longer).startswith("Choose a free port (the Port setting; --port on the")
    assert for_wizard("no actions here") == "no actions here" and for_wizard(None) == ""


def test_an_errors_actions_come_from_its_hint() -> None:
    from app.errors import ModelShipError
    from targets.base import Problem

    err = ModelShipError("Port 8080 is taken.", say("Use ", step.use_port(8081), "."))
    assert err.hint == "Use --port 8081."
    assert err.actions == (step.use_port(8081),)
    assert ModelShipError("plain", "words").actions == ()
    # a problem that names a setting and no action for it: changing that setting is one
    p = Problem("No app.", "Name one.", setting="app")
    assert [a.name for a in p.actions] == ["set_setting"] and p.actions[0]["field"] == "app"
    p = Problem("Taken.", say("Choose (", step.set_setting("port", "Port"), ")."), setting="port")
    assert p.actions == (step.set_setting("port", "Port"),)


# ---- the core's known messages: the command line's text as before, the wizard's without
def test_a_missing_secret(monkeypatch) -> None:
    import keyring

    from app.errors import CredentialError
    from app.store.secrets import get_secret

    monkeypatch.setattr(keyring, "get_password", lambda service, name: None)
    with pytest.raises(CredentialError) as caught:
        get_secret("iris-key")
    hint = caught.value.hint
    assert hint == (
        "Store it first (the wizard's settings page, or keyring set modelship iris-key)."
    )
    assert for_wizard(hint) == "Store it first (type it into its field on the settings page)."
    assert [a.name for a in caught.value.actions] == ["set_secret"]


def test_a_failed_proof() -> None:
    from app.model.convert import parity_hint

    class Report:
        quantized = False

        def __init__(self, tol):
            self.tol = tol

        def suggested_tolerance(self):
            return self.tol

    assert parity_hint(Report(0.03)) == (
        "If differences of up to 0.03 are fine for how you use the model, run again with "
        "--tolerance 0.03."
    )
    assert for_wizard(parity_hint(Report(0.03))).endswith("set the accepted difference to 0.03.")
    hint = parity_hint(Report(None))
    assert hint.endswith("to keep the converted model anyway, run again with --accept-mismatch.")
    assert for_wizard(hint).endswith("tick “Deploy anyway” on the Convert page.")


def test_an_untrusted_python(tmp_path) -> None:
    from app.errors import ModelShipError
    from app.store import trust

    python = tmp_path / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    with pytest.raises(ModelShipError) as caught:
        trust.require_python(str(python))
    hint = caught.value.hint
    assert hint == (
        f"If it is your own environment's python, confirm it once: modelship trust --python "
        f"{python} (or give --python with it on the command line)."
    )
    assert for_wizard(hint) == (
        "If it is your own environment's python, choose it under “Convert with” on the Model page."
    )


def test_the_workers_hints_arrive_as_actions() -> None:
    """The worker (stdlib only, the user's Python) sends its next steps as JSON."""
    from app.model.convert.runner import _raise_worker_error
    from app.model.convert.worker.common import install_hint

    res = {"error": "missing_library", "message": "No torch.", "hint": install_hint("torch")}
    with pytest.raises(Exception) as caught:
        _raise_worker_error(json.loads(json.dumps(res)), None)
    hint = caught.value.hint
    assert hint.startswith(
        "Run again with --match-env (ModelShip makes an environment with torch), or install "
        "it here: "
    )
    assert for_wizard(hint).startswith(
        "Use “Make a matching environment” on the Convert page, or install it here: "
    )


# ---- the rule: flags and commands the wizard has words for are spelled in one place
# strings that name one and do not reach the wizard, each with its reason
NOT_FOR_THE_WIZARD = {
    "app/cli/gui_entry.py": "said on the terminal when the wizard cannot start",
    "targets/calling.py": "code snippets for calling an endpoint from a shell",
    "targets/openstack/vm.py": "commands run on the VM over SSH",
    "targets/openstack/names.py": "the cloud-init file run on the VM",
    "app/model/convert/isolation.py": "the usage line of a helper program run by the worker",
    "app/store/secrets.py": "gnome-keyring-daemon's own option, for a terminal",
}
# every option of every command, every command, and what wizards/words.py rewrote: a
# message with one of them (outside the CLI) would reach the wizard in the CLI's words
EVERY_FLAG = sorted(set().union(*PARSERS.values()) - {"--help"}, key=len, reverse=True)
SPELLED = re.compile(
    r"(?<![\w-])(?:" + "|".join(re.escape(f) for f in EVERY_FLAG) + r")(?![\w-])"
    r"|\bmodelship (?:" + "|".join(sorted(PARSERS)) + r")\b"
    r"|on the command line|\baws (?:configure|sso)\b|\bheroku (?:login|authorizations)\b"
    r"|\bkeyring set\b|\bdocker pull\b|\bsudo\b|\[model\] path"
)


def test_no_message_spells_what_an_action_says() -> None:
    found = []
    for rel, node in message_strings():
        if (
            rel.startswith(("app/cli/commands/", "app/serving/"))
            or rel in {"app/cli/__init__.py", "app/nextstep.py"}
            or rel in NOT_FOR_THE_WIZARD
        ):
            continue  # the CLI's own commands, the runtime in the image, the renderer
        if SPELLED.search(node.value):
            found.append(f"{rel}:{node.lineno}: {node.value[:80]!r}")
    assert not found, "use an action of app.nextstep instead:\n" + "\n".join(found)


@pytest.mark.parametrize("kind", ["catboost", "pytorch"])
def test_the_bundle_sends_catboost_and_pytorch_to_another_python_in_both_renderings(
    kind, monkeypatch
):
    """The packaged app (is_frozen) refuses to convert these itself and names both ways
    out; the refusal is built from actions (this path once called a bool: the parameter
    ``match_env`` hid the action of the same name, and only the bundle took it)."""
    from app.model import envs
    from app.model.convert import interpreter

    monkeypatch.delenv("MODELSHIP_PYTHON", raising=False)
    monkeypatch.setattr(interpreter, "is_frozen", lambda: True)
    with pytest.raises(envs.NeedsMatchingEnvironment) as err:
        interpreter._resolve_python(None, kind)
    hint = str(err.value.hint)
    assert "--match-env" in hint and "--python" in hint
    assert "pip install" not in hint
    wizard = for_wizard(err.value.hint)
    assert "--" not in wizard and "Make a matching environment" in wizard
    # with --match-env the refusal is not raised here: the matching environment decides
    assert interpreter._resolve_python(None, kind, match_env=True) == sys.executable
