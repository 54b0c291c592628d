"""The core's next steps in the wizard's words: the field or button, never a flag.

The core's messages carry their next steps as data (:mod:`app.nextstep`): a
:class:`~app.nextstep.Words` is the command line's text with the actions in it. Here each
action is said as what a person clicks or fills in the wizard; ``wizards.fixes`` offers
some of them as buttons. A plain ``str`` names no action and is shown as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.nextstep import Action, Words

DOCKER_START = (
    "Start Docker (open Docker Desktop, or ask whoever looks after this computer to start "
    "the Docker service). If it already runs, your user may not be allowed to use it: ask "
    "to be added to the “docker” group, then log out and in again."
)
DOCKER_ACCESS = (
    "Ask whoever looks after this computer to add your user to the “docker” group, then "
    "log out and in again, or run Docker Desktop."
)
CONVERT_WITH = "“Convert with” on the Model page"


def _cap(text: str, verb: str = "") -> str:
    """Capitalised as the command line's lead words were ("Run again with ...")."""
    return text[:1].upper() + text[1:] if verb[:1].isupper() else text


def _python(a: Action) -> str:
    who, verb = a.get("who", ""), a.get("verb", "")
    if verb == "e.g.":
        return f"e.g. {who} under {CONVERT_WITH}"
    if verb == "with":
        return f"under {CONVERT_WITH}"
    said = f"choose {who} under {CONVERT_WITH}" if who else f"choose it under {CONVERT_WITH}"
    return _cap(said, verb)


def _input_shape(a: Action) -> str:
    verb, example = a.get("verb", ""), a.get("example", "")
    if verb == "e.g.":
        return f"in the Input shape field, e.g. {example}"
    lead = verb[: -len(" with")] + " in" if verb.endswith(" with") else verb
    said = " ".join(w for w in (lead, "the Input shape field") if w)
    return said + (f", e.g. {example}" if example else "")


def _allow_host(a: Action) -> str:
    if a.get("form") == "https":
        return f"Use its https:// address ({a['url']})"
    return "click “Check again” and answer “Trust this address”"


def _trust_model(a: Action) -> str:
    if a.get("form") == "paren":
        return "“I trust this file”"
    return _cap("tick “I trust this file”", a.get("verb", ""))


# what each command is in the wizard: (as a thing to use, as a thing to do)
COMMANDS = {
    "teardown": ("“Tear down” on the Start page", "tear it down on the Start page"),
    "status": ("the Start page", "check the Start page"),
    "rollback": ("the Start page", "roll back on the Start page"),
    "convert": ("the Convert page", "convert it on the Convert page"),
    "inspect": ("the Model page", "choose it again on the Model page"),
    "deploy": ("ModelShip", "deploy it again"),
    "logs": ("the log on the deployment's dashboard", "read its log on the dashboard"),
    "start": ("“Start” on the deployment's dashboard", "start it on its dashboard"),
    "serve": (
        "running the model on this computer",
        "run the model on this computer (target “This computer”)",
    ),
    "profiles": ("the saved profiles on the Start page", "open it from the Start page"),
}


def _command(a: Action) -> str:
    noun, do = COMMANDS.get(a["command"], ("ModelShip", "use ModelShip"))
    verb = a.get("verb", "")
    return _cap(do, verb) if verb else noun


def _heroku(a: Action) -> str:
    if a.get("form") == "refused":
        return (
            "Create a new API key (Heroku → Account settings → API key → Regenerate) and "
            "paste it with “Use a different key” on the settings page."
        )
    return (
        "Paste your Heroku API key (Heroku → Account settings → API key → Reveal) into its "
        "field on the settings page."
    )


WIZARD_WORDS: dict[str, Callable[[Action], str]] = {
    "accept_mismatch": lambda a: _cap(
        "tick “Deploy anyway” on the Convert page", a.get("verb", "")
    ),
    "match_env": lambda a: _cap(
        "use “Make a matching environment” on the Convert page", a.get("verb", "")
    ),
    "use_python": _python,
    "chosen_python": lambda a: f"the Python chosen under {CONVERT_WITH}",
    "trust_model": _trust_model,
    "trust_python": lambda a: f"choose it under {CONVERT_WITH}",
    "allow_host": _allow_host,
    "set_setting": lambda a: f"the {a.get('title') or a['field']} setting",
    "use_port": lambda a: f"port {a['port']}",
    "set_tolerance": lambda a: _cap(
        f"set the accepted difference to {a['value']}", a.get("verb", "")
    ),
    "input_shape": _input_shape,
    "set_secret": lambda a: "type it into its field on the settings page",
    "run_command": _command,
    "stop_billing": lambda a: "billing stops when you tear it down (Start page or Try it page)",
    "rename": lambda a: "name",
    "see_details": lambda a: "the details below",
    "model_file": lambda a: "the model file on the Model page",
    "start_docker": lambda a: DOCKER_ACCESS if a.get("detail") == "access" else DOCKER_START,
    "pull_image": lambda a: "",
    "aws_credentials": lambda a: (
        "Set up AWS access: “Set one up” on the settings page (an access key from the AWS "
        "console), or pick another AWS profile."
    ),
    "heroku_key": _heroku,
    "raise_timeout": lambda a: "",
    "raise_size_limit": lambda a: (
        f"start ModelShip with the environment variable MODELSHIP_MAX_MODEL_GB={a['gb']}"
    ),
    "keep_on_failure": lambda a: "keep_on_failure = true in a saved profile's [smoke] part",
    "no_quantize": lambda a: _cap(
        "untick “Also make a smaller (8-bit) version” on the Convert page", a.get("verb", "")
    ),
}


def wizard_words(action: Action) -> str:
    """``action`` as the wizard says it: the button or field that does it."""
    return WIZARD_WORDS[action.name](action)


def for_wizard(text: Any) -> str:
    """A core message in the wizard's words: its actions said as buttons and fields."""
    if isinstance(text, Words):
        return text.render(wizard_words)
    return "" if text is None else str(text)
