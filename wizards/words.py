"""The core's messages in the wizard's words: no command-line flags or shell commands.

The core's errors and preflight fixes are written for both front ends, and some name a
CLI flag ("--port on the command line") or a shell command. The wizard shows the field
or button that does the same instead; the core's own texts stay as the CLI needs them.
"""

from __future__ import annotations

import re

_DOCKER_START = (
    "Start Docker (open Docker Desktop, or ask whoever looks after this computer to start "
    "the Docker service). If it already runs, your user may not be allowed to use it: ask "
    "to be added to the “docker” group, then log out and in again."
)

# (pattern, replacement), applied in order
_RULES: list[tuple[re.Pattern[str], str]] = [
    # what only the person at this computer confirms (app.trust), in the wizard's clicks
    (
        re.compile(
            r"confirm it once: modelship hosts allow \S+ \(in the wizard: “Trust this address”\)"
        ),
        "click “Check again” and answer “Trust this address”",
    ),
    (
        re.compile(
            r"confirm it once: modelship trust --python \S+ \(or give --python with it on the "
            r"command line\)"
        ),
        "choose it under “Convert with” on the Model page",
    ),
    (re.compile(r"\(`modelship trust MODEL`, or --trust\)"), "(“I trust this file”)"),
    # "(the Port setting; --port on the command line)" -> "(the Port setting)"
    (re.compile(r";\s*--[\w-]+ on the command line"), ""),
    (re.compile(r"\s*\(--[\w-]+ on the command line\)"), ""),
    (re.compile(r",? ?or --[\w-]+ on the command line"), ""),
    (
        re.compile(r"(?:run again with |use |with )?--accept-mismatch"),
        "tick “Deploy anyway” on the Convert page",
    ),
    (
        re.compile(r"(?:Convert with|Add|Use) --match-env(?: \([^)]*\))?"),
        "Use “Make a matching environment” on the Convert page",
    ),
    (
        re.compile(r"(?:add |use |with )?--match-env(?: \([^)]*\))?"),
        "“Make a matching environment” on the Convert page",
    ),
    (re.compile(r"raise --tolerance"), "raise the accepted difference"),
    (re.compile(r"--tolerance"), "the accepted difference"),
    (re.compile(r"e\.g\. --input-shape ([\d,]+)"), r"in the Input shape field, e.g. \1"),
    (re.compile(r"(?:use |with )?--input-shape(?: [\d,]+)?"), "the Input shape field"),
    (
        re.compile(r"Convert with --python pointing at"),
        "Under “Convert with” on the Model page, choose",
    ),
    (re.compile(r"--python pointing at"), "“Convert with” on the Model page set to"),
    (re.compile(r"(?:use |with )?--python"), "“Convert with” on the Model page"),
    (re.compile(r"(?:use |with )?--trust"), "“I trust this file”"),
    (re.compile(r"(?:use |with )?--port(?: \d+)?"), "the Port setting"),
    (re.compile(r"(?:use |with )?--base-image(?: \S+)?"), "the Base image setting"),
    (re.compile(r"\[model\] path in the profile"), "the model file on the Model page"),
    (
        re.compile(r"\(the wizard's settings page, or keyring set [^)]*\)"),
        "(type it into its field on the settings page)",
    ),
    (
        re.compile(r"`?keyring set modelship [^`.;)\s]+`?"),
        "its field on the settings page",
    ),
    (
        re.compile(r"billing stops at `modelship teardown [^`]*`"),
        "billing stops when you tear it down (Start page or Try it page)",
    ),
    (
        re.compile(
            r"Set up AWS credentials: `aws configure[^`]*` \(access key\) or "
            r"`aws sso login[^`]*` \(SSO\), or name another profile in the AWS "
            r"profile setting \(aws_profile\)\."
        ),
        "Set up AWS access: “Set one up” on the settings page (an access key from the AWS "
        "console), or pick another AWS profile.",
    ),
    (
        re.compile(
            r"Create a new API key \(`heroku authorizations:create`\) and store it in the "
            r"keyring entry the profile names \(account_key\)\."
        ),
        "Create a new API key (Heroku → Account settings → API key → Regenerate) and paste "
        "it with “Use a different key” on the settings page.",
    ),
    (
        re.compile(
            r"Run `heroku login` \(it writes ~/\.netrc\), or create a key with `heroku "
            r"authorizations:create` and store it: (?:`?keyring set modelship [^`.;)\s]+`?|"
            r"its field on the settings page)\."
        ),
        "Paste your Heroku API key (Heroku → Account settings → API key → Reveal) into its "
        "field on the settings page.",
    ),
    (
        re.compile(r"\(?`?modelship (?:deploy|convert|status|teardown|rollback)[^`.;)]*`?\)?"),
        "ModelShip",
    ),
    (re.compile(r"\s*\(docker pull [^)]*\)"), ""),
    (re.compile(r"\s*\(`?sudo [^)]*\)"), ""),
]


def plain(text: str) -> str:
    """``text`` without command-line words (see the module's docstring)."""
    if not text:
        return text
    if "systemctl" in text or "usermod" in text:
        text = re.sub(r"Start Docker \(.*?log in again\.", _DOCKER_START, text, flags=re.S)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return re.sub(r"[ \t]{2,}", " ", text)


def class_words(path: str | None) -> str | None:
    """``sklearn.ensemble._forest.RandomForestClassifier`` -> ``RandomForestClassifier``:
    the private module path means nothing to an analyst."""
    if not path:
        return path
    return path.rsplit(".", 1)[-1]


NOTEBOOK_CLASS = (
    "Your model's class {cls} was defined in a notebook or a script run directly, so "
    "its code is not saved in the file and no Python can load it again."
)
NOTEBOOK_FIX = (
    "Save the model with TorchScript, which keeps the code in the file: in your "
    'notebook run torch.jit.script(model).save("model.pt") (or torch.jit.trace(model, '
    'example).save("model.pt")) and choose that file. Or move the class into a module '
    "installed in your training environment (e.g. pip install -e your project), save the "
    "model again, and under “Convert with” pick the Python of that environment."
)


def notebook_class(text: str) -> str | None:
    """The class name when ``text`` says a pickle needs a class from ``__main__`` (a
    notebook or a script run directly): "__main__.Tiny" or the unpickler's
    "Can't get attribute 'Tiny' on <module '__main__'>"."""
    m = re.search(r"Can't get attribute '([\w.]+)' on <module '__main__'", text or "")
    if m:
        return m.group(1)
    m = re.match(r"__main__\.([\w.]+)$", text or "")
    return m.group(1) if m else None
