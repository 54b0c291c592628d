"""Every command-line flag that a message names exists (issue 20, item 2).

A next step that names a flag the command does not take ("run again with
--accept-mismatch" on `deploy`) is worse than none: the user follows it and gets
"unrecognized arguments". This walks every string in app/ and targets/ (the parsed
code, not its docstrings), takes each `--flag` in it, and checks it against the real
parsers of app/cli/__init__.py:

* a string that names a command ("modelship deploy NAME --replace", "`convert --x`")
  is checked against that command's parser;
* a string in app/cli/commands/CMD.py is checked against CMD's parser;
* any other string (the core's messages, raised under several commands) against the
  parsers of every command: the flag must exist on at least one.

Flags of other programs in a message (``docker run --rm``, ``pip download --platform``)
and argument lists handed to them are not ModelShip's and are left out.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli

REPO = Path(__file__).resolve().parents[2]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
# a command of ModelShip's named in a message, e.g. "modelship deploy", "`convert"
COMMAND = re.compile(
    r"(?:\bmodelship |`|\{prog\} |\{command_name\(\)\} )(" + "|".join(cli.COMMANDS) + r")\b"
)
# other programs: their flags are theirs (up to the end of that command in the text)
OTHER_PROGRAM = re.compile(
    r"\b(?:docker|pip3?|python3? -m pip|curl|aws|systemctl|uvicorn|ssh|gnome-keyring-daemon|"
    r"dbus-run-session|journalctl|kubectl|heroku|openssl|apt-get|apt|sudo|git|[\w-]+\.py)\b"
    r"[^.;\n`]*$"
)
# strings that are flags of another program, not a message: each with its reason
NOT_MESSAGES = {
    ("targets/sagemaker/client.py", "--profile"): "part of an `aws sso login` command",
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


# calls that hand their text to another program (ssh.docker("logs --tail 20 ..."),
# ssh.run("cloud-init status --wait"), subprocess.run([...])): commands, not messages
PROGRAM_CALLS = {"run", "docker", "Popen", "check_output", "check_call", "call", "exec_run"}


def _handed_to_programs(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in PROGRAM_CALLS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                ids |= {id(n) for n in ast.walk(arg)}
    return ids


def message_strings() -> Iterator[tuple[str, ast.Constant]]:
    """(file, node) for every string in app/ and targets/ that a person may read: not a
    docstring, not a command handed to a program, not such a command's argument."""
    for root in ("app", "targets"):
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skip = _docstrings(tree) | _handed_to_programs(tree)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                    continue
                if id(node) in skip or node.value.lstrip().startswith("-"):
                    continue  # a docstring, a command for a program, or its argument
                yield rel, node


def mentions() -> Iterator[tuple[str, int, str, str]]:
    """(file, line, flag, the text before it in its string) for every flag in a string."""
    for rel, node in message_strings():
        for m in FLAG.finditer(node.value):
            yield rel, node.lineno, m.group(), node.value[: m.start()]


def _parsers() -> dict[str, set[str]]:
    """Each command's options, nested subcommands' included (`profiles import --force`)."""

    def options(p: argparse.ArgumentParser) -> set[str]:
        out = {o for a in p._actions for o in a.option_strings}
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    out |= options(sub)
        return out

    found = {}
    for name in cli._available():
        parser = cli.build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        found[name] = options(sub.choices[name]) | options(parser)
    return found


PARSERS = _parsers()


def owner(rel: str, before: str) -> str | None:
    """The command whose parser must take the flag; None: any command's."""
    named = list(COMMAND.finditer(before))
    if named:
        last = named[-1]
        # "modelship deploy NAME --replace", "`convert --x`": that command's flag; but in
        # "(`modelship trust MODEL`, or --trust)" the flag starts a clause of its own
        if not re.search(r"[.;,()]|` ", before[last.end() :]):
            return last.group(1)
    m = re.fullmatch(r"app/cli/commands/(\w+)\.py", rel)
    if m and m.group(1) in PARSERS:
        return m.group(1)
    return None


def test_the_scan_finds_the_flags_it_must() -> None:
    """The walk sees messages (else the test below could pass on nothing)."""
    found = {(rel, flag) for rel, _, flag, _ in mentions()}
    # the core's next steps are spelled by app.nextstep (their flags: test_next_steps.py)
    assert ("app/nextstep.py", "--python") in found
    assert ("app/cli/commands/convert.py", "--tolerance") in found
    assert any(flag == "--trust" for _, flag in found)
    assert owner("app/cli/commands/deploy.py", "run: modelship build ") == "build"
    assert owner("app/cli/commands/deploy.py", "use ") == "deploy"
    assert owner("app/intake.py", "use ") is None
    assert owner("app/store/profile.py", "(`modelship trust MODEL`, or ") is None
    assert owner("app/store/profile.py", "run `modelship convert MODEL ") == "convert"
    assert OTHER_PROGRAM.search("Run it:  docker run ")
    assert not OTHER_PROGRAM.search("Docker is not running. Run again with ")


def test_every_flag_a_message_names_exists_on_its_command() -> None:
    wrong = []
    every = set().union(*PARSERS.values())
    for rel, line, flag, before in mentions():
        if OTHER_PROGRAM.search(before) or (rel, flag) in NOT_MESSAGES:
            continue
        command = owner(rel, before)
        have = PARSERS.get(command, set()) if command else every
        if flag not in have:
            where = f"`{command}`" if command else "any command"
            wrong.append(f"{rel}:{line}: {flag} is not an option of {where}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_each_command_has_its_help_flag(command: str) -> None:
    """The parsers really were built (a lazily loaded command's module that failed to
    load would leave an empty parser, and every check above would be vacuous)."""
    assert "--help" in PARSERS[command] and len(PARSERS[command]) > 1
