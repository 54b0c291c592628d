"""Next steps as data: what a message tells a person to do, as actions both front ends say.

A message that names something to do ("run again with --accept-mismatch", "choose a free
port (the Port setting; --port on the command line)") is :class:`Words`: plain words and
:class:`Action` s in order. ``Words`` is a ``str`` whose text is the command line's (the
CLI prints it, logs and tests read it as before); ``parts`` keeps the actions, which the
wizard renders as the button or field that does the same (``wizards.nextstep``) and may
offer as a button (``wizards.fixes``). Nothing outside this module and the CLI's own
commands spells a flag or a ModelShip command in a message: a new one is an action here,
with its words in both renderers (``tests/unit/test_next_steps.py`` holds that).

An action's parameters are its value (a port, a secret's name, a path) and, for the command
line, the words that lead into the flag (``verb``: "run again with", "Convert with"),
which the wizard leaves out or says its own way.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SERVICE = "modelship"  # the keyring service (app.store.secrets.SERVICE; not imported: no keyring)


@dataclass(frozen=True)
class Action:
    """One next step: ``name`` (what to do) and its parameters."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def __getitem__(self, key: str) -> Any:
        return dict(self.params)[key]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.name, **dict(self.params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        data = dict(data)
        return cls(str(data.pop("action")), tuple(data.items()))


def _act(action: str, **params: Any) -> Action:
    return Action(action, tuple((k, v) for k, v in params.items() if v not in (None, "")))


# ---- the actions the core's messages name -----------------------------------------------
def accept_mismatch(verb: str = "run again with") -> Action:
    """Keep the converted model although its proof failed."""
    return _act("accept_mismatch", verb=verb)


def match_env(verb: str = "Convert with", note: str = "") -> Action:
    """Convert in an environment with the versions the model was saved with."""
    return _act("match_env", verb=verb, note=note)


def use_python(verb: str = "", link: str = "", who: str = "") -> Action:
    """Convert with another Python (``who``: which one, in words)."""
    return _act("use_python", verb=verb, link=link, who=who)


def chosen_python() -> Action:
    """The Python the person chose to convert with (a noun phrase)."""
    return _act("chosen_python")


def trust_model(verb: str = "", form: str = "") -> Action:
    """Say on this computer that this model file is trusted (``form`` "hint": with the
    wizard's words in brackets, for the command line; "paren": both ways to say it)."""
    return _act("trust_model", verb=verb, form=form)


def trust_python(path: str) -> Action:
    """Confirm an interpreter a profile names on this computer."""
    return _act("trust_python", path=str(path))


def allow_host(url: str, form: str = "confirm") -> Action:
    """Confirm a service address on this computer (``form`` "https": its https://
    address instead of a plain-HTTP one)."""
    return _act("allow_host", url=url, form=form)


def set_setting(field: str, title: str = "", flag: str = "") -> Action:
    """Change a setting (``field`` of the form / profile, ``title`` as the form shows it;
    ``flag``: the command line's option where it is not ``--`` + the field's name)."""
    return _act("set_setting", field=field, title=title, flag=flag)


def raise_size_limit(gb: int = 16) -> Action:
    """Read a model larger than the size limit (an environment variable, for both)."""
    return _act("raise_size_limit", gb=gb)


def raise_timeout() -> Action:
    """Give a slow conversion more time (the command line has a limit; the wizard none)."""
    return _act("raise_timeout")


def use_port(port: int) -> Action:
    """Serve on another port (one that is free now)."""
    return _act("use_port", port=int(port))


def set_tolerance(value: float, quantized: bool = False, verb: str = "run again with") -> Action:
    """Accept differences up to ``value`` in the conversion proof."""
    return _act("set_tolerance", value=f"{value:g}", quantized=quantized or None, verb=verb)


def input_shape(verb: str = "", example: str = "") -> Action:
    """Give a PyTorch model's input shape (``example``: e.g. "1,3,32,32")."""
    return _act("input_shape", verb=verb, example=example)


def set_secret(name: str, form: str = "store") -> Action:
    """Store a secret under ``name`` (``form`` "paren": said in brackets after a clause)."""
    return _act("set_secret", name=name, form=form)


def run_command(
    command: str, arg: str = "", quote: str = "`", flags: str = "", verb: str = ""
) -> Action:
    """A later command on a deployment (teardown, status, deploy, convert, inspect);
    ``verb``: the words that lead into it ("Run", "run")."""
    return _act("run_command", command=command, arg=arg, quote=quote, flags=flags, verb=verb)


def stop_billing(name: str) -> Action:
    """When billing stops: once the deployment is torn down."""
    return _act("stop_billing", name=name)


def see_details() -> Action:
    """The longer text kept with the error (a log, a converter's stderr)."""
    return _act("see_details")


def rename() -> Action:
    """Deploy under another deployment name."""
    return _act("rename")


def model_file() -> Action:
    """Choose the model file again (the profile's [model] path)."""
    return _act("model_file")


def start_docker(detail: str = "engine") -> Action:
    """Start Docker, or get access to it (``detail`` "access": only the access)."""
    return _act("start_docker", detail=detail)


def pull_image(image: str = "") -> Action:
    """Pull the base image first (a shell command; the wizard has none)."""
    return _act("pull_image", image=image)


def aws_credentials(profile: str = "") -> Action:
    """Set up AWS credentials (or pick another profile)."""
    return _act("aws_credentials", profile=profile)


def keep_on_failure() -> Action:
    """Keep a deployment that failed its smoke test running, to look at it."""
    return _act("keep_on_failure")


def no_quantize(verb: str = "Convert without") -> Action:
    """Convert without the smaller int8 version."""
    return _act("no_quantize", verb=verb)


def heroku_key(entry: str, form: str = "missing") -> Action:
    """Get a Heroku API key into the keyring entry (``form`` "refused": a new one)."""
    return _act("heroku_key", entry=entry, form=form)


# ---- words with actions in them ---------------------------------------------------------
Part = str | Action


class Words(str):
    """A message with its next steps as data: the ``str`` is the command line's text;
    ``parts`` the plain words and actions it was made of."""

    parts: tuple[Part, ...]

    def __new__(cls, parts: Iterable[Part]) -> Words:
        flat = tuple(_flatten(parts))
        obj = super().__new__(cls, render(flat, cli_words))
        obj.parts = flat
        return obj

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(p for p in self.parts if isinstance(p, Action))

    def render(self, words: Callable[[Action], str]) -> str:
        return render(self.parts, words)

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling (the worker threads)
        return (Words, (self.parts,))

    def to_json(self) -> list[Any]:
        return [p if isinstance(p, str) else p.to_json() for p in self.parts]

    @classmethod
    def from_json(cls, data: list[Any]) -> Words:
        return cls(p if isinstance(p, str) else Action.from_json(p) for p in data)


def _flatten(parts: Iterable[Any]) -> Iterable[Part]:
    for p in parts:
        if isinstance(p, Words):
            yield from p.parts
        elif isinstance(p, Action | str):
            if p != "":
                yield p
        elif p is not None:
            yield str(p)


def say(*parts: Any) -> Words:
    """``say("Choose a free port (", set_setting("port", "Port"), ").")``."""
    return Words(parts)


def actions_of(text: Any) -> tuple[Action, ...]:
    """The actions in a message (none in a plain ``str``)."""
    return text.actions if isinstance(text, Words) else ()


def strip_end(text: Any, chars: str) -> Words:
    """``text.rstrip(chars)``, keeping its actions."""
    parts = list(text.parts) if isinstance(text, Words) else [str(text or "")]
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip(chars)
    return Words(parts)


def render(parts: Iterable[Part], words: Callable[[Action], str]) -> str:
    return "".join(p if isinstance(p, str) else words(p) for p in parts)


# ---- the command line's words -----------------------------------------------------------
def _lead(verb: str, *rest: str) -> str:
    return " ".join(w for w in (verb, *rest) if w)


def _python(a: Action) -> str:
    return _lead(a.get("verb", ""), "--python", a.get("link", ""), a.get("who", ""))


def _setting(a: Action) -> str:
    flag = a.get("flag") or "--" + a["field"].replace("_", "-")
    return f"the {a.get('title') or a['field']} setting; {flag} on the command line"


def _trust_model(a: Action) -> str:
    if a.get("form") == "paren":
        return "`modelship trust MODEL`, or --trust"
    said = _lead(a.get("verb", ""), "--trust")
    return said + (" (in the wizard: tick 'I trust this file')" if a.get("form") == "hint" else "")


def _allow_host(a: Action) -> str:
    if a.get("form") == "https":
        return f"Use its https:// address: modelship hosts allow {a['url']}"
    return (
        f"confirm it once: modelship hosts allow {shlex.quote(a['url'])} "
        "(in the wizard: “Trust this address”)"
    )


def _command(a: Action) -> str:
    q = a.get("quote", "")
    lead = a.get("verb", "")
    said = _lead(f"modelship {a['command']}", a.get("arg", ""), a.get("flags", ""))
    return (f"{lead} " if lead else "") + q + said + q


def _secret(a: Action) -> str:
    if a.get("form") == "or_wizard":
        return f"keyring set {SERVICE} {a['name']} (or the wizard's settings page)"
    if a.get("form") == "paren":
        return f"the wizard's settings page, or keyring set {SERVICE} {a['name']}"
    return f"keyring set {SERVICE} {a['name']}"


def _docker(a: Action) -> str:
    if a.get("detail") == "access":
        return (
            "Add your user to the docker group (`sudo usermod -aG docker $USER`) and log "
            "in again, or run Docker Desktop."
        )
    return (
        "Start Docker (Docker Desktop, or `sudo systemctl start docker` / dockerd on Linux). "
        "If it runs, your user may lack access: add it to the docker group "
        "(`sudo usermod -aG docker $USER`) and log in again."
    )


def _aws(a: Action) -> str:
    profile = a.get("profile", "")
    who = f" --profile {profile}" if profile else ""
    return (
        f"Set up AWS credentials: `aws configure{who}` (access key) or `aws sso login{who}` "
        "(SSO), or name another profile in the AWS profile setting (aws_profile)."
    )


def _heroku(a: Action) -> str:
    if a.get("form") == "refused":
        return (
            "Create a new API key (`heroku authorizations:create`) and store it in the "
            "keyring entry the profile names (account_key)."
        )
    return (
        "Run `heroku login` (it writes ~/.netrc), or create a key with `heroku "
        f"authorizations:create` and store it: keyring set {SERVICE} {a['entry']}."
    )


def _tolerance(a: Action) -> str:
    flag = "--quantize-tolerance" if a.get("quantized") else "--tolerance"
    return _lead(a.get("verb", ""), flag, a["value"])


def _input_shape(a: Action) -> str:
    verb, example = a.get("verb", ""), a.get("example", "")
    if verb == "e.g.":
        return f"e.g. --input-shape {example}"
    said = _lead(verb, "--input-shape")
    return said + (f", e.g. --input-shape {example}" if example else "")


CLI_WORDS: dict[str, Callable[[Action], str]] = {
    "accept_mismatch": lambda a: _lead(a.get("verb", ""), "--accept-mismatch"),
    "match_env": lambda a: (
        _lead(a.get("verb", ""), "--match-env") + (f" ({a['note']})" if a.get("note") else "")
    ),
    "use_python": _python,
    "chosen_python": lambda a: "the Python given with --python",
    "trust_model": _trust_model,
    "trust_python": lambda a: (
        f"confirm it once: modelship trust --python {shlex.quote(a['path'])} "
        "(or give --python with it on the command line)"
    ),
    "allow_host": _allow_host,
    "set_setting": _setting,
    "use_port": lambda a: f"--port {a['port']}",
    "set_tolerance": _tolerance,
    "input_shape": _input_shape,
    "set_secret": _secret,
    "run_command": _command,
    "stop_billing": lambda a: f"billing stops at `modelship teardown {a['name']}`",
    "rename": lambda a: "--name",
    "see_details": lambda a: "the details with --debug",
    "model_file": lambda a: "[model] path in the profile",
    "start_docker": _docker,
    "pull_image": lambda a: f" ({_lead('docker pull', a.get('image', ''))})",
    "aws_credentials": _aws,
    "heroku_key": _heroku,
    "keep_on_failure": lambda a: "--keep-on-failure",
    "no_quantize": lambda a: _lead(a.get("verb", ""), "--quantize"),
    "raise_size_limit": lambda a: f"MODELSHIP_MAX_MODEL_GB={a['gb']} modelship inspect MODEL",
    "raise_timeout": lambda a: ", or raise the limit with --timeout",
}


def cli_words(action: Action) -> str:
    """``action`` as the command line says it: its flag or command."""
    return CLI_WORDS[action.name](action)
