"""One-click fixes for preflight problems, driven by the next steps the core names.

The core says *what* is wrong and what to do as data (``targets.base.Problem`` with its
``actions``, :mod:`app.nextstep`); the wizard offers what a person can click: for "change
the port", "Use free port 8081" (naming the deployment of their own that holds the port,
if one does); for any other setting of the form, a button that goes to that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.nextstep import Action
from app.store.records import deployment_on_port  # the core names the holder, for the CLI too


@dataclass
class Fix:
    setting: str  # the settings field it changes (a key of the form)
    text: str  # the button's words
    value: Any = None  # the value it puts into the field (None: just go to the field)


def _field(action: Action) -> str | None:
    """The settings field an action changes, if it changes one."""
    if action.name == "use_port":
        return "port"
    if action.name == "set_setting":
        return action["field"]
    return None


def explain(problems: list[Any], profile: Any) -> tuple[list[Any], list[Fix]]:
    """The problems in the wizard's words, and the fixes to offer (one per problem: its
    first action the settings form can do). Worker thread only (it binds sockets and
    reads the deployment records)."""
    from targets.base import Problem
    from targets.net import suggest_port

    settings = profile.target.settings
    out: list[Any] = []
    fixes: list[Fix] = []
    for p in problems:
        fields = [f for f in map(_field, p.actions) if f and hasattr(settings, f)]
        if fields and fields[0] == "port":
            port = settings.port
            host = getattr(settings, "bind_host", "127.0.0.1")
            if host in {"0.0.0.0", "::"}:
                host = "127.0.0.1"
            free = suggest_port(port, host)
            holder = deployment_on_port(port, exclude=profile.name)
            if holder is not None:
                p = Problem(
                    f"Port {port} is used by your deployment “{holder.name}”.",
                    f"Use another port (port {free} is free), or tear down “{holder.name}” "
                    "on the Start page first.",
                    kind=p.kind,
                    setting=p.setting,
                )
            fixes.append(Fix("port", f"Use free port {free}", free))
        elif fields:
            field = fields[0]
            title = type(settings).model_fields[field].title or field
            fixes.append(Fix(field, f"Go to “{title}”"))
        out.append(p)
    return out, fixes
